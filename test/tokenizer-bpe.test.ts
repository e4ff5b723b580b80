// Byte-level BPE tokenizer (GPT-2, Llama 3, Qwen3), added/special tokens and the Oniguruma->JS regex translator,
// checked against independent references only: HF `tokenizers` outputs (reference/tokenizer-cases*.json) and
// llama.cpp's vocab test vectors (gguf/vocab/ggml-vocab-gpt-2.gguf.inp/.out).

import { checkModernCases, type ModernCase } from './util/modern-cases.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ByteLevelBPETokenizer, cleanUpTokenization, toByteLevel } from '../src/tokenizers/byte-level-bpe.js';
import { AddedTokenMatcher, addedTokensFromJson, type AddedToken } from '../src/tokenizers/added-tokens.js';
import {
  compileRegex,
  ggufPreTokenizer,
  GPT2_PATTERN,
  LLAMA3_PATTERN,
  QWEN2_PATTERN,
  splitText,
  translateRegex,
} from '../src/tokenizers/pretokenize.js';
import { openGGUF } from '../src/formats/gguf.js';
import { UnsupportedError } from '../src/errors.js';

// ---------------------------------------------------------------------------------------------------------------
// Locating shared/models

function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test file');
    dir = up;
  }
  return dir;
}

const MODELS = process.env.RISTRETTO_MODELS_DIR ?? path.resolve(repoRoot(), '..', 'shared', 'models');

interface Skippable {
  skip(message?: string): void;
}

/** Absolute path of `rel` inside shared/models, or null after skipping the test visibly. */
function modelFile(t: Skippable, rel: string): string | null {
  const p = path.join(MODELS, rel);
  if (!fs.existsSync(p)) {
    t.skip(`missing ${p} (set RISTRETTO_MODELS_DIR or provide ../shared/models)`);
    return null;
  }
  return p;
}

const readJson = (p: string): any => JSON.parse(fs.readFileSync(p, 'utf8'));

const tokCache = new Map<string, ByteLevelBPETokenizer>();
function hfTokenizer(dir: string, name: string): ByteLevelBPETokenizer {
  let t = tokCache.get(name);
  if (!t) {
    t = ByteLevelBPETokenizer.fromTokenizerJson(
      readJson(path.join(dir, 'tokenizer.json')),
      readJson(path.join(dir, 'tokenizer_config.json')),
      path.join(dir, 'tokenizer.json'),
    );
    tokCache.set(name, t);
  }
  return t;
}

const show = (s: string): string => {
  const j = JSON.stringify(s);
  return j.length > 90 ? j.slice(0, 87) + '..."' : j;
};

// ---------------------------------------------------------------------------------------------------------------
// Regex translator

