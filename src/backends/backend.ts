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
  /** Promise that weight(name) returns the same tensor for a name, and a param node the same value, for as long
   *  as this context object is passed (a session passes one context to every run): runGraph then keeps the
   *  graph's param values from run to run instead of asking the backends again. */
  readonly stableWeights?: boolean;
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
  /** With retain: a backend may hand out views of its own memory instead of copies; they are valid only
   *  until its next run (the trainer reads them in the backward right after the forward). */
  retainViews?: boolean;
  /** Graph outputs may be views of a backend's own memory instead of copies: valid only until that backend's next
   *  run (a decode step reading its logits right away). */
  outputViews?: boolean;
}

/**
 * Executes `graph` and returns its named outputs. Backends are tried in order for each node;
 * put the reference backend last so every op has a fallback.
 */
export function runGraph(graph: Graph, backends: readonly Backend[], ctx: ExecContext, options: RunOptions = {}): Map<string, Dense> {
  const plan = planFor(graph, backends);
  const values = execute(plan, graph, backends, ctx, options);
  const out = new Map<string, Dense>();
  for (const [name, id] of graph.outputs) out.set(name, outputValue(values, name, id));
  // hold nothing between runs (the plan's arrays are reused)
  if (options.retain === undefined) release(plan);
  return out;
}

const COPY_OUTPUTS: RunOptions = {};
const VIEW_OUTPUTS: RunOptions = { outputViews: true };

/** runGraph for one named output (no Map per run: the decode loop); `views`: RunOptions.outputViews. */
export function runGraphOutput(graph: Graph, backends: readonly Backend[], ctx: ExecContext, name: string, views = false): Dense {
  const id = graph.outputs.get(name);
  if (id === undefined) throw new Error(`graph has no output "${name}"`);
  const plan = planFor(graph, backends);
  const values = execute(plan, graph, backends, ctx, views ? VIEW_OUTPUTS : COPY_OUTPUTS);
  const v = outputValue(values, name, id);
  release(plan);
  return v;
}

function outputValue(values: (Value | undefined)[], name: string, id: number): Dense {
  const v = values[id];
  if (v === undefined || v.kind !== 'dense') throw new Error(`graph output "${name}" is not a dense value`);
  return v;
}

/** Empties a run's values: the ones no node dropped during the run (outputs, values nothing reads). */
function release(plan: Plan): void {
  const { values, kept } = plan;
  for (let j = 0; j < kept.length; j++) values[kept[j]!] = undefined;
}

function execute(plan: Plan, graph: Graph, backends: readonly Backend[], ctx: ExecContext, options: RunOptions): (Value | undefined)[] {
  const retain = options.retain;
  const values: (Value | undefined)[] = retain ?? plan.values;
  const { drops, dropStart, kernels, inputs: inputArrays, paramValues } = plan;
  // param values kept from the previous run of this same (stable) context
  const cached = ctx.stableWeights === true && plan.paramCtx === ctx;
  if (!cached) {
    paramValues.fill(undefined);
    plan.paramCtx = ctx.stableWeights === true ? ctx : undefined;
  }
  for (let b = 0; b < backends.length; b++) backends[b]!.beginRun?.(graph, options);
  const nodes = graph.nodes;
  for (let n = 0; n < nodes.length; n++) {
    const pv = paramValues[n];
    if (pv !== undefined) {
      values[n] = pv;
      continue;
    }
    const node = nodes[n]!;
    const ids = node.inputs;
    const inputs = inputArrays[n]!;
    for (let j = 0; j < ids.length; j++) inputs[j] = values[ids[j]!]!;
    // the kernel each node runs on is picked on the graph's first run, then reused (a per-graph plan)
    const kernel = (kernels[n] ??= pickKernel(node, inputs, backends));
    const v = kernel(node, inputs, ctx);
    values[n] = v;
    if (plan.isParam[n] === 1 && plan.paramCtx !== undefined) paramValues[n] = v;
    for (let j = 0; j < ids.length; j++) inputs[j] = undefined as unknown as Value;
    // Drop intermediates once their last consumer ran, so peak memory stays near one layer.
    if (retain === undefined) for (let d = dropStart[n]!, e = dropStart[n + 1]!; d < e; d++) values[drops[d]!] = undefined;
  }
  return values;
}

/** What runGraph computes once per graph (and backend list) instead of on every run. */
interface Plan {
  backends: readonly Backend[];
  nodeCount: number;
  kernels: (Kernel | undefined)[];
  /** One reusable inputs array per node. */
  inputs: Value[][];
  /** The values array of a run (emptied at the end of each). */
  values: (Value | undefined)[];
  /** drops[dropStart[n] .. dropStart[n + 1]): the values node n is the last consumer of (outputs excluded). */
  drops: Int32Array;
  dropStart: Int32Array;
  /** The values that are not dropped during a run (release empties them after it). */
  kept: Int32Array;
  /** 1 for param nodes. */
  isParam: Uint8Array;
  /** The param values of the last run of `paramCtx` (a context with stableWeights), reused by its next runs. */
  paramValues: (Value | undefined)[];
  paramCtx: ExecContext | undefined;
}

const plans = new WeakMap<Graph, Plan>();

function planFor(graph: Graph, backends: readonly Backend[]): Plan {
  let p = plans.get(graph);
  if (p === undefined || p.backends !== backends || p.nodeCount !== graph.nodes.length) {
    const count = graph.nodes.length;
    const lastUse = new Int32Array(count).fill(-1);
    for (const n of graph.nodes) for (const i of n.inputs) lastUse[i] = n.id;
    const outputIds = new Set(graph.outputs.values());
    const dropStart = new Int32Array(count + 1);
    const drops: number[] = [];
    for (let n = 0; n < count; n++) {
      dropStart[n] = drops.length;
      for (const i of graph.nodes[n]!.inputs) if (lastUse[i] === n && !outputIds.has(i) && !drops.includes(i, dropStart[n])) drops.push(i);
    }
    dropStart[count] = drops.length;
    const dropped = new Uint8Array(count);
    for (const i of drops) dropped[i] = 1;
    const kept: number[] = [];
    for (let i = 0; i < count; i++) if (dropped[i] === 0) kept.push(i);
    p = {
      backends, nodeCount: count, kernels: new Array(count), inputs: graph.nodes.map((n) => new Array(n.inputs.length)),
      values: new Array(count).fill(undefined), drops: Int32Array.from(drops), dropStart, kept: Int32Array.from(kept),
      isParam: Uint8Array.from(graph.nodes, (n) => (n.op === 'param' ? 1 : 0)), paramValues: new Array(count).fill(undefined), paramCtx: undefined,
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
