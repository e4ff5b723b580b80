// Cross-backend op test (like ggml's test-backend-ops): every op the wasm backend implements, run through
// runGraph on [wasm, reference] and on [reference] alone, at many shapes, compared by normalized error
// ||a - b|| / ||b||. Both kernel builds (plain SIMD and relaxed SIMD, when this V8 has it) are tested.
//
// Thresholds (why each is what it is):
//   EXACT  0      embedding, slice_rows/cols, kv_write: copies and bit-exact dequantization
//   F32    1e-6   element-wise ops, norms, rope, attention: f32 arithmetic vs the reference's double
// matmul is measured against the scale of its dot products instead, ||a - b|| / ||s|| with
// s[t, n] = sum_k |x[t, k] w[n, k]| (a single output can cancel to ~0, which makes ||b|| meaningless):
//   DOT    2e-6   matmul/GEMM with f32 accumulation over K up to 768 (weights dequantized exactly)
//   Q8ACT  1e-2   GEMV (T < 4) on q8_0/q4_0/q4_k/q6_k weights: the activation row is quantized to int8 in
//                 blocks of 32 (ggml's q8_0 activations); the test prints the worst error it saw
//                 (~2e-3 of the dot-product scale). The same results are also checked at 2e-6 against an
//                 exact simulation of that activation quantization, so a wrong kernel cannot hide in 1e-2.
//                 The relaxed build's GEMM (T >= 4) on q4_0/q4_k weights is an integer GEMM on the same int8
//                 activations (assembly/qgemm.ts): checked the same two ways.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, type Sym } from '../src/graph/graph.js';
import { runGraph, type Backend, type ExecContext } from '../src/backends/backend.js';
import { referenceBackend } from '../src/backends/reference/index.js';
import { createWasmBackend, relaxedSimdAvailable, type WasmBackend } from '../src/backends/wasm/index.js';
import { dequantizeRow, quantize } from '../src/formats/dtypes/index.js';
import type { DType, HostTensor } from '../src/formats/tensor.js';
import { llamaParams, validateLlamaConfig, type LlamaConfig } from '../src/models/llama.js';
import { InferenceSession } from '../src/runtime/session.js';
import { loadModel } from '../src/runtime/load-model.js';
import { modelFileOrSkip, prng } from './helpers/models.js';
import { randomWeights } from './util/random-weights.js';

const EXACT = 0;
const F32 = 1e-6;
const DOT = 2e-6;
const Q8ACT = 1e-2;

const variants: [string, boolean][] = [['simd', false]];
if (relaxedSimdAvailable()) variants.push(['relaxed', true]);

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    num += d * d;
    den += b[i]! * b[i]!;
  }
  if (den === 0) return Math.sqrt(num);
  return Math.sqrt(num / den);
}

