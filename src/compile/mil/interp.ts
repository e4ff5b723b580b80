// The MIL interpreter: runs every op the ANE lowering emits (and the spec's other listed ops) on the CPU
// with fp16 storage semantics: each fp16-typed op result is rounded to fp16, as the ANE stores it;
// accumulation inside an op (dot products, sums, softmax) is done in higher precision.
// Declared result types are checked against the computed shapes; errors carry line and column.

import { readBlobTensor } from '../blob.js';
import { roundF16InPlace } from '../fp16.js';
import { MilError, numel, type MilArg, type MilDType, type MilFunction, type MilLiteral, type MilProgram, type MilStatement } from './ast.js';

export interface MilTensor {
  t: 'tensor';
  dtype: MilDType;
  shape: number[];
  data: Float32Array | Int32Array;
  /** A scalar (type without a shape), as opposed to a rank-0 tensor. */
  scalar?: boolean;
}
export type MilValue = MilTensor | { t: 'string'; value: string } | { t: 'tuple'; items: MilValue[] };

/** Returns the bytes of a weight file named in BLOBFILE(path = ...). */
export type BlobResolver = (path: string) => Uint8Array;

export interface OverflowRecord {
  name: string;
  op: string;
  line: number;
  col: number;
  /** Non-finite results produced from finite inputs (fp16 overflow), summed over runs. */
  count: number;
  maxAbsFinite: number;
}

const FLOAT = new Set<MilDType>(['fp16', 'fp32']);

export function tensor(dtype: MilDType, shape: number[], data: Float32Array | Int32Array): MilTensor {
  return { t: 'tensor', dtype, shape, data };
}

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

function normAxis(axis: number, rank: number, fail: (m: string) => never): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

export class MilInterpreter {
  readonly fn: MilFunction;
  private readonly consts = new Map<string, MilValue>();
  readonly overflow = new Map<string, OverflowRecord>();

  constructor(
    readonly program: MilProgram,
    private readonly resolve: BlobResolver,
    readonly file = '<mil>',
    fnName = 'main',
  ) {
    const fn = program.functions.find((f) => f.name === fnName);
    if (fn === undefined) throw new MilError(`no function "${fnName}" in the program`, 1, 1, file);
    this.fn = fn;
    const known = new Set(fn.inputs.map((i) => i.name));
    for (const s of fn.body) {
      if (!(s.op in OPS) && s.op !== 'const') throw this.err(s, `unknown op "${s.op}" (the interpreter runs: const, ${Object.keys(OPS).join(', ')})`);
      for (const a of s.args) {
        const names = a.value.kind === 'ref' ? [a.value.name] : a.value.kind === 'tuple' ? a.value.names : [];
        for (const n of names) if (!known.has(n)) throw this.err(s, `${s.op}: argument ${a.key} refers to "${n}", which is not defined before this statement`);
      }
      if (known.has(s.name)) throw this.err(s, `"${s.name}" is defined twice`);
      known.add(s.name);
      if (s.op === 'const') this.consts.set(s.name, this.constValue(s));
    }
    for (const o of fn.outputs) if (!known.has(o)) throw new MilError(`output "${o}" is not defined in function ${fn.name}`, fn.line, fn.col, file);
  }

  private err(s: MilStatement, msg: string): MilError {
    return new MilError(msg, s.line, s.col, this.file);
  }

  private literalValue(l: MilLiteral, s: MilStatement): MilValue {
    switch (l.kind) {
      case 'scalar':
        if (l.dtype === 'string') return { t: 'string', value: l.value as string };
        return { ...tensor(l.dtype, [], this.alloc(l.dtype, 1)), scalar: true, data: this.fill(l.dtype, [l.value as number | boolean]) };
      case 'tensor':
        return tensor(l.type.dtype, [...l.type.shape!], this.fill(l.type.dtype, l.values));
      case 'blob': {
        if (l.type.dtype !== 'fp16' && l.type.dtype !== 'int8') throw this.err(s, `BLOBFILE of dtype ${l.type.dtype} is not supported (fp16, int8)`);
        let bytes: Uint8Array;
        try {
          bytes = this.resolve(l.path);
        } catch (e) {
          throw this.err(s, `cannot read ${l.path}: ${e instanceof Error ? e.message : String(e)}`);
        }
        try {
          return tensor(l.type.dtype, [...l.type.shape!], readBlobTensor(bytes, l.offset, numel(l.type.shape!), l.path));
        } catch (e) {
          throw this.err(s, e instanceof Error ? e.message : String(e));
        }
      }
      case 'dict':
        throw this.err(s, 'a dict is not a value');
    }
  }

