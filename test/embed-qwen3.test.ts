// The bidirectional Qwen3 encoder (pplx-embed style) against reference/embed-qwen3-encoder-tiny.json: hidden
// states, mean pooling, int8/binary/ubinary, late chunking in one encoder pass, and padding invariance.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSafetensorsDir, writeSafetensors } from '../src/formats/safetensors.js';
import { loadEmbeddingModel } from '../src/runtime/embed.js';
import { modelFileOrSkip, tempDir } from './helpers/models.js';
import { assertQuantized, maxAbsDiff, readReference, sharedModel } from './util/embed-reference.js';

const MODEL = 'hf/qwen3-encoder-tiny-random';
const REF = 'embed-qwen3-encoder-tiny.json';


test('Qwen3 encoder is bidirectional, mean-pooled, and matches the reference', async (t) => {
  const dir = modelFileOrSkip(t, MODEL);
  const models = dir && path.dirname(path.dirname(dir));
  if (!dir || !models || !modelFileOrSkip(t, `reference/${REF}`)) return;
  const ref = readReference(models, REF);
  const m = await sharedModel(dir);
  assert.equal(m.info.bidirectional, true);
  assert.equal(m.defaults.pooling, 'mean');
  assert.equal(m.defaults.separatorId, 2);
  const texts = ref.cases.map((c) => c.text);
  const ids = texts.map((s) => m.tokenize(s).ids);
  ref.cases.forEach((c, i) => assert.deepEqual(ids[i], c.ids, `ids of ${JSON.stringify(c.text)}`));
  const enc = await m.encode(ids);
  const [mean, meanN, int8, binary, ubinary] = await Promise.all([
    m.embed(texts),
    m.embed(texts, { normalize: true }),
    m.embed(texts, { output: 'int8' }),
    m.embed(texts, { output: 'binary' }),
    m.embed(texts, { output: 'ubinary' }),
  ]);
  const worst = { hidden: 0, mean: 0, meanN: 0 };
  ref.cases.forEach((c, i) => {
    const D = m.dimension;
    const h = enc[i]!.hidden;
    let dh = maxAbsDiff(h.subarray(0, D), c.last_hidden_state_row0);
    c.last_hidden_state_first8_per_token.forEach((row, p) => (dh = Math.max(dh, maxAbsDiff(h.subarray(p * D, p * D + 8), row))));
    worst.hidden = Math.max(worst.hidden, dh);
    worst.mean = Math.max(worst.mean, maxAbsDiff(mean[i]!.embedding, c.mean_pooled));
    worst.meanN = Math.max(worst.meanN, maxAbsDiff(meanN[i]!.embedding, c.mean_pooled_normalized));
    assertQuantized(c.text, c, { int8: int8[i]!.embedding, binary: binary[i]!.embedding, ubinary: ubinary[i]!.embedding });
  });
  t.diagnostic(`max abs diff: ${JSON.stringify(worst)}; int8/binary/ubinary exact (fragile int8 dims ±1) on ${ref.cases.length} texts`);
  assert.ok(worst.hidden < 1e-4 && worst.mean < 1e-4 && worst.meanN < 1e-5, JSON.stringify(worst));
});

test('Qwen3 late chunking: one pass, per-chunk spans, separators excluded', async (t) => {
  const dir = modelFileOrSkip(t, MODEL);
  const models = dir && path.dirname(path.dirname(dir));
  if (!dir || !models || !modelFileOrSkip(t, `reference/${REF}`)) return;
  const lc = readReference(models, REF).late_chunking!;
  const m = await sharedModel(dir);
  assert.deepEqual(m.tokenize(lc.chunks.join('</s>')).ids, lc.ids, 'joined text with </s> parses the separator');
  const [f, i8, bin, ub] = await Promise.all([
    m.embedChunks(lc.chunks),
    m.embedChunks(lc.chunks, { output: 'int8' }),
    m.embedChunks(lc.chunks, { output: 'binary' }),
    m.embedChunks(lc.chunks, { output: 'ubinary' }),
  ]);
  let worst = 0;
  let worstIndependent = Infinity;
  lc.chunk_embeddings.forEach((ref, k) => {
    assert.equal(f[k]!.window, 0, 'all chunks in one window');
    assert.deepEqual(f[k]!.span, lc.spans[k]);
    worst = Math.max(worst, maxAbsDiff(f[k]!.embedding, ref.mean_pooled));
    worstIndependent = Math.min(worstIndependent, maxAbsDiff(f[k]!.embedding, ref.independent_mean_pooled));
    assertQuantized(`chunk ${k}`, ref, { int8: i8[k]!.embedding, binary: bin[k]!.embedding, ubinary: ub[k]!.embedding });
  });
  t.diagnostic(`late chunking max abs diff ${worst}; quantized exact; differs from independent embeddings by >= ${worstIndependent}`);
  assert.ok(worst < 1e-4);
  assert.ok(worstIndependent > 1e-2, 'late chunks see their context');
});

