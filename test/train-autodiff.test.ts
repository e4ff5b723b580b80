// Every op's backward rule against central finite differences, in float64, on random shapes
// (GQA, grouped RMSNorm = QK-norm, both RoPE layouts, broadcasts, ignored targets). The objective is
// J = sum(R * out) for a fixed random R, so d J / d out = R seeds the same backwardPass the trainer
// uses. Then whole Llama / Qwen3 models (tied and untied heads) through TrainGraph, and the
// float64 generic forward against the reference backend.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Graph, type Sym } from '../src/graph/graph.js';
import type { OpAttrs, OpName } from '../src/graph/ops.js';
import { backwardPass, forwardGeneric, TrainGraph } from '../src/train/autodiff.js';
import type { Arr } from '../src/train/gemm.js';
import { runGraph } from '../src/backends/backend.js';
import { referenceBackend } from '../src/backends/reference/index.js';
import { initParams } from '../src/train/params.js';
import { Rng } from '../src/train/rng.js';
import type { LlamaConfig } from '../src/models/llama.js';
import type { Qwen3Config } from '../src/models/qwen3.js';

const NONE = {} as Record<string, never>;

interface Case {
  name: string;
  build(g: Graph, P: (name: string, shape: number[]) => Sym, I: (name: string, shape: number[]) => Sym): Sym;
  ints?: Record<string, (rng: Rng, n: number) => Int32Array>;
}

const pos = (n: number, off = 0) => Int32Array.from({ length: n }, (_, i) => i + off);

function checkCase(c: Case, seed: number): { maxRel: number; checked: number } {
  const rng = new Rng(seed);
  const g = new Graph();
  const shapes = new Map<string, number[]>();
  const intShapes = new Map<string, number[]>();
  const P = (name: string, shape: number[]) => {
    shapes.set(name, shape);
    return g.add('param', [], { name, shape }, name);
  };
  const I = (name: string, shape: number[]) => {
    intShapes.set(name, shape);
    return g.add('input', [], { name, shape, type: 'i32' }, name);
  };
  const out = c.build(g, P, I);
  const params = new Map<string, Arr>();
  for (const [n, s] of shapes) params.set(n, Float64Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => rng.normal()));
  const inputs: Record<string, Int32Array> = {};
  for (const [n, s] of intShapes) inputs[n] = c.ints![n]!(rng, s[0]!);
  const R = Float64Array.from({ length: out.shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
  const J = (): number => {
    const v = forwardGeneric(g, params, inputs)[out.id] as Arr;
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i]! * R[i]!;
    return s;
  };
  const vals = forwardGeneric(g, params, inputs);
  const grads = new Map<string, Arr>();
  for (const [n, p] of params) grads.set(n, new Float64Array(p.length));
  backwardPass(g, vals, new Map([[out.id, R]]), grads);
  const h = 1e-5;
  let maxRel = 0;
  let checked = 0;
  for (const [n, p] of params) {
    const gr = grads.get(n)!;
    let scale = 0;
    for (let i = 0; i < gr.length; i++) scale = Math.max(scale, Math.abs(gr[i]!));
    for (let i = 0; i < p.length; i++) {
      const x = p[i]!;
      p[i] = x + h;
      const jp = J();
      p[i] = x - h;
      const jm = J();
      p[i] = x;
      const fd = (jp - jm) / (2 * h);
      const err = Math.abs(fd - gr[i]!) / Math.max(1, scale);
      maxRel = Math.max(maxRel, err);
      checked++;
      assert.ok(err < 1e-6, `${c.name}: d/d ${n}[${i}] backward ${gr[i]} vs finite difference ${fd}`);
    }
  }
  return { maxRel, checked };
}

const rope = (style: 'interleaved' | 'neox', extra: Partial<OpAttrs['rope']> = {}): Case => ({
  name: `rope ${style} ${JSON.stringify(extra)}`,
  build: (g, P, I) => g.add('rope', [P('x', [5, 24]), I('p', [5])], { headDim: 8, theta: 10000, style, ...extra }),
  ints: { p: (_r, n) => pos(n, 3) },
});

const attention = (T: number, S: number, H: number, KVH: number, hd: number, causal: boolean): Case => ({
  name: `attention T${T} S${S} H${H} KVH${KVH} hd${hd} causal=${causal}`,
  build: (g, P, I) => g.add('attention', [P('q', [T, H * hd]), P('k', [S, KVH * hd]), P('v', [S, KVH * hd]), I('p', [T])],
    { nHeads: H, nKvHeads: KVH, headDim: hd, causal, scale: 1 / Math.sqrt(hd) }),
  ints: { p: (_r, n) => pos(n, S - T) },
});

