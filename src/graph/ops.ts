// The closed op set. Every model is written with these ops only; every backend implements
// them (or falls back per op to the reference backend). Shapes are row-major, 2-D [rows, cols]
// for activations: rows are sequence positions, cols are features.

import type { ValueType } from './graph.js';

export interface OpAttrs {
  /** A runtime input (token ids, positions). */
  input: { name: string; shape: number[]; type: ValueType };
  /** A model weight, looked up by name in the weight store. Stored in any DType; reads as f32. */
  param: { name: string; shape: number[] };
  /** A persistent buffer that outlives one run (the KV cache), zero-initialised. */
  state: { name: string; shape: number[] };
  /** table [V, D], ids [T] -> [T, D] */
  embedding: Record<string, never>;
  /** x [T, K] @ w[N, K]^T -> [T, N]  (PyTorch Linear layout) */
  matmul: Record<string, never>;
  /** a + b; b has a's shape, or is a [cols] vector broadcast over rows */
  add: Record<string, never>;
  /** a * b elementwise; same broadcasting as add */
  mul: Record<string, never>;
  /** x [T, D], w [G] with G | D: x / sqrt(mean(x^2 over each group of G) + eps) * w (per-head when G < D) */
  rmsnorm: { eps: number };
  /** x [T, D], w [D], b [D]: (x - mean) / sqrt(var + eps) * w + b */
  layernorm: { eps: number };
  /** x [T, H*headDim], positions [T] -> rotated x. `interleaved`: pairs (2i, 2i+1) as llama2.c/GGUF;
   *  `neox`: pairs (i, i + headDim/2) as HF rotate_half. Only the first `rotaryDim` dims of a head rotate;
   *  `invFreq` (rotaryDim/2 entries) overrides theta^(-2i/rotaryDim), e.g. for Llama 3 rope scaling. */
  rope: { headDim: number; theta: number; style: 'interleaved' | 'neox'; rotaryDim?: number; invFreq?: number[] };
  /** q [T, H*hd], k [S, KVH*hd], v [S, KVH*hd], positions [T]: query i sees keys j <= positions[i]
   *  when causal (all S keys otherwise); GQA maps query head h to kv head floor(h / (H/KVH)). */
  attention: { nHeads: number; nKvHeads: number; headDim: number; causal: boolean; scale: number };
  /** cache [S, C] (a state), x [T, C], positions [T]: writes row t of x to cache row positions[t]; returns the cache */
  kv_write: Record<string, never>;
  silu: Record<string, never>;
  /** GELU, tanh approximation (GPT-2) */
  gelu_tanh: Record<string, never>;
  /** GELU, exact erf form (BERT) */
  gelu_erf: Record<string, never>;
  /** rows [start, start + count) of x [T, D] */
  slice_rows: { start: number; count: number };
  /** cols [start, start + count) of x [T, D] (splitting a fused QKV projection) */
  slice_cols: { start: number; count: number };
  /** logits [T, V], targets [T] i32 -> [1]: mean over rows with target >= 0 of -log softmax(logits)[target]
   *  (natural log; rows with a negative target are ignored; 0 when every row is ignored). Training only. */
  cross_entropy: Record<string, never>;
  /** Padded fixed-shape batches (encoders, embeddings): q [T, H*hd], k [S, KVH*hd], v [S, KVH*hd], mask [S] f32.
   *  The rows are `batch` sequences of T/batch query rows and S/batch key rows each; a query attends only to the
   *  keys of its own sequence, and mask[j] is added to every score of key j (0 keeps a key, -Infinity drops a pad
   *  key). `causal`: query i of a sequence also sees only keys j <= i of it (block-relative; needs T = S).
   *  A query that sees no key at all (an empty sequence) outputs zeros. GQA as in `attention`. */
  attention_masked: { nHeads: number; nKvHeads: number; headDim: number; causal: boolean; scale: number; batch: number };
}

export type OpName = keyof OpAttrs;

export const OP_NAMES: readonly OpName[] = [
  'input', 'param', 'state', 'embedding', 'matmul', 'add', 'mul', 'rmsnorm', 'layernorm', 'rope',
  'attention', 'kv_write', 'silu', 'gelu_tanh', 'gelu_erf', 'slice_rows', 'slice_cols', 'cross_entropy',
  'attention_masked',
];

