// BERT sentence embeddings: the WordPiece tokenizer against llama.cpp's bert-bge vectors, and hf/bert-tiny-random
// against reference/embed-bert-tiny.json (hidden states, mean/CLS/pooler pooling, normalisation, int8/binary/
// ubinary), padding invariance across batches and buckets, truncation, and the `embed` CLI.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGGUF } from '../src/formats/gguf.js';
import { loadTokenizer } from '../src/tokenizers/load.js';
import { WordPieceTokenizer } from '../src/tokenizers/wordpiece.js';
import { loadEmbeddingModel } from '../src/runtime/embed.js';
import { ContextLengthError } from '../src/errors.js';
import { modelFileOrSkip, repoRoot } from './helpers/models.js';
import { assertQuantized, maxAbsDiff, readReference, sharedModel } from './util/embed-reference.js';

const MODEL = 'hf/bert-tiny-random';
const REF = 'embed-bert-tiny.json';

function vocabVectors(g: string): { text: string; ids: number[] }[] {
  const inputs = fs.readFileSync(g + '.inp', 'utf8').split('\n__ggml_vocab_test__\n');
  assert.equal(inputs.pop(), '', 'the .inp file ends with a separator');
  const lines = fs.readFileSync(g + '.out', 'utf8').split('\n');
  assert.equal(lines.pop(), '');
  assert.equal(lines.length, inputs.length);
  return inputs.map((text, i) => ({ text, ids: lines[i]!.trim() === '' ? [] : lines[i]!.trim().split(/ +/).map(Number) }));
}

test('WordPiece from GGUF (phantom-space vocab) and from tokenizer.json reproduce llama.cpp bert-bge vectors', (t) => {
  const g = modelFileOrSkip(t, 'gguf/vocab/ggml-vocab-bert-bge.gguf');
  const dir = modelFileOrSkip(t, MODEL);
  if (!g || !dir) return;
  const fromGGUF = WordPieceTokenizer.fromGGUFMetadata(openGGUF(g).metadata, g);
  const fromJson = loadTokenizer(dir).tokenizer;
  const viaLoader = loadTokenizer(g).tokenizer;
  assert.equal(fromJson.kind, 'wordpiece');
  assert.equal(viaLoader.kind, 'wordpiece');
  const cases = vocabVectors(g);
  for (const [name, tok] of [['gguf', fromGGUF], ['tokenizer.json', fromJson]] as const) {
    const failures = cases.filter((c) => JSON.stringify(tok.encode(c.text, { addSpecialTokens: false })) !== JSON.stringify(c.ids));
    t.diagnostic(`${name}: ${cases.length - failures.length}/${cases.length} llama.cpp vectors matched`);
    assert.deepEqual(failures.map((f) => f.text), []);
  }
  assert.deepEqual(fromGGUF.encode('Hello world!'), [101, 7592, 2088, 999, 102]);
  assert.equal(fromGGUF.idToToken(7592), 'hello');
  assert.equal(fromGGUF.tokenToId('##s'), fromJson.tokenToId('##s'));
  // HF tokenizers' WordPiece decoder cleans up token by token, so " ' " spanning tokens stays.
  assert.equal(fromJson.decode(fromJson.encode("Don't stop-believing, ok?")), "don ' t stop - believing, ok?");
});