test('regex translator: real patterns of the GPT-2, Llama 3 and Qwen3 tokenizer.json files', (t) => {
  const patterns: [string, string][] = [['gpt2 (ByteLevel use_regex)', GPT2_PATTERN]];
  const l3 = modelFile(t, 'tokenizers/llama3/tokenizer.json');
  const q3 = modelFile(t, 'tokenizers/qwen3/tokenizer.json');
  if (!l3 || !q3) return;
  const fromFile = (p: string): string => readJson(p).pre_tokenizer.pretokenizers[0].pattern.Regex;
  const l3p = fromFile(l3);
  const q3p = fromFile(q3);
  assert.equal(l3p, LLAMA3_PATTERN);
  assert.equal(q3p, QWEN2_PATTERN);
  patterns.push(['llama3', l3p], ['qwen3', q3p]);
  for (const [name, p] of patterns) {
    const js = translateRegex(p);
    assert.doesNotMatch(js, /\(\?i/, `${name}: no inline (?i remains`);
    assert.ok(new RegExp(js, 'gu'), name);
  }
  // Llama 3: case-insensitive contractions are single pieces; digits in runs of at most 3.
  const l3re = compileRegex(l3p);
  assert.deepEqual(splitText("I'LL don't WE'RE 1234567", l3re, 'Isolated'), [
    'I', "'LL", ' don', "'t", ' WE', "'RE", ' ', '123', '456', '7',
  ]);
  // Qwen: single digits
  assert.deepEqual(splitText('ab 123', compileRegex(q3p), 'Isolated'), ['ab', ' ', '1', '2', '3']);
  // GPT-2: contractions are case-sensitive
  assert.deepEqual(splitText("don't DON'T", compileRegex(GPT2_PATTERN), 'Isolated'), ['don', "'t", ' DON', "'", 'T']);
  // \s follows Oniguruma (Unicode White_Space): NEL is whitespace, BOM is not.
  assert.deepEqual(splitText('a\u0085\u0085b', l3re, 'Isolated'), ['a', '\u0085', '\u0085b']);
  assert.deepEqual(splitText('a \ufeffb', l3re, 'Isolated'), ['a', ' \ufeff', 'b']);
  // \s+(?!\S): the last space of a run goes with the following word
  assert.deepEqual(splitText('a   b', l3re, 'Isolated'), ['a', '  ', ' b']);
});

test('regex translator: constructs JS lacks', () => {
  // scoped (?i:...) and (?i) to end of group, with Unicode folds (ſ, Kelvin sign)
  assert.equal(translateRegex("(?i:'s)x"), "(?:'[sSſ])x");
  assert.equal(translateRegex('(a(?i)k)k'), '(a[kK\u212a])k');
  const ci = new RegExp(translateRegex('(?i:[a-c]x)'), 'u');
  assert.ok(ci.test('Bx') && ci.test('bX') && !ci.test('dx'));
  // possessive quantifier and atomic group: no backtracking into them
  const poss = new RegExp('^' + translateRegex('a*+a'), 'u');
  assert.ok(!poss.test('aaa'));
  const atomic = new RegExp('^' + translateRegex('(?>a|ab)c'), 'u');
  assert.ok(!atomic.test('abc') && atomic.test('ac'));
  // Ruby syntax: {n,m}+ repeats the interval, it is not possessive
  assert.ok(new RegExp('^(?:' + translateRegex('a{2}+') + ')$', 'u').test('aaaa'));
  // identity escapes JS's u-mode rejects, \x{...}, \h, \p{Han} script name
  assert.ok(new RegExp(translateRegex("\\'\\#\\x{1F600}\\h\\p{Han}"), 'u').test("'#😀f中"));
  // \d is Unicode decimal digits, like Oniguruma
  assert.ok(new RegExp(translateRegex('^\\d$'), 'u').test('٣'));
  // unsupported constructs are named
  assert.throws(() => translateRegex('[[:alpha:]]'), UnsupportedError);
  assert.throws(() => translateRegex('(a)\\1'), UnsupportedError);
  assert.throws(() => translateRegex('(?x) a'), UnsupportedError);
});

test('splitText: HF split behaviours', () => {
  assert.deepEqual(splitText('a b  c', ' ', 'MergedWithPrevious'), ['a ', 'b ', ' ', 'c']);
  assert.deepEqual(splitText('a b  c', ' ', 'MergedWithNext'), ['a', ' b', ' ', ' c']);
  assert.deepEqual(splitText('a b  c', ' ', 'Removed'), ['a', 'b', 'c']);
  assert.deepEqual(splitText('a b  c', ' ', 'Contiguous'), ['a', ' ', 'b', '  ', 'c']);
  assert.deepEqual(splitText('a b  c', ' ', 'Isolated'), ['a', ' ', 'b', ' ', ' ', 'c']);
  assert.deepEqual(splitText('ab12cd', compileRegex('\\p{N}+'), 'Isolated', true), ['ab', '12', 'cd']);
  assert.deepEqual(splitText('ab12cd', compileRegex('\\p{N}+'), 'Removed', true), ['12']);
});

test('ggufPreTokenizer maps tokenizer.ggml.pre names', () => {
  assert.deepEqual(ggufPreTokenizer('gpt-2').patterns, [GPT2_PATTERN]);
  assert.equal(ggufPreTokenizer('llama-bpe').patterns[0], LLAMA3_PATTERN);
  assert.equal(ggufPreTokenizer('llama-bpe').ignoreMerges, true);
  assert.equal(ggufPreTokenizer('qwen2').patterns[0], QWEN2_PATTERN);
  assert.equal(ggufPreTokenizer('starcoder').patterns.length, 2);
  for (const pre of ['default', 'gpt-4o', 'viking', 'poro-chat', 'command-r']) {
    for (const p of ggufPreTokenizer(pre).patterns) assert.ok(compileRegex(p), `${pre}: ${p}`);
  }
  assert.throws(() => ggufPreTokenizer('no-such-pre'), UnsupportedError);
});

// ---------------------------------------------------------------------------------------------------------------
// Added tokens

test('added tokens: leftmost-longest, lstrip/rstrip/single_word/normalized, special skipping', () => {
  const tok = (id: number, content: string, o: Partial<AddedToken> = {}): AddedToken => ({
    id, content, special: false, singleWord: false, lstrip: false, rstrip: false, normalized: false, ...o,
  });
  const m = new AddedTokenMatcher(
    [
      tok(1, '<a>', { special: true }),
      tok(2, '<a><b>', { special: true }),
      tok(3, '<mask>', { lstrip: true, rstrip: true }),
      tok(4, 'word', { singleWord: true }),
      tok(5, 'HELLO', { normalized: true }),
    ],
    (s) => s.toUpperCase(),
  );
  const view = (segs: ReturnType<AddedTokenMatcher['split']>): (string | number)[] =>
    segs.map((s) => (s.kind === 'token' ? s.id : s.text));
  assert.deepEqual(view(m.split('x<a><b>y<a>', { parseSpecial: true })), ['X', 2, 'Y', 1]);
  assert.deepEqual(view(m.split('x<a><b>y', { parseSpecial: false })), ['X<A><B>Y']);
  assert.deepEqual(view(m.split('a  <mask>  b')), ['A', 3, 'B']);
  assert.deepEqual(view(m.split('a word b swordfish word')), ['A ', 4, ' B SWORDFISH ', 4]);
  // normalized token matched on the normalized text
  assert.deepEqual(view(m.split('say hello')), ['SAY ', 5]);
});

// ---------------------------------------------------------------------------------------------------------------
// GPT-2

test('GPT-2 tokenizer.json: reference/tokenizer-cases.json gpt2 cases (ids and decode exact)', (t) => {
  const dir = modelFile(t, 'tiny-gpt2');
  const refPath = modelFile(t, 'reference/tokenizer-cases.json');
  if (!dir || !refPath) return;
  const tok = hfTokenizer(dir, 'gpt2');
  const ref = readJson(refPath);
  const key = Object.keys(ref.cases).find((k) => k.startsWith('gpt2'));
  assert.ok(key, 'gpt2 cases present');
  const cases: any[] = ref.cases[key];
  const failures: string[] = [];
  for (const c of cases) {
    const ids = tok.encode(c.text);
    if (JSON.stringify(ids) !== JSON.stringify(c.ids)) failures.push(`ids ${show(c.text)}`);
    const toks = ids.map((i) => tok.idToToken(i));
    if (JSON.stringify(toks) !== JSON.stringify(c.tokens)) failures.push(`tokens ${show(c.text)}`);
    if (tok.decode(c.ids) !== c.decoded) failures.push(`decode ${show(c.text)}`);
  }
  t.diagnostic(`gpt2 tokenizer-cases: ${cases.length - failures.length}/${cases.length} matched`);
  assert.deepEqual(failures, []);
  assert.equal(tok.vocabSize, 50257);
  assert.equal(tok.bosId, 50256);
  assert.deepEqual(tok.eosIds, [50256]);
});

test('GPT-2 GGUF vocab: llama.cpp ggml-vocab-gpt-2 test vectors via fromGGUFMetadata', (t) => {
  const g = modelFile(t, 'gguf/vocab/ggml-vocab-gpt-2.gguf');
  if (!g) return;
  const tok = ByteLevelBPETokenizer.fromGGUFMetadata(openGGUF(g).metadata, g);
  const inputs = fs.readFileSync(g + '.inp', 'utf8').split('\n__ggml_vocab_test__\n');
  assert.equal(inputs.pop(), '', 'the .inp file ends with a separator');
  const lines = fs.readFileSync(g + '.out', 'utf8').split('\n');
  assert.equal(lines.pop(), '', 'the .out file ends with a newline');
  assert.equal(lines.length, inputs.length);
  const failures: string[] = [];
  inputs.forEach((text, i) => {
    const expected = lines[i]!.trim() === '' ? [] : lines[i]!.trim().split(/ +/).map(Number);
    const ids = tok.encode(text, { addSpecialTokens: false });
    if (JSON.stringify(ids) !== JSON.stringify(expected)) failures.push(`#${i} ${show(text)}`);
    if (tok.decode(ids) !== text) failures.push(`decode #${i} ${show(text)}`);
  });
  t.diagnostic(`ggml-vocab-gpt-2: ${inputs.length - failures.length}/${inputs.length} vectors matched`);
  assert.deepEqual(failures, []);
  assert.equal(tok.bosId, 50256);
  assert.ok(tok.isSpecial(50256));
});

test('special-token text in user text: plain by default, the token with parseSpecial', (t) => {
  const dir = modelFile(t, 'tiny-gpt2');
  if (!dir) return;
  const tok = hfTokenizer(dir, 'gpt2');
  const text = 'Hello<|endoftext|>world';
  const plain = tok.encode(text);
  assert.ok(!plain.includes(50256));
  assert.ok(plain.length > 3 && plain.includes(tok.tokenToId('<')!) && plain.includes(tok.tokenToId('>')!));
  assert.equal(tok.decode(plain), text);
  const parsed = tok.encode(text, { parseSpecial: true });
  assert.deepEqual(parsed, [15496, 50256, 6894]);
  assert.equal(tok.decode(parsed), 'Helloworld');
  assert.equal(tok.decode(parsed, { skipSpecialTokens: false }), text);
  assert.deepEqual([...tok.tokenBytes(50256, 15496)], [...new TextEncoder().encode('<|endoftext|>')]);

  const q = modelFile(t, 'tokenizers/qwen3');
  if (!q) return;
  const qwen = hfTokenizer(q, 'qwen3');
  const s = '<|im_start|>user\nhi<think>x</think>';
  const def = qwen.encode(s);
  assert.ok(!def.includes(151644), 'special <|im_start|> stays text by default');
  assert.ok(def.includes(151667) && def.includes(151668), 'non-special <think> is matched anyway, as HF does');
  const ps = qwen.encode(s, { parseSpecial: true });
  assert.equal(ps[0], 151644);
  assert.equal(qwen.decode(def, { skipSpecialTokens: false }), s);
});

// ---------------------------------------------------------------------------------------------------------------
// Llama 3 / Qwen3 against reference/tokenizer-cases-modern.json (HF tokenizers 0.23.2)

function checkModern(t: { diagnostic(m: string): void }, tok: ByteLevelBPETokenizer, cases: ModernCase[], name: string,
  withDecodes = true): void {
  checkModernCases(t, tok, cases, name, {
    decodes: withDecodes,
    decodeOptions: { cleanUpTokenizationSpaces: false },
    extra: (c, eq) => {
      if (c.decoded_clean_up !== undefined) {
        // transformers' decode(ids): skip_special_tokens=False here, clean-up from the tokenizer_config
        eq(tok.decode(c.ids, { skipSpecialTokens: false }), c.decoded_clean_up, 'decoded_clean_up');
      }
      // tokenBytes concatenation = raw decode
      const bytes = c.ids.flatMap((id: number, k: number) => [...tok.tokenBytes(id, k ? c.ids[k - 1]! : null)]);
      eq(new TextDecoder().decode(Uint8Array.from(bytes)), c.decoded, 'tokenBytes');
    },
  });
}

for (const name of ['llama3', 'qwen3'] as const) {
  test(`${name} tokenizer.json: reference/tokenizer-cases-modern.json (ids, ids_with_special, all decodes)`, (t) => {
    const dir = modelFile(t, `tokenizers/${name}`);
    const refPath = modelFile(t, 'reference/tokenizer-cases-modern.json');
    if (!dir || !refPath) return;
    const ref = readJson(refPath);
    const tok = hfTokenizer(dir, name);
    assert.equal(tok.vocabSize, ref.tokenizers[name].vocab_size_with_added);
    checkModern(t, tok, ref.cases[name], name);
    if (name === 'llama3') {
      assert.equal(tok.bosId, 128000);
      assert.ok(tok.eosIds.includes(128001) && tok.eosIds.includes(128009));
      assert.equal(tok.cleanUpTokenizationSpaces, true);
    } else {
      assert.equal(tok.bosId, null);
      assert.ok(tok.eosIds.includes(151645));
    }
  });

  test(`${name} via fromGGUFMetadata (metadata built from the tokenizer.json): same reference ids`, (t) => {
    const dir = modelFile(t, `tokenizers/${name}`);
    const refPath = modelFile(t, 'reference/tokenizer-cases-modern.json');
    if (!dir || !refPath) return;
    const j = readJson(path.join(dir, 'tokenizer.json'));
    const tokens: string[] = [];
    const types: number[] = [];
    for (const [s, id] of Object.entries(j.model.vocab as Record<string, number>)) {
      tokens[id] = s;
      types[id] = 1;
    }
    for (const a of j.added_tokens) {
      tokens[a.id] = a.content;
      types[a.id] = a.special ? 3 : 4;
    }
    const merges = (j.model.merges as (string | string[])[]).map((m) => (typeof m === 'string' ? m : m.join(' ')));
    const meta = new Map<string, unknown>([
      ['tokenizer.ggml.model', 'gpt2'],
      ['tokenizer.ggml.pre', name === 'llama3' ? 'llama-bpe' : 'qwen2'],
      ['tokenizer.ggml.tokens', tokens],
      ['tokenizer.ggml.token_type', types],
      ['tokenizer.ggml.merges', merges],
      ['tokenizer.ggml.add_bos_token', false],
    ]);
    const tok = ByteLevelBPETokenizer.fromGGUFMetadata(meta, `${name} (synthetic GGUF metadata)`);
    checkModern(t, tok, readJson(refPath).cases[name], `${name} (GGUF path)`, false);
  });
}

for (const name of ['llama3', 'qwen3'] as const) {
  test(`${name}: toGGUFMetadata writes a GGUF whose tokenizer gives the reference ids`, async (t) => {
    const dir = modelFile(t, `tokenizers/${name}`);
    const refPath = modelFile(t, 'reference/tokenizer-cases-modern.json');
    if (!dir || !refPath) return;
    const { writeGGUF } = await import('../src/formats/gguf.js');
    const { loadTokenizer } = await import('../src/tokenizers/load.js');
    const os = await import('node:os');
    const fs = await import('node:fs');
    const tok = hfTokenizer(dir, name);
    const md = tok.toGGUFMetadata();
    assert.ok(md !== null, 'a llama.cpp pre-tokenizer name exists');
    const get = (k: string) => md!.find(([key]) => key === k)?.[2];
    assert.equal(get('tokenizer.ggml.pre'), name === 'llama3' ? 'llama-bpe' : 'qwen2');
    assert.equal(get('tokenizer.ggml.add_bos_token'), tok.encode('x')[0] === tok.bosId, 'BOS as the tokenizer.json adds it');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ristretto-tokgguf-')), `${name}.gguf`);
    writeGGUF(file, { metadata: md! });
    const back = loadTokenizer(file).tokenizer as ByteLevelBPETokenizer;
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    assert.equal(back.vocabSize, tok.vocabSize);
    assert.deepEqual([back.bosId, back.eosIds[0]], [tok.bosId, tok.eosIds[0]]);
    checkModern(t, back, readJson(refPath).cases[name], `${name} (written GGUF)`, false);
  });
}

test('toGGUFMetadata: null when the pre-tokenizer has no llama.cpp name', () => {
  const j = {
    model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b'] },
    decoder: { type: 'ByteLevel' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'Isolated', invert: false }, { type: 'ByteLevel', add_prefix_space: false, use_regex: false }] },
  };
  assert.equal(ByteLevelBPETokenizer.fromTokenizerJson(j).toGGUFMetadata(), null);
  const gpt2 = { ...j, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true } };
  assert.equal(ByteLevelBPETokenizer.fromTokenizerJson(gpt2).toGGUFMetadata()?.find(([k]) => k === 'tokenizer.ggml.pre')?.[2], 'gpt-2');
});

