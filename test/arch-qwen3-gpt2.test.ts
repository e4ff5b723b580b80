// Tiny random Qwen3 and GPT-2 configs: output shapes, KV-cache decode equals full recompute,
// and the bidirectional Qwen3 variant really attends to later tokens.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { referenceBackend } from '../src/backends/reference/index.js';
import { modelParams, type ModelConfig } from '../src/models/index.js';
import type { Qwen3Config } from '../src/models/qwen3.js';
import type { GPT2Config } from '../src/models/gpt2.js';
import { InferenceSession } from '../src/runtime/session.js';
import { maxAbsDiff, randomWeights } from './util/random-weights.js';

const qwen3 = (o: Partial<Qwen3Config> = {}): Qwen3Config => ({
  model_type: 'qwen3', vocab_size: 41, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, head_dim: 12, rms_norm_eps: 1e-6, rope_theta: 1e6,
  rope_scaling: null, max_position_embeddings: 64, tie_word_embeddings: false, rope_style: 'neox',
  attention_bias: false, is_causal: true, ...o,
});
const gpt2 = (o: Partial<GPT2Config> = {}): GPT2Config => ({
  model_type: 'gpt2', vocab_size: 50, n_embd: 12, n_layer: 2, n_head: 3, n_inner: 20, n_positions: 32,
  layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', tie_word_embeddings: true, ...o,
});

const configs: [string, ModelConfig][] = [
  ['qwen3 GQA 4/2, head_dim 12 != 16/4', qwen3()],
  ['qwen3 tied, q/k/v biases, MQA', qwen3({ tie_word_embeddings: true, attention_bias: true, num_key_value_heads: 1 })],
  ['gpt2 tanh-GELU', gpt2()],
  ['gpt2 erf-GELU, untied', gpt2({ activation_function: 'gelu', tie_word_embeddings: false })],
];

for (const [label, c] of configs) {
  test(`${label}: shapes and KV-cache decode equals full recompute`, () => {
    const w = randomWeights(modelParams(c), 5);
    const store = { get: (n: string) => w.get(n) };
    const ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
    const all = new InferenceSession(c, store, [referenceBackend], 32).forward(ids, 'all');
    assert.equal(all.length, ids.length * c.vocab_size);
    const s = new InferenceSession(c, store, [referenceBackend], 32);
    const rows = [...s.forward(ids.slice(0, 3), 'all')];
    for (const id of ids.slice(3)) rows.push(...s.forward([id]));
    const d = maxAbsDiff(all, rows);
    assert.ok(d < 1e-5, `max |cache - recompute| = ${d}`);
  });
}

test('qwen3 with is_causal false: an early position sees later tokens', () => {
  const c = qwen3({ is_causal: false });
  const w = randomWeights(modelParams(c), 6);
  const store = { get: (n: string) => w.get(n) };
  const V = c.vocab_size;
  const a = new InferenceSession(c, store, [referenceBackend], 32).forward([1, 2, 3], 'all').slice(0, V);
  const b = new InferenceSession(c, store, [referenceBackend], 32).forward([1, 2, 7], 'all').slice(0, V);
  assert.ok(maxAbsDiff(a, b) > 1e-6, 'position 0 depends on token 2 when bidirectional');
  const causal = qwen3();
  const ca = new InferenceSession(causal, store, [referenceBackend], 32).forward([1, 2, 3], 'all').slice(0, V);
  const cb = new InferenceSession(causal, store, [referenceBackend], 32).forward([1, 2, 7], 'all').slice(0, V);
  assert.equal(maxAbsDiff(ca, cb), 0, 'position 0 ignores later tokens when causal');
});