const unary = (op: OpName): Case => ({ name: op, build: (g, P) => g.add(op as 'silu', [P('x', [3, 7])], NONE) });

const CASES: Case[] = [
  { name: 'embedding (repeated ids)', build: (g, P, I) => g.add('embedding', [P('table', [6, 5]), I('ids', [7])], NONE),
    ints: { ids: () => Int32Array.from([1, 4, 1, 0, 5, 4, 1]) } },
  { name: 'matmul', build: (g, P) => g.add('matmul', [P('x', [4, 6]), P('w', [5, 6])], NONE) },
  { name: 'matmul (shared input x, tied)', build: (g, P) => g.add('matmul', [P('x', [4, 6]), P('x', [4, 6])], NONE) },
  { name: 'add', build: (g, P) => g.add('add', [P('a', [3, 5]), P('b', [3, 5])], NONE) },
  { name: 'add row broadcast', build: (g, P) => g.add('add', [P('a', [3, 5]), P('b', [5])], NONE) },
  { name: 'mul', build: (g, P) => g.add('mul', [P('a', [3, 5]), P('b', [3, 5])], NONE) },
  { name: 'mul row broadcast', build: (g, P) => g.add('mul', [P('a', [3, 5]), P('b', [5])], NONE) },
  { name: 'mul self (a*a)', build: (g, P) => { const a = P('a', [2, 3]); return g.add('mul', [a, a], NONE); } },
  { name: 'rmsnorm', build: (g, P) => g.add('rmsnorm', [P('x', [3, 8]), P('w', [8])], { eps: 1e-5 }) },
  { name: 'rmsnorm grouped (QK-norm)', build: (g, P) => g.add('rmsnorm', [P('x', [3, 12]), P('w', [4])], { eps: 1e-6 }) },
  { name: 'layernorm', build: (g, P) => g.add('layernorm', [P('x', [3, 6]), P('w', [6]), P('b', [6])], { eps: 1e-5 }) },
  rope('interleaved'), rope('neox'), rope('neox', { rotaryDim: 4 }), rope('interleaved', { invFreq: [1, 0.3, 0.05, 0.001] }),
  attention(5, 5, 4, 2, 3, true), attention(4, 4, 6, 2, 4, true), attention(3, 6, 2, 1, 4, true),
  attention(4, 4, 4, 4, 2, false), attention(4, 5, 4, 2, 3, false),
  unary('silu'), unary('gelu_tanh'), unary('gelu_erf'),
  { name: 'slice_rows', build: (g, P) => g.add('slice_rows', [P('x', [5, 3])], { start: 1, count: 3 }) },
  { name: 'slice_cols', build: (g, P) => g.add('slice_cols', [P('x', [3, 7])], { start: 2, count: 4 }) },
  { name: 'cross_entropy (one ignored row)', build: (g, P, I) => g.add('cross_entropy', [P('logits', [4, 6]), I('t', [4])], NONE),
    ints: { t: () => Int32Array.from([2, -1, 5, 0]) } },
  { name: 'swiglu block', build: (g, P) => {
    const h = P('h', [3, 4]);
    const a = g.add('silu', [g.add('matmul', [h, P('gate', [5, 4])], NONE)], NONE);
    return g.add('matmul', [g.add('mul', [a, g.add('matmul', [h, P('up', [5, 4])], NONE)], NONE), P('down', [4, 5])], NONE);
  } },
];

test('every op backward agrees with central finite differences (float64, random shapes, GQA)', () => {
  let worst = 0;
  let n = 0;
  for (const [i, c] of CASES.entries()) {
    const r = checkCase(c, 1000 + i);
    worst = Math.max(worst, r.maxRel);
    n += r.checked;
  }
  console.log(`# ${CASES.length} op cases, ${n} entries, worst |fd - backward| / max(1, max|grad|) = ${worst.toExponential(2)}`);
});

test('random-shape fuzz: attention with GQA and rmsnorm groups, several seeds', () => {
  const rng = new Rng(77);
  for (let k = 0; k < 6; k++) {
    const KVH = 1 + rng.int(3);
    const H = KVH * (1 + rng.int(3));
    const hd = 2 * (1 + rng.int(3));
    const S = 2 + rng.int(5);
    const T = 1 + rng.int(S);
    checkCase(attention(T, S, H, KVH, hd, rng.next() < 0.7), 500 + k);
    const G = 1 + rng.int(5);
    const D = G * (1 + rng.int(3));
    checkCase({ name: `rmsnorm ${D}/${G}`, build: (g, P) => g.add('rmsnorm', [P('x', [1 + rng.int(3), D]), P('w', [G])], { eps: 1e-5 }) }, 600 + k);
  }
});