test('llama3: clean_up_tokenization_spaces option', (t) => {
  const dir = modelFile(t, 'tokenizers/llama3');
  if (!dir) return;
  const tok = hfTokenizer(dir, 'llama3');
  const ids = tok.encode("I 'm here . Are n't you ?");
  assert.equal(tok.decode(ids), "I'm here. Aren't you?");
  assert.equal(tok.decode(ids, { cleanUpTokenizationSpaces: false }), "I 'm here . Are n't you ?");
  assert.equal(cleanUpTokenization('a , b !'), 'a, b!');
});

// ---------------------------------------------------------------------------------------------------------------
// Robustness and errors

test('byte-level mapping and decode of partial UTF-8', (t) => {
  assert.equal(toByteLevel(' é\n'), 'ĠÃ©Ċ');
  assert.equal(toByteLevel('\ud800'), toByteLevel('\ufffd'));
  const dir = modelFile(t, 'tiny-gpt2');
  if (!dir) return;
  const tok = hfTokenizer(dir, 'gpt2');
  const ids = tok.encode('🦙');
  assert.ok(ids.length > 1);
  // a prefix of the bytes decodes with U+FFFD, as HF's from_utf8_lossy does
  assert.match(tok.decode(ids.slice(0, 1)), /\ufffd/);
  assert.equal(tok.decode(ids), '🦙');
  // a long single-word input goes through the heap merge path
  const long = 'ab'.repeat(5000);
  assert.equal(tok.decode(tok.encode(long)), long);
});