  private alloc(dtype: MilDType, n: number): Float32Array | Int32Array {
    return FLOAT.has(dtype) ? new Float32Array(n) : new Int32Array(n);
  }

  private fill(dtype: MilDType, values: (number | boolean)[]): Float32Array | Int32Array {
    const a = this.alloc(dtype, values.length);
    values.forEach((v, i) => (a[i] = typeof v === 'boolean' ? (v ? 1 : 0) : v));
    if (dtype === 'fp16') roundF16InPlace(a as Float32Array);
    return a;
  }

  private constValue(s: MilStatement): MilValue {
    const val = s.attrs.find((a) => a.key === 'val');
    if (val === undefined) throw this.err(s, 'const without val = ...');
    const v = this.literalValue(val.value, s);
    this.checkType(s, v);
    return v;
  }

  private checkType(s: MilStatement, v: MilValue): void {
    if (v.t === 'tuple') return;
    if (v.t === 'string') {
      if (s.type.dtype !== 'string') throw this.err(s, `declared ${s.type.dtype} but the value is a string`);
      return;
    }
    if (v.dtype !== s.type.dtype) throw this.err(s, `declared dtype ${s.type.dtype} but ${s.op} produces ${v.dtype}`);
    const want = s.type.shape;
    if (want === null) {
      if (v.shape.length !== 0) throw this.err(s, `declared a scalar but ${s.op} produces shape [${v.shape.join(', ')}]`);
      return;
    }
    if (want.length !== v.shape.length || want.some((d, i) => d !== v.shape[i])) {
      throw this.err(s, `declared shape [${want.join(', ')}] but ${s.op} produces [${v.shape.join(', ')}]`);
    }
  }

  /** Runs the function. Inputs are float32 arrays (rounded to fp16 on entry for fp16 inputs) or tensors. */
  run(inputs: Record<string, Float32Array | MilTensor>): Record<string, MilTensor> {
    const env = new Map<string, MilValue>();
    for (const i of this.fn.inputs) {
      const v = inputs[i.name];
      if (v === undefined) throw new MilError(`input "${i.name}" was not given`, this.fn.line, this.fn.col, this.file);
      const shape = i.type.shape ?? [];
      const data = v instanceof Float32Array ? v : v.data;
      if (data.length !== numel(shape)) throw new MilError(`input "${i.name}": expected ${numel(shape)} values for [${shape.join(', ')}], got ${data.length}`, this.fn.line, this.fn.col, this.file);
      const copy = Float32Array.from(data);
      if (i.type.dtype === 'fp16') roundF16InPlace(copy);
      env.set(i.name, tensor(i.type.dtype, [...shape], copy));
    }
    // drop values after their last use
    const lastUse = new Map<string, number>();
    this.fn.body.forEach((s, idx) => {
      for (const a of s.args) for (const n of a.value.kind === 'ref' ? [a.value.name] : a.value.kind === 'tuple' ? a.value.names : []) lastUse.set(n, idx);
    });
    const outs = new Set(this.fn.outputs);
    this.fn.body.forEach((s, idx) => {
      if (s.op === 'const') {
        env.set(s.name, this.consts.get(s.name)!);
        return;
      }
      const args = new Map<string, MilValue>();
      for (const a of s.args) args.set(a.key, this.argValue(a.value, env, s));
      const fail = (m: string): never => {
        throw this.err(s, `${s.op}: ${m}`);
      };
      const v = OPS[s.op]!(new Args(args, fail), s, fail);
      if (v.t === 'tensor' && FLOAT.has(v.dtype)) {
        const d = v.data as Float32Array;
        if (v.dtype === 'fp16') roundF16InPlace(d);
        this.trackOverflow(s, v, args);
      }
      this.checkType(s, v);
      env.set(s.name, v);
      for (const a of s.args) {
        for (const n of a.value.kind === 'ref' ? [a.value.name] : a.value.kind === 'tuple' ? a.value.names : []) {
          if (lastUse.get(n) === idx && !outs.has(n) && !this.consts.has(n)) env.delete(n);
        }
      }
    });
    const result: Record<string, MilTensor> = {};
    for (const o of this.fn.outputs) {
      const v = env.get(o)!;
      if (v.t !== 'tensor') throw new MilError(`output "${o}" is not a tensor`, this.fn.line, this.fn.col, this.file);
      result[o] = v;
    }
    return result;
  }