type Shape = readonly number[];

function fail(op: string, msg: string): never {
  throw new Error(`${op}: ${msg}`);
}

function want2d(op: string, what: string, s: Shape): void {
  if (s.length !== 2) fail(op, `${what} must be 2-D, got [${s.join(', ')}]`);
}

function wantType(op: string, what: string, got: ValueType, want: ValueType): void {
  if (got !== want) fail(op, `${what} must be ${want}, got ${got}`);
}

/** Validates a node's inputs and attributes and infers its output shape and type. */
export function checkNode<K extends OpName>(
  op: K,
  shapes: Shape[],
  types: ValueType[],
  attrs: OpAttrs[K],
): { shape: number[]; type: ValueType } {
  const arity: Record<OpName, number> = {
    input: 0, param: 0, state: 0, embedding: 2, matmul: 2, add: 2, mul: 2, rmsnorm: 2, layernorm: 3,
    rope: 2, attention: 4, kv_write: 3, silu: 1, gelu_tanh: 1, gelu_erf: 1, slice_rows: 1, slice_cols: 1,
    cross_entropy: 2, attention_masked: 4,
  };
  if (shapes.length !== arity[op]) fail(op, `expected ${arity[op]} inputs, got ${shapes.length}`);
  const s = shapes;
  switch (op) {
    case 'input': {
      const a = attrs as OpAttrs['input'];
      return { shape: [...a.shape], type: a.type };
    }
    case 'param':
    case 'state':
      return { shape: [...(attrs as OpAttrs['param']).shape], type: 'f32' };
    case 'embedding': {
      want2d(op, 'table', s[0]!);
      if (s[1]!.length !== 1) fail(op, `ids must be 1-D, got [${s[1]!.join(', ')}]`);
      wantType(op, 'ids', types[1]!, 'i32');
      return { shape: [s[1]![0]!, s[0]![1]!], type: 'f32' };
    }
    case 'matmul': {
      want2d(op, 'x', s[0]!);
      want2d(op, 'w', s[1]!);
      if (s[0]![1] !== s[1]![1]) fail(op, `x [${s[0]!.join(', ')}] and w [${s[1]!.join(', ')}] disagree on the inner dimension`);
      return { shape: [s[0]![0]!, s[1]![0]!], type: 'f32' };
    }
    case 'add':
    case 'mul': {
      const [a, b] = [s[0]!, s[1]!];
      const same = a.length === b.length && a.every((d, i) => d === b[i]);
      const rowVec = b.length === 1 && b[0] === a[a.length - 1];
      if (!same && !rowVec) fail(op, `cannot broadcast [${b.join(', ')}] onto [${a.join(', ')}]`);
      return { shape: [...a], type: 'f32' };
    }
    case 'rmsnorm': {
      want2d(op, 'x', s[0]!);
      const g = s[1]!;
      if (g.length !== 1 || s[0]![1]! % g[0]! !== 0) fail(op, `weight [${g.join(', ')}] does not divide rows of ${s[0]![1]}`);
      return { shape: [...s[0]!], type: 'f32' };
    }
    case 'layernorm': {
      want2d(op, 'x', s[0]!);
      const d = s[0]![1]!;
      if (s[1]![0] !== d || s[2]![0] !== d) fail(op, `weight/bias must be [${d}]`);
      return { shape: [...s[0]!], type: 'f32' };
    }
    case 'rope': {
      const a = attrs as OpAttrs['rope'];
      want2d(op, 'x', s[0]!);
      wantType(op, 'positions', types[1]!, 'i32');
      if (s[0]![1]! % a.headDim !== 0) fail(op, `width ${s[0]![1]} is not a multiple of headDim ${a.headDim}`);
      const rd = a.rotaryDim ?? a.headDim;
      if (rd % 2 !== 0 || rd > a.headDim) fail(op, `rotaryDim ${rd} must be even and <= headDim ${a.headDim}`);
      if (s[1]![0] !== s[0]![0]) fail(op, `positions [${s[1]!.join(', ')}] must have one entry per row of x`);
      return { shape: [...s[0]!], type: 'f32' };
    }
    case 'attention': {
      const a = attrs as OpAttrs['attention'];
      const [q, k, v, p] = [s[0]!, s[1]!, s[2]!, s[3]!];
      want2d(op, 'q', q);
      want2d(op, 'k', k);
      want2d(op, 'v', v);
      wantType(op, 'positions', types[3]!, 'i32');
      if (a.nHeads % a.nKvHeads !== 0) fail(op, `nHeads ${a.nHeads} is not a multiple of nKvHeads ${a.nKvHeads}`);
      if (q[1] !== a.nHeads * a.headDim) fail(op, `q width ${q[1]} != nHeads*headDim ${a.nHeads * a.headDim}`);
      if (k[1] !== a.nKvHeads * a.headDim || v[1] !== k[1]) fail(op, `k/v width must be nKvHeads*headDim ${a.nKvHeads * a.headDim}`);
      if (k[0] !== v[0]) fail(op, `k and v disagree on length: ${k[0]} vs ${v[0]}`);
      if (p[0] !== q[0]) fail(op, `positions must have one entry per query row`);
      return { shape: [...q], type: 'f32' };
    }
    case 'attention_masked': {
      const a = attrs as OpAttrs['attention_masked'];
      const [q, k, v, m] = [s[0]!, s[1]!, s[2]!, s[3]!];
      want2d(op, 'q', q);
      want2d(op, 'k', k);
      want2d(op, 'v', v);
      wantType(op, 'mask', types[3]!, 'f32');
      if (a.nHeads % a.nKvHeads !== 0) fail(op, `nHeads ${a.nHeads} is not a multiple of nKvHeads ${a.nKvHeads}`);
      if (q[1] !== a.nHeads * a.headDim) fail(op, `q width ${q[1]} != nHeads*headDim ${a.nHeads * a.headDim}`);
      if (k[1] !== a.nKvHeads * a.headDim || v[1] !== k[1]) fail(op, `k/v width must be nKvHeads*headDim ${a.nKvHeads * a.headDim}`);
      if (k[0] !== v[0]) fail(op, `k and v disagree on length: ${k[0]} vs ${v[0]}`);
      if (m.length !== 1 || m[0] !== k[0]) fail(op, `mask must be [${k[0]}] (one entry per key row), got [${m.join(', ')}]`);
      if (!Number.isInteger(a.batch) || a.batch < 1 || q[0]! % a.batch !== 0 || k[0]! % a.batch !== 0) fail(op, `batch ${a.batch} must divide the ${q[0]} query and ${k[0]} key rows`);
      if (a.causal && q[0] !== k[0]) fail(op, `causal needs as many query rows as key rows (${q[0]} vs ${k[0]})`);
      return { shape: [...q], type: 'f32' };
    }
    case 'kv_write': {
      const [c, x, p] = [s[0]!, s[1]!, s[2]!];
      want2d(op, 'cache', c);
      want2d(op, 'x', x);
      if (c[1] !== x[1]) fail(op, `cache width ${c[1]} != x width ${x[1]}`);
      if (p[0] !== x[0]) fail(op, `positions must have one entry per row of x`);
      return { shape: [...c], type: 'f32' };
    }
    case 'silu':
    case 'gelu_tanh':
    case 'gelu_erf':
      return { shape: [...s[0]!], type: 'f32' };
    case 'slice_rows':
    case 'slice_cols': {
      const a = attrs as OpAttrs['slice_rows'];
      want2d(op, 'x', s[0]!);
      const axis = op === 'slice_rows' ? 0 : 1;
      const n = s[0]![axis]!;
      if (a.start < 0 || a.count <= 0 || a.start + a.count > n) fail(op, `[${a.start}, ${a.start + a.count}) is outside 0..${n}`);
      const shape = [...s[0]!];
      shape[axis] = a.count;
      return { shape, type: 'f32' };
    }
    case 'cross_entropy': {
      want2d(op, 'logits', s[0]!);
      if (s[1]!.length !== 1 || s[1]![0] !== s[0]![0]) fail(op, `targets must be [${s[0]![0]}], got [${s[1]!.join(', ')}]`);
      wantType(op, 'targets', types[1]!, 'i32');
      return { shape: [1], type: 'f32' };
    }
  }
  return fail(op, 'unknown op');
}
