import { test } from 'node:test';
import assert from 'node:assert/strict';
import { referenceBackend } from '../src/backends/reference/index.js';
import { llamaInvFreq, llamaParams, validateLlamaConfig, type LlamaConfig } from '../src/models/llama.js';
import { InferenceSession } from '../src/runtime/session.js';
import { ContextLengthError } from '../src/errors.js';
import { maxAbsDiff, randomWeights } from './util/random-weights.js';

function cfg(over: Partial<LlamaConfig>): LlamaConfig {
  const c: LlamaConfig = {
    model_type: 'llama', vocab_size: 37, hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 6, rms_norm_eps: 1e-5, rope_theta: 10000,
    rope_scaling: null, max_position_embeddings: 32, tie_word_embeddings: true, rope_style: 'interleaved', ...over,
  };
  validateLlamaConfig(c);
  return c;
}

const shapes: [string, Partial<LlamaConfig>][] = [
  ['GQA 4/2, tied, interleaved', {}],
  ['MHA 3/3, untied, neox', { num_attention_heads: 3, num_key_value_heads: 3, head_dim: 8, tie_word_embeddings: false, rope_style: 'neox' }],
  ['MQA 4/1, head_dim != hidden/heads, 3 layers', { num_key_value_heads: 1, head_dim: 10, num_hidden_layers: 3 }],
  ['llama3 rope scaling', { rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8 } }],
];

for (const [label, over] of shapes) {
  test(`llama ${label}: KV-cache decode equals full recompute`, () => {
    const c = cfg(over);
    const w = randomWeights(llamaParams(c), 7);
    const store = { get: (n: string) => w.get(n) };
    const ids = [1, 5, 9, 30, 2, 17, 4, 36, 11, 0];

    const full = new InferenceSession(c, store, [referenceBackend]);
    const all = full.forward(ids, 'all');
    assert.equal(all.length, ids.length * c.vocab_size);
    assert.ok(all.every(Number.isFinite));

    // Prefill 4 tokens, then decode one at a time: each step's logits equal the full pass's row.
    const inc = new InferenceSession(c, store, [referenceBackend]);
    const rows: number[] = [];
    const first = inc.forward(ids.slice(0, 4), 'all');
    rows.push(...first);
    for (let t = 4; t < ids.length; t++) rows.push(...inc.forward([ids[t]!]));
    assert.equal(inc.pos, ids.length);
    const d = maxAbsDiff(all, rows);
    assert.ok(d < 1e-5, `max |cache - recompute| = ${d}`);

    // Position matters: the same token at another position gives other logits (RoPE is applied).
    const a = new InferenceSession(c, store, [referenceBackend]);
    const b = new InferenceSession(c, store, [referenceBackend]);
    a.forward([3, 3]);
    const la = a.forward([4]);
    b.forward([3, 3, 3]);
    const lb = b.forward([4]);
    assert.ok(maxAbsDiff(la, lb) > 1e-6, 'logits must depend on position');
  });
}

test('llama: context overflow is a ContextLengthError naming both numbers', () => {
  const c = cfg({});
  const w = randomWeights(llamaParams(c), 3);
  const s = new InferenceSession(c, { get: (n: string) => w.get(n) }, [referenceBackend], 8);
  s.forward([1, 2, 3, 4, 5, 6]);
  assert.throws(() => s.forward([1, 2, 3]), (e: unknown) => e instanceof ContextLengthError && /9 positions.*context is 8/.test(e.message));
});

test('llama: a weight of the wrong shape is reported by name', () => {
  const c = cfg({});
  const w = randomWeights(llamaParams(c), 3);
  const bad = randomWeights(new Map([['model.norm.weight', [c.hidden_size + 1]]]), 1).get('model.norm.weight')!;
  w.set('model.norm.weight', bad);
  const s = new InferenceSession(c, { get: (n: string) => w.get(n) }, [referenceBackend]);
  assert.throws(() => s.forward([1]), /model\.norm\.weight.*expected shape \[24\].*found \[25\]/);
});

test('Llama 3 rope scaling: short wavelengths kept, long ones divided by factor, the band between interpolated', () => {
  const c = cfg({
    head_dim: 128, num_attention_heads: 2, num_key_value_heads: 1, hidden_size: 256, rope_theta: 500000,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  });
  const plain = llamaInvFreq({ ...c, rope_scaling: null });
  const scaled = llamaInvFreq(c);
  let kept = 0, divided = 0, between = 0;
  plain.forEach((f, i) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < 8192 / 4) {
      assert.equal(scaled[i], f);
      kept++;
    } else if (wavelen > 8192 / 1) {
      assert.ok(Math.abs(scaled[i]! - f / 8) < 1e-18);
      divided++;
    } else {
      assert.ok(scaled[i]! < f && scaled[i]! > f / 8, `band entry ${i} lies between f/8 and f`);
      between++;
    }
  });
  assert.ok(kept > 0 && divided > 0 && between > 0, `${kept} kept, ${between} interpolated, ${divided} divided`);
});