function tinyLlama(tied: boolean): LlamaConfig {
  return {
    model_type: 'llama', vocab_size: 11, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 2, head_dim: 2, rms_norm_eps: 1e-5, rope_theta: 10000, rope_scaling: null, max_position_embeddings: 16,
    tie_word_embeddings: tied, rope_style: 'interleaved',
  };
}
function tinyQwen3(): Qwen3Config {
  return {
    model_type: 'qwen3', vocab_size: 9, hidden_size: 8, intermediate_size: 10, num_hidden_layers: 1, num_attention_heads: 4,
    num_key_value_heads: 2, head_dim: 4, rms_norm_eps: 1e-6, rope_theta: 1e6, rope_scaling: null, max_position_embeddings: 16,
    tie_word_embeddings: false, rope_style: 'neox', attention_bias: true, is_causal: true,
  };
}

test('whole models through TrainGraph (float64): Llama tied/untied, Qwen3 with QK-norm, biases and GQA', () => {
  for (const config of [tinyLlama(true), tinyLlama(false), tinyQwen3()]) {
    const T = 5;
    const params = initParams(config, 3, 'f64');
    // Make norms and biases non-trivial so their gradients are exercised.
    const rng = new Rng(9);
    for (const p of params.values()) for (let i = 0; i < p.length; i++) p[i] = p[i]! + 0.3 * rng.normal();
    const tg = new TrainGraph(config, T, { precision: 'f64' });
    const ids = Int32Array.from({ length: T }, () => rng.int(config.vocab_size));
    const targets = Int32Array.from({ length: T }, () => rng.int(config.vocab_size));
    const grads = new Map<string, Arr>();
    for (const [n, p] of params) grads.set(n, new Float64Array(p.length));
    tg.accumulateGradients(params, ids, targets, 1, grads);
    const h = 1e-5;
    let worst = 0;
    for (const [n, p] of params) {
      const gr = grads.get(n)!;
      for (let k = 0; k < 6; k++) {
        const i = rng.int(p.length);
        const x = p[i]!;
        p[i] = x + h;
        const lp = tg.loss(params, ids, targets);
        p[i] = x - h;
        const lm = tg.loss(params, ids, targets);
        p[i] = x;
        const fd = (lp - lm) / (2 * h);
        worst = Math.max(worst, Math.abs(fd - gr[i]!));
        assert.ok(Math.abs(fd - gr[i]!) < 1e-7, `${config.model_type} tied=${config.tie_word_embeddings} ${n}[${i}]: ${gr[i]} vs fd ${fd}`);
      }
    }
    console.log(`# ${config.model_type} tied=${config.tie_word_embeddings}: worst |fd - grad| ${worst.toExponential(2)}`);
  }
});

test('the float64 generic forward matches the reference backend op by op', () => {
  for (const [i, c] of CASES.entries()) {
    const rng = new Rng(2000 + i);
    const g = new Graph();
    const tensors = new Map<string, Float32Array>();
    const ints: Record<string, Int32Array> = {};
    const P = (name: string, shape: number[]) => {
      if (!tensors.has(name)) tensors.set(name, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()));
      return g.add('param', [], { name, shape }, name);
    };
    const I = (name: string, shape: number[]) => {
      ints[name] = c.ints![name]!(rng, shape[0]!);
      return g.add('input', [], { name, shape, type: 'i32' }, name);
    };
    const out = c.build(g, P, I);
    g.output('out', out);
    const ref = runGraph(g, [referenceBackend], {
      weight: (n) => { const f = tensors.get(n)!; return { name: n, dtype: 'f32', shape: [...g.nodes.find((x) => x.name === n)!.shape], data: new Uint8Array(f.buffer) }; },
      state: () => { throw new Error('no state'); },
      input: (n) => ints[n]!,
    }).get('out')!.data as Float32Array;
    const p64 = new Map<string, Arr>([...tensors].map(([k, v]) => [k, Float64Array.from(v)]));
    const mine = forwardGeneric(g, p64, ints)[out.id] as Arr;
    for (let j = 0; j < ref.length; j++) assert.ok(Math.abs(ref[j]! - mine[j]!) <= 1e-5 * Math.max(1, Math.abs(mine[j]!)), `${c.name}[${j}]: reference ${ref[j]} vs generic ${mine[j]}`);
  }
});