test('unsupported tokenizer.json components raise UnsupportedError naming them', (t) => {
  const dir = modelFile(t, 'tiny-gpt2');
  if (!dir) return;
  const base = readJson(path.join(dir, 'tokenizer.json'));
  const variants: [string, (j: any) => void][] = [
    ['Metaspace', (j) => (j.pre_tokenizer = { type: 'Metaspace', replacement: '▁' })],
    ['BertNormalizer', (j) => (j.normalizer = { type: 'BertNormalizer' })],
    ['WordPiece', (j) => (j.decoder = { type: 'WordPiece' })],
    ['WordLevel', (j) => (j.model = { type: 'WordLevel', vocab: {} })],
  ];
  for (const [name, mutate] of variants) {
    const j = { ...base };
    mutate(j);
    assert.throws(() => ByteLevelBPETokenizer.fromTokenizerJson(j), (e: unknown) => {
      return e instanceof UnsupportedError && e.message.includes(name);
    }, name);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Throughput (logged, not asserted)

test('throughput: encode corpus/war-and-peace.txt with each tokenizer', (t) => {
  const wpPath = modelFile(t, 'corpus/war-and-peace.txt');
  if (!wpPath) return;
  const text = fs.readFileSync(wpPath, 'utf8');
  const toks: [string, () => ByteLevelBPETokenizer | null][] = [
    ['gpt2', () => (fs.existsSync(path.join(MODELS, 'tiny-gpt2')) ? hfTokenizer(path.join(MODELS, 'tiny-gpt2'), 'gpt2') : null)],
    ['llama3', () => (fs.existsSync(path.join(MODELS, 'tokenizers/llama3')) ? hfTokenizer(path.join(MODELS, 'tokenizers/llama3'), 'llama3') : null)],
    ['qwen3', () => (fs.existsSync(path.join(MODELS, 'tokenizers/qwen3')) ? hfTokenizer(path.join(MODELS, 'tokenizers/qwen3'), 'qwen3') : null)],
  ];
  for (const [name, get] of toks) {
    const tok = get();
    if (!tok) {
      t.diagnostic(`${name}: tokenizer files missing, skipped`);
      continue;
    }
    const t0 = performance.now();
    const ids = tok.encode(text);
    const ms = performance.now() - t0;
    t.diagnostic(`${name}: war-and-peace ${text.length} chars -> ${ids.length} tokens in ${ms.toFixed(0)} ms = ${Math.round((ids.length / ms) * 1000)} tokens/s`);
    assert.equal(tok.decode(ids, { cleanUpTokenizationSpaces: false }), text);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Gemma 3 (SentencePiece-style BPE; not byte-level): the added-token matcher on its 6415 added tokens, and, when
// the SentencePiece implementation can load it, the reference cases.

test('gemma3: added-token matcher on its added_tokens', (t) => {
  const p = modelFile(t, 'tokenizers/gemma3/tokenizer.json');
  if (!p) return;
  const j = readJson(p);
  const m = new AddedTokenMatcher(addedTokensFromJson(j.added_tokens), (s) => s.replaceAll(' ', '▁'));
  const segs = m.split('<start_of_turn>user\nhi<end_of_turn>', { parseSpecial: true });
  // "\n" is a non-special added token (107) in Gemma 3
  assert.deepEqual(segs.map((s) => (s.kind === 'token' ? s.id : s.text)), [105, 'user', 107, 'hi', 106]);
  const plain = m.split('<start_of_turn>user', { parseSpecial: false });
  assert.deepEqual(plain.map((s) => (s.kind === 'token' ? s.id : s.text)), ['<start_of_turn>user']);
  // Against the reference: the added tokens found in each text are exactly the added-token ids of its encoding.
  const refPath = modelFile(t, 'reference/tokenizer-cases-modern.json');
  if (!refPath) return;
  // (added tokens made of "▁" are also BPE outputs for space runs; the raw text never contains "▁", so leave them out)
  const addedIds = new Set((j.added_tokens as any[]).filter((a) => !a.content.includes('▁')).map((a) => a.id as number));
  const cases: any[] = readJson(refPath).cases.gemma3;
  let matched = 0;
  const failures: string[] = [];
  for (const c of cases) {
    const found = m.split(c.text, { parseSpecial: true }).flatMap((s) => (s.kind === 'token' ? [s.id] : []));
    const expected = (c.ids as number[]).filter((id) => addedIds.has(id));
    if (JSON.stringify(found) === JSON.stringify(expected)) matched++;
    else failures.push(show(c.text));
  }
  t.diagnostic(`gemma3 added-token positions: ${matched}/${cases.length} cases matched`);
  assert.deepEqual(failures, []);
});

// The Gemma 3 reference cases through the SentencePiece implementation (loadTokenizer) are in tokenizer-gemma3.test.ts.
