// Lowering: fused kernels (passes/partition.ts) -> MIL programs in the ANE layout [1, C, 1, S], fp16.
// - every linear layer is a 1x1 `conv` with weight [OC, IC, 1, 1] (PyTorch [out, in] rows as they are);
// - attention reshapes to [1, H, HD, S], transposes q to [1, H, S, HD], `matmul`s, scales, adds an
//   explicit causal mask constant [1, 1, S, S] and takes `softmax`; GQA repeats K/V heads (interleaved concat);
// - RMSNorm is mul, reduce_sum, mul(1/D), add(eps), pow(-0.5), mul, mul(w); `rsqrt` and `layernorm`
//   (cat([x, -x]) + layer_norm) are the selectable alternatives;
// - GELU: gelu_tanh is built from tanh; gelu_erf (BERT's exact GELU; the ANE has no erf) is x * sigmoid(h(x)) with
//   the rational h(x) = x (a + b x^2) / (1 + c x^2) ~ logit(Phi(x)) (GELU_ERF_RATIONAL, max error 5.6e-5 vs 4.7e-4
//   for the tanh form), or the tanh form on request; RoPE multiplies by baked cos/sin constants for positions 0..S-1.
// - encoders (attention_masked): no causal mask constant; the key-padding mask is a program input `key_mask`
//   [1, 1, 1, S] fp16 (0 keep, MASK_VALUE drop) added to the scores [1, H, S, S] (broadcast over heads and queries).
// - chunked prefill (ctx.chunk): attention concatenates the layer's K/V cache inputs k_cache_l<n> / v_cache_l<n>
//   [1, kvDim, 1, C] (reshaped to [1, KVH, hd, C]) before the chunk's own K/V along the key axis, and adds the mask
//   input chunk_mask [1, 1, S, C + S] instead of the causal constant; RoPE multiplies by the inputs rope_cos /
//   rope_sin [1, 1, hd, S] (the chunk's positions) instead of baked tables.
// Weights become BLOBFILE constants, one tensor per file under weights/, shared by every bucket.

import type { Graph, Node } from '../graph/graph.js';
import type { OpAttrs } from '../graph/ops.js';
import { UnsupportedError } from '../errors.js';
import { f16 } from './fp16.js';
import { DEFAULT_BUILD_INFO, type MilArg, type MilDType, type MilLiteral, type MilProgram, type MilStatement } from './mil/ast.js';
import type { Kernel, Partition } from './passes/partition.js';

export type NormLowering = 'pow' | 'rsqrt' | 'layernorm';

export interface LowerOptions {
  norm: NormLowering;
  /** Power-of-two residual scale from the fp16 guard (1 = none). */
  residualScale: number;
  /** Classifier head on the CPU: the classifier program stops after the final norm. */
  headOnCpu: boolean;
  /** gelu_erf lowering: the rational erf-GELU (default) or the tanh approximation. */
  geluErf?: GeluErfLowering;
}

export type GeluErfLowering = 'rational' | 'tanh';

/**
 * erf-GELU without erf: GELU(x) = x Phi(x) = x sigmoid(logit(Phi(x))), logit(Phi(x)) ~ x (a + b x^2) / (1 + c x^2).
 * Coefficients fitted (minimax, then tuned among fp16 values against the fp16 evaluation of exactly the emitted op
 * sequence); all three are exact fp16 values. Error vs exact GELU: 5.6e-5 max evaluated in fp64 (the tanh form:
 * 4.7e-4); evaluated in fp16 op by op, mean |error| 1.44e-4 (x ~ N(0, 1.5); fp16 rounding of the exact GELU alone:
 * 1.01e-4; tanh form: 2.11e-4) with no bias (2.8e-7; tanh form -2.3e-5), and the sigmoid keeps relative precision
 * for negative x where 1 + tanh(u) cancels. x^2 is formed from x / 256 (u = (x/256)^2, b and c scaled by 65536) so
 * it never overflows fp16; b u overflows only for |x| > 845 (then h = +-inf and the result is x or 0, as it should
 * be), inf / inf only for |x| > 2478.
 */
export const GELU_ERF_RATIONAL = { a: 1.5947265625, b: 0.0914306640625, c: 0.0106658935546875, preScale: 1 / 256 } as const;

export type IoRole = 'residual' | 'k' | 'v' | 'logits' | 'hidden' | 'mask' | 'k_cache' | 'v_cache' | 'rope_cos' | 'rope_sin';

/** The RoPE table a chunked-prefill program expects as inputs rope_cos / rope_sin [1, 1, headDim, S]. */
export interface RopeTable {
  headDim: number;
  rotaryDim: number;
  style: 'neox' | 'interleaved';
  invFreq: number[];
}