test('BERT encoder matches reference/embed-bert-tiny.json', async (t) => {
  const dir = modelFileOrSkip(t, MODEL);
  const models = dir && path.dirname(path.dirname(dir));
  if (!dir || !models || !modelFileOrSkip(t, `reference/${REF}`)) return;
  const ref = readReference(models, REF);
  const m = await sharedModel(dir);
  assert.equal(m.dimension, 64);
  assert.equal(m.defaults.pooling, 'mean', 'from 1_Pooling/config.json');
  const texts = ref.cases.map((c) => c.text);
  const ids = texts.map((s) => m.tokenize(s).ids);
  ref.cases.forEach((c, i) => assert.deepEqual(ids[i], c.ids, `ids of ${JSON.stringify(c.text)}`));
  const enc = await m.encode(ids);
  const [mean, meanN, cls, clsN, pooler, int8, binary, ubinary] = await Promise.all([
    m.embed(texts, { pooling: 'mean', normalize: false }),
    m.embed(texts, { pooling: 'mean', normalize: true }),
    m.embed(texts, { pooling: 'cls', normalize: false }),
    m.embed(texts, { pooling: 'cls', normalize: true }),
    m.embed(texts, { pooling: 'pooler' }),
    m.embed(texts, { output: 'int8' }),
    m.embed(texts, { output: 'binary', normalize: true }),
    m.embed(texts, { output: 'ubinary' }),
  ]);
  const worst = { hidden: 0, mean: 0, meanN: 0, cls: 0, clsN: 0, pooler: 0 };
  ref.cases.forEach((c, i) => {
    const D = m.dimension;
    const h = enc[i]!.hidden;
    assert.equal(h.length, c.n_tokens * D);
    let dh = maxAbsDiff(h.subarray(0, D), c.last_hidden_state_row0);
    c.last_hidden_state_first8_per_token.forEach((row, p) => (dh = Math.max(dh, maxAbsDiff(h.subarray(p * D, p * D + 8), row))));
    worst.hidden = Math.max(worst.hidden, dh);
    worst.mean = Math.max(worst.mean, maxAbsDiff(mean[i]!.embedding, c.mean_pooled));
    worst.meanN = Math.max(worst.meanN, maxAbsDiff(meanN[i]!.embedding, c.mean_pooled_normalized));
    worst.cls = Math.max(worst.cls, maxAbsDiff(cls[i]!.embedding, c.cls_pooled!));
    worst.clsN = Math.max(worst.clsN, maxAbsDiff(clsN[i]!.embedding, c.cls_pooled_normalized!));
    worst.pooler = Math.max(worst.pooler, maxAbsDiff(pooler[i]!.embedding, c.pooler_output!));
    assert.equal(mean[i]!.tokens, c.n_tokens);
    assertQuantized(c.text, c, { int8: int8[i]!.embedding, binary: binary[i]!.embedding, ubinary: ubinary[i]!.embedding });
  });
  t.diagnostic(`max abs diff: ${JSON.stringify(worst)}; int8/binary/ubinary exact on ${ref.cases.length} texts`);
  assert.ok(worst.hidden < 1e-4 && worst.mean < 1e-4 && worst.cls < 1e-4 && worst.pooler < 1e-4, JSON.stringify(worst));
  assert.ok(worst.meanN < 1e-5 && worst.clsN < 1e-5, JSON.stringify(worst));
});

test('BERT embeddings do not depend on batch composition or bucket', async (t) => {
  const dir = modelFileOrSkip(t, MODEL);
  if (!dir) return;
  const m = await sharedModel(dir);
  const texts = ['Hello world!', 'A much longer text that certainly lands in a larger bucket than the short greeting does, '.repeat(3), 'mid-sized text here.'];
  const alone = (await m.embed(texts[0]!))[0]!.embedding;
  const batched = (await m.embed(texts, { batchSize: 3 }))[0]!.embedding;
  const big = await loadEmbeddingModel(dir, { buckets: [512], batchSize: 4, fixedBatch: true });
  const bigBucket = (await big.embed(texts))[0]!.embedding;
  const diffs = { batch: maxAbsDiff(alone, batched), bucket512FixedBatch4: maxAbsDiff(alone, bigBucket) };
  t.diagnostic(`padding invariance, max abs diff vs alone: ${JSON.stringify(diffs)}`);
  assert.deepEqual(diffs, { batch: 0, bucket512FixedBatch4: 0 });
});

test('BERT truncation: warned by default, rejected on request', async (t) => {
  const dir = modelFileOrSkip(t, MODEL);
  if (!dir) return;
  const warnings: string[] = [];
  const m = await loadEmbeddingModel(dir, { maxTokens: 16, onWarning: (w) => warnings.push(w) });
  const long = 'word '.repeat(40);
  const [r] = await m.embed(long);
  assert.equal(r!.tokens, 16);
  assert.equal(r!.truncated, true);
  assert.equal(warnings.length, 1);
  assert.deepEqual(m.tokenize(long).ids.slice(-1), [102], '[SEP] is kept');
  await assert.rejects(m.embed(long, { truncate: false }), ContextLengthError);
});

test('ristretto embed CLI writes one JSON line per text', (t) => {
  const dir = modelFileOrSkip(t, MODEL);
  if (!dir) return;
  const cli = path.join(repoRoot, 'dist/src/cli/main.js');
  const tmp = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'embed-cli-'));
  const inFile = path.join(tmp, 'in.jsonl');
  fs.writeFileSync(inFile, '{"text": "The quick brown fox jumps over the lazy dog."}\n"second"\n');
  const out = execFileSync(process.execPath, [cli, 'embed', '--quiet', '--model', dir, '--output', 'ubinary', 'Hello world!', '--in', inFile], { encoding: 'utf8' });
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { text: string; tokens: number; embedding: number[] });
  assert.equal(lines.length, 3);
  assert.deepEqual(lines[0], { text: 'Hello world!', tokens: 5, embedding: [0x43, 0xf2, 0x3b, 0x64, 0xe4, 0x40, 0xbc, 0x3e] });
  assert.equal(lines[1]!.text, 'The quick brown fox jumps over the lazy dog.');
  const f = execFileSync(process.execPath, [cli, 'embed', '--quiet', '--model', dir, '--normalize', 'x'], { encoding: 'utf8' });
  const v = (JSON.parse(f) as { embedding: number[] }).embedding;
  assert.equal(v.length, 64);
  assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
  fs.rmSync(tmp, { recursive: true, force: true });
});