  private trackOverflow(s: MilStatement, v: MilTensor, args: Map<string, MilValue>): void {
    let inputsFinite = true;
    for (const a of args.values()) {
      if (a.t === 'tensor' && FLOAT.has(a.dtype)) {
        for (const x of a.data) if (!Number.isFinite(x)) { inputsFinite = false; break; }
      }
      if (!inputsFinite) break;
    }
    let bad = 0;
    let maxAbs = 0;
    for (const x of v.data) {
      if (!Number.isFinite(x)) bad++;
      else if (Math.abs(x) > maxAbs) maxAbs = Math.abs(x);
    }
    if (bad > 0 && inputsFinite) {
      const r = this.overflow.get(s.name) ?? { name: s.name, op: s.op, line: s.line, col: s.col, count: 0, maxAbsFinite: 0 };
      r.count += bad;
      r.maxAbsFinite = Math.max(r.maxAbsFinite, maxAbs);
      this.overflow.set(s.name, r);
    }
  }

  private argValue(a: MilArg, env: Map<string, MilValue>, s: MilStatement): MilValue {
    if (a.kind === 'literal') return this.literalValue(a.value, s);
    if (a.kind === 'ref') return env.get(a.name)!;
    return { t: 'tuple', items: a.names.map((n) => env.get(n)!) };
  }
}

class Args {
  constructor(
    private readonly m: Map<string, MilValue>,
    private readonly fail: (msg: string) => never,
  ) {}
  has(k: string): boolean {
    return this.m.has(k);
  }
  tensor(k: string): MilTensor {
    const v = this.m.get(k);
    if (v === undefined) this.fail(`missing argument ${k}`);
    if (v.t !== 'tensor') this.fail(`argument ${k} must be a tensor`);
    return v;
  }
  float(k: string): MilTensor {
    const v = this.tensor(k);
    if (!FLOAT.has(v.dtype)) this.fail(`argument ${k} must be fp16 or fp32, found ${v.dtype}`);
    return v;
  }
  ints(k: string, dflt?: number[]): number[] {
    if (!this.m.has(k) && dflt !== undefined) return dflt;
    const v = this.tensor(k);
    return Array.from(v.data);
  }
  int(k: string, dflt?: number): number {
    if (!this.m.has(k) && dflt !== undefined) return dflt;
    const v = this.tensor(k);
    if (v.data.length !== 1) this.fail(`argument ${k} must be a scalar`);
    return v.data[0]!;
  }
  bool(k: string, dflt: boolean): boolean {
    if (!this.m.has(k)) return dflt;
    return this.int(k) !== 0;
  }
  num(k: string, dflt?: number): number {
    return this.int(k, dflt);
  }
  str(k: string, dflt?: string): string {
    const v = this.m.get(k);
    if (v === undefined) {
      if (dflt !== undefined) return dflt;
      this.fail(`missing argument ${k}`);
    }
    if (v.t !== 'string') this.fail(`argument ${k} must be a string`);
    return v.value;
  }
  tuple(k: string): MilTensor[] {
    const v = this.m.get(k);
    if (v === undefined) this.fail(`missing argument ${k}`);
    if (v.t !== 'tuple') this.fail(`argument ${k} must be a tuple (a, b, ...)`);
    return v.items.map((x) => {
      if (x.t !== 'tensor') this.fail(`argument ${k} must hold tensors`);
      return x;
    });
  }
}

type OpFn = (a: Args, s: MilStatement, fail: (m: string) => never) => MilValue;