/** RoPE cos / sin rows [headDim, S] (row-major, fp32) for positions pos0..pos0+S-1, as the baked tables lay them out. */
export function ropeRows(r: RopeTable, pos0: number, S: number): { cos: Float32Array; sin: Float32Array } {
  const cos = new Float32Array(r.headDim * S);
  const sin = new Float32Array(r.headDim * S);
  const half = r.rotaryDim / 2;
  for (let i = 0; i < r.headDim; i++) {
    const f = i >= r.rotaryDim ? -1 : r.style === 'interleaved' ? Math.floor(i / 2) : i % half;
    for (let s = 0; s < S; s++) {
      cos[i * S + s] = f < 0 ? 1 : Math.cos((pos0 + s) * r.invFreq[f]!);
      sin[i * S + s] = f < 0 ? 0 : Math.sin((pos0 + s) * r.invFreq[f]!);
    }
  }
  return { cos, sin };
}

export interface IoDesc {
  name: string;
  shape: number[];
  role: IoRole;
  layer?: number;
}

export interface LoweredProgram {
  name: string;
  bucket: number;
  kind: 'attention' | 'ffn' | 'layers' | 'classifier' | 'output';
  kernels: string[];
  layers: number[];
  program: MilProgram;
  inputs: IoDesc[];
  outputs: IoDesc[];
  /** Weight files the program's BLOBFILE constants name (relative to the bundle: weights/x.bin). */
  weightFiles: string[];
  /** Chunked-prefill programs: the cache length C, and the RoPE table their rope inputs follow (null: no RoPE). */
  chunk?: { cache: number; rope: RopeTable | null };
}

/** Weight files by relative path, with a producer of their float32 values (converted to fp16 when written). */
export type WeightRegistry = Map<string, { values: () => Float32Array; shape: number[]; source: string }>;

export interface LowerContext {
  part: Partition;
  S: number;
  opts: LowerOptions;
  /** A model parameter as float32 ([out, in] row-major for matrices). */
  param: (name: string) => Float32Array;
  files: WeightRegistry;
  /** Chunked prefill: K/V cache inputs of C columns, the mask and RoPE rows as inputs. */
  chunk?: { cache: number };
}

/**
 * The additive mask value of dropped keys (the causal constant's upper triangle, the key_mask input's pad keys).
 * Finite, so score + mask never overflows fp16 (for |score| < 55504) and no inf - inf can appear in the softmax's
 * max subtraction; exp(MASK_VALUE + score - max) underflows to exactly 0 in fp16 and fp32 whenever the real
 * scores of a row lie within ~9900 of each other, so dropped keys get exactly zero weight: the softmax over the
 * kept keys is the one without them (-inf would give the same zeros, but relies on IEEE inf arithmetic on the ANE).
 */
export const MASK_VALUE = -10000;

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_]+/g, '_');
}

function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

class Builder {
  readonly body: MilStatement[] = [];
  private readonly used = new Set<string>();
  private readonly consts = new Map<string, string>();
  readonly files = new Set<string>();

  constructor(reserved: string[]) {
    for (const r of reserved) this.used.add(r);
  }

  fresh(base: string): string {
    let n = sanitize(base);
    if (!/^[A-Za-z_]/.test(n)) n = `v_${n}`;
    if (!this.used.has(n)) {
      this.used.add(n);
      return n;
    }
    for (let i = 1; ; i++) {
      const c = `${n}_${i}`;
      if (!this.used.has(c)) {
        this.used.add(c);
        return c;
      }
    }
  }

  private constStmt(key: string, base: string, type: { dtype: MilDType; shape: number[] | null }, val: MilLiteral): string {
    const have = this.consts.get(key);
    if (have !== undefined) return have;
    const name = this.fresh(base);
    this.body.push({ type, name, op: 'const', args: [], attrs: [{ key: 'name', value: { kind: 'scalar', dtype: 'string', value: name } }, { key: 'val', value: val }], line: 0, col: 0 });
    this.consts.set(key, name);
    return name;
  }

  fp16(v: number, base = 'c'): string {
    v = f16(v); // the constant holds the fp16 value the ANE will use
    return this.constStmt(`fp16:${Object.is(v, -0) ? '-0' : v}`, base, { dtype: 'fp16', shape: null }, { kind: 'scalar', dtype: 'fp16', value: v });
  }
  int(v: number, base = 'i'): string {
    return this.constStmt(`int32:${v}`, base, { dtype: 'int32', shape: null }, { kind: 'scalar', dtype: 'int32', value: v });
  }
  bool(v: boolean): string {
    return this.constStmt(`bool:${v}`, v ? 'true_' : 'false_', { dtype: 'bool', shape: null }, { kind: 'scalar', dtype: 'bool', value: v });
  }
  str(v: string, base = 's'): string {
    return this.constStmt(`string:${v}`, base, { dtype: 'string', shape: null }, { kind: 'scalar', dtype: 'string', value: v });
  }
  /** An int32 vector; `own` gives it its own named constant instead of sharing an equal one. */
  ints(v: number[], base = 't', own = false): string {
    const type = { dtype: 'int32' as const, shape: [v.length] };
    return this.constStmt(`ints:${own ? base + ':' : ''}${v.join(',')}`, base, type, { kind: 'tensor', type, values: v });
  }
  blob(file: string, shape: number[], base: string): string {
    this.files.add(file);
    const type = { dtype: 'fp16' as const, shape };
    return this.constStmt(`blob:${file}:${shape.join(',')}`, base, type, { kind: 'blob', type, path: `@model_path/${file}`, offset: 64 });
  }

