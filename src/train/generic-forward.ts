// A small forward implementation of the op set, generic over Float32Array / Float64Array.
// The trainer's float32 path runs the forward on the real backends (runGraph); this one gives the
// float64 forward that finite-difference checks and the float64 reference comparison need. It is
// kept deliberately line-for-line close to the reference backend.

import type { Node } from '../graph/graph.js';
import { erf } from '../backends/reference/erf.js';
import { zerosLike, type Arr, type GemmKernels } from './gemm.js';

export type TrainValue = Arr | Int32Array;

function f(v: TrainValue | undefined, what: string): Arr {
  if (v === undefined || v instanceof Int32Array) throw new Error(`${what}: expected a float value`);
  return v;
}
function i32(v: TrainValue | undefined, what: string): Int32Array {
  if (!(v instanceof Int32Array)) throw new Error(`${what}: expected an i32 value`);
  return v;
}

export function genericForward(node: Node, ins: TrainValue[], gemm: GemmKernels): Arr {
  const n = node.shape.reduce((a, b) => a * b, 1);
  const op = node.op;
  switch (op) {
    case 'embedding': {
      const table = f(ins[0], op);
      const ids = i32(ins[1], op);
      const D = node.shape[1]!;
      const V = table.length / D;
      const out = zerosLike(table, n);
      for (let t = 0; t < ids.length; t++) {
        const id = ids[t]!;
        if (id < 0 || id >= V) throw new RangeError(`embedding: token id ${id} is outside the vocabulary (0..${V - 1})`);
        out.set(table.subarray(id * D, (id + 1) * D), t * D);
      }
      return out;
    }
    case 'matmul': {
      const x = f(ins[0], op);
      const w = f(ins[1], op);
      const [T, N] = node.shape as [number, number];
      const K = x.length / T;
      const out = zerosLike(x, n);
      gemm.nt(T, N, K, x, w, out);
      return out;
    }
    case 'add':
    case 'mul': {
      const a = f(ins[0], op);
      const b = f(ins[1], op);
      const out = zerosLike(a, n);
      const m = b.length;
      if (op === 'add') for (let i = 0; i < n; i++) out[i] = a[i]! + b[i % m]!;
      else for (let i = 0; i < n; i++) out[i] = a[i]! * b[i % m]!;
      return out;
    }
    case 'rmsnorm': {
      const x = f(ins[0], op);
      const w = f(ins[1], op);
      const eps = (node as Node<'rmsnorm'>).attrs.eps;
      const G = w.length;
      const out = zerosLike(x, n);
      for (let base = 0; base < n; base += G) {
        let ss = 0;
        for (let i = 0; i < G; i++) ss += x[base + i]! * x[base + i]!;
        const inv = 1 / Math.sqrt(ss / G + eps);
        for (let i = 0; i < G; i++) out[base + i] = x[base + i]! * inv * w[i]!;
      }
      return out;
    }
    case 'layernorm': {
      const x = f(ins[0], op);
      const w = f(ins[1], op);
      const b = f(ins[2], op);
      const eps = (node as Node<'layernorm'>).attrs.eps;
      const D = w.length;
      const out = zerosLike(x, n);
      for (let base = 0; base < n; base += D) {
        let mean = 0;
        for (let i = 0; i < D; i++) mean += x[base + i]!;
        mean /= D;
        let v = 0;
        for (let i = 0; i < D; i++) v += (x[base + i]! - mean) ** 2;
        const inv = 1 / Math.sqrt(v / D + eps);
        for (let i = 0; i < D; i++) out[base + i] = (x[base + i]! - mean) * inv * w[i]! + b[i]!;
      }
      return out;
    }
    case 'rope': {
      const x = f(ins[0], op);
      const out = zerosLike(x, n);
      out.set(x);
      ropeRotate(node as Node<'rope'>, x, i32(ins[1], op), out, 1);
      return out;
    }
    case 'attention': {
      const q = f(ins[0], op);
      const k = f(ins[1], op);
      const v = f(ins[2], op);
      const pos = i32(ins[3], op);
      const { nHeads, nKvHeads, headDim: hd, causal, scale } = (node as Node<'attention'>).attrs;
      const T = node.shape[0]!;
      const kW = nKvHeads * hd;
      const S = k.length / kW;
      const qW = nHeads * hd;
      const group = nHeads / nKvHeads;
      const out = zerosLike(q, n);
      const p = new Float64Array(S);
      for (let t = 0; t < T; t++) {
        const last = causal ? pos[t]! : S - 1;
        if (last >= S) throw new RangeError(`attention: position ${last} is outside the ${S} keys`);
        for (let h = 0; h < nHeads; h++) {
          const qo = t * qW + h * hd;
          const ko = Math.floor(h / group) * hd;
          softmaxScores(q, k, qo, ko, kW, hd, last, scale, p);
          for (let i = 0; i < hd; i++) {
            let acc = 0;
            for (let j = 0; j <= last; j++) acc += p[j]! * v[j * kW + ko + i]!;
            out[qo + i] = acc;
          }
        }
      }
      return out;
    }
    case 'silu': {
      const x = f(ins[0], op);
      const out = zerosLike(x, n);
      for (let i = 0; i < n; i++) out[i] = x[i]! / (1 + Math.exp(-x[i]!));
      return out;
    }
    case 'gelu_tanh': {
      const x = f(ins[0], op);
      const out = zerosLike(x, n);
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        out[i] = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
      }
      return out;
    }
    case 'gelu_erf': {
      const x = f(ins[0], op);
      const out = zerosLike(x, n);
      for (let i = 0; i < n; i++) out[i] = 0.5 * x[i]! * (1 + erf(x[i]! / Math.SQRT2));
      return out;
    }
    case 'slice_rows': {
      const x = f(ins[0], op);
      const C = node.shape[1]!;
      const { start, count } = (node as Node<'slice_rows'>).attrs;
      return x.slice(start * C, (start + count) * C);
    }
    case 'slice_cols': {
      const x = f(ins[0], op);
      const { start, count } = (node as Node<'slice_cols'>).attrs;
      const T = node.shape[0]!;
      const C = x.length / T;
      const out = zerosLike(x, n);
      for (let t = 0; t < T; t++) out.set(x.subarray(t * C + start, t * C + start + count), t * count);
      return out;
    }
    case 'cross_entropy': {
      const x = f(ins[0], op);
      const tgt = i32(ins[1], op);
      const T = tgt.length;
      const V = x.length / T;
      let sum = 0;
      let cnt = 0;
      for (let t = 0; t < T; t++) {
        const y = tgt[t]!;
        if (y < 0) continue;
        if (y >= V) throw new RangeError(`cross_entropy: target ${y} is outside the ${V} classes`);
        sum += logSumExp(x, t * V, V) - x[t * V + y]!;
        cnt++;
      }
      const out = zerosLike(x, 1);
      out[0] = cnt === 0 ? 0 : sum / cnt;
      return out;
    }
    default:
      throw new Error(`${op}: not supported on the training path (no KV cache or state in training graphs)`);
  }
}

