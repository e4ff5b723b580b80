// Embedding building blocks without model files: the attention_masked op (against attention, padding
// invariance, empty blocks), pooling/quantization math, and WordPiece normalisation/pre-tokenization.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../src/graph/graph.js';
import { runGraph, type ExecContext } from '../src/backends/backend.js';
import { referenceBackend } from '../src/backends/reference/index.js';
import {
  lateChunkSpans, packBits, poolingMatrix, applyPooling, quantizeBinary, quantizeInt8, roundHalfEven, l2Normalize,
} from '../src/runtime/embed-math.js';
import { bertNormalize, bertPreTokenize, WordPieceTokenizer } from '../src/tokenizers/wordpiece.js';
import { prng } from './helpers/models.js';

const H = 4;
const KVH = 2;
const HD = 8;

function rand(n: number, r: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

function attend(op: 'attention' | 'attention_masked', q: Float32Array, k: Float32Array, v: Float32Array, T: number, extra: { causal: boolean; mask?: Float32Array; batch?: number }): Float32Array {
  const g = new Graph();
  const qi = g.add('input', [], { name: 'q', shape: [T, H * HD], type: 'f32' });
  const ki = g.add('input', [], { name: 'k', shape: [T, KVH * HD], type: 'f32' });
  const vi = g.add('input', [], { name: 'v', shape: [T, KVH * HD], type: 'f32' });
  const attrs = { nHeads: H, nKvHeads: KVH, headDim: HD, causal: extra.causal, scale: 1 / Math.sqrt(HD) };
  const pos = Int32Array.from({ length: T }, (_, i) => i);
  const inputs: Record<string, Float32Array | Int32Array> = { q, k, v, pos, mask: extra.mask ?? new Float32Array(T) };
  const out =
    op === 'attention'
      ? g.add('attention', [qi, ki, vi, g.add('input', [], { name: 'pos', shape: [T], type: 'i32' })], attrs)
      : g.add('attention_masked', [qi, ki, vi, g.add('input', [], { name: 'mask', shape: [T], type: 'f32' })], { ...attrs, batch: extra.batch ?? 1 });
  g.output('o', out);
  const ctx: ExecContext = { weight: () => { throw new Error('no weights'); }, state: () => { throw new Error('no state'); }, input: (n) => inputs[n]! };
  return runGraph(g, [referenceBackend], ctx).get('o')!.data as Float32Array;
}

test('attention_masked equals attention on one unpadded sequence (bidirectional and causal)', () => {
  const r = prng(7);
  const T = 6;
  const q = rand(T * H * HD, r);
  const k = rand(T * KVH * HD, r);
  const v = rand(T * KVH * HD, r);
  for (const causal of [false, true]) {
    assert.deepEqual(attend('attention_masked', q, k, v, T, { causal }), attend('attention', q, k, v, T, { causal }));
  }
});

test('attention_masked: padded blocks give the unpadded result bit for bit; empty blocks give zeros', () => {
  const r = prng(11);
  const n = 5;
  const B = 8;
  const q = rand(n * H * HD, r);
  const k = rand(n * KVH * HD, r);
  const v = rand(n * KVH * HD, r);
  const ref = attend('attention', q, k, v, n, { causal: false });
  // Three blocks of B rows: [seq padded with junk], [empty], [seq padded].
  const T = 3 * B;
  const pq = rand(T * H * HD, r);
  const pk = rand(T * KVH * HD, r);
  const pv = rand(T * KVH * HD, r);
  const mask = new Float32Array(T).fill(-Infinity);
  for (const b of [0, 2]) {
    pq.set(q, b * B * H * HD);
    pk.set(k, b * B * KVH * HD);
    pv.set(v, b * B * KVH * HD);
    mask.fill(0, b * B, b * B + n);
  }
  const out = attend('attention_masked', pq, pk, pv, T, { causal: false, mask, batch: 3 });
  const W = H * HD;
  assert.deepEqual(out.subarray(0, n * W), ref);
  assert.deepEqual(out.subarray(2 * B * W, (2 * B + n) * W), ref);
  assert.ok(out.subarray(B * W, 2 * B * W).every((x) => x === 0));
  assert.throws(() => attend('attention_masked', pq, pk, pv, T, { causal: false, mask, batch: 5 }), /batch 5 must divide/);
});

test('pooling and quantization math', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, 2.5001].map(roundHalfEven), [0, 2, 2, 0, -2, 2, 3]);
  const x = [0.1, -0.2, 0, -0, 3, -3, 0.004, -1e-9, 1];
  assert.deepEqual(Array.from(quantizeBinary(x)), [1, -1, 1, 1, 1, -1, 1, -1, 1]);
  assert.deepEqual(Array.from(packBits(x)), [0b10111010, 0b10000000]);
  assert.deepEqual(Array.from(quantizeInt8([0, 10, -10, Math.atanh(0.5 / 127), Math.atanh(1.5 / 127)])), [0, 127, -127, 0, 2]);
  assert.deepEqual(lateChunkSpans([1, 5, 6, 2, 7, 2, 8, 9], 2), [[0, 3], [4, 5], [6, 8]]);
  assert.deepEqual(lateChunkSpans([101, 5, 102, 7, 102], 102, 4), [[0, 2], [3, 4]]);
  const hidden = Float32Array.from([1, 2, 3, 4, 5, 6]); // 3 rows x 2
  assert.deepEqual(applyPooling(hidden, 2, poolingMatrix('mean', 3)).map((a) => Array.from(a)), [[3, 4]]);
  assert.deepEqual(applyPooling(hidden, 2, poolingMatrix('cls', 3)).map((a) => Array.from(a)), [[1, 2]]);
  assert.deepEqual(applyPooling(hidden, 2, poolingMatrix('last', 3)).map((a) => Array.from(a)), [[5, 6]]);
  assert.deepEqual(Array.from(l2Normalize(Float64Array.from([3, 4]))), [0.6, 0.8]);
});

test('BertNormalizer, BertPreTokenizer and greedy WordPiece', () => {
  const o = { cleanText: true, handleChineseChars: true, stripAccents: null, lowercase: true };
  assert.equal(bertNormalize('Café\u0000 ΣΑΣ\tx\u200by 北京', o), 'cafe σασ xy  北  京 ');
  assert.equal(bertNormalize('Café', { ...o, lowercase: false }), 'Café');
  assert.deepEqual(bertPreTokenize('hello, world!! $5 a-b'), ['hello', ',', 'world', '!', '!', '$', '5', 'a', '-', 'b']);
  const tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'un', '##aff', '##able', 'a', '##b', ','];
  const tok = WordPieceTokenizer.fromTokenizerJson({
    added_tokens: [0, 1, 2, 3].map((id) => ({ id, content: tokens[id], special: true, normalized: false })),
    normalizer: { type: 'BertNormalizer', lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', cls: ['[CLS]', 2], sep: ['[SEP]', 3] },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 10, vocab: Object.fromEntries(tokens.map((t, i) => [t, i])) },
  });
  assert.deepEqual(tok.encode('Unaffable, ab unx'), [2, 4, 5, 6, 9, 7, 8, 1, 3]);
  assert.deepEqual(tok.encode('abbbbbbbbbbb', { addSpecialTokens: false }), [1], 'longer than max_input_chars_per_word');
  assert.deepEqual(tok.encode('[SEP]', { addSpecialTokens: false, parseSpecial: true }), [3]);
  assert.equal(tok.decode([2, 4, 5, 6, 9, 7, 8, 3]), 'unaffable, ab');
});
