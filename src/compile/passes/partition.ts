// Pass 1: partition a no-cache prefill graph into fused kernels by walking its structure (never by
// reading model files): the prologue (embeddings, run on the CPU), then the residual stream
// r_{i+1} = add(r_i, branch_i); each branch with an `attention` node is an attention kernel, any other
// branch an FFN kernel; what follows the last residual up to the `logits` output is the classifier.
// Encoders (graph output `hidden`, `attention_masked` with the `key_mask` input): the tail up to `hidden`
// (the final norm) is the `output` kernel. Post-norm stacks (BERT: r_{i+1} = LN(r_i + branch(r_i))) are cut at
// the un-normalised sums: each kernel starts with the LayerNorm of its input (the first one with the
// embedding LayerNorm) and ends with the residual add; the last LayerNorm is the output kernel.

import type { Graph, Node } from '../../graph/graph.js';
import { RistrettoError } from '../../errors.js';

export type KernelKind = 'attention' | 'ffn' | 'classifier' | 'output';

export interface Kernel {
  kind: KernelKind;
  /** Transformer layer (the classifier / output kernel gets the layer count). */
  layer: number;
  /** l{n}_attn, l{n}_ffn, classifier */
  name: string;
  /** The residual-stream node this kernel reads. */
  input: number;
  /** The node it produces: the residual add, or the logits. */
  output: number;
  /** Op nodes in topological order, params and inputs excluded (the output is the last). */
  nodes: number[];
  /** Parameter names the kernel reads. */
  params: string[];
  /** Attention kernels: the k and v nodes attention reads (post-RoPE k), handed to the CPU KV cache. */
  kv?: { k: number; v: number };
  /** Norm nodes applied directly to the residual stream (their eps scales with the residual scale). */
  residualNorms: number[];
  /** The node whose value is the residual add (attention/ffn). */
  residualAdd?: number;
}

export interface Partition {
  graph: Graph;
  /** Prologue op nodes (embedding lookups and their sums), executed on the CPU. */
  prologue: number[];
  /** The first residual-stream node (the prologue's result). */
  residual0: number;
  kernels: Kernel[];
  numLayers: number;
  /** An encoder graph (output `hidden`, no classifier): the last kernel is the `output` kernel. */
  encoder: boolean;
  /** Post-norm residual blocks (BERT): kernels read the un-normalised sum and start with its LayerNorm. */
  postNorm: boolean;
  /** The graph's `key_mask` input node (encoders: the key-padding mask of attention_masked), if any. */
  keyMask?: number;
}

const PROLOGUE_OPS = new Set(['embedding', 'add', 'mul']);

function fail(msg: string): never {
  throw new RistrettoError('UNSUPPORTED', `ANE partition: ${msg}`);
}