export function logSumExp(x: Arr, o: number, V: number): number {
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (x[o + i]! > max) max = x[o + i]!;
  let se = 0;
  for (let i = 0; i < V; i++) se += Math.exp(x[o + i]! - max);
  return max + Math.log(se);
}

/** Attention probabilities of one (query row, head) over keys 0..last into p (double precision). */
export function softmaxScores(q: Arr, k: Arr, qo: number, ko: number, kW: number, hd: number, last: number, scale: number, p: Float64Array): void {
  let max = -Infinity;
  for (let j = 0; j <= last; j++) {
    let dot = 0;
    for (let i = 0; i < hd; i++) dot += q[qo + i]! * k[j * kW + ko + i]!;
    p[j] = dot * scale;
    if (p[j]! > max) max = p[j]!;
  }
  let sum = 0;
  for (let j = 0; j <= last; j++) {
    p[j] = Math.exp(p[j]! - max);
    sum += p[j]!;
  }
  for (let j = 0; j <= last; j++) p[j] = p[j]! / sum;
}

/**
 * Rotates the RoPE pairs of `src` into `dst` by +angle (dir = 1, the forward) or -angle (dir = -1,
 * the backward: the transpose of a rotation is the inverse rotation). Only rotated dims are written.
 */
export function ropeRotate(node: Node<'rope'>, src: Arr, pos: Int32Array, dst: Arr, dir: 1 | -1): void {
  const { headDim, theta, style } = node.attrs;
  const rd = node.attrs.rotaryDim ?? headDim;
  const half = rd / 2;
  const T = pos.length;
  const W = src.length / T;
  const invFreq = node.attrs.invFreq ?? Array.from({ length: half }, (_, i) => Math.pow(theta, (-2 * i) / rd));
  // the angles depend on the position and the pair only: cos/sin once per row, shared by every head
  const cs = new Float64Array(half);
  const sn = new Float64Array(half);
  for (let t = 0; t < T; t++) {
    const p = pos[t]!;
    for (let i = 0; i < half; i++) {
      const a = p * invFreq[i]!;
      cs[i] = Math.cos(a);
      sn[i] = dir * Math.sin(a);
    }
    for (let h = 0; h < W; h += headDim) {
      const base = t * W + h;
      for (let i = 0; i < half; i++) {
        const c = cs[i]!;
        const s = sn[i]!;
        const i0 = style === 'interleaved' ? base + 2 * i : base + i;
        const i1 = style === 'interleaved' ? i0 + 1 : i0 + half;
        const x0 = src[i0]!;
        const x1 = src[i1]!;
        dst[i0] = x0 * c - x1 * s;
        dst[i1] = x0 * s + x1 * c;
      }
    }
  }
}
