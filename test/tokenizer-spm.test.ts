// SentencePiece-BPE tokenizer (Llama 2 family) against independent references:
//  - reference/tokenizer-cases.json: HF `tokenizers` 0.23.2 on hf/stories260K-hf/tokenizer.json (`ids`),
//    SentencePiece 0.1.97 on tok512.model (`sentencepiece_ids`) and on the Llama 2 tokenizer.model;
//  - reference/llama2c-stories260K.json: run.c's own prompt ids;
//  - llama.cpp's test vectors gguf/vocab/ggml-vocab-llama-spm.gguf(.inp/.out).
// Tests that need /work/shared/models skip with a visible message when it is absent.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SentencePieceBPETokenizer } from '../src/tokenizers/sentencepiece-bpe.js';
import { StreamDecoder } from '../src/tokenizers/stream-decoder.js';
import { readLlama2cTokenizer } from '../src/formats/llama2c.js';
import { detectTokenizerJsonKind } from '../src/tokenizers/tokenizer-json.js';
import { tokenizerFromJson } from '../src/tokenizers/load.js';
import { openGGUF } from '../src/formats/gguf.js';
import { FormatError, UnsupportedError } from '../src/errors.js';
import type { Tokenizer } from '../src/tokenizers/tokenizer.js';

// ---------------------------------------------------------------------------------------------- locating data

function findRepoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test file');
    dir = up;
  }
}
const MODELS = process.env.RISTRETTO_MODELS_DIR ?? process.env.RISTRETTO_MODELS ?? path.resolve(findRepoRoot(), '../shared/models');

interface Skippable {
  skip(message?: string): void;
}
/** Absolute paths of `rels` inside the models dir, or null after a visible skip. */
function need(t: Skippable, ...rels: string[]): string[] | null {
  const ps = rels.map((r) => path.join(MODELS, r));
  const missing = ps.filter((p) => !fs.existsSync(p));
  if (missing.length > 0) {
    t.skip(`${missing.map((m) => path.relative(MODELS, m)).join(', ')} not found in ${MODELS} (set RISTRETTO_MODELS_DIR)`);
    return null;
  }
  return ps;
}

interface Case {
  text: string;
  ids: number[];
  tokens: string[];
  decoded: string;
  sentencepiece_ids?: number[];
  sentencepiece_matches_hf?: boolean;
}
function cases(file: string, prefix: string): Case[] {
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as { cases: Record<string, Case[]> };
  const key = Object.keys(j.cases).find((k) => k.startsWith(prefix));
  assert.ok(key, `no "${prefix}" section in ${file}`);
  return j.cases[key];
}

const cache = new Map<string, SentencePieceBPETokenizer>();
function load(kind: 'json' | 'bin' | 'gguf', file: string): SentencePieceBPETokenizer {
  const k = `${kind}:${file}`;
  let tk = cache.get(k);
  if (tk === undefined) {
    if (kind === 'json') {
      const cfgPath = path.join(path.dirname(file), 'tokenizer_config.json');
      const cfg = fs.existsSync(cfgPath) ? (JSON.parse(fs.readFileSync(cfgPath, 'utf8')) as unknown) : undefined;
      tk = SentencePieceBPETokenizer.fromTokenizerJson(JSON.parse(fs.readFileSync(file, 'utf8')) as unknown, cfg);
    } else if (kind === 'bin') tk = SentencePieceBPETokenizer.fromLlama2cTokenizer(file);
    else {
      const g = openGGUF(file);
      try {
        tk = SentencePieceBPETokenizer.fromGGUFMetadata(g.metadata, file);
      } finally {
        g.close();
      }
    }
    cache.set(k, tk);
  }
  return tk;
}

/** Special-token texts present in `text` (the HF reference parses them; SentencePiece and run.c do not). */
function hasSpecialText(tk: Tokenizer, text: string): boolean {
  for (let id = 0; id < tk.vocabSize; id++) {
    const s = tk.idToToken(id);
    if (tk.isSpecial(id) && s && text.includes(s)) return true;
  }
  return false;
}