function resultDtype(a: MilTensor, b: MilTensor, fail: (m: string) => never): MilDType {
  if (a.dtype !== b.dtype) fail(`operands have different dtypes (${a.dtype} and ${b.dtype}); insert a cast`);
  return a.dtype;
}

function broadcast(a: readonly number[], b: readonly number[], fail: (m: string) => never): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) fail(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Strides of `shape` seen from a broadcast shape `out` (0 on broadcast dims). */
function bStrides(shape: readonly number[], out: readonly number[]): number[] {
  const st = strides(shape);
  const off = out.length - shape.length;
  return out.map((d, i) => (i < off || shape[i - off] === 1 ? 0 : st[i - off]!));
}

function binary(f: (x: number, y: number) => number): OpFn {
  return (args, _s, fail) => {
    const a = args.tensor('x');
    const b = args.tensor('y');
    const dtype = resultDtype(a, b, fail);
    const shape = broadcast(a.shape, b.shape, fail);
    const n = numel(shape);
    const out = dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
    const ad = a.data;
    const bd = b.data;
    if (ad.length === n && bd.length === n) {
      for (let i = 0; i < n; i++) out[i] = f(ad[i]!, bd[i]!);
    } else if (bd.length === 1) {
      const y = bd[0]!;
      if (ad.length === n) for (let i = 0; i < n; i++) out[i] = f(ad[i]!, y);
      else for (let i = 0; i < n; i++) out[i] = f(ad[0]!, y);
    } else {
      const sa = bStrides(a.shape, shape);
      const sb = bStrides(b.shape, shape);
      const r = shape.length;
      const inner = shape[r - 1] ?? 1;
      const ia = sa[r - 1] ?? 0;
      const ib = sb[r - 1] ?? 0;
      const idx = new Array<number>(r).fill(0);
      for (let o = 0; o < n; o += inner) {
        let pa = 0;
        let pb = 0;
        for (let d = 0; d < r - 1; d++) {
          pa += idx[d]! * sa[d]!;
          pb += idx[d]! * sb[d]!;
        }
        for (let j = 0; j < inner; j++) out[o + j] = f(ad[pa + j * ia]!, bd[pb + j * ib]!);
        for (let d = r - 2; d >= 0; d--) {
          if (++idx[d]! < shape[d]!) break;
          idx[d] = 0;
        }
      }
    }
    return tensor(dtype, shape, out);
  };
}

function unary(f: (x: number) => number): OpFn {
  return (args) => {
    const x = args.float('x');
    const out = new Float32Array(x.data.length);
    for (let i = 0; i < out.length; i++) out[i] = f(x.data[i]!);
    return tensor(x.dtype, [...x.shape], out);
  };
}

/** [outer, n, inner] split of `shape` around `axis`. */
function around(shape: readonly number[], axis: number): [number, number, number] {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i]!;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!;
  return [outer, shape[axis]!, inner];
}