  op(op: string, args: [string, string | string[]][], shape: number[], base: string): string {
    const name = this.fresh(base);
    const margs = args.map(([key, v]): { key: string; value: MilArg } => ({ key, value: Array.isArray(v) ? { kind: 'tuple', names: v } : { kind: 'ref', name: v } }));
    this.body.push({ type: { dtype: 'fp16', shape }, name, op, args: margs, attrs: [{ key: 'name', value: { kind: 'scalar', dtype: 'string', value: name } }], line: 0, col: 0 });
    return name;
  }

  rename(from: string, to: string): void {
    if (from === to) return;
    if (this.used.has(to)) throw new Error(`lowering: output name ${to} is taken`);
    this.used.add(to);
    for (const s of this.body) {
      if (s.name === from) {
        s.name = to;
        for (const a of s.attrs) if (a.key === 'name' && a.value.kind === 'scalar') a.value.value = to;
      }
      for (const a of s.args) {
        if (a.value.kind === 'ref' && a.value.name === from) a.value.name = to;
        if (a.value.kind === 'tuple') a.value.names = a.value.names.map((n) => (n === from ? to : n));
      }
    }
  }
}

interface V {
  name: string;
  shape: number[];
}

/** Lowers consecutive kernels into one MIL program for sequence bucket S. */
export function lowerProgram(ctx: LowerContext, kernels: Kernel[], name: string): LoweredProgram {
  const { part, S, opts } = ctx;
  const g = part.graph;
  const D = g.node(kernels[0]!.input).shape[1]!;
  const chunk = ctx.chunk;
  const b = new Builder(['x', 'key_mask', 'chunk_mask', 'rope_cos', 'rope_sin', ...kernels.flatMap((k) => [`k_cache_l${k.layer}`, `v_cache_l${k.layer}`])]);
  let usesKeyMask = false;
  const extraInputs: IoDesc[] = [];
  const addInput = (io: IoDesc): string => {
    if (!extraInputs.some((e) => e.name === io.name)) extraInputs.push(io);
    return io.name;
  };
  let ropeTable: RopeTable | null = null;
  const val = new Map<number, V>();
  val.set(kernels[0]!.input, { name: 'x', shape: [1, D, 1, S] });
  const outputs: { v: V; desc: Omit<IoDesc, 'shape' | 'name'>; want: string }[] = [];
  const resScale = opts.residualScale;

  const W = (n: Node): string => (n.attrs as OpAttrs['param']).name;
  const paramFile = (pname: string, shape: number[]): string => {
    const file = `weights/${sanitize(pname)}.bin`;
    if (!ctx.files.has(file)) ctx.files.set(file, { values: () => ctx.param(pname), shape, source: pname });
    return file;
  };
  const derivedFile = (file: string, shape: number[], values: () => Float32Array, source: string): string => {
    if (!ctx.files.has(file)) ctx.files.set(file, { values, shape, source });
    return file;
  };

  for (const k of kernels) {
    const pre = k.kind === 'classifier' ? 'cls' : k.kind === 'output' ? 'out' : `l${k.layer}${k.kind === 'attention' ? 'a' : 'f'}`;
    const get = (id: number): V => {
      const v = val.get(id);
      if (v === undefined) throw new Error(`lowering ${k.name}: node ${id} (${g.node(id).op}) has no value`);
      return v;
    };
    const isParam = (id: number): boolean => g.node(id).op === 'param';
    const weightConst = (id: number, shape: number[], base: string): string => b.blob(paramFile(W(g.node(id)), shape), shape, `${pre}_${base}`);

    const norm = (x: V, wName: string | null, axis: number, n: number, eps: number, base: string): V => {
      const red = [...x.shape];
      red[axis] = 1;
      let r: string;
      let y: string;
      if (opts.norm === 'layernorm') {
        const neg = b.op('mul', [['x', x.name], ['y', b.fp16(-1, 'neg_one')]], x.shape, `${pre}_${base}_neg`);
        const catShape = [...x.shape];
        catShape[axis] = 2 * n;
        const cat = b.op('concat', [['axis', b.int(axis, `ax${axis}`)], ['interleave', b.bool(false)], ['values', [x.name, neg]]], catShape, `${pre}_${base}_cat`);
        const ln = b.op('layer_norm', [['axes', b.ints([axis], `axes${axis}`)], ['epsilon', b.fp16(eps, `${pre}_eps`)], ['x', cat]], catShape, `${pre}_${base}_ln`);
        y = b.op('slice_by_size', [['begin', b.ints([0, 0, 0, 0], 'zeros4')], ['size', b.ints(x.shape, `size_${x.shape.join('_')}`)], ['x', ln]], x.shape, `${pre}_${base}_y`);
      } else {
        const sq = b.op('mul', [['x', x.name], ['y', x.name]], x.shape, `${pre}_${base}_sq`);
        const ss = b.op('reduce_sum', [['axes', b.ints([axis], `axes${axis}`)], ['keep_dims', b.bool(true)], ['x', sq]], red, `${pre}_${base}_ss`);
        const ms = b.op('mul', [['x', ss], ['y', b.fp16(1 / n, `inv${n}`)]], red, `${pre}_${base}_ms`);
        if (opts.norm === 'rsqrt') {
          r = b.op('rsqrt', [['epsilon', b.fp16(eps, `${pre}_eps`)], ['x', ms]], red, `${pre}_${base}_rs`);
        } else {
          const me = b.op('add', [['x', ms], ['y', b.fp16(eps, `${pre}_eps`)]], red, `${pre}_${base}_me`);
          r = b.op('pow', [['x', me], ['y', b.fp16(-0.5, 'neg_half')]], red, `${pre}_${base}_rs`);
        }
        y = b.op('mul', [['x', x.name], ['y', r]], x.shape, `${pre}_${base}_y`);
      }
      if (wName === null) return { name: y, shape: x.shape };
      return { name: b.op('mul', [['x', y], ['y', wName]], x.shape, `${pre}_${base}`), shape: x.shape };
    };

    for (const id of k.nodes) {
      const n = g.node(id);
      if (opts.headOnCpu && k.kind === 'classifier' && id === k.output) {
        if (n.op !== 'matmul') throw new UnsupportedError('the CPU classifier needs the logits to come from a matmul');
        continue;
      }
      const inp = n.inputs;
      const C = n.shape[1]!;
      const out4 = [1, C, 1, S];
      let res: V;
      switch (n.op) {
        case 'matmul': {
          if (!isParam(inp[1]!)) throw new UnsupportedError(`${k.name}: matmul of two activations (node ${id}) has no conv lowering`);
          const x = get(inp[0]!);
          const [N, K] = g.node(inp[1]!).shape as [number, number];
          const w = weightConst(inp[1]!, [N, K, 1, 1], `W_${id}`);
          res = {
            name: b.op('conv', [
              ['dilations', b.ints([1, 1], 'dl', true)], ['groups', b.int(1, 'gr')], ['pad', b.ints([0, 0, 0, 0], 'pd', true)],
              ['pad_type', b.str('valid', 'pt')], ['strides', b.ints([1, 1], 'st', true)], ['weight', w], ['x', x.name],
            ], out4, `${pre}_conv${id}`),
            shape: out4,
          };
          break;
        }
        case 'add':
        case 'mul': {
          const a = get(inp[0]!);
          let y: string;
          if (isParam(inp[1]!)) y = weightConst(inp[1]!, [1, C, 1, 1], `${n.op === 'add' ? 'b' : 'w'}_${id}`);
          else {
            let bv = get(inp[1]!);
            if (id === k.residualAdd && resScale !== 1) {
              bv = { name: b.op('mul', [['x', bv.name], ['y', b.fp16(resScale, 'res_scale')]], bv.shape, `${pre}_branch_scaled`), shape: bv.shape };
            }
            y = bv.name;
          }
          res = { name: b.op(n.op, [['x', a.name], ['y', y]], out4, `${pre}_${n.op}${id}`), shape: out4 };
          break;
        }
        case 'rmsnorm': {
          const x = get(inp[0]!);
          const G = g.node(inp[1]!).shape[0]!;
          const eps = (n.attrs as OpAttrs['rmsnorm']).eps * (k.residualNorms.includes(id) ? resScale * resScale : 1);
          if (G === C) {
            res = norm(x, weightConst(inp[1]!, [1, C, 1, 1], `norm_${id}`), 1, C, eps, `rms${id}`);
          } else {
            const hs = [1, C / G, G, S];
            const xr = { name: b.op('reshape', [['shape', b.ints(hs, `shape_${hs.join('_')}`)], ['x', x.name]], hs, `${pre}_heads${id}`), shape: hs };
            const y = norm(xr, weightConst(inp[1]!, [1, 1, G, 1], `norm_${id}`), 2, G, eps, `rms${id}`);
            res = { name: b.op('reshape', [['shape', b.ints(out4, `shape_${out4.join('_')}`)], ['x', y.name]], out4, `${pre}_rms${id}_flat`), shape: out4 };
          }
          break;
        }
        case 'layernorm': {
          const x = get(inp[0]!);
          const eps = (n.attrs as OpAttrs['layernorm']).eps * (k.residualNorms.includes(id) ? resScale * resScale : 1);
          if (opts.norm === 'layernorm') {
            const gamma = weightConst(inp[1]!, [C], `ln_g_${id}`);
            const beta = weightConst(inp[2]!, [C], `ln_b_${id}`);
            res = { name: b.op('layer_norm', [['axes', b.ints([1], 'axes1')], ['beta', beta], ['epsilon', b.fp16(eps, `${pre}_eps`)], ['gamma', gamma], ['x', x.name]], out4, `${pre}_ln${id}`), shape: out4 };
          } else {
            const red = [1, 1, 1, S];
            const s = b.op('reduce_sum', [['axes', b.ints([1], 'axes1')], ['keep_dims', b.bool(true)], ['x', x.name]], red, `${pre}_ln${id}_sum`);
            const mean = b.op('mul', [['x', s], ['y', b.fp16(1 / C, `inv${C}`)]], red, `${pre}_ln${id}_mean`);
            const xc = b.op('sub', [['x', x.name], ['y', mean]], out4, `${pre}_ln${id}_xc`);
            const y = norm({ name: xc, shape: out4 }, weightConst(inp[1]!, [1, C, 1, 1], `ln_g_${id}`), 1, C, eps, `ln${id}`);
            res = { name: b.op('add', [['x', y.name], ['y', weightConst(inp[2]!, [1, C, 1, 1], `ln_b_${id}`)]], out4, `${pre}_ln${id}`), shape: out4 };
          }
          break;
        }
        case 'rope': {
          const a = n.attrs as OpAttrs['rope'];
          if (g.node(inp[1]!).op !== 'input') throw new UnsupportedError(`${k.name}: rope positions must be the graph's positions input`);
          const x = get(inp[0]!);
          const hd = a.headDim;
          const H = C / hd;
          const rd = a.rotaryDim ?? hd;
          const half = rd / 2;
          const inv = a.invFreq ?? Array.from({ length: half }, (_, i) => Math.pow(a.theta, (-2 * i) / rd));
          const tag = `rope_${a.style}_hd${hd}_rd${rd}_${hash(JSON.stringify(inv))}_s${S}`;
          const table = (fn: (t: number) => number, pass: number) => (): Float32Array => {
            const t = new Float32Array(hd * S);
            for (let i = 0; i < hd; i++) {
              const f = i >= rd ? -1 : a.style === 'interleaved' ? Math.floor(i / 2) : i % half;
              for (let s = 0; s < S; s++) t[i * S + s] = f < 0 ? pass : fn(s * inv[f]!);
            }
            return t;
          };
          const cs = [1, 1, hd, S];
          let cos: string;
          let sin: string;
          if (chunk !== undefined) {
            // positions differ per chunk: the host passes the chunk's cos / sin rows as inputs
            const rt: RopeTable = { headDim: hd, rotaryDim: rd, style: a.style === 'interleaved' ? 'interleaved' : 'neox', invFreq: [...inv] };
            if (ropeTable !== null && JSON.stringify(ropeTable) !== JSON.stringify(rt)) throw new UnsupportedError(`${k.name}: chunked prefill supports one RoPE table per program`);
            ropeTable = rt;
            cos = addInput({ name: 'rope_cos', shape: cs, role: 'rope_cos' });
            sin = addInput({ name: 'rope_sin', shape: cs, role: 'rope_sin' });
          } else {
          cos = b.blob(derivedFile(`weights/${tag}_cos.bin`, cs, table(Math.cos, 1), `RoPE cos, positions 0..${S - 1}`), cs, `rope_cos`);
          sin = b.blob(derivedFile(`weights/${tag}_sin.bin`, cs, table(Math.sin, 0), `RoPE sin, positions 0..${S - 1}`), cs, `rope_sin`);
          }
          const hs = [1, H, hd, S];
          const xh = b.op('reshape', [['shape', b.ints(hs, `shape_${hs.join('_')}`)], ['x', x.name]], hs, `${pre}_rope${id}_x`);
          let rot: string;
          if (a.style === 'neox') {
            const hsz = [1, H, half, S];
            const x1 = b.op('slice_by_size', [['begin', b.ints([0, 0, 0, 0], 'zeros4')], ['size', b.ints(hsz, `size_${hsz.join('_')}`)], ['x', xh]], hsz, `${pre}_rope${id}_x1`);
            const x2 = b.op('slice_by_size', [['begin', b.ints([0, 0, half, 0], `begin_0_0_${half}_0`)], ['size', b.ints(hsz, `size_${hsz.join('_')}`)], ['x', xh]], hsz, `${pre}_rope${id}_x2`);
            const n2 = b.op('mul', [['x', x2], ['y', b.fp16(-1, 'neg_one')]], hsz, `${pre}_rope${id}_nx2`);
            const parts = [n2, x1];
            if (rd < hd) {
              const rsz = [1, H, hd - rd, S];
              parts.push(b.op('slice_by_size', [['begin', b.ints([0, 0, rd, 0], `begin_0_0_${rd}_0`)], ['size', b.ints(rsz, `size_${rsz.join('_')}`)], ['x', xh]], rsz, `${pre}_rope${id}_pass`));
            }
            rot = b.op('concat', [['axis', b.int(2, 'ax2')], ['interleave', b.bool(false)], ['values', parts]], hs, `${pre}_rope${id}_rot`);
          } else {
            const ps = [1, C / 2, 2, S];
            const esz = [1, C / 2, 1, S];
            const xp = b.op('reshape', [['shape', b.ints(ps, `shape_${ps.join('_')}`)], ['x', x.name]], ps, `${pre}_rope${id}_pairs`);
            const ev = b.op('slice_by_size', [['begin', b.ints([0, 0, 0, 0], 'zeros4')], ['size', b.ints(esz, `size_${esz.join('_')}`)], ['x', xp]], esz, `${pre}_rope${id}_even`);
            const od = b.op('slice_by_size', [['begin', b.ints([0, 0, 1, 0], 'begin_0_0_1_0')], ['size', b.ints(esz, `size_${esz.join('_')}`)], ['x', xp]], esz, `${pre}_rope${id}_odd`);
            const no = b.op('mul', [['x', od], ['y', b.fp16(-1, 'neg_one')]], esz, `${pre}_rope${id}_nodd`);
            const rp = b.op('concat', [['axis', b.int(2, 'ax2')], ['interleave', b.bool(false)], ['values', [no, ev]]], ps, `${pre}_rope${id}_rotp`);
            rot = b.op('reshape', [['shape', b.ints(hs, `shape_${hs.join('_')}`)], ['x', rp]], hs, `${pre}_rope${id}_rot`);
          }
          const xc = b.op('mul', [['x', xh], ['y', cos]], hs, `${pre}_rope${id}_xc`);
          const rs = b.op('mul', [['x', rot], ['y', sin]], hs, `${pre}_rope${id}_rs`);
          const sum = b.op('add', [['x', xc], ['y', rs]], hs, `${pre}_rope${id}_sum`);
          res = { name: b.op('reshape', [['shape', b.ints(out4, `shape_${out4.join('_')}`)], ['x', sum]], out4, `${pre}_rope${id}`), shape: out4 };
          break;
        }
        case 'attention':
        case 'attention_masked': {
          const a = n.attrs as OpAttrs['attention'];
          const masked = n.op === 'attention_masked';
          if (masked && (n.attrs as OpAttrs['attention_masked']).batch !== 1) throw new UnsupportedError(`${k.name}: an ANE program holds one sequence (attention_masked batch must be 1)`);
          if (masked && g.node(inp[3]!).op !== 'input') throw new UnsupportedError(`${k.name}: the key mask must be the graph's key_mask input`);
          if (!a.causal && !masked) throw new UnsupportedError(`${k.name}: bidirectional attention needs the key-padding mask (build the encoder graph: attention_masked with the key_mask input)`);
          const H = a.nHeads;
          const KVH = a.nKvHeads;
          const hd = a.headDim;
          const grp = H / KVH;
          const q = get(inp[0]!);
          const kk = get(inp[1]!);
          const vv = get(inp[2]!);
          const qs = [1, H, hd, S];
          const kvs = [1, KVH, hd, S];
          const q4 = b.op('reshape', [['shape', b.ints(qs, `shape_${qs.join('_')}`)], ['x', q.name]], qs, `${pre}_q4`);
          const qt = b.op('transpose', [['perm', b.ints([0, 1, 3, 2], 'perm_0132')], ['x', q4]], [1, H, S, hd], `${pre}_qt`);
          if (chunk !== undefined && (masked || !a.causal)) throw new UnsupportedError(`${k.name}: chunked prefill is for causal decoders`);
          const T = chunk !== undefined ? chunk.cache + S : S; // key columns: the cache, then the chunk
          const heads = (x: V, base: 'k' | 'v'): string => {
            let t = b.op('reshape', [['shape', b.ints(kvs, `shape_${kvs.join('_')}`)], ['x', x.name]], kvs, `${pre}_${base}4`);
            if (chunk !== undefined) {
              const C = chunk.cache;
              const cin = addInput({ name: `${base}_cache_l${k.layer}`, shape: [1, KVH * hd, 1, C], role: base === 'k' ? 'k_cache' : 'v_cache', layer: k.layer });
              const cs4 = [1, KVH, hd, C];
              const c4 = b.op('reshape', [['shape', b.ints(cs4, `shape_${cs4.join('_')}`)], ['x', cin]], cs4, `${pre}_${base}cache4`);
              t = b.op('concat', [['axis', b.int(3, 'ax3')], ['interleave', b.bool(false)], ['values', [c4, t]]], [1, KVH, hd, T], `${pre}_${base}_all`);
            }
            if (grp > 1) t = b.op('concat', [['axis', b.int(1, 'ax1')], ['interleave', b.bool(true)], ['values', new Array<string>(grp).fill(t)]], [1, H, hd, T], `${pre}_${base}_rep`);
            return t;
          };
          const k4 = heads(kk, 'k');
          const v4 = heads(vv, 'v');
          const ss = [1, H, S, T];
          const sc = b.op('matmul', [['transpose_x', b.bool(false)], ['transpose_y', b.bool(false)], ['x', qt], ['y', k4]], ss, `${pre}_scores`);
          const scs = b.op('mul', [['x', sc], ['y', b.fp16(a.scale, `${pre}_scale`)]], ss, `${pre}_scaled`);
          let mk = scs;
          if (chunk !== undefined) {
            // cache columns < offset and the chunk's causal triangle: 0; the rest MASK_VALUE (host-built input)
            const cm = addInput({ name: 'chunk_mask', shape: [1, 1, S, T], role: 'mask' });
            mk = b.op('add', [['x', mk], ['y', cm]], ss, `${pre}_masked`);
          } else if (a.causal) {
            const ms = [1, 1, S, S];
            const mask = b.blob(derivedFile(`weights/causal_mask_s${S}.bin`, ms, () => {
              const m = new Float32Array(S * S);
              for (let i = 0; i < S; i++) for (let j = i + 1; j < S; j++) m[i * S + j] = MASK_VALUE;
              return m;
            }, `causal mask ${S}x${S}`), ms, 'causal_mask');
            mk = b.op('add', [['x', mk], ['y', mask]], ss, `${pre}_masked`);
          }
          if (masked) {
            // key-padding mask: program input [1, 1, 1, S] (0 keep, MASK_VALUE drop), broadcast over heads and queries
            usesKeyMask = true;
            mk = b.op('add', [['x', mk], ['y', 'key_mask']], ss, `${pre}_keymasked`);
          }
          const p = b.op('softmax', [['axis', b.int(-1, 'ax_last')], ['x', mk]], ss, `${pre}_probs`);
          const o = b.op('matmul', [['transpose_x', b.bool(false)], ['transpose_y', b.bool(true)], ['x', v4], ['y', p]], qs, `${pre}_ctx4`);
          res = { name: b.op('reshape', [['shape', b.ints(out4, `shape_${out4.join('_')}`)], ['x', o]], out4, `${pre}_ctx`), shape: out4 };
          break;
        }
        case 'silu': {
          const x = get(inp[0]!);
          const s = b.op('sigmoid', [['x', x.name]], out4, `${pre}_sig${id}`);
          res = { name: b.op('mul', [['x', x.name], ['y', s]], out4, `${pre}_silu${id}`), shape: out4 };
          break;
        }
        case 'gelu_tanh':
        case 'gelu_erf': {
          if (n.op === 'gelu_erf' && (opts.geluErf ?? 'rational') === 'rational') {
            // x sigmoid(x (a + B u) / (1 + C u)), u = (x / 256)^2, B = 65536 b, C = 65536 c (GELU_ERF_RATIONAL)
            const R = GELU_ERF_RATIONAL;
            const s2 = 1 / (R.preScale * R.preScale);
            const x = get(inp[0]!);
            const xs = b.op('mul', [['x', x.name], ['y', b.fp16(R.preScale, 'gelu_prescale')]], out4, `${pre}_g${id}_xs`);
            const u = b.op('mul', [['x', xs], ['y', xs]], out4, `${pre}_g${id}_u`);
            const bu = b.op('mul', [['x', u], ['y', b.fp16(R.b * s2, 'gelu_b')]], out4, `${pre}_g${id}_bu`);
            const num = b.op('add', [['x', bu], ['y', b.fp16(R.a, 'gelu_a')]], out4, `${pre}_g${id}_num`);
            const cu = b.op('mul', [['x', u], ['y', b.fp16(R.c * s2, 'gelu_c2')]], out4, `${pre}_g${id}_cu`);
            const den = b.op('add', [['x', cu], ['y', b.fp16(1, 'one')]], out4, `${pre}_g${id}_den`);
            const q = b.op('real_div', [['x', num], ['y', den]], out4, `${pre}_g${id}_q`);
            const h = b.op('mul', [['x', x.name], ['y', q]], out4, `${pre}_g${id}_h`);
            const sg = b.op('sigmoid', [['x', h]], out4, `${pre}_g${id}_phi`);
            res = { name: b.op('mul', [['x', x.name], ['y', sg]], out4, `${pre}_gelu${id}`), shape: out4 };
            break;
          }
          // gelu_tanh, or gelu_erf with the tanh approximation on request: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
          const x = get(inp[0]!);
          const x2 = b.op('mul', [['x', x.name], ['y', x.name]], out4, `${pre}_g${id}_x2`);
          const x3 = b.op('mul', [['x', x2], ['y', x.name]], out4, `${pre}_g${id}_x3`);
          const c3 = b.op('mul', [['x', x3], ['y', b.fp16(0.044715, 'gelu_c')]], out4, `${pre}_g${id}_c3`);
          const inner = b.op('add', [['x', x.name], ['y', c3]], out4, `${pre}_g${id}_in`);
          const sc = b.op('mul', [['x', inner], ['y', b.fp16(Math.sqrt(2 / Math.PI), 'gelu_k')]], out4, `${pre}_g${id}_k`);
          const t = b.op('tanh', [['x', sc]], out4, `${pre}_g${id}_t`);
          const t1 = b.op('add', [['x', t], ['y', b.fp16(1, 'one')]], out4, `${pre}_g${id}_t1`);
          const hx = b.op('mul', [['x', x.name], ['y', b.fp16(0.5, 'half')]], out4, `${pre}_g${id}_hx`);
          res = { name: b.op('mul', [['x', hx], ['y', t1]], out4, `${pre}_gelu${id}`), shape: out4 };
          break;
        }
        case 'slice_cols': {
          const a = n.attrs as OpAttrs['slice_cols'];
          const x = get(inp[0]!);
          res = { name: b.op('slice_by_size', [['begin', b.ints([0, a.start, 0, 0], `begin_0_${a.start}_0_0`)], ['size', b.ints(out4, `size_${out4.join('_')}`)], ['x', x.name]], out4, `${pre}_cols${id}`), shape: out4 };
          break;
        }
        default:
          throw new UnsupportedError(`${k.name}: op "${n.op}" (node ${id}) has no ANE lowering`);
      }
      val.set(id, res);
    }
    if (k.kind === 'attention' && k.kv !== undefined) {
      outputs.push({ v: get(k.kv!.k), desc: { role: 'k', layer: k.layer }, want: `k_l${k.layer}` });
      outputs.push({ v: get(k.kv!.v), desc: { role: 'v', layer: k.layer }, want: `v_l${k.layer}` });
    }
  }
  const last = kernels[kernels.length - 1]!;
  if (last.kind === 'classifier') {
    if (opts.headOnCpu) {
      const head = g.node(last.output);
      outputs.push({ v: val.get(head.inputs[0]!)!, desc: { role: 'hidden' }, want: 'hidden' });
    } else outputs.push({ v: val.get(last.output)!, desc: { role: 'logits' }, want: 'logits' });
  } else if (last.kind === 'output') outputs.push({ v: val.get(last.output)!, desc: { role: 'hidden' }, want: 'hidden' });
  else outputs.push({ v: val.get(last.output)!, desc: { role: 'residual' }, want: 'x_out' });

  // Give outputs their interface names (a value may be output once).
  const seen = new Set<string>();
  for (const o of outputs) {
    if (seen.has(o.v.name)) throw new Error(`lowering: ${o.v.name} is returned twice`);
    seen.add(o.v.name);
    b.rename(o.v.name, o.want);
  }
  const kinds = new Set(kernels.map((k) => k.kind));
  const kind = kinds.size === 1 ? [...kinds][0]! : 'layers';
  return {
    name,
    bucket: S,
    kind: kind as LoweredProgram['kind'],
    kernels: kernels.map((k) => k.name),
    layers: [...new Set(kernels.filter((k) => k.kind !== 'classifier' && k.kind !== 'output').map((k) => k.layer))],
    program: {
      version: '1.3',
      attrs: [{ key: 'buildInfo', value: { kind: 'dict', keyType: 'string', valueType: 'string', entries: DEFAULT_BUILD_INFO.map(([a, c]) => [a, c] as [string, string]) } }],
      functions: [{ name: 'main', opset: 'ios18', inputs: [{ type: { dtype: 'fp16', shape: [1, D, 1, S] }, name: 'x' }, ...(usesKeyMask ? [{ type: { dtype: 'fp16' as const, shape: [1, 1, 1, S] }, name: 'key_mask' }] : []), ...extraInputs.map((e) => ({ type: { dtype: 'fp16' as const, shape: e.shape }, name: e.name }))], body: b.body, outputs: outputs.map((o) => o.want), line: 0, col: 0 }],
    },
    inputs: [{ name: 'x', shape: [1, D, 1, S], role: 'residual' }, ...(usesKeyMask ? [{ name: 'key_mask', shape: [1, 1, 1, S], role: 'mask' as const }] : []), ...extraInputs],
    ...(chunk !== undefined ? { chunk: { cache: chunk.cache, rope: ropeTable } } : {}),
    outputs: outputs.map((o) => ({ name: o.want, shape: o.v.shape, ...o.desc })),
    weightFiles: [...b.files],
  };
}