test('Qwen3 late chunking splits into windows when the chunks do not fit one', async (t) => {
  const dir = modelFileOrSkip(t, MODEL);
  if (!dir) return;
  const small = await loadEmbeddingModel(dir, { maxTokens: 40 });
  const chunks = ['Once upon a time there was a little dog named Max.', 'Max liked to run in the park with his friend Sam.', 'One day they found a big red ball under a tree.'];
  const r = await small.embedChunks(chunks);
  assert.deepEqual(r.map((c) => c.window), [0, 0, 1]);
  assert.deepEqual(r.map((c) => c.span), [[0, 16], [17, 36], [0, 21]]);
  // The lone third chunk equals its independent embedding (BOS + chunk, one window).
  const alone = (await small.embed(chunks[2]!))[0]!.embedding;
  assert.equal(maxAbsDiff(r[2]!.embedding, alone), 0);
});

test('Qwen3 embeddings do not depend on batch composition or bucket', async (t) => {
  const dir = modelFileOrSkip(t, MODEL);
  if (!dir) return;
  const m = await sharedModel(dir);
  const texts = ['a', 'Tom had a big red ball. He liked to throw it high in the sky and catch it. '.repeat(4), 'The cat sat on the mat.'];
  const alone = await Promise.all(texts.map(async (s) => (await m.embed(s))[0]!.embedding));
  const batched = await m.embed(texts, { batchSize: 8 });
  const oneBucket = await loadEmbeddingModel(dir, { buckets: [256], batchSize: 2, fixedBatch: true });
  const bucketed = await oneBucket.embed(texts);
  let dBatch = 0;
  let dBucket = 0;
  texts.forEach((_, i) => {
    dBatch = Math.max(dBatch, maxAbsDiff(alone[i]!, batched[i]!.embedding));
    dBucket = Math.max(dBucket, maxAbsDiff(alone[i]!, bucketed[i]!.embedding));
  });
  t.diagnostic(`padding invariance, max abs diff vs alone: batch ${dBatch}, bucket 256 x fixed batch 2: ${dBucket}`);
  assert.equal(dBatch, 0);
  assert.equal(dBucket, 0);
});

/** A copy of the model folder with tensor names renamed and config.json edited. */
function variant(dir: string, rename: (n: string) => string, config: (c: Record<string, unknown>) => void): string {
  const out = tempDir('ristretto-embed-');
  for (const f of fs.readdirSync(dir)) {
    if (f !== 'model.safetensors' && fs.statSync(path.join(dir, f)).isFile()) fs.copyFileSync(path.join(dir, f), path.join(out, f));
  }
  fs.cpSync(path.join(dir, '1_Pooling'), path.join(out, '1_Pooling'), { recursive: true });
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  config(c);
  fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(c));
  const src = openSafetensorsDir(dir);
  writeSafetensors(path.join(out, 'model.safetensors'), src.list().map((t) => ({ ...src.read(t.name), name: rename(t.name) })));
  src.close();
  return out;
}

test('Qwen3 encoder: bare Qwen3Model tensor names load; the same weights run causally give other embeddings', async (t) => {
  const dir = modelFileOrSkip(t, MODEL);
  if (!dir) return;
  const text = 'Once upon a time there was a little girl.';
  const base = (await (await sharedModel(dir)).embed(text))[0]!.embedding;
  const bare = await loadEmbeddingModel(variant(dir, (n) => n.replace(/^model\./, ''), () => {}));
  assert.equal(maxAbsDiff((await bare.embed(text))[0]!.embedding, base), 0);
  const causal = await loadEmbeddingModel(variant(dir, (n) => n, (c) => {
    c['is_causal'] = true;
    c['use_bidirectional_attention'] = false;
  }));
  assert.equal(causal.info.bidirectional, false);
  const d = maxAbsDiff((await causal.embed(text))[0]!.embedding, base);
  t.diagnostic(`causal vs bidirectional mean-pooled max abs diff ${d}`);
  assert.ok(d > 0.1);
});
