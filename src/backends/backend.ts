// One backend interface for every executor (reference TypeScript, WebAssembly, ...).
// A backend registers kernels per op; `runGraph` dispatches each node to the first backend
// that supports it, so an op a fast backend lacks falls back to the reference, node by node.

import type { Graph, Node } from '../graph/graph.js';
import type { OpName } from '../graph/ops.js';
import type { HostTensor } from '../formats/tensor.js';

/** A dense runtime value. */
export interface Dense {
  readonly kind: 'dense';
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
}

/** A model weight, still in its stored dtype (f32, f16, bf16, quantized). */
export interface Weight {
  readonly kind: 'weight';
  readonly tensor: HostTensor;
}

export type Value = Dense | Weight;

export interface ExecContext {
  weight(name: string): HostTensor;
  /** A persistent, zero-initialised buffer (KV cache) of the given shape. */
  state(name: string, shape: readonly number[]): Float32Array;
  input(name: string): Float32Array | Int32Array;
}

export type Kernel<K extends OpName = OpName> = (node: Node<K>, inputs: Value[], ctx: ExecContext) => Value;

export type KernelTable = { [K in OpName]?: Kernel<K> };

export interface Backend {
  readonly name: string;
  readonly kernels: KernelTable;
  /** Whether this backend handles this particular node (dtype, shape); default: it has a kernel. */
  supports?(node: Node, inputs: Value[]): boolean;
  /** Called by runGraph before the first node of every run (a backend may recycle its per-run scratch
   *  memory here; the graph tells it which values outlive the run). */
  beginRun?(graph: Graph, options: RunOptions): void;
  /** A zeroed persistent buffer for a session's state (KV cache) in the backend's own memory, so it is neither
   *  held twice nor copied in (the first backend's allocState is used when it has one). */
  allocState?(length: number): Float32Array;
  /** Releases what the backend holds beyond memory (worker threads); called by the owner (loadModel's Model.dispose). */
  dispose?(): void;
}

export function dense(shape: readonly number[], data: Float32Array | Int32Array): Dense {
  return { kind: 'dense', shape, data };
}

export interface RunOptions {
  /** Keep every node's value in this array (indexed by node id) instead of dropping intermediates
   *  after their last use: the trainer's backward pass reads them. */
  retain?: (Value | undefined)[];
}

/**
 * Executes `graph` and returns its named outputs. Backends are tried in order for each node;
 * put the reference backend last so every op has a fallback.
 */
export function runGraph(graph: Graph, backends: readonly Backend[], ctx: ExecContext, options: RunOptions = {}): Map<string, Dense> {
  const plan = planFor(graph, backends);
  const values: (Value | undefined)[] = options.retain ?? plan.values;
  const { lastUse, outputIds, kernels, inputs: inputArrays } = plan;
  for (const b of backends) b.beginRun?.(graph, options);
  const nodes = graph.nodes;
  for (let n = 0; n < nodes.length; n++) {
    const node = nodes[n]!;
    const ids = node.inputs;
    const inputs = inputArrays[n]!;
    for (let j = 0; j < ids.length; j++) inputs[j] = values[ids[j]!]!;
    // the kernel each node runs on is picked on the graph's first run, then reused (a per-graph plan)
    const kernel = (kernels[n] ??= pickKernel(node, inputs, backends));
    values[node.id] = kernel(node, inputs, ctx);
    // Drop intermediates once their last consumer ran, so peak memory stays near one layer.
    if (options.retain === undefined) for (let j = 0; j < ids.length; j++) if (lastUse[ids[j]!] === node.id && !outputIds.has(ids[j]!)) values[ids[j]!] = undefined;
  }

  const out = new Map<string, Dense>();
  for (const [name, id] of graph.outputs) {
    const v = values[id];
    if (v === undefined || v.kind !== 'dense') throw new Error(`graph output "${name}" is not a dense value`);
    out.set(name, v);
  }
  // hold nothing between runs (the plan's arrays are reused)
  if (options.retain === undefined) values.fill(undefined);
  for (let j = 0; j < inputArrays.length; j++) inputArrays[j]!.fill(undefined as unknown as Value);
  return out;
}

/** What runGraph computes once per graph (and backend list) instead of on every run. */
interface Plan {
  backends: readonly Backend[];
  nodeCount: number;
  lastUse: Int32Array;
  outputIds: Set<number>;
  kernels: (Kernel | undefined)[];
  /** One reusable inputs array per node. */
  inputs: Value[][];
  /** The values array of a run (emptied at the end of each). */
  values: (Value | undefined)[];
}

const plans = new WeakMap<Graph, Plan>();

function planFor(graph: Graph, backends: readonly Backend[]): Plan {
  let p = plans.get(graph);
  if (p === undefined || p.backends !== backends || p.nodeCount !== graph.nodes.length) {
    const lastUse = new Int32Array(graph.nodes.length).fill(-1);
    for (const n of graph.nodes) for (const i of n.inputs) lastUse[i] = n.id;
    p = {
      backends, nodeCount: graph.nodes.length, lastUse, outputIds: new Set(graph.outputs.values()),
      kernels: new Array(graph.nodes.length), inputs: graph.nodes.map((n) => new Array(n.inputs.length)), values: new Array(graph.nodes.length),
    };
    plans.set(graph, p);
  }
  return p;
}

function pickKernel(node: Node, inputs: Value[], backends: readonly Backend[]): Kernel {
  for (const b of backends) {
    const k = b.kernels[node.op] as Kernel | undefined;
    if (k !== undefined && (b.supports === undefined || b.supports(node, inputs))) return k;
  }
  throw new Error(`no backend implements op "${node.op}" (node ${node.id}${node.name ? ` "${node.name}"` : ''})`);
}
