// The byte-level BPE trainer against Stanford CS336's fixtures (corpus.en, vocab 500, <|endoftext|>):
// the merges must match in order and the vocabulary as a set. Then the trained tokenizer must load as
// a tokenizer.json and as GGUF metadata, and round-trip text.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { modelFileOrSkip, tempDir } from './helpers/models.js';
import { bpeGgufMetadata, bpeTokenizerJson, bpeTokenStrings, byteLevelString, trainBpe } from '../src/train/bpe.js';
import { tokenizerFromGGUF, tokenizerFromJson } from '../src/tokenizers/load.js';
import type { GGUFValue } from '../src/formats/gguf.js';

test('BPE trainer reproduces the CS336 reference merges and vocabulary (corpus.en, vocab 500)', (t) => {
  const corpus = modelFileOrSkip(t, 'corpus/corpus.en');
  const ref = modelFileOrSkip(t, 'reference/bpe-train-cs336');
  if (corpus === null || ref === null) return;
  const m = trainBpe([fs.readFileSync(corpus, 'utf8')], { vocabSize: 500, specialTokens: ['<|endoftext|>'] });
  const refMerges = fs.readFileSync(path.join(ref, 'train-bpe-reference-merges.txt'), 'utf8').split('\n').filter((l) => l.length > 0)
    .map((l) => l.split(' ') as [string, string]);
  const got = m.merges.map(([a, b]) => [byteLevelString(a), byteLevelString(b)]);
  assert.equal(got.length, refMerges.length);
  assert.deepEqual(got, refMerges);
  const refVocab = JSON.parse(fs.readFileSync(path.join(ref, 'train-bpe-reference-vocab.json'), 'utf8')) as Record<string, number>;
  assert.deepEqual(new Set(bpeTokenStrings(m)), new Set(Object.keys(refVocab)));
  assert.equal(m.vocab.length, 500);
});

test('BPE trainer: ties break toward the greater pair; the result loads as tokenizer.json and GGUF and round-trips', () => {
  const text = 'low low low low low lower lower widest widest widest newest newest newest newest newest newest';
  const m = trainBpe([text], { vocabSize: 256 + 1 + 6, specialTokens: ['<|endoftext|>'] });
  // the CS336 handout's worked example: s t, e st, o w, l ow, w est, n e
  assert.deepEqual(m.merges.map(([a, b]) => `${byteLevelString(a)} ${byteLevelString(b)}`).slice(0, 6), ['s t', 'e st', 'o w', 'l ow', 'w est', 'n e']);
  const dir = tempDir();
  const big = trainBpe(['the cat sat on the mat. the dog ate the hat!\nünïcödé 123 <|endoftext|> more text'], { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
  const tj = bpeTokenizerJson(big);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
  const tok1 = tokenizerFromJson(tj, undefined, 'tokenizer.json');
  const md = new Map<string, GGUFValue>(bpeGgufMetadata(big).map(([k, , v]) => [k, v]));
  const tok2 = tokenizerFromGGUF(md, 'mem.gguf');
  const s = 'the cat ate the mat; ünïcödé!\n\nnew line<|endoftext|>x';
  const ids1 = tok1.encode(s, { addSpecialTokens: true, parseSpecial: true });
  const ids2 = tok2.encode(s, { addSpecialTokens: true, parseSpecial: true });
  assert.deepEqual(ids1, ids2);
  assert.equal(ids1[0], 0);
  assert.ok(ids1.includes(0, 1), 'the special token is matched inside text');
  assert.equal(tok2.decode(ids2, { skipSpecialTokens: false }), '<|endoftext|>' + s);
});
