// Gemma 3 (SentencePiece-style BPE in HF form: Replace(" " -> "▁") normalizer, Split(" ", MergedWithPrevious)
// pre-tokenizer, byte fallback, 262144 tokens + <image_soft_token>, 6415 added tokens) through the public loading
// path `loadTokenizer(dir)`, against reference/tokenizer-cases-modern.json (HF `tokenizers` 0.23.2): ids,
// ids_with_special, tokens and every decode, exactly. Skips visibly when shared/models is absent.

import { checkModernCases, type ModernCase } from './util/modern-cases.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { loadTokenizer } from '../src/tokenizers/load.js';
import { SentencePieceBPETokenizer } from '../src/tokenizers/sentencepiece-bpe.js';
import { StreamDecoder } from '../src/tokenizers/stream-decoder.js';
import type { Tokenizer } from '../src/tokenizers/tokenizer.js';
import { modelFileOrSkip } from './helpers/models.js';

const show = (s: string): string => {
  const j = JSON.stringify(s);
  return j.length > 60 ? j.slice(0, 57) + '..."' : j;
};

let cached: Tokenizer | null = null;
function gemma(dir: string): Tokenizer {
  cached ??= loadTokenizer(dir).tokenizer;
  return cached;
}

test('gemma3 via loadTokenizer(dir): every reference case (ids, ids_with_special, tokens, all decodes)', (t) => {
  const dir = modelFileOrSkip(t, 'tokenizers/gemma3');
  const refPath = modelFileOrSkip(t, 'reference/tokenizer-cases-modern.json');
  if (!dir || !refPath) return;
  const ref = JSON.parse(fs.readFileSync(refPath, 'utf8'));
  const t0 = performance.now();
  const tok = gemma(dir);
  t.diagnostic(`gemma3 loaded in ${(performance.now() - t0).toFixed(0)} ms`);
  assert.ok(tok instanceof SentencePieceBPETokenizer);
  assert.equal(tok.kind, 'sentencepiece-bpe');
  assert.equal(tok.vocabSize, ref.tokenizers.gemma3.vocab_size_with_added);
  assert.equal(tok.bosId, 2);
  // tokenizer_config eos_token is <end_of_turn> (106); <eos> (1) ends pretrained-model output.
  assert.ok(tok.eosIds.includes(106) && tok.eosIds.includes(1), JSON.stringify(tok.eosIds));

  const cases: ModernCase[] = ref.cases.gemma3;
  assert.equal(cases.length, 89);
  checkModernCases(t, tok, cases, 'gemma3', {
    extra: (c, eq) => {
      const sd = new StreamDecoder(tok, { skipSpecialTokens: false });
      eq(c.ids_with_special.map((id) => sd.push(id)).join('') + sd.flush(), c.decoded_with_special, 'stream decode');
    },
  });
});

test('gemma3: special-token text is plain text without parseSpecial; non-special added tokens always match', (t) => {
  const dir = modelFileOrSkip(t, 'tokenizers/gemma3');
  if (!dir) return;
  const tok = gemma(dir);
  const text = '<start_of_turn>user\nHi<end_of_turn>';
  const parsed = tok.encode(text, { parseSpecial: true, addSpecialTokens: false });
  assert.equal(parsed[0], 105);
  assert.equal(parsed[parsed.length - 1], 106);
  assert.ok(parsed.includes(107), 'the "\\n" added token (107, not special) is matched');
  const plain = tok.encode(text, { addSpecialTokens: false });
  assert.ok(!plain.includes(105) && !plain.includes(106), JSON.stringify(plain));
  assert.ok(plain.includes(107));
  assert.equal(tok.decode(plain), text);
  assert.equal(tok.decode(parsed), 'user\nHi');
  assert.equal(tok.decode(parsed, { skipSpecialTokens: false }), text);
  assert.deepEqual(tok.encode(''), [2]);
});

test('gemma3: war-and-peace.txt round trip', (t) => {
  const dir = modelFileOrSkip(t, 'tokenizers/gemma3');
  const wp = modelFileOrSkip(t, 'corpus/war-and-peace.txt');
  if (!dir || !wp) return;
  const tok = gemma(dir);
  const text = fs.readFileSync(wp, 'utf8');
  const t0 = performance.now();
  const ids = tok.encode(text, { addSpecialTokens: false });
  const ms = performance.now() - t0;
  t.diagnostic(`gemma3: war-and-peace ${text.length} chars -> ${ids.length} tokens in ${ms.toFixed(0)} ms`);
  assert.equal(tok.decode(ids), text);
});

// Llama 3 and Qwen3 through the same public path (tokenizer-bpe.test.ts checks the class directly).
for (const name of ['llama3', 'qwen3'] as const) {
  test(`${name} via loadTokenizer(dir): ids, ids_with_special and raw decodes of every reference case`, (t) => {
    const dir = modelFileOrSkip(t, `tokenizers/${name}`);
    const refPath = modelFileOrSkip(t, 'reference/tokenizer-cases-modern.json');
    if (!dir || !refPath) return;
    const ref = JSON.parse(fs.readFileSync(refPath, 'utf8'));
    const loaded = loadTokenizer(dir);
    assert.equal(loaded.path, path.join(dir, 'tokenizer.json'));
    const tok = loaded.tokenizer;
    assert.equal(tok.kind, 'byte-level-bpe');
    const cases: ModernCase[] = ref.cases[name];
    assert.equal(cases.length, 89);
    const failures: string[] = [];
    for (const c of cases) {
      const ids = tok.encode(c.text, { parseSpecial: true, addSpecialTokens: false });
      if (JSON.stringify(ids) !== JSON.stringify(c.ids)) failures.push(`ids ${show(c.text)}`);
      if (JSON.stringify(tok.encode(c.text, { parseSpecial: true })) !== JSON.stringify(c.ids_with_special)) failures.push(`ids_with_special ${show(c.text)}`);
      // decode() without clean-up is the raw `tokenizers` decoder output (llama3's config enables clean-up).
      const raw = { cleanUpTokenizationSpaces: false } as const;
      if (tok.decode(c.ids, { ...raw, skipSpecialTokens: false }) !== c.decoded) failures.push(`decoded ${show(c.text)}`);
      if (tok.decode(c.ids_with_special, { ...raw, skipSpecialTokens: true }) !== c.decoded_skip_special) failures.push(`decoded_skip_special ${show(c.text)}`);
    }
    t.diagnostic(`${name} (loadTokenizer): ${cases.length - new Set(failures.map((f) => f.slice(f.indexOf(' ')))).size}/${cases.length} cases matched`);
    assert.deepEqual(failures, []);
  });
}