function randn(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

function randF32(n: number, rand: () => number, scale = 1): Float32Array {
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = randn(rand) * scale;
  return f;
}

function tensor(name: string, dtype: DType, shape: number[], values: Float32Array): HostTensor {
  return { name, dtype, shape, data: dtype === 'f32' ? new Uint8Array(values.buffer.slice(0)) : quantize(dtype, values) };
}

interface Case {
  build: (g: Graph, v: Record<string, Sym>) => Sym;
  inputs?: Record<string, { shape: number[]; data: Float32Array | Int32Array }>;
  weights?: HostTensor[];
  states?: Record<string, Float32Array>;
}

/** Runs one case on `backends`; states are copied per run so both runs start from the same cache. */
function run(c: Case, backends: Backend[]): Float32Array {
  const g = new Graph();
  const v: Record<string, Sym> = {};
  for (const [name, x] of Object.entries(c.inputs ?? {})) {
    v[name] = g.add('input', [], { name, shape: x.shape, type: x.data instanceof Int32Array ? 'i32' : 'f32' });
  }
  for (const w of c.weights ?? []) v[w.name] = g.add('param', [], { name: w.name, shape: w.shape });
  const states = new Map<string, Float32Array>();
  for (const [name, s] of Object.entries(c.states ?? {})) states.set(name, s.slice());
  const o = c.build(g, v);
  g.output('o', o);
  const ws = new Map((c.weights ?? []).map((w) => [w.name, w]));
  const ctx: ExecContext = {
    weight: (n) => ws.get(n)!,
    state: (n) => states.get(n)!,
    input: (n) => c.inputs![n]!.data,
  };
  const out = runGraph(g, backends, ctx).get('o')!.data as Float32Array;
  // The output must be a plain JS copy, not a view of wasm memory.
  assert.ok(!(out.buffer instanceof SharedArrayBuffer), 'graph outputs are copied out of wasm memory');
  return out;
}

/** Checks the node was executed by wasm (not silently by the reference fallback). */
function wasmHandles(wasm: WasmBackend, c: Case, op: string): void {
  const g = new Graph();
  const v: Record<string, Sym> = {};
  for (const [name, x] of Object.entries(c.inputs ?? {})) v[name] = g.add('input', [], { name, shape: x.shape, type: x.data instanceof Int32Array ? 'i32' : 'f32' });
  for (const w of c.weights ?? []) v[w.name] = g.add('param', [], { name: w.name, shape: w.shape });
  c.build(g, v);
  const node = g.nodes.find((n) => n.op === op);
  if (node === undefined) return;
  assert.ok(wasm.kernels[node.op] !== undefined, `wasm has a kernel for ${op}`);
}

/** ||a - b|| / ||scale||. */
function scaledErr(a: ArrayLike<number>, b: ArrayLike<number>, scale: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += scale[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

/** s[t, n] = sum_k |x[t, k] w[n, k]| (w dequantized): the scale of matmul's dot products. */
function dotScale(x: Float32Array, T: number, K: number, w: HostTensor | Float32Array, N: number): Float64Array {
  const s = new Float64Array(T * N);
  const row = new Float32Array(K);
  for (let n = 0; n < N; n++) {
    if (w instanceof Float32Array) row.set(w.subarray(n * K, (n + 1) * K));
    else dequantizeRow(w.dtype, w.data, n, K, row);
    for (let t = 0; t < T; t++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += Math.abs(x[t * K + k]! * row[k]!);
      s[t * N + n] = acc;
    }
  }
  return s;
}

function check(wasm: WasmBackend, label: string, c: Case, tol: number, op?: string, scale?: ArrayLike<number>): number {
  if (op !== undefined) wasmHandles(wasm, c, op);
  const a = run(c, [wasm, referenceBackend]);
  const b = run(c, [referenceBackend]);
  assert.ok(a.every(Number.isFinite), `${label}: non-finite output`);
  const e = scale === undefined ? relErr(a, b) : scaledErr(a, b, scale);
  assert.ok(e <= tol, `${label}: normalized error ${e.toExponential(3)} > ${tol}`);
  return e;
}

const f32In = (shape: number[], rand: () => number, scale = 1) => ({ shape, data: randF32(shape.reduce((a, b) => a * b, 1), rand, scale) });
const i32In = (vals: number[]) => ({ shape: [vals.length], data: Int32Array.from(vals) });

/** Exact simulation of the int8 activation path: x quantized per 32 as quant_q8, then a double dot product. */
function simulateQ8Gemv(x: Float32Array, T: number, K: number, w: HostTensor, N: number): Float32Array {
  const fr = Math.fround;
  const rne = (v: number) => {
    const r = Math.round(v);
    return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  };
  const out = new Float32Array(T * N);
  const row = new Float32Array(K);
  const xs = new Float64Array(K);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < K; b += 32) {
      let amax = 0;
      for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[t * K + b + i]!));
      const d = fr(amax / 127);
      const id = d !== 0 ? fr(1 / d) : 0;
      for (let i = 0; i < 32; i++) xs[b + i] = d * rne(fr(x[t * K + b + i]! * id));
    }
    for (let n = 0; n < N; n++) {
      dequantizeRow(w.dtype, w.data, n, K, row);
      let acc = 0;
      for (let k = 0; k < K; k++) acc += xs[k]! * row[k]!;
      out[t * N + n] = acc;
    }
  }
  return out;
}

