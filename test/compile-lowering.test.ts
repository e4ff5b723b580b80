// ANE lowering on random-weight models (no model files needed): every compiled program, parsed back from
// its text and run on the MIL interpreter with fp16 storage, computes what the fp32 reference computes,
// for each norm lowering, with layer fusion, with the CPU classifier, and with residual rescaling.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runGraph } from '../src/backends/backend.js';
import { referenceBackend } from '../src/backends/reference/index.js';
import { compileBundle, loadBundle, type CompileOptions } from '../src/compile/bundle.js';
import { SPEC_OPS } from '../src/compile/mil/ast.js';
import { emitProgram } from '../src/compile/mil/emit.js';
import { parseMil } from '../src/compile/mil/parse.js';
import type { HostTensor } from '../src/formats/tensor.js';
import { buildGraph, modelParams, type ModelConfig } from '../src/models/index.js';
import { AneSimulator } from '../src/runtime/ane-sim.js';
import { prng } from './helpers/models.js';

function randomWeights(cfg: ModelConfig, seed: number): Map<string, HostTensor> {
  const r = prng(seed);
  const m = new Map<string, HostTensor>();
  for (const [name, shape] of modelParams(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    const isNorm = shape.length === 1 && /norm|ln_/.test(name) && name.endsWith('.weight');
    const scale = shape.length === 2 ? (/embed|wte|wpe/.test(name) ? 1 : 1 / Math.sqrt(shape[1]!)) : 0.1;
    for (let i = 0; i < n; i++) v[i] = (isNorm ? 1 : 0) + (r() * 2 - 1) * scale * (isNorm ? 0.2 : 1.7);
    m.set(name, { name, dtype: 'f32', shape, data: new Uint8Array(v.buffer) });
  }
  return m;
}

function referenceLogits(cfg: ModelConfig, w: Map<string, HostTensor>, ids: number[]): Float32Array {
  const g = buildGraph(cfg, { seqLen: ids.length, cacheLen: null, logits: 'all' });
  const inputs: Record<string, Int32Array> = { ids: Int32Array.from(ids), positions: Int32Array.from(ids.keys()) };
  return runGraph(g, [referenceBackend], {
    weight: (n) => w.get(n)!,
    state: () => {
      throw new Error('no state');
    },
    input: (n) => inputs[n]!,
  }).get('logits')!.data as Float32Array;
}

function compare(a: Float32Array, b: Float32Array): { cos: number; maxAbs: number } {
  let dot = 0;
  let na = 0;
  let nb = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
    maxAbs = Math.max(maxAbs, Math.abs(a[i]! - b[i]!));
  }
  return { cos: dot / Math.sqrt(na * nb), maxAbs };
}

const base = { rope_scaling: null, max_position_embeddings: 256, rms_norm_eps: 1e-5 };
const MODELS: [string, ModelConfig][] = [
  ['llama GQA 4/2, interleaved RoPE, tied head', {
    model_type: 'llama', vocab_size: 96, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 2, head_dim: 16, rope_theta: 10000, tie_word_embeddings: true, rope_style: 'interleaved', ...base,
  }],
  ['llama 3 RoPE scaling, NeoX, head_dim 32, MQA', {
    model_type: 'llama', vocab_size: 80, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 2,
    num_key_value_heads: 1, head_dim: 32, rope_theta: 500000, tie_word_embeddings: false, rope_style: 'neox', ...base,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
  }],
  ['qwen3 QK-norm + q/k/v biases, GQA 4/1', {
    model_type: 'qwen3', vocab_size: 72, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 1, head_dim: 16, rope_theta: 1e6, tie_word_embeddings: false, rope_style: 'neox', attention_bias: true, is_causal: true, ...base,
  }],
  ['gpt2 (biases, LayerNorm, tanh GELU, fused c_attn)', {
    model_type: 'gpt2', vocab_size: 90, n_embd: 64, n_layer: 2, n_head: 4, n_inner: 128, n_positions: 128, layer_norm_epsilon: 1e-5,
    activation_function: 'gelu_new', tie_word_embeddings: true,
  }],
];

const VARIANTS: [string, Partial<CompileOptions>][] = [
  ['split programs, pow norm', {}],
  ['rsqrt norm', { norm: 'rsqrt' }],
  ['cat([x,-x]) + layer_norm', { norm: 'layernorm' }],
  ['2 layers per program + CPU classifier', { layersPerProgram: 2, classifierLimit: 1 }],
  ['1 layer per program, residual scale 1/8', { layersPerProgram: 1, residualScale: 0.125 }],
];