export function partitionGraph(g: Graph): Partition {
  const nodes = g.nodes;
  const consumers: number[][] = nodes.map(() => []);
  for (const n of nodes) for (const i of n.inputs) consumers[i]!.push(n.id);
  const isLeaf = (n: Node): boolean => n.op === 'param' || n.op === 'input';
  const hiddenOut = g.outputs.get('logits') === undefined ? g.outputs.get('hidden') : undefined;
  const encoder = hiddenOut !== undefined;
  const logits = g.outputs.get('logits') ?? hiddenOut;
  if (logits === undefined) fail('the graph has no "logits" (or, for encoders, "hidden") output');
  const isNorm = (n: Node): boolean => n.op === 'rmsnorm' || n.op === 'layernorm';

  // Prologue: embeddings and elementwise combinations of them.
  const pro = new Set<number>();
  for (const n of nodes) {
    if (isLeaf(n)) continue;
    if (PROLOGUE_OPS.has(n.op) && n.inputs.every((i) => isLeaf(nodes[i]!) || pro.has(i)) && (n.op === 'embedding' || n.inputs.some((i) => pro.has(i)))) pro.add(n.id);
  }
  const prologue = [...pro].sort((a, b) => a - b);
  const r0 = prologue.filter((id) => consumers[id]!.some((c) => !pro.has(c))).pop();
  if (r0 === undefined) fail('no embedding prologue found');

  // The residual add of the block reading r: add(r, branch) in either order; post-norm: add(branch, norm(r)).
  const addWith = (x: number): Node | undefined =>
    consumers[x]!.map((c) => nodes[c]!).find((c) => c.op === 'add' && c.inputs.includes(x) && c.inputs[0] !== c.inputs[1] && !isLeaf(nodes[c.inputs[0] === x ? c.inputs[1]! : c.inputs[0]!]!));
  const normOf = (x: number): Node | undefined => {
    const cs = consumers[x]!;
    const n = cs.length === 1 ? nodes[cs[0]!]! : undefined;
    return n !== undefined && isNorm(n) && n.inputs[0] === x ? n : undefined;
  };
  const r0Norm = normOf(r0);
  const postNorm = r0Norm !== undefined && addWith(r0Norm.id) !== undefined;
  const residualAddOf = (x: number): Node | undefined => {
    const direct = addWith(x);
    if (direct !== undefined || !postNorm) return direct;
    const n = normOf(x);
    return n === undefined ? undefined : addWith(n.id);
  };
  const keyMask = nodes.find((n) => n.op === 'input' && (n.attrs as { name?: string }).name === 'key_mask')?.id;

  const kernels: Kernel[] = [];
  let r = r0;
  let layer = -1;
  const collect = (out: number, from: number): { ops: number[]; params: string[] } => {
    const seen = new Set<number>();
    const params = new Set<string>();
    const stack = [out];
    while (stack.length) {
      const id = stack.pop()!;
      if (id === from || seen.has(id)) continue;
      const n = nodes[id]!;
      if (n.op === 'param') {
        params.add((n.attrs as { name: string }).name);
        continue;
      }
      if (n.op === 'input') continue;
      if (id < from) fail(`node ${id} (${n.op}) reaches behind the residual stream node ${from}: not a residual block`);
      seen.add(id);
      stack.push(...n.inputs);
    }
    return { ops: [...seen].sort((a, b) => a - b), params: [...params] };
  };
  for (;;) {
    const add = residualAddOf(r);
    if (add === undefined) break;
    const { ops, params } = collect(add.id, r);
    const attn = ops.map((id) => nodes[id]!).find((n) => n.op === 'attention' || n.op === 'attention_masked');
    const kind: KernelKind = attn !== undefined ? 'attention' : 'ffn';
    if (kind === 'attention') layer++;
    if (layer < 0) layer = 0;
    for (const id of ops) {
      if (id === add.id) continue;
      const outside = consumers[id]!.filter((c) => !ops.includes(c));
      if (outside.length > 0) fail(`node ${id} (${nodes[id]!.op}) inside the ${kind} block of layer ${layer} is also used by node ${outside[0]}`);
    }
    kernels.push({
      kind,
      layer,
      name: `l${layer}_${kind === 'attention' ? 'attn' : 'ffn'}`,
      input: r,
      output: add.id,
      nodes: ops,
      params,
      // Encoders keep no KV cache: only causal decoders' attention kernels return K/V.
      kv: attn && attn.op === 'attention' ? { k: attn.inputs[1]!, v: attn.inputs[2]! } : undefined,
      residualNorms: ops.filter((id) => (nodes[id]!.op === 'rmsnorm' || nodes[id]!.op === 'layernorm') && nodes[id]!.inputs[0] === r),
      residualAdd: add.id,
    });
    r = add.id;
  }
  const { ops, params } = collect(logits, r);
  if (!ops.includes(logits)) fail(`the ${encoder ? 'hidden output' : 'logits'} do not follow the residual stream`);
  kernels.push({
    kind: encoder ? 'output' : 'classifier',
    layer: layer + 1,
    name: encoder ? 'output' : 'classifier',
    input: r,
    output: logits,
    nodes: ops,
    params,
    residualNorms: ops.filter((id) => (nodes[id]!.op === 'rmsnorm' || nodes[id]!.op === 'layernorm') && nodes[id]!.inputs[0] === r),
  });
  return { graph: g, prologue, residual0: r0, kernels, numLayers: layer + 1, encoder, postNorm, keyMask };
}