for (const [vname, relaxed] of variants) {
  test(`wasm ops (${vname}): matmul f32/f16/bf16 at odd shapes, GEMV and GEMM`, async () => {
    const wasm = await createWasmBackend({ relaxed });
    assert.equal(wasm.relaxed, relaxed);
    const rand = prng(11);
    for (const dtype of ['f32', 'f16', 'bf16'] as DType[]) {
      for (const K of [1, 3, 4, 67, 129, 255, 256]) {
        for (const N of [1, 5, 8, 33]) {
          for (const T of [1, 3, 4, 5, 17]) {
            const w = tensor('w', dtype, [N, K], randF32(N * K, rand, 1 / Math.sqrt(K)));
            const x = f32In([T, K], rand);
            check(wasm, `matmul ${dtype} T=${T} N=${N} K=${K}`, {
              inputs: { x }, weights: [w], build: (g, v) => g.add('matmul', [v.x!, v.w!], {}),
            }, DOT, 'matmul', dotScale(x.data, T, K, w, N));
          }
        }
      }
    }
    // activation @ activation (dense f32 right-hand side)
    const dx = f32In([6, 70], rand);
    const dw = f32In([9, 70], rand);
    check(wasm, 'matmul dense w', {
      inputs: { x: dx, w: dw }, build: (g, v) => g.add('matmul', [v.x!, v.w!], {}),
    }, DOT, 'matmul', dotScale(dx.data, 6, 70, dw.data, 9));
  });

  test(`wasm ops (${vname}): matmul on q8_0/q4_0/q4_k/q6_k weights (int8 GEMV and dequantized GEMM)`, async () => {
    const wasm = await createWasmBackend({ relaxed });
    const rand = prng(12);
    let worstAct = 0;
    const cases: [DType, number, number, number][] = [];
    for (const dtype of ['q8_0', 'q4_0', 'q4_k', 'q6_k'] as DType[]) {
      const Ks = dtype.endsWith('_k') ? [256, 512, 768] : [32, 64, 160, 512];
      for (const K of Ks) for (const N of [1, 7, 33]) for (const T of [1, 2, 3, 4, 5, 17]) cases.push([dtype, T, N, K]);
      // long rows (the GEMV's prefetching loop runs for K >= 544 q8_0, 512 q4_0, 1280 q6_k, 1536 q4_k), N a
      // multiple of the 4-row groups and not, more than one GEMM panel (64 rows), prefill-sized T
      const Kl = dtype.endsWith('_k') ? 1536 : 1056;
      for (const [T, N] of [[1, 4], [1, 70], [2, 9], [3, 5], [5, 70], [128, 70]]) cases.push([dtype, T, N, Kl]);
      cases.push([dtype, 128, 6, dtype.endsWith('_k') ? 256 : 64]);
    }
    for (const [dtype, T, N, K] of cases) {
      const w = tensor('w', dtype, [N, K], randF32(N * K, rand, 1 / Math.sqrt(K)));
      const x = f32In([T, K], rand);
      const c: Case = { inputs: { x }, weights: [w], build: (g, v) => g.add('matmul', [v.x!, v.w!], {}) };
      const label = `matmul ${dtype} T=${T} N=${N} K=${K}`;
      const scale = dotScale(x.data, T, K, w, N);
      const int8Act = T < 4 || (relaxed && (dtype === 'q4_0' || dtype === 'q4_k'));
      if (!int8Act) {
        check(wasm, label, c, DOT, 'matmul', scale);
      } else {
        worstAct = Math.max(worstAct, check(wasm, label, c, Q8ACT, 'matmul', scale));
        const sim = simulateQ8Gemv(x.data, T, K, w, N);
        const got = run(c, [wasm, referenceBackend]);
        const e = scaledErr(got, sim, scale);
        assert.ok(e <= DOT, `${label}: vs exact int8-activation simulation ${e.toExponential(3)} > ${DOT}`);
      }
    }
    // a q8_0 quant of -128 (ggml never writes one; the relaxed GEMV's sign trick cannot take it: such a
    // tensor goes through the int16 kernel)
    for (const [T, N, K] of [[1, 9, 1056], [2, 4, 64]]) {
      const w = tensor('w', 'q8_0', [N, K], randF32(N * K, rand, 1 / Math.sqrt(K)));
      for (let i = 0; i < w.data.length; i += 34 * 3) w.data[i + 2 + (i % 32)] = 0x80;
      const x = f32In([T, K], rand);
      const c: Case = { inputs: { x }, weights: [w], build: (g, v) => g.add('matmul', [v.x!, v.w!], {}) };
      const scale = dotScale(x.data, T, K, w, N);
      const e = scaledErr(run(c, [wasm, referenceBackend]), simulateQ8Gemv(x.data, T, K, w, N), scale);
      assert.ok(e <= DOT, `matmul q8_0 with -128 quants T=${T}: vs exact int8-activation simulation ${e.toExponential(3)} > ${DOT}`);
    }
    assert.ok(worstAct > 0, 'int8 activations do change results a little');
    console.log(`# worst normalized error from int8 activation quantization: ${worstAct.toExponential(2)}`);
  });

  test(`wasm ops (${vname}): embedding for every weight dtype is bit-exact`, async () => {
    const wasm = await createWasmBackend({ relaxed });
    const rand = prng(13);
    for (const dtype of ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k', 'q6_k'] as DType[]) {
      const D = dtype.endsWith('_k') ? 512 : dtype.startsWith('q') ? 96 : 67;
      const V = 11;
      const table = tensor('table', dtype, [V, D], randF32(V * D, rand));
      check(wasm, `embedding ${dtype}`, {
        inputs: { ids: i32In([0, 10, 3, 3, 7]) }, weights: [table], build: (g, v) => g.add('embedding', [v.table!, v.ids!], {}),
      }, EXACT, 'embedding');
    }
    // a dense (activation) table
    check(wasm, 'embedding dense', {
      inputs: { t: f32In([5, 9], rand), ids: i32In([4, 0]) }, build: (g, v) => g.add('embedding', [v.t!, v.ids!], {}),
    }, EXACT, 'embedding');
  });

  test(`wasm ops (${vname}): add, mul (same shape and row broadcast), activations, slices`, async () => {
    const wasm = await createWasmBackend({ relaxed });
    const rand = prng(14);
    for (const [T, D] of [[1, 1], [1, 7], [3, 67], [17, 129], [2, 256]] as [number, number][]) {
      for (const op of ['add', 'mul'] as const) {
        check(wasm, `${op} [${T},${D}]`, { inputs: { a: f32In([T, D], rand), b: f32In([T, D], rand) }, build: (g, v) => g.add(op, [v.a!, v.b!], {}) }, F32, op);
        check(wasm, `${op} [${T},${D}] + [${D}]`, { inputs: { a: f32In([T, D], rand), b: f32In([D], rand) }, build: (g, v) => g.add(op, [v.a!, v.b!], {}) }, F32, op);
        const bias = tensor('bias', 'f16', [D], randF32(D, rand));
        check(wasm, `${op} [${T},${D}] + f16 weight`, { inputs: { a: f32In([T, D], rand) }, weights: [bias], build: (g, v) => g.add(op, [v.a!, v.bias!], {}) }, F32, op);
      }
      for (const op of ['silu', 'gelu_tanh', 'gelu_erf'] as const) {
        check(wasm, `${op} [${T},${D}]`, { inputs: { a: f32In([T, D], rand, 3) }, build: (g, v) => g.add(op, [v.a!], {}) }, F32, op);
      }
      if (T > 1) {
        check(wasm, `slice_rows [${T},${D}]`, { inputs: { a: f32In([T, D], rand) }, build: (g, v) => g.add('slice_rows', [v.a!], { start: 1, count: T - 1 }) }, EXACT, 'slice_rows');
      }
      if (D > 2) {
        check(wasm, `slice_cols [${T},${D}]`, { inputs: { a: f32In([T, D], rand) }, build: (g, v) => g.add('slice_cols', [v.a!], { start: 1, count: D - 2 }) }, EXACT, 'slice_cols');
      }
    }
    // extreme inputs for the activations (exp clamping, tanh saturation)
    const big = { shape: [1, 8], data: Float32Array.from([-100, -30, -10, -1e-4, 0, 1e-4, 30, 100]) };
    for (const op of ['silu', 'gelu_tanh', 'gelu_erf'] as const) {
      check(wasm, `${op} extremes`, { inputs: { a: big }, build: (g, v) => g.add(op, [v.a!], {}) }, F32, op);
    }
    // two slices of one value (the first must copy: its input lives on; the second may be a view), with
    // intermediates released and reused inside the run
    check(wasm, 'two slices of one value', {
      inputs: { a: f32In([6, 40], rand), b: f32In([40], rand) },
      build: (g, v) => {
        const m = g.add('mul', [v.a!, v.b!], {});
        const s1 = g.add('slice_rows', [m], { start: 2, count: 3 });
        const t = g.add('silu', [g.add('add', [s1, v.b!], {})], {});
        const s2 = g.add('slice_rows', [m], { start: 0, count: 3 });
        return g.add('mul', [g.add('add', [t, s2], {}), g.add('silu', [s2], {})], {});
      },
    }, F32);
    // a chain of wasm ops with a slice view in the middle
    check(wasm, 'chain', {
      inputs: { a: f32In([5, 40], rand), b: f32In([40], rand) },
      build: (g, v) => g.add('silu', [g.add('add', [g.add('slice_rows', [g.add('mul', [v.a!, v.b!], {})], { start: 2, count: 3 }), v.b!], {})], {}),
    }, F32);
  });

  test(`wasm ops (${vname}): rmsnorm (full and per-head), layernorm`, async () => {
    const wasm = await createWasmBackend({ relaxed });
    const rand = prng(15);
    for (const [T, D, G] of [[1, 64, 64], [3, 67, 67], [17, 256, 256], [4, 128, 32], [2, 60, 10], [1, 6, 6]] as [number, number, number][]) {
      const w = tensor('w', 'f32', [G], Float32Array.from(randF32(G, rand), (x) => 1 + 0.1 * x));
      check(wasm, `rmsnorm T=${T} D=${D} G=${G}`, { inputs: { x: f32In([T, D], rand, 2) }, weights: [w], build: (g, v) => g.add('rmsnorm', [v.x!, v.w!], { eps: 1e-5 }) }, F32, 'rmsnorm');
      const w16 = tensor('w', 'bf16', [G], Float32Array.from(randF32(G, rand), (x) => 1 + 0.1 * x));
      check(wasm, `rmsnorm bf16 weight T=${T} D=${D} G=${G}`, { inputs: { x: f32In([T, D], rand, 2) }, weights: [w16], build: (g, v) => g.add('rmsnorm', [v.x!, v.w!], { eps: 1e-6 }) }, F32, 'rmsnorm');
      const lw = tensor('lw', 'f32', [D], randF32(D, rand));
      const lb = tensor('lb', 'f32', [D], randF32(D, rand));
      check(wasm, `layernorm T=${T} D=${D}`, {
        inputs: { x: f32In([T, D], rand, 2) }, weights: [lw, lb], build: (g, v) => g.add('layernorm', [v.x!, v.lw!, v.lb!], { eps: 1e-5 }),
      }, F32, 'layernorm');
    }
  });

  test(`wasm ops (${vname}): rope interleaved/neox, partial rotary, invFreq, positions not from 0`, async () => {
    const wasm = await createWasmBackend({ relaxed });
    const rand = prng(16);
    for (const style of ['interleaved', 'neox'] as const) {
      for (const [T, H, hd, rd] of [[1, 4, 32, 32], [3, 2, 64, 64], [17, 3, 10, 10], [5, 2, 64, 32], [2, 1, 12, 4], [4, 2, 16, 6]] as [number, number, number, number][]) {
        const pos = Array.from({ length: T }, (_, i) => 5 + 3 * i);
        for (const withInv of [false, true]) {
          const invFreq = withInv ? Array.from({ length: rd / 2 }, (_, i) => 0.9 / (1 + i * i)) : undefined;
          check(wasm, `rope ${style} T=${T} H=${H} hd=${hd} rd=${rd}${withInv ? ' invFreq' : ''}`, {
            inputs: { x: f32In([T, H * hd], rand), p: i32In(pos) },
            build: (g, v) => g.add('rope', [v.x!, v.p!], { headDim: hd, theta: 10000, style, rotaryDim: rd, invFreq }),
          }, F32, 'rope');
        }
      }
    }
  });

  test(`wasm ops (${vname}): attention decode/prefill, GQA 8/2, 4/1, MHA, head_dim 32/64/10, causal or not`, async () => {
    const wasm = await createWasmBackend({ relaxed });
    const rand = prng(17);
    for (const [H, KVH] of [[8, 2], [4, 1], [4, 4]] as [number, number][]) {
      for (const hd of [32, 64, 10]) {
        for (const [T, S, p0] of [[1, 20, 13], [3, 9, 6], [17, 17, 0], [17, 40, 7], [1, 1, 0]] as [number, number, number][]) {
          for (const causal of [true, false]) {
            const pos = Array.from({ length: T }, (_, i) => p0 + i);
            check(wasm, `attention H=${H}/${KVH} hd=${hd} T=${T} S=${S} p0=${p0} causal=${causal}`, {
              inputs: { q: f32In([T, H * hd], rand), k: f32In([S, KVH * hd], rand), v: f32In([S, KVH * hd], rand), p: i32In(pos) },
              build: (g, v) => g.add('attention', [v.q!, v.k!, v.v!, v.p!], { nHeads: H, nKvHeads: KVH, headDim: hd, causal, scale: 1 / Math.sqrt(hd) }),
            }, F32, 'attention');
          }
        }
      }
    }
    // large scores (softmax must subtract the max)
    check(wasm, 'attention large scores', {
      inputs: { q: f32In([2, 64], rand, 30), k: f32In([5, 32], rand, 30), v: f32In([5, 32], rand), p: i32In([3, 4]) },
      build: (g, v) => g.add('attention', [v.q!, v.k!, v.v!, v.p!], { nHeads: 2, nKvHeads: 1, headDim: 32, causal: true, scale: 1 / Math.sqrt(32) }),
    }, F32, 'attention');
    // out-of-range positions are RangeErrors, as in the reference
    assert.throws(() => run({
      inputs: { q: f32In([1, 8], rand), k: f32In([4, 8], rand), v: f32In([4, 8], rand), p: i32In([4]) },
      build: (g, v) => g.add('attention', [v.q!, v.k!, v.v!, v.p!], { nHeads: 1, nKvHeads: 1, headDim: 8, causal: true, scale: 1 }),
    }, [wasm, referenceBackend]), RangeError);
  });

  test(`wasm ops (${vname}): kv_write into a state, then attention over the cache`, async () => {
    const wasm = await createWasmBackend({ relaxed });
    const rand = prng(18);
    const S = 12;
    const C = 2 * 10;
    const kc = randF32(S * C, rand);
    const vc = randF32(S * C, rand);
    for (const pos of [[0], [5], [2, 3, 4], [11]]) {
      const T = pos.length;
      const c: Case = {
        inputs: { q: f32In([T, 4 * 10], rand), k: f32In([T, C], rand), v: f32In([T, C], rand), p: i32In(pos) },
        states: { kc, vc },
        build: (g, v) => {
          const ks = g.add('kv_write', [g.add('state', [], { name: 'kc', shape: [S, C] }), v.k!, v.p!], {});
          const vs = g.add('kv_write', [g.add('state', [], { name: 'vc', shape: [S, C] }), v.v!, v.p!], {});
          return g.add('attention', [v.q!, ks, vs, v.p!], { nHeads: 4, nKvHeads: 2, headDim: 10, causal: true, scale: 0.3 });
        },
      };
      check(wasm, `kv_write+attention pos=${pos}`, c, F32, 'kv_write');
      check(wasm, `kv_write cache contents pos=${pos}`, { ...c, build: (g, v) => g.add('kv_write', [g.add('state', [], { name: 'kc', shape: [S, C] }), v.k!, v.p!], {}) }, EXACT, 'kv_write');
    }
    assert.throws(() => run({
      inputs: { k: f32In([1, C], rand), p: i32In([S]) }, states: { kc },
      build: (g, v) => g.add('kv_write', [g.add('state', [], { name: 'kc', shape: [S, C] }), v.k!, v.p!], {}),
    }, [wasm, referenceBackend]), RangeError);
  });

  test(`wasm ops (${vname}): argmax helper`, async () => {
    const wasm = await createWasmBackend({ relaxed });
    const rand = prng(19);
    for (const n of [1, 2, 7, 512, 32000]) {
      const x = randF32(n, rand);
      let best = 0;
      for (let i = 1; i < n; i++) if (x[i]! > x[best]!) best = i;
      assert.equal(wasm.argmax(x), best, `argmax n=${n}`);
    }
    assert.equal(wasm.argmax(Float32Array.from([1, 3, 3, 2])), 1, 'first of equal maxima');
    assert.equal(wasm.argmax(Float32Array.from([-Infinity, -Infinity])), 0);
  });
}