for (const [label, cfg] of MODELS) {
  test(`lowering: ${label} -- interpreted bundle matches the fp32 reference`, () => {
    const w = randomWeights(cfg, 7);
    const ids = [3, 17, 5, 60, 2, 9, 44, 1, 30, 12, 8];
    const ref = referenceLogits(cfg, w, ids);
    for (const [vlabel, v] of VARIANTS) {
      const bundle = compileBundle({ config: cfg, architecture: cfg.model_type, parameter: (n) => w.get(n) }, { buckets: [32], calibrationIds: ids, ...v });
      for (const [file, text] of bundle.texts) {
        const p = parseMil(text, file);
        assert.equal(emitProgram(p), text, `${file}: emit(parse(text)) == text`);
        for (const s of p.functions[0]!.body) assert.ok(SPEC_OPS.includes(s.op), `${file}: op ${s.op} is listed by the spec`);
      }
      const sim = new AneSimulator(loadBundle(bundle), { config: cfg, parameters: () => w });
      const r = sim.prefill(ids, 'all');
      const { cos, maxAbs } = compare(ref, r.logits);
      assert.ok(cos >= 0.9995, `${label} / ${vlabel}: cosine ${cos}`);
      assert.ok(maxAbs < 0.1, `${label} / ${vlabel}: max |diff| ${maxAbs}`);
      // last-row prefill (generation) equals the last row of the full one
      const last = sim.prefill(ids, 'last').logits;
      const V = last.length;
      assert.deepEqual([...last], [...r.logits.subarray((ids.length - 1) * V)]);
    }
  });
}

test('lowering: padding to a larger bucket does not change real positions (causal mask)', () => {
  const cfg = MODELS[0]![1];
  const w = randomWeights(cfg, 3);
  const ids = [5, 6, 7, 8, 9];
  const bundle = compileBundle({ config: cfg, architecture: 'llama', parameter: (n) => w.get(n) }, { buckets: [32, 64] });
  const sim = new AneSimulator(loadBundle(bundle), { config: cfg, parameters: () => w });
  const a = sim.prefill(ids, 'all');
  assert.equal(a.bucket, 32);
  const long = Array.from({ length: 40 }, (_, i) => (i * 7) % 96);
  const b = sim.prefill(long, 'all');
  assert.equal(b.bucket, 64);
  const ref = referenceLogits(cfg, w, long);
  assert.ok(compare(ref, b.logits).cos > 0.9995);
});

test('lowering: the attention program emits the spec kernel structure', () => {
  const cfg = MODELS[0]![1];
  const w = randomWeights(cfg, 1);
  const bundle = compileBundle({ config: cfg, architecture: 'llama', parameter: (n) => w.get(n) }, { buckets: [32] });
  const text = bundle.texts.get('l0_attn_s32.mil')!;
  const ops = parseMil(text).functions[0]!.body.map((s) => s.op);
  const count = (o: string) => ops.filter((x) => x === o).length;
  assert.equal(count('conv'), 4, 'q, k, v, o as 1x1 convs');
  assert.equal(count('softmax'), 1);
  assert.equal(count('matmul'), 2);
  assert.equal(count('pow'), 1, 'RMSNorm via pow(-0.5)');
  assert.ok(text.includes('tensor<fp16, [64, 64, 1, 1]>'), 'conv weights are [OC, IC, 1, 1]');
  assert.ok(text.includes('tensor<fp16, [1, 1, 32, 32]> causal_mask'), 'explicit [1,1,S,S] causal mask constant');
  assert.ok(/interleave = true_, values = \(l0a_k4, l0a_k4\)/.test(text), 'GQA repeats K heads');
  assert.ok(text.includes('-> (k_l0, v_l0, x_out);'), 'attention programs return K/V for the CPU cache');
  assert.ok(text.includes('BLOBFILE(path = string("@model_path/weights/model_layers_0_self_attn_q_proj_weight.bin"), offset = uint64(64))'));
  assert.ok(!/\b(rsqrt|gelu|reduce_mean)\(/.test(text));
});

test('fp16 guard: a large residual stream is detected, rescaled (pplx-embed style) and then matches; unscaled it overflows', () => {
  const cfg = MODELS[1]![1]; // untied head: scaling the embeddings leaves the logits in range
  const w = randomWeights(cfg, 5);
  // blow the embeddings up: |x| ~ 3000, so sum(x^2) over 64 channels ~ 1e8 overflows fp16's 65504 in the norm
  const e = new Float32Array(w.get('model.embed_tokens.weight')!.data.buffer);
  for (let i = 0; i < e.length; i++) e[i] = e[i]! * 3000;
  const ids = [3, 17, 5, 60, 2, 9];
  const ref = referenceLogits(cfg, w, ids);
  const src = { config: cfg, architecture: 'llama', parameter: (n: string) => w.get(n) };
  const scaled = compileBundle(src, { buckets: [32], calibrationIds: ids });
  assert.ok(scaled.manifest.residualScale < 1 && scaled.manifest.residualScale >= 2 ** -12, `scale ${scaled.manifest.residualScale}`);
  assert.match(scaled.manifest.fp16.notes[0]!, /residual stream rescaled by/);
  const good = new AneSimulator(loadBundle(scaled), { config: cfg, parameters: () => w }).prefill(ids, 'all');
  assert.ok(compare(ref, good.logits).cos > 0.999, `rescaled cosine ${compare(ref, good.logits).cos}`);
  const raw = loadBundle(compileBundle(src, { buckets: [32], calibrationIds: ids, residualScale: 1 }));
  const bad = new AneSimulator(raw, { config: cfg, parameters: () => w }).prefill(ids, 'all');
  assert.ok(!(compare(ref, bad.logits).cos > 0.99), 'without rescaling fp16 breaks (the norms\' sums of squares overflow, so x is normalised to 0)');
  const overflow = [...raw.programs.values()].flatMap((p) => [...p.overflow.values()]);
  assert.ok(overflow.length > 0 && overflow.some((o) => o.op === 'mul' || o.op === 'reduce_sum'), JSON.stringify(overflow.slice(0, 3)));
});
