// The reference backend: plain TypeScript, fp32 storage, double-precision accumulation.
// Simple and obviously correct; every fast backend is tested against it op by op.

import type { Backend, Dense, KernelTable, Value } from '../backend.js';
import { dense } from '../backend.js';
import { asF32, asI32, denseF32, shapeOf, weightRow } from './weights.js';
import { erf } from './erf.js';

function rowsCols(shape: readonly number[]): [number, number] {
  return [shape[0]!, shape[1]!];
}

/** Elementwise a (op) b with b either the same shape or a row vector. */
function binary(a: Value, b: Value, f: (x: number, y: number) => number): Dense {
  const x = asF32(a);
  const y = asF32(b);
  const out = denseF32(shapeOf(a));
  const o = out.data as Float32Array;
  if (y.length === x.length) {
    for (let i = 0; i < x.length; i++) o[i] = f(x[i]!, y[i]!);
  } else {
    const n = y.length;
    for (let i = 0; i < x.length; i++) o[i] = f(x[i]!, y[i % n]!);
  }
  return out;
}

function unary(a: Value, f: (x: number) => number): Dense {
  const x = asF32(a);
  const out = denseF32(shapeOf(a));
  const o = out.data as Float32Array;
  for (let i = 0; i < x.length; i++) o[i] = f(x[i]!);
  return out;
}