const OPS: Record<string, OpFn> = {
  add: binary((x, y) => x + y),
  sub: binary((x, y) => x - y),
  mul: binary((x, y) => x * y),
  real_div: binary((x, y) => x / y),
  pow: binary((x, y) => Math.pow(x, y)),
  maximum: binary((x, y) => Math.max(x, y)),
  minimum: binary((x, y) => Math.min(x, y)),
  sigmoid: unary((x) => 1 / (1 + Math.exp(-x))),
  tanh: unary(Math.tanh),
  exp: unary(Math.exp),
  sqrt: unary(Math.sqrt),
  relu: unary((x) => (x > 0 ? x : 0)),
  rsqrt: (args) => {
    const x = args.float('x');
    const eps = args.has('epsilon') ? args.num('epsilon') : 1e-12;
    const out = new Float32Array(x.data.length);
    for (let i = 0; i < out.length; i++) out[i] = 1 / Math.sqrt(x.data[i]! + eps);
    return tensor(x.dtype, [...x.shape], out);
  },

  cast: (args, _s, fail) => {
    const x = args.tensor('x');
    const dt = args.str('dtype');
    if (dt !== 'fp16' && dt !== 'fp32' && dt !== 'int32') fail(`cannot cast to ${dt}`);
    const out = dt === 'int32' ? Int32Array.from(x.data, (v) => Math.trunc(v)) : Float32Array.from(x.data);
    return tensor(dt as MilDType, [...x.shape], out);
  },

  conv: (args, _s, fail) => {
    const x = args.float('x');
    const w = args.float('weight');
    resultDtype(x, w, fail);
    if (x.shape.length !== 4 || w.shape.length !== 4) fail(`x and weight must be rank 4, got [${x.shape.join(', ')}] and [${w.shape.join(', ')}]`);
    const [N, IC, H, W] = x.shape as [number, number, number, number];
    const [OC, ICg, KH, KW] = w.shape as [number, number, number, number];
    const groups = args.int('groups', 1);
    if (KH !== 1 || KW !== 1) fail(`only 1x1 kernels are supported, got ${KH}x${KW}`);
    for (const k of ['strides', 'dilations']) if (args.ints(k, [1, 1]).some((v) => v !== 1)) fail(`${k} must be [1, 1]`);
    const padType = args.str('pad_type', 'valid');
    if (padType !== 'valid' && padType !== 'custom' && padType !== 'same') fail(`unknown pad_type "${padType}"`);
    if (args.ints('pad', [0, 0, 0, 0]).some((v) => v !== 0)) fail('pad must be zero for a 1x1 conv');
    if (IC !== ICg * groups || OC % groups !== 0) fail(`weight [${w.shape.join(', ')}] with groups=${groups} does not fit ${IC} input channels`);
    const bias = args.has('bias') ? args.float('bias') : null;
    if (bias !== null && bias.data.length !== OC) fail(`bias has ${bias.data.length} values, expected ${OC}`);
    const HW = H * W;
    const out = new Float32Array(N * OC * HW);
    const acc = new Float64Array(HW);
    const xd = x.data as Float32Array;
    const wd = w.data as Float32Array;
    const ocg = OC / groups;
    for (let n = 0; n < N; n++) {
      for (let oc = 0; oc < OC; oc++) {
        acc.fill(bias === null ? 0 : bias.data[oc]!);
        const g = Math.floor(oc / ocg);
        for (let ic = 0; ic < ICg; ic++) {
          const wv = wd[oc * ICg + ic]!;
          if (wv === 0) continue;
          const xo = (n * IC + g * ICg + ic) * HW;
          for (let p = 0; p < HW; p++) acc[p]! += wv * xd[xo + p]!;
        }
        const oo = (n * OC + oc) * HW;
        for (let p = 0; p < HW; p++) out[oo + p] = acc[p]!;
      }
    }
    return tensor(x.dtype, [N, OC, H, W], out);
  },

  matmul: (args, _s, fail) => {
    const x = args.float('x');
    const y = args.float('y');
    const dtype = resultDtype(x, y, fail);
    const tx = args.bool('transpose_x', false);
    const ty = args.bool('transpose_y', false);
    if (x.shape.length < 2 || y.shape.length < 2) fail('x and y must have rank >= 2');
    const xr = x.shape.length;
    const yr = y.shape.length;
    const M = tx ? x.shape[xr - 1]! : x.shape[xr - 2]!;
    const K = tx ? x.shape[xr - 2]! : x.shape[xr - 1]!;
    const K2 = ty ? y.shape[yr - 1]! : y.shape[yr - 2]!;
    const N = ty ? y.shape[yr - 2]! : y.shape[yr - 1]!;
    if (K !== K2) fail(`inner dimensions differ: x [${x.shape.join(', ')}]${tx ? 'ᵀ' : ''} and y [${y.shape.join(', ')}]${ty ? 'ᵀ' : ''}`);
    const bx = x.shape.slice(0, xr - 2);
    const by = y.shape.slice(0, yr - 2);
    const batch = broadcast(bx, by, fail);
    const nb = numel(batch);
    const sx = bStrides(bx, batch);
    const sy = bStrides(by, batch);
    const out = new Float32Array(nb * M * N);
    const xd = x.data as Float32Array;
    const yd = y.data as Float32Array;
    // element strides inside one matrix
    const xm = tx ? 1 : K;
    const xk = tx ? M : 1;
    const yk = ty ? 1 : N;
    const yn = ty ? K : 1;
    const acc = new Float64Array(N);
    const bidx = new Array<number>(batch.length).fill(0);
    for (let b = 0; b < nb; b++) {
      let px = 0;
      let py = 0;
      for (let d = 0; d < batch.length; d++) {
        px += bidx[d]! * sx[d]!;
        py += bidx[d]! * sy[d]!;
      }
      px *= M * K;
      py *= K * N;
      for (let m = 0; m < M; m++) {
        acc.fill(0);
        for (let k = 0; k < K; k++) {
          const a = xd[px + m * xm + k * xk]!;
          if (a === 0) continue;
          const yo = py + k * yk;
          for (let n = 0; n < N; n++) acc[n]! += a * yd[yo + n * yn]!;
        }
        const oo = (b * M + m) * N;
        for (let n = 0; n < N; n++) out[oo + n] = acc[n]!;
      }
      for (let d = batch.length - 1; d >= 0; d--) {
        if (++bidx[d]! < batch[d]!) break;
        bidx[d] = 0;
      }
    }
    return tensor(dtype, [...batch, M, N], out);
  },

  softmax: (args, _s, fail) => {
    const x = args.float('x');
    const axis = normAxis(args.int('axis', -1), x.shape.length, fail);
    const [outer, n, inner] = around(x.shape, axis);
    const out = new Float32Array(x.data.length);
    const e = new Float64Array(n);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * n * inner + i;
        let max = -Infinity;
        for (let j = 0; j < n; j++) max = Math.max(max, x.data[base + j * inner]!);
        let sum = 0;
        for (let j = 0; j < n; j++) sum += e[j] = Math.exp(x.data[base + j * inner]! - max);
        for (let j = 0; j < n; j++) out[base + j * inner] = e[j]! / sum;
      }
    }
    return tensor(x.dtype, [...x.shape], out);
  },

  reduce_sum: (args, _s, fail) => {
    let x = args.float('x');
    const keep = args.bool('keep_dims', false);
    const axes = [...new Set(args.ints('axes').map((a) => normAxis(a, x.shape.length, fail)))].sort((a, b) => a - b);
    let data: Float64Array = Float64Array.from(x.data);
    let shape = [...x.shape];
    for (const axis of axes) {
      const [outer, n, inner] = around(shape, axis);
      const next = new Float64Array(outer * inner);
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < n; j++) {
          const src = (o * n + j) * inner;
          for (let i = 0; i < inner; i++) next[o * inner + i]! += data[src + i]!;
        }
      }
      data = next;
      shape[axis] = 1;
    }
    if (!keep) shape = shape.filter((_, i) => !axes.includes(i));
    x = tensor(x.dtype, shape, Float32Array.from(data));
    return x;
  },

  reshape: (args, _s, fail) => {
    const x = args.tensor('x');
    const shape = args.ints('shape');
    const n = numel(x.shape);
    const neg = shape.filter((d) => d === -1).length;
    if (neg > 1) fail('at most one -1 in shape');
    if (neg === 1) {
      const rest = numel(shape.filter((d) => d !== -1));
      shape[shape.indexOf(-1)] = n / rest;
    }
    if (numel(shape) !== n || shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`cannot reshape [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
    return tensor(x.dtype, shape, x.data.slice());
  },

  transpose: (args, _s, fail) => {
    const x = args.tensor('x');
    const perm = args.ints('perm');
    const r = x.shape.length;
    if (perm.length !== r || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) fail(`perm [${perm.join(', ')}] is not a permutation of rank ${r}`);
    const shape = perm.map((p) => x.shape[p]!);
    const st = strides(x.shape);
    const ps = perm.map((p) => st[p]!);
    const n = numel(shape);
    const out = x.data instanceof Float32Array ? new Float32Array(n) : new Int32Array(n);
    const idx = new Array<number>(r).fill(0);
    for (let o = 0; o < n; o++) {
      let src = 0;
      for (let d = 0; d < r; d++) src += idx[d]! * ps[d]!;
      out[o] = x.data[src]!;
      for (let d = r - 1; d >= 0; d--) {
        if (++idx[d]! < shape[d]!) break;
        idx[d] = 0;
      }
    }
    return tensor(x.dtype, shape, out);
  },

  concat: (args, _s, fail) => {
    const vals = args.tuple('values');
    if (vals.length === 0) fail('values is empty');
    const first = vals[0]!;
    const r = first.shape.length;
    const axis = normAxis(args.int('axis'), r, fail);
    const interleave = args.bool('interleave', false);
    for (const v of vals) {
      if (v.dtype !== first.dtype) fail('values have different dtypes');
      if (v.shape.length !== r || v.shape.some((d, i) => i !== axis && d !== first.shape[i])) fail(`shapes [${first.shape.join(', ')}] and [${v.shape.join(', ')}] differ outside axis ${axis}`);
      if (interleave && v.shape[axis] !== first.shape[axis]) fail('interleave needs equal shapes');
    }
    const shape = [...first.shape];
    shape[axis] = vals.reduce((a, v) => a + v.shape[axis]!, 0);
    const [outer, , inner] = around(shape, axis);
    const out = first.data instanceof Float32Array ? new Float32Array(numel(shape)) : new Int32Array(numel(shape));
    const total = shape[axis]!;
    for (let o = 0; o < outer; o++) {
      if (interleave) {
        const n = first.shape[axis]!;
        for (let j = 0; j < n; j++) {
          vals.forEach((v, k) => {
            const src = (o * n + j) * inner;
            out.set(v.data.subarray(src, src + inner), (o * total + j * vals.length + k) * inner);
          });
        }
      } else {
        let at = 0;
        for (const v of vals) {
          const n = v.shape[axis]!;
          out.set(v.data.subarray(o * n * inner, (o + 1) * n * inner), (o * total + at) * inner);
          at += n;
        }
      }
    }
    return tensor(first.dtype, shape, out);
  },

  slice_by_size: (args, _s, fail) => {
    const x = args.tensor('x');
    const begin = args.ints('begin');
    const size = args.ints('size');
    const r = x.shape.length;
    if (begin.length !== r || size.length !== r) fail(`begin and size must have ${r} entries`);
    const shape = size.map((s, i) => (s === -1 ? x.shape[i]! - begin[i]! : s));
    shape.forEach((s, i) => {
      if (begin[i]! < 0 || s < 0 || begin[i]! + s > x.shape[i]!) fail(`slice [${begin[i]}, ${begin[i]! + s}) is outside dimension ${i} of size ${x.shape[i]}`);
    });
    const st = strides(x.shape);
    const n = numel(shape);
    const out = x.data instanceof Float32Array ? new Float32Array(n) : new Int32Array(n);
    const idx = new Array<number>(r).fill(0);
    for (let o = 0; o < n; o++) {
      let src = 0;
      for (let d = 0; d < r; d++) src += (idx[d]! + begin[d]!) * st[d]!;
      out[o] = x.data[src]!;
      for (let d = r - 1; d >= 0; d--) {
        if (++idx[d]! < shape[d]!) break;
        idx[d] = 0;
      }
    }
    return tensor(x.dtype, shape, out);
  },

  layer_norm: (args, _s, fail) => {
    const x = args.float('x');
    const axes = args.ints('axes').map((a) => normAxis(a, x.shape.length, fail));
    if (axes.length !== 1) fail('only a single normalisation axis is supported');
    const eps = args.num('epsilon', 1e-5);
    const gamma = args.has('gamma') ? args.float('gamma') : null;
    const beta = args.has('beta') ? args.float('beta') : null;
    const [outer, n, inner] = around(x.shape, axes[0]!);
    const out = new Float32Array(x.data.length);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * n * inner + i;
        let mean = 0;
        for (let j = 0; j < n; j++) mean += x.data[base + j * inner]!;
        mean /= n;
        let v = 0;
        for (let j = 0; j < n; j++) v += (x.data[base + j * inner]! - mean) ** 2;
        const inv = 1 / Math.sqrt(v / n + eps);
        for (let j = 0; j < n; j++) {
          let y = (x.data[base + j * inner]! - mean) * inv;
          if (gamma) y *= gamma.data[j]!;
          if (beta) y += beta.data[j]!;
          out[base + j * inner] = y;
        }
      }
    }
    return tensor(x.dtype, [...x.shape], out);
  },
};

/** The op names the interpreter executes (besides const). */
export const INTERPRETED_OPS: readonly string[] = Object.keys(OPS);