function show(ids: readonly number[]): string {
  return ids.length > 24 ? `[${ids.slice(0, 24).join(', ')}, ... (${ids.length})]` : `[${ids.join(', ')}]`;
}

/** Direct port of llama2.c run.c `encode` (O(n^2) rescans), used to cross-check the heap implementation. */
function runcEncodeNaive(pieces: string[], scores: Float32Array, text: string): number[] {
  const lookup = new Map<string, number>();
  pieces.forEach((p, i) => {
    if (!lookup.has(p)) lookup.set(p, i);
  });
  const toks: number[] = [1];
  if (text.length > 0) toks.push(lookup.get(' ')!);
  for (const ch of text) {
    const id = lookup.get(ch);
    if (id !== undefined) toks.push(id);
    else for (const b of new TextEncoder().encode(ch)) toks.push(b + 3);
  }
  for (;;) {
    let best = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < toks.length - 1; i++) {
      const id = lookup.get(pieces[toks[i]!]! + pieces[toks[i + 1]!]!);
      if (id !== undefined && scores[id]! > best) {
        best = scores[id]!;
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    toks.splice(bestIdx, 2, bestId);
  }
  return toks;
}

// ---------------------------------------------------------------------------------------------- tok512

test('tok512 via HF tokenizer.json: every reference case (ids with BOS, decode)', (t) => {
  const ps = need(t, 'hf/stories260K-hf/tokenizer.json', 'reference/tokenizer-cases.json');
  if (!ps) return;
  const tk = load('json', ps[0]!);
  let n = 0;
  for (const c of cases(ps[1]!, 'tok512')) {
    if (hasSpecialText(tk, c.text)) {
      // HF tokenizers parses "<s>"/"</s>" in the input by default; we do only with parseSpecial.
      assert.deepEqual(tk.encode(c.text, { parseSpecial: true }), c.ids, `parseSpecial ${JSON.stringify(c.text)}`);
      // Default: special text is plain text. SentencePiece (which never parses it) is the reference; valid here
      // because the text has no whitespace runs / edge whitespace (SentencePiece collapses those, HF does not).
      assert.equal(c.text, c.text.trim().replace(/ +/g, ' '));
      assert.deepEqual(tk.encode(c.text), c.sentencepiece_ids, `plain ${JSON.stringify(c.text)}`);
    } else {
      assert.deepEqual(tk.encode(c.text), c.ids, JSON.stringify(c.text));
    }
    assert.equal(tk.decode(c.ids), c.decoded, `decode ${JSON.stringify(c.text)}`);
    assert.deepEqual(
      c.ids.map((id) => tk.idToToken(id)),
      c.tokens,
    );
    n++;
  }
  assert.equal(n, 23);
});

test('tok512 via llama2.c tok512.bin (run.c semantics)', (t) => {
  const ps = need(t, 'llama2c/tok512.bin', 'reference/tokenizer-cases.json', 'reference/llama2c-stories260K.json');
  if (!ps) return;
  const tk = load('bin', ps[0]!);
  assert.equal(tk.vocabSize, 512);
  const data = readLlama2cTokenizer(ps[0]!);
  const pieces = data.vocab;
  // Which reference run.c reproduces where HF and SentencePiece disagree (sentencepiece_matches_hf false):
  //  - whitespace runs / leading / trailing spaces: run.c does not collapse whitespace (SentencePiece's
  //    remove_extra_whitespaces does), and with tok512 its score order equals the HF merge ranks -> HF `ids`;
  //  - "<s> ... </s>" in the text: run.c never parses special tokens (HF does by default) -> `sentencepiece_ids`.
  for (const c of cases(ps[1]!, 'tok512')) {
    const expected = hasSpecialText(tk, c.text) ? c.sentencepiece_ids! : c.ids;
    assert.deepEqual(tk.encode(c.text), expected, JSON.stringify(c.text));
    assert.deepEqual(runcEncodeNaive(pieces, data.scores, c.text), expected, `naive run.c port ${JSON.stringify(c.text)}`);
    assert.equal(tk.decode(expected), c.text, `round trip ${JSON.stringify(c.text)}`);
  }
  // run.c's own output for its prompts.
  const ref = JSON.parse(fs.readFileSync(ps[2]!, 'utf8')) as { cases: { prompt: string; prompt_ids: number[] }[] };
  const seen = new Set<string>();
  for (const c of ref.cases) {
    if (seen.has(c.prompt)) continue;
    seen.add(c.prompt);
    assert.deepEqual(tk.encode(c.prompt), c.prompt_ids, `run.c prompt ${JSON.stringify(c.prompt)}`);
  }
  assert.equal(seen.size, 3);
});

test('tok512: GGUF (stories260K.gguf, llama.cpp semantics) agrees with tok512.bin', (t) => {
  const ps = need(t, 'gguf/stories260K.gguf', 'llama2c/tok512.bin', 'reference/tokenizer-cases.json');
  if (!ps) return;
  const g = load('gguf', ps[0]!);
  const b = load('bin', ps[1]!);
  for (const c of cases(ps[2]!, 'tok512')) assert.deepEqual(g.encode(c.text), b.encode(c.text), JSON.stringify(c.text));
});

// ---------------------------------------------------------------------------------------------- Llama 2 32k

test('Llama 2 32k via llama2.c tokenizer.bin (run.c semantics) vs SentencePiece', (t) => {
  const ps = need(t, 'llama2c/tokenizer.bin', 'reference/tokenizer-cases.json');
  if (!ps) return;
  const tk = load('bin', ps[0]!);
  assert.equal(tk.vocabSize, 32000);
  const mismatches: string[] = [];
  let n = 0;
  for (const c of cases(ps[1]!, 'llama2 32000')) {
    const got = tk.encode(c.text);
    if (JSON.stringify(got) !== JSON.stringify(c.ids)) mismatches.push(`${JSON.stringify(c.text)}: got ${show(got)} want ${show(c.ids)}`);
    else n++;
    assert.equal(tk.decode(c.ids), c.decoded, `decode ${JSON.stringify(c.text)}`);
  }
  assert.deepEqual(mismatches, [], mismatches.join('\n'));
  assert.equal(n, 23);
});

test('Llama 2 32k: llama.cpp test vectors (ggml-vocab-llama-spm.gguf .inp/.out), without BOS', (t) => {
  const ps = need(t, 'gguf/vocab/ggml-vocab-llama-spm.gguf', 'gguf/vocab/ggml-vocab-llama-spm.gguf.inp', 'gguf/vocab/ggml-vocab-llama-spm.gguf.out');
  if (!ps) return;
  const tk = load('gguf', ps[0]!);
  const sep = '\n__ggml_vocab_test__\n';
  const inp = fs.readFileSync(ps[1]!, 'utf8');
  const out = fs.readFileSync(ps[2]!, 'utf8');
  // Every input (including the last) is followed by the separator; .out has one line per input + final "\n".
  assert.ok(inp.endsWith(sep));
  const texts = inp.slice(0, -sep.length).split(sep);
  assert.ok(out.endsWith('\n'));
  const lines = out.slice(0, -1).split('\n');
  assert.equal(texts.length, lines.length);
  assert.equal(texts.length, 46);
  let n = 0;
  for (let i = 0; i < texts.length; i++) {
    const want = lines[i]!.trim() === '' ? [] : lines[i]!.trim().split(' ').map(Number);
    assert.deepEqual(tk.encode(texts[i]!, { addSpecialTokens: false }), want, `vector ${i} ${JSON.stringify(texts[i])}`);
    assert.equal(tk.decode(want), texts[i], `decode vector ${i}`);
    n++;
  }
  assert.equal(n, 46);
  // The same vocabulary from tokenizer.bin (run.c semantics) gives the same ids (plus BOS).
  const bin = need(t, 'llama2c/tokenizer.bin');
  if (!bin) return;
  const b = load('bin', bin[0]!);
  for (let i = 0; i < texts.length; i++) assert.deepEqual(b.encode(texts[i]!, { addSpecialTokens: false }), tk.encode(texts[i]!, { addSpecialTokens: false }), `bin vs gguf ${i}`);
});

test('heap BPE equals the naive run.c port on random snippets (Llama 2 32k)', (t) => {
  const ps = need(t, 'llama2c/tokenizer.bin', 'corpus/war-and-peace.txt');
  if (!ps) return;
  const tk = load('bin', ps[0]!);
  const data = readLlama2cTokenizer(ps[0]!);
  const text = fs.readFileSync(ps[1]!, 'utf8');
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const extras = ['🦙', '  ', '\t', 'é', '日本', '\u00a0', '    ', 'xxxxxxx'];
  for (let k = 0; k < 150; k++) {
    const s = rnd(text.length - 200);
    let snip = text.slice(s, s + 1 + rnd(120));
    if (k % 3 === 0) snip = snip.slice(0, rnd(snip.length)) + extras[rnd(extras.length)] + snip.slice(rnd(snip.length));
    snip = snip.replace(/^[\udc00-\udfff]|[\ud800-\udbff]$/g, '');
    assert.deepEqual(tk.encode(snip), runcEncodeNaive(data.vocab, data.scores, snip), JSON.stringify(snip));
  }
});

test('war-and-peace.txt with the Llama 2 32k tokenizer: time, round trip, bin == gguf', (t) => {
  const ps = need(t, 'llama2c/tokenizer.bin', 'corpus/war-and-peace.txt');
  if (!ps) return;
  const tk = load('bin', ps[0]!);
  const text = fs.readFileSync(ps[1]!, 'utf8');
  const t0 = performance.now();
  const ids = tk.encode(text);
  const ms = performance.now() - t0;
  t.diagnostic(`war-and-peace: ${text.length} chars -> ${ids.length} tokens in ${ms.toFixed(0)} ms (tokenizer.bin)`);
  assert.ok(ms < 20000, `encoding took ${ms} ms`);
  assert.equal(tk.decode(ids), text);
  const g = need(t, 'gguf/vocab/ggml-vocab-llama-spm.gguf');
  if (!g) return;
  const gt = load('gguf', g[0]!);
  const t1 = performance.now();
  const ids2 = gt.encode(text);
  t.diagnostic(`war-and-peace: ${ids2.length} tokens in ${(performance.now() - t1).toFixed(0)} ms (gguf)`);
  assert.deepEqual(ids2, ids);
  // A long text without any space or newline (nothing to cut at) stays fast.
  const noSpace = text.slice(0, 300000).replace(/\s/g, '');
  const t2 = performance.now();
  const ids3 = tk.encode(noSpace);
  t.diagnostic(`${noSpace.length} chars without whitespace -> ${ids3.length} tokens in ${(performance.now() - t2).toFixed(0)} ms`);
  assert.equal(tk.decode(ids3), noSpace);
});

// ---------------------------------------------------------------------------------------------- special tokens

test('special-token text is plain text by default and a token with parseSpecial', (t) => {
  const ps = need(t, 'hf/stories260K-hf/tokenizer.json', 'llama2c/tok512.bin', 'gguf/stories260K.gguf');
  if (!ps) return;
  for (const tk of [load('json', ps[0]!), load('bin', ps[1]!), load('gguf', ps[2]!)]) {
    const text = 'Hi<s>there</s>';
    const plain = tk.encode(text, { addSpecialTokens: false });
    assert.ok(!plain.includes(1) && !plain.includes(2), `plain: ${show(plain)}`);
    assert.equal(tk.decode(plain), text);
    const parsed = tk.encode(text, { addSpecialTokens: false, parseSpecial: true });
    assert.equal(parsed.filter((id) => id === 1).length, 1);
    assert.equal(parsed[parsed.length - 1], 2);
    // As HF decodes: only the first emitted piece loses its dummy-prefix space.
    assert.equal(tk.decode(parsed), 'Hi there');
    assert.equal(tk.decode(parsed, { skipSpecialTokens: false }), 'Hi<s> there</s>');
    assert.deepEqual(tk.encode(''), [1]);
    assert.deepEqual(tk.encode('', { addSpecialTokens: false }), []);
  }
});

// ---------------------------------------------------------------------------------------------- streaming

function streamDecode(tk: Tokenizer, ids: readonly number[], skip: boolean): { text: string; chunks: string[] } {
  const sd = new StreamDecoder(tk, { skipSpecialTokens: skip });
  const chunks = ids.map((id) => sd.push(id));
  chunks.push(sd.flush());
  return { text: chunks.join(''), chunks };
}

function wellFormed(s: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

test('StreamDecoder output equals decode() on many sequences', (t) => {
  const ps = need(t, 'llama2c/tokenizer.bin', 'hf/stories260K-hf/tokenizer.json', 'reference/tokenizer-cases.json', 'gguf/vocab/ggml-vocab-llama-spm.gguf');
  if (!ps) return;
  const seqs: [Tokenizer, number[]][] = [];
  const l2 = load('bin', ps[0]!);
  const hf = load('json', ps[1]!);
  const gg = load('gguf', ps[3]!);
  for (const c of cases(ps[2]!, 'llama2 32000')) {
    seqs.push([l2, c.ids], [gg, c.ids], [l2, c.ids.slice(1)], [l2, [...c.ids, 2, ...c.ids]]);
  }
  for (const c of cases(ps[2]!, 'tok512')) seqs.push([hf, c.ids], [hf, c.ids.slice(1)]);
  // Random sequences over the whole vocabulary, biased towards byte tokens (3..258) and specials.
  let seed = 7;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  for (let k = 0; k < 300; k++) {
    const tk = k % 2 ? l2 : hf;
    const ids: number[] = [];
    const len = 1 + rnd(40);
    for (let i = 0; i < len; i++) ids.push(rnd(3) === 0 ? 3 + rnd(256) : rnd(10) === 0 ? rnd(3) : rnd(tk.vocabSize));
    seqs.push([tk, ids]);
  }
  let checked = 0;
  for (const [tk, ids] of seqs) {
    for (const skip of [true, false]) {
      const { text, chunks } = streamDecode(tk, ids, skip);
      assert.equal(text, tk.decode(ids, { skipSpecialTokens: skip }), `ids ${show(ids)} skip=${skip}`);
      for (const ch of chunks) assert.ok(wellFormed(ch));
      checked++;
    }
  }
  t.diagnostic(`${checked} sequences checked`);
  // A byte-fallback emoji split over 4 tokens appears only when complete.
  const ids = l2.encode('emoji 🦙🚀', { addSpecialTokens: true });
  const { chunks } = streamDecode(l2, ids, true);
  assert.ok(chunks.includes('🦙') && chunks.includes('🚀'), JSON.stringify(chunks));
  assert.ok(chunks.every((c) => !c.includes('\ufffd')));
  assert.equal(chunks.join(''), 'emoji 🦙🚀');
});

// ---------------------------------------------------------------------------------------------- formats, errors

test('tokenizer.json variants: merges as strings or pairs, Metaspace, dispatch and unsupported components', (t) => {
  const ps = need(t, 'hf/stories260K-hf/tokenizer.json', 'reference/tokenizer-cases.json');
  if (!ps) return;
  const json = JSON.parse(fs.readFileSync(ps[0]!, 'utf8')) as Record<string, any>;
  assert.equal(detectTokenizerJsonKind(json), 'sentencepiece-bpe');
  const base = SentencePieceBPETokenizer.fromTokenizerJson(json);
  const texts = cases(ps[1]!, 'tok512').map((c) => c.text);
  // "a b" string merges give the same result as [a, b] pairs.
  const strJson = structuredClone(json);
  strJson.model.merges = (json.model.merges as string[][]).map((m) => m.join(' '));
  const strTk = tokenizerFromJson(strJson);
  for (const s of texts) assert.deepEqual(strTk.encode(s), base.encode(s));
  // Modern form: no normalizer, Metaspace(prepend_scheme first, split false) pre-tokenizer + Metaspace decoder.
  // Same ids unless the text starts with a space (Metaspace does not double an existing "▁").
  const ms = structuredClone(json);
  ms.normalizer = null;
  ms.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
  ms.decoder = { type: 'Sequence', decoders: [{ type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false }, { type: 'ByteFallback' }, { type: 'Fuse' }] };
  const msTk = tokenizerFromJson(ms);
  for (const s of texts) {
    if (s.startsWith(' ')) assert.deepEqual(msTk.encode(s), base.encode(s.slice(1)).slice(0, 1).concat(base.encode(s).slice(2)));
    else assert.deepEqual(msTk.encode(s), base.encode(s), JSON.stringify(s));
  }
  // prepend_scheme first: no "▁" after a leading special token.
  const afterSpecial = msTk.encode('<s>Hello', { parseSpecial: true, addSpecialTokens: false });
  assert.equal(afterSpecial[0], 1);
  assert.ok(!afterSpecial.includes(346), `"▁He" must not appear: ${show(afterSpecial)}`);
  assert.equal(msTk.decode(afterSpecial), 'Hello');
  // Split Metaspace: no merge across words.
  const sp = structuredClone(ms);
  sp.pre_tokenizer.split = true;
  assert.deepEqual(tokenizerFromJson(sp).encode('Hello world'), base.encode('Hello world'));
  // Unsupported components are named.
  const bad = (mut: (j: Record<string, any>) => void, re: RegExp) => {
    const j = structuredClone(json);
    mut(j);
    assert.throws(() => tokenizerFromJson(j), (e: unknown) => e instanceof UnsupportedError && re.test((e as Error).message));
  };
  bad((j) => (j.normalizer = { type: 'NFKC' }), /normalizer NFKC/);
  bad((j) => (j.pre_tokenizer = { type: 'Whitespace' }), /pre_tokenizer Whitespace/);
  bad((j) => (j.decoder.decoders[0] = { type: 'CTC' }), /decoder CTC/);
  bad((j) => (j.post_processor = { type: 'MysteryProcessing' }), /post_processor "MysteryProcessing" is not supported/);
  bad((j) => (j.model.type = 'Unigram'), /unigram/);
  // A ByteLevel component makes it a byte-level BPE, which rejects byte_fallback.
  bad((j) => (j.pre_tokenizer = { type: 'ByteLevel' }), /byte_fallback/);
  bad((j) => (j.model.dropout = 0.1), /dropout/);
  // Bad data is a FormatError.
  const j2 = structuredClone(json);
  j2.model.merges.push(['nope', 'zzz']);
  assert.throws(() => tokenizerFromJson(j2), FormatError);
});

test('tokenizer.bin: the SentencePiece tokenizer on the formats/ reader (run.c token roles)', (t) => {
  // The reader's own bounds checks are tested in formats-llama2c.test.ts and formats-hostile.test.ts.
  const ps = need(t, 'llama2c/tok512.bin');
  if (!ps) return;
  const d = readLlama2cTokenizer(ps[0]!);
  assert.equal(d.vocab.length, 512);
  assert.equal(d.maxTokenLength, 7);
  assert.equal(d.vocab[1], '\n<s>\n');
  for (const tk of [SentencePieceBPETokenizer.fromLlama2cTokenizer(ps[0]!), SentencePieceBPETokenizer.fromLlama2cTokenizer(d)]) {
    assert.equal(tk.vocabSize, 512);
    assert.equal(tk.idToToken(1), '<s>');
    assert.equal(tk.idToToken(259), '▁t');
    assert.equal(tk.tokenToId('<0x0A>'), 13);
    assert.ok(tk.isSpecial(1) && tk.isSpecial(2) && tk.isSpecial(0) && !tk.isSpecial(13));
    assert.deepEqual(tk.eosIds, [2]);
  }
  assert.equal(SentencePieceBPETokenizer.fromLlama2cTokenizer(ps[0]!, { vocabSize: 512 }).vocabSize, 512);
  assert.throws(() => SentencePieceBPETokenizer.fromLlama2cTokenizer(ps[0]!, { vocabSize: 100 }), FormatError);
});

test('GGUF metadata: non-llama model is UnsupportedError', () => {
  const md = new Map<string, any>([['tokenizer.ggml.model', 'gpt2']]);
  assert.throws(() => SentencePieceBPETokenizer.fromGGUFMetadata(md), UnsupportedError);
  const md2 = new Map<string, any>([['tokenizer.ggml.model', 'llama'], ['tokenizer.ggml.tokens', ['a', 3]]]);
  assert.throws(() => SentencePieceBPETokenizer.fromGGUFMetadata(md2), FormatError);
});