const kernels: KernelTable = {
  input: (node, _in, ctx) => dense(node.shape, ctx.input(node.attrs.name)),
  param: (node, _in, ctx) => {
    const t = ctx.weight(node.attrs.name);
    const want = node.attrs.shape;
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      throw new Error(`weight "${node.attrs.name}": expected shape [${want.join(', ')}], found [${t.shape.join(', ')}]`);
    }
    return { kind: 'weight', tensor: t };
  },
  state: (node, _in, ctx) => dense(node.shape, ctx.state(node.attrs.name, node.shape)),

  embedding: (node, [table, ids]) => {
    const idv = asI32(ids!);
    const [vocab, dim] = rowsCols(shapeOf(table!));
    const out = denseF32(node.shape);
    const o = out.data as Float32Array;
    const scratch = new Float32Array(dim);
    for (let t = 0; t < idv.length; t++) {
      const id = idv[t]!;
      if (id < 0 || id >= vocab) throw new RangeError(`embedding: token id ${id} is outside the vocabulary (0..${vocab - 1})`);
      const row = table!.kind === 'weight' ? weightRow(table!.tensor, id, scratch) : asF32(table!).subarray(id * dim, (id + 1) * dim);
      o.set(row, t * dim);
    }
    return out;
  },

  // x [T, K] @ w [N, K]^T: one dot product per (row, output), accumulated in double.
  matmul: (node, [xv, wv]) => {
    const x = asF32(xv!);
    const [T, K] = rowsCols(shapeOf(xv!));
    const N = shapeOf(wv!)[0]!;
    const out = denseF32(node.shape);
    const o = out.data as Float32Array;
    const scratch = new Float32Array(K);
    const wt = wv!.kind === 'weight' ? wv!.tensor : null;
    const wDense = wt === null ? asF32(wv!) : null;
    for (let n = 0; n < N; n++) {
      const w = wt !== null ? weightRow(wt, n, scratch) : wDense!.subarray(n * K, (n + 1) * K);
      for (let t = 0; t < T; t++) {
        let acc = 0;
        const xo = t * K;
        for (let k = 0; k < K; k++) acc += x[xo + k]! * w[k]!;
        o[t * N + n] = acc;
      }
    }
    return out;
  },

  add: (_node, [a, b]) => binary(a!, b!, (x, y) => x + y),
  mul: (_node, [a, b]) => binary(a!, b!, (x, y) => x * y),

  rmsnorm: (node, [xv, wv]) => {
    const x = asF32(xv!);
    const w = asF32(wv!);
    const G = w.length;
    const out = denseF32(node.shape);
    const o = out.data as Float32Array;
    for (let base = 0; base < x.length; base += G) {
      let ss = 0;
      for (let i = 0; i < G; i++) ss += x[base + i]! * x[base + i]!;
      const inv = 1 / Math.sqrt(ss / G + node.attrs.eps);
      for (let i = 0; i < G; i++) o[base + i] = x[base + i]! * inv * w[i]!;
    }
    return out;
  },

  layernorm: (node, [xv, wv, bv]) => {
    const x = asF32(xv!);
    const w = asF32(wv!);
    const b = asF32(bv!);
    const D = w.length;
    const out = denseF32(node.shape);
    const o = out.data as Float32Array;
    for (let base = 0; base < x.length; base += D) {
      let mean = 0;
      for (let i = 0; i < D; i++) mean += x[base + i]!;
      mean /= D;
      let v = 0;
      for (let i = 0; i < D; i++) v += (x[base + i]! - mean) ** 2;
      const inv = 1 / Math.sqrt(v / D + node.attrs.eps);
      for (let i = 0; i < D; i++) o[base + i] = (x[base + i]! - mean) * inv * w[i]! + b[i]!;
    }
    return out;
  },

  rope: (node, [xv, pv]) => {
    const { headDim, theta, style } = node.attrs;
    const rd = node.attrs.rotaryDim ?? headDim;
    const x = asF32(xv!);
    const pos = asI32(pv!);
    const [T, W] = rowsCols(shapeOf(xv!));
    const out = denseF32(node.shape);
    const o = out.data as Float32Array;
    o.set(x);
    const half = rd / 2;
    const invFreq = node.attrs.invFreq ?? Array.from({ length: half }, (_, i) => Math.pow(theta, (-2 * i) / rd));
    for (let t = 0; t < T; t++) {
      const p = pos[t]!;
      for (let h = 0; h < W; h += headDim) {
        const base = t * W + h;
        for (let i = 0; i < half; i++) {
          const a = p * invFreq[i]!;
          const c = Math.cos(a);
          const s = Math.sin(a);
          // interleaved: (2i, 2i+1) as llama2.c run.c and GGUF; neox: (i, i+half) as HF rotate_half.
          const i0 = style === 'interleaved' ? base + 2 * i : base + i;
          const i1 = style === 'interleaved' ? i0 + 1 : i0 + half;
          const x0 = x[i0]!;
          const x1 = x[i1]!;
          o[i0] = x0 * c - x1 * s;
          o[i1] = x0 * s + x1 * c;
        }
      }
    }
    return out;
  },

  attention: (node, [qv, kv, vv, pv]) => {
    const { nHeads, nKvHeads, headDim: hd, causal, scale } = node.attrs;
    const q = asF32(qv!);
    const k = asF32(kv!);
    const v = asF32(vv!);
    const pos = asI32(pv!);
    const T = shapeOf(qv!)[0]!;
    const S = shapeOf(kv!)[0]!;
    const qW = nHeads * hd;
    const kW = nKvHeads * hd;
    const group = nHeads / nKvHeads;
    const out = denseF32(node.shape);
    const o = out.data as Float32Array;
    const scores = new Float64Array(S);
    for (let t = 0; t < T; t++) {
      const last = causal ? pos[t]! : S - 1;
      if (last >= S) throw new RangeError(`attention: position ${last} is outside the ${S} keys`);
      for (let h = 0; h < nHeads; h++) {
        const qo = t * qW + h * hd;
        const ko = Math.floor(h / group) * hd;
        let max = -Infinity;
        for (let j = 0; j <= last; j++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += q[qo + i]! * k[j * kW + ko + i]!;
          scores[j] = dot * scale;
          if (scores[j]! > max) max = scores[j]!;
        }
        let sum = 0;
        for (let j = 0; j <= last; j++) {
          scores[j] = Math.exp(scores[j]! - max);
          sum += scores[j]!;
        }
        for (let i = 0; i < hd; i++) {
          let acc = 0;
          for (let j = 0; j <= last; j++) acc += scores[j]! * v[j * kW + ko + i]!;
          o[qo + i] = acc / sum;
        }
      }
    }
    return out;
  },

  // Fixed-shape padded batches: `batch` independent sequences; keys whose mask is -Infinity are skipped
  // outright, so a sequence's result does not depend on its padding (bit for bit).
  attention_masked: (node, [qv, kv, vv, mv]) => {
    const { nHeads, nKvHeads, headDim: hd, causal, scale, batch } = node.attrs;
    const q = asF32(qv!);
    const k = asF32(kv!);
    const v = asF32(vv!);
    const mask = asF32(mv!);
    const Tb = shapeOf(qv!)[0]! / batch;
    const Sb = shapeOf(kv!)[0]! / batch;
    const qW = nHeads * hd;
    const kW = nKvHeads * hd;
    const group = nHeads / nKvHeads;
    const out = denseF32(node.shape);
    const o = out.data as Float32Array;
    const scores = new Float64Array(Sb);
    const acc = new Float64Array(hd);
    for (let b = 0; b < batch; b++) {
      const k0 = b * Sb;
      for (let ti = 0; ti < Tb; ti++) {
        const t = b * Tb + ti;
        const nKeys = causal ? ti + 1 : Sb;
        for (let h = 0; h < nHeads; h++) {
          const qo = t * qW + h * hd;
          const ko = Math.floor(h / group) * hd;
          let max = -Infinity;
          for (let j = 0; j < nKeys; j++) {
            const m = mask[k0 + j]!;
            if (m === -Infinity) {
              scores[j] = -Infinity;
              continue;
            }
            const kr = (k0 + j) * kW + ko;
            let dot = 0;
            for (let i = 0; i < hd; i++) dot += q[qo + i]! * k[kr + i]!;
            scores[j] = dot * scale + m;
            if (scores[j]! > max) max = scores[j]!;
          }
          if (max === -Infinity) continue; // no visible key: zeros
          let sum = 0;
          acc.fill(0);
          for (let j = 0; j < nKeys; j++) {
            if (scores[j] === -Infinity) continue;
            const p = Math.exp(scores[j]! - max);
            sum += p;
            const vr = (k0 + j) * kW + ko;
            for (let i = 0; i < hd; i++) acc[i] += p * v[vr + i]!;
          }
          for (let i = 0; i < hd; i++) o[qo + i] = acc[i]! / sum;
        }
      }
    }
    return out;
  },

  kv_write: (_node, [cv, xv, pv]) => {
    const cache = cv as Dense;
    const c = cache.data as Float32Array;
    const x = asF32(xv!);
    const pos = asI32(pv!);
    const [S, C] = rowsCols(cache.shape);
    for (let t = 0; t < pos.length; t++) {
      const p = pos[t]!;
      if (p < 0 || p >= S) throw new RangeError(`kv_write: position ${p} is outside the cache of ${S} rows`);
      c.set(x.subarray(t * C, (t + 1) * C), p * C);
    }
    return cache;
  },

  silu: (_node, [a]) => unary(a!, (x) => x / (1 + Math.exp(-x))),
  gelu_tanh: (_node, [a]) =>
    unary(a!, (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)))),
  gelu_erf: (_node, [a]) => unary(a!, (x) => 0.5 * x * (1 + erf(x / Math.SQRT2))),

  slice_rows: (node, [a]) => {
    const x = asF32(a!);
    const C = shapeOf(a!)[1]!;
    const { start, count } = node.attrs;
    return dense(node.shape, x.slice(start * C, (start + count) * C));
  },
  slice_cols: (node, [a]) => {
    const x = asF32(a!);
    const [T, C] = rowsCols(shapeOf(a!));
    const { start, count } = node.attrs;
    const out = denseF32(node.shape);
    const o = out.data as Float32Array;
    for (let t = 0; t < T; t++) o.set(x.subarray(t * C + start, t * C + start + count), t * count);
    return out;
  },

  // Mean cross-entropy over rows whose target is >= 0 (log-sum-exp in double).
  cross_entropy: (node, [lv, tv]) => {
    const x = asF32(lv!);
    const tgt = asI32(tv!);
    const [T, V] = rowsCols(shapeOf(lv!));
    let sum = 0;
    let n = 0;
    for (let t = 0; t < T; t++) {
      const y = tgt[t]!;
      if (y < 0) continue;
      if (y >= V) throw new RangeError(`cross_entropy: target ${y} is outside the ${V} classes`);
      const o = t * V;
      let max = -Infinity;
      for (let i = 0; i < V; i++) if (x[o + i]! > max) max = x[o + i]!;
      let se = 0;
      for (let i = 0; i < V; i++) se += Math.exp(x[o + i]! - max);
      sum += max + Math.log(se) - x[o + y]!;
      n++;
    }
    return dense(node.shape, Float32Array.of(n === 0 ? 0 : sum / n));
  },
};

export const referenceBackend: Backend = { name: 'reference', kernels };