// ---------------------------------------------------------------------------------------------
// Threads: the same matmuls split over 2 threads in tiny chunks (every chunk boundary, odd row counts,
// both GEMV and GEMM) must give exactly what one thread gives.

for (const [vname, relaxed] of variants) {
  test(`wasm threads (${vname}): GEMV rows and GEMM columns split over 2 threads equal 1 thread, every dtype`, async () => {
    const one = await createWasmBackend({ relaxed, threads: 1 });
    const two = await createWasmBackend({ relaxed, threads: 2, minParallelBytes: 0, minParallelMacs: 0, chunkBytes: 64, adaptive: false });
    assert.equal(two.threads, 2);
    try {
      const rand = prng(21);
      for (const dtype of ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k', 'q6_k'] as DType[]) {
        const K = dtype.endsWith('_k') ? 256 : 64;
        for (const N of [7, 130, 257]) {
          for (const T of [1, 2, 5, 17]) {
            const w = tensor('w', dtype, [N, K], randF32(N * K, rand, 1 / Math.sqrt(K)));
            const x = f32In([T, K], rand);
            const c: Case = { inputs: { x }, weights: [w], build: (g, v) => g.add('matmul', [v.x!, v.w!], {}) };
            const a = run(c, [two, referenceBackend]);
            const b = run(c, [one, referenceBackend]);
            assert.deepEqual(a, b, `matmul ${dtype} T=${T} N=${N} K=${K}: 2 threads differ from 1`);
          }
        }
      }
      const st = two.poolStats();
      assert.ok(st.parallelJobs > 0, 'jobs ran on the pool');
      console.log(`# pool: ${st.parallelJobs} parallel jobs, workers took ${st.workerChunks} of ${st.totalChunks} chunks, ${st.stalls} stalls`);
    } finally {
      one.dispose();
      two.dispose();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Attention kernels (assembly/attention.ts) on 1 thread and split over 2 threads (every job parallel): attention
// (decode T=1 over a cache: split over keys in chunks of 64+ keys for groups <= 2, row tiles for GQA 8/2; causal
// prefill, chunked prefill after a cache, not causal) and attention_masked (padded batches: right and left
// padding, an empty sequence, an additive mask, causal or not), GQA 8/2, 4/4 and 6/3, head dims multiple of 4 or
// not, against the reference (F32), 2 threads equal to 1 bit for bit, and a padded sequence equal to the same
// sequence alone bit for bit.

const ATT_HDS = [8, 36, 64, 80, 128, 10, 7, 3];

for (const [vname, relaxed] of variants) {
  test(`wasm attention kernels (${vname}): attention and attention_masked on 1 and 2 threads vs the reference`, async () => {
    const one = await createWasmBackend({ relaxed, threads: 1 });
    const two = await createWasmBackend({ relaxed, threads: 2, adaptive: false, minParallelAttention: 0 });
    assert.equal(two.threads, 2);
    try {
      const rand = prng(31);
      let worst = 0;
      let cases = 0;
      /** wasm on 1 and 2 threads vs the reference; returns the 1-thread result. */
      const both = (label: string, c: Case, op: string): Float32Array => {
        wasmHandles(one, c, op);
        const ref = run(c, [referenceBackend]);
        const a = run(c, [one, referenceBackend]);
        const b = run(c, [two, referenceBackend]);
        assert.ok(a.every(Number.isFinite), `${label}: non-finite output`);
        const e = relErr(a, ref);
        assert.ok(e <= F32, `${label}: normalized error ${e.toExponential(3)} > ${F32}`);
        assert.deepEqual(b, a, `${label}: 2 threads differ from 1`);
        worst = Math.max(worst, e);
        cases++;
        return a;
      };
      for (const [H, KVH] of [[8, 2], [4, 4], [6, 3]] as [number, number][]) {
        for (const hd of ATT_HDS) {
          // [T, S, first position]: decode over a cache, prefill, prefill after a cache (chunked), T = S = 1
          for (const [T, S, p0] of [[1, 300, 299], [1, 77, 50], [24, 24, 0], [37, 200, 150], [1, 1, 0]] as [number, number, number][]) {
            for (const causal of [true, false]) {
              const pos = Array.from({ length: T }, (_, i) => p0 + i);
              both(`attention H=${H}/${KVH} hd=${hd} T=${T} S=${S} p0=${p0} causal=${causal}`, {
                inputs: { q: f32In([T, H * hd], rand), k: f32In([S, KVH * hd], rand), v: f32In([S, KVH * hd], rand), p: i32In(pos) },
                build: (g, v) => g.add('attention', [v.q!, v.k!, v.v!, v.p!], { nHeads: H, nKvHeads: KVH, headDim: hd, causal, scale: 1 / Math.sqrt(hd) }),
              }, 'attention');
            }
          }
          // padded batches: per sequence [real tokens, leading pads]; an empty sequence outputs zeros
          for (const [B, lens] of [[7, [[7, 0]]], [9, [[5, 0], [9, 0], [0, 0], [6, 2]]], [24, [[24, 0], [13, 0], [1, 0]]]] as [number, [number, number][]][]) {
            const batch = lens.length;
            const mask = new Float32Array(batch * B).fill(-Infinity);
            lens.forEach(([n, lead], b) => mask.fill(0, b * B + lead, b * B + lead + n));
            for (const causal of [true, false]) {
              const R = batch * B;
              both(`attention_masked H=${H}/${KVH} hd=${hd} batch=${batch}x${B} causal=${causal}`, {
                inputs: { q: f32In([R, H * hd], rand), k: f32In([R, KVH * hd], rand), v: f32In([R, KVH * hd], rand), m: { shape: [R], data: mask } },
                build: (g, v) => g.add('attention_masked', [v.q!, v.k!, v.v!, v.m!], { nHeads: H, nKvHeads: KVH, headDim: hd, causal, scale: 1 / Math.sqrt(hd), batch }),
              }, 'attention_masked');
            }
          }
          // an additive mask of finite values with -Infinity holes (also among the last keys, which are visited)
          for (const causal of [true, false]) {
            const B = 11;
            const mask = Float32Array.from({ length: 2 * B }, () => 3 * rand() - 2);
            for (const j of [3, 9, B + 1, B + 9]) mask[j] = -Infinity;
            both(`attention_masked H=${H}/${KVH} hd=${hd} additive mask causal=${causal}`, {
              inputs: { q: f32In([2 * B, H * hd], rand), k: f32In([2 * B, KVH * hd], rand), v: f32In([2 * B, KVH * hd], rand), m: { shape: [2 * B], data: mask } },
              build: (g, v) => g.add('attention_masked', [v.q!, v.k!, v.v!, v.m!], { nHeads: H, nKvHeads: KVH, headDim: hd, causal, scale: 1 / Math.sqrt(hd), batch: 2 }),
            }, 'attention_masked');
          }
        }
      }
      // a sequence padded in a batch gives what it gives alone, bit for bit (pads add exact zeros; no row's
      // arithmetic depends on its tile, neighbours or thread)
      for (const [hd, n] of [[64, 11], [10, 6], [7, 6], [36, 150]]) {
        const H = 4;
        const B = n + 21;
        const q = randF32(n * H * hd, rand), k = randF32(n * H * hd, rand), v = randF32(n * H * hd, rand);
        const attn = (rows: number, batch: number, place: (x: Float32Array) => Float32Array, mask: Float32Array): Float32Array => run({
          inputs: { q: { shape: [rows, H * hd], data: place(q) }, k: { shape: [rows, H * hd], data: place(k) }, v: { shape: [rows, H * hd], data: place(v) }, m: { shape: [rows], data: mask } },
          build: (g, x) => g.add('attention_masked', [x.q!, x.k!, x.v!, x.m!], { nHeads: H, nKvHeads: H, headDim: hd, causal: false, scale: 0.2, batch }),
        }, [two, referenceBackend]);
        const alone = attn(n, 1, (x) => x, new Float32Array(n));
        const padded = new Float32Array(2 * B).fill(-Infinity);
        padded.fill(0, B, B + n);
        const inBatch = attn(2 * B, 2, (x) => {
          const y = randF32(2 * B * H * hd, rand); // the other sequence and the pad rows hold anything
          y.set(x, B * H * hd);
          return y;
        }, padded);
        assert.deepEqual(inBatch.subarray(B * H * hd, (B + n) * H * hd), alone, `hd=${hd}: padded in a batch differs from alone`);
      }
      const st = two.poolStats();
      assert.ok(st.parallelJobs > 0, 'attention jobs ran on the pool');
      console.log(`# attention: ${cases} cases, worst normalized error ${worst.toExponential(2)}; pool: ${st.parallelJobs} parallel jobs, workers took ${st.workerChunks} of ${st.totalChunks} chunks`);
    } finally {
      one.dispose();
      two.dispose();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// End to end

function llamaCfg(over: Partial<LlamaConfig>): LlamaConfig {
  const c: LlamaConfig = {
    model_type: 'llama', vocab_size: 64, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, rms_norm_eps: 1e-5, rope_theta: 10000,
    rope_scaling: null, max_position_embeddings: 64, tie_word_embeddings: true, rope_style: 'interleaved', ...over,
  };
  validateLlamaConfig(c);
  return c;
}

function greedy(s: InferenceSession, prompt: number[], steps: number): { ids: number[]; logits: number[] } {
  const ids: number[] = [];
  const logits: number[] = [];
  let l = s.forward(prompt);
  for (let i = 0; i < steps; i++) {
    logits.push(...l);
    let best = 0;
    for (let j = 1; j < l.length; j++) if (l[j]! > l[best]!) best = j;
    ids.push(best);
    l = s.forward([best]);
  }
  return { ids, logits };
}

for (const [vname, relaxed] of variants) {
  for (const [label, over, dtype] of [
    ['GQA 4/2 interleaved, f32', {}, 'f32'],
    ['MHA neox untied head_dim 10, f16 weights', { num_attention_heads: 3, num_key_value_heads: 3, head_dim: 10, hidden_size: 30, tie_word_embeddings: false, rope_style: 'neox' }, 'f16'],
  ] as [string, Partial<LlamaConfig>, DType][]) {
    test(`wasm end to end (${vname}): tiny random Llama (${label}) greedy ids equal the reference`, async () => {
      const wasm = await createWasmBackend({ relaxed });
      const c = llamaCfg(over);
      const w = randomWeights(llamaParams(c), 5);
      if (dtype !== 'f32') {
        for (const [n, t] of w) {
          if (t.shape.length === 2) {
            const f = new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
            w.set(n, { ...t, dtype, data: quantize(dtype, f) });
          }
        }
      }
      const store = { get: (n: string) => w.get(n) };
      wasm.uploadWeights(w.values());
      const prompt = [1, 5, 9, 30, 2];
      const a = greedy(new InferenceSession(c, store, [wasm, referenceBackend]), prompt, 20);
      const b = greedy(new InferenceSession(c, store, [referenceBackend]), prompt, 20);
      assert.deepEqual(a.ids, b.ids);
      const e = relErr(a.logits, b.logits);
      assert.ok(e < 1e-5, `logits normalized error ${e}`);
      // prefill with all logits, then decode steps: equals a full recompute (KV cache in wasm memory)
      const full = new InferenceSession(c, store, [wasm, referenceBackend]).forward([...prompt, ...a.ids.slice(0, 6)], 'all');
      const inc = new InferenceSession(c, store, [wasm, referenceBackend]);
      const rows = [...inc.forward(prompt, 'all')];
      for (const id of a.ids.slice(0, 6)) rows.push(...inc.forward([id]));
      assert.ok(relErr(rows, full) < 1e-5, 'KV-cache decode equals full recompute');
    });
  }
}

test('wasm end to end: stories260K (llama2c) greedy ids equal the reference backend', async (t) => {
  const modelPath = modelFileOrSkip(t, 'llama2c/stories260K.bin');
  if (modelPath === null) return;
  const tok = modelFileOrSkip(t, 'llama2c/tok512.bin');
  if (tok === null) return;
  const wasm = await createWasmBackend();
  const fast = await loadModel(modelPath, { tokenizer: tok, backends: [wasm] });
  const ref = await loadModel(modelPath, { tokenizer: tok });
  assert.deepEqual(fast.backendNames, ['wasm', 'reference']);
  try {
    for (const prompt of ['Once upon a time', 'The little dog', 'Lily and Ben went to the park']) {
      const ids = fast.tokenizer.encode(prompt);
      const opts = { maxTokens: 40, temperature: 0 };
      const a = await fast.generate(ids, opts);
      const b = await ref.generate(ids, opts);
      assert.deepEqual(a.generatedIds, b.generatedIds, `"${prompt}": greedy ids`);
    }
    assert.ok(wasm.stats().persistentBytes > 0, 'the weights and KV cache went into wasm memory');
  } finally {
    fast.dispose();
    ref.dispose();
  }
});
