// Byte-level BPE training (GPT-2 style), as in Sennrich et al. and the Stanford CS336 assignment:
//   1. split the text on the special tokens (they are never merged across), pre-tokenize every
//      chunk with the GPT-2 regex and count the pre-tokens;
//   2. start from the 256 single bytes (after the special tokens) and repeatedly merge the most
//      frequent adjacent pair inside pre-tokens; ties go to the lexicographically greater pair of
//      byte strings (CS336's rule, so results match its reference fixtures merge for merge).
// Pair counts are updated incrementally: only the pre-tokens that contain the merged pair are
// re-counted. The result converts to a tokenizer.json (HF BPE + ByteLevel) and to GGUF
// `tokenizer.ggml.*` metadata ("gpt2" model), both loadable by ristretto's byte-level tokenizer.

import type { GGUFMetadataEntry } from '../formats/gguf.js';

/** GPT-2's pre-tokenization pattern (tiktoken / CS336 form). */
export const GPT2_SPLIT = /'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface BpeTrainOptions {
  /** Final vocabulary size: special tokens + 256 bytes + merges. */
  vocabSize: number;
  /** Special tokens (ids 0..n-1), never split and never merged. */
  specialTokens?: readonly string[];
}

export interface BpeModel {
  /** Byte string of every token id (special tokens as their UTF-8 bytes). */
  vocab: Uint8Array[];
  /** Merges in order, as byte strings. */
  merges: [Uint8Array, Uint8Array][];
  /** The special tokens and their ids (0..n-1). */
  specialTokens: string[];
}

function cmpBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const r = new Uint8Array(a.length + b.length);
  r.set(a);
  r.set(b, a.length);
  return r;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Pre-token counts of `texts` (special tokens removed, GPT-2 regex). */
export function pretokenCounts(texts: Iterable<string>, specialTokens: readonly string[] = []): Map<string, number> {
  const counts = new Map<string, number>();
  const splitter = specialTokens.length > 0 ? new RegExp([...specialTokens].sort((a, b) => b.length - a.length).map(escapeRegex).join('|'), 'g') : null;
  for (const text of texts) {
    const chunks = splitter === null ? [text] : text.split(splitter);
    for (const chunk of chunks) {
      for (const m of chunk.matchAll(GPT2_SPLIT)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
    }
  }
  return counts;
}

/** Trains a byte-level BPE on `texts` (each string one text; special tokens inside split it). */
export function trainBpe(texts: Iterable<string>, o: BpeTrainOptions): BpeModel {
  const specials = [...(o.specialTokens ?? [])];
  const base = specials.length + 256;
  if (!Number.isInteger(o.vocabSize) || o.vocabSize < base) throw new RangeError(`vocabSize must be an integer >= ${base} (special tokens + 256 bytes)`);
  if (o.vocabSize > 1 << 20) throw new RangeError('vocabSize must be at most 2^20');
  const enc = new TextEncoder();
  const vocab: Uint8Array[] = specials.map((s) => enc.encode(s));
  for (let b = 0; b < 256; b++) vocab.push(Uint8Array.of(b));

  // Unique pre-tokens as id sequences, with their counts.
  const counts = pretokenCounts(texts, specials);
  const words: Int32Array[] = [];
  const freq: number[] = [];
  for (const [w, c] of counts) {
    const bytes = enc.encode(w);
    const ids = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) ids[i] = bytes[i]! + specials.length;
    words.push(ids);
    freq.push(c);
  }

  const SH = 2 ** 21;
  const key = (a: number, b: number): number => a * SH + b;
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addWord = (wi: number, sign: 1 | -1): void => {
    const w = words[wi]!;
    const c = freq[wi]! * sign;
    for (let i = 0; i + 1 < w.length; i++) {
      const k = key(w[i]!, w[i + 1]!);
      const n = (pairCount.get(k) ?? 0) + c;
      if (n === 0) pairCount.delete(k);
      else pairCount.set(k, n);
      if (sign === 1) {
        let s = pairWords.get(k);
        if (s === undefined) pairWords.set(k, (s = new Set()));
        s.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addWord(wi, 1);

  const merges: [Uint8Array, Uint8Array][] = [];
  while (vocab.length < o.vocabSize) {
    let best = -1;
    let bestCount = 0;
    for (const [k, c] of pairCount) {
      if (c > bestCount) {
        best = k;
        bestCount = c;
      } else if (c === bestCount && best >= 0) {
        const a = Math.floor(k / SH), b = k % SH;
        const ba = Math.floor(best / SH), bb = best % SH;
        const d = cmpBytes(vocab[a]!, vocab[ba]!) || cmpBytes(vocab[b]!, vocab[bb]!);
        if (d > 0) best = k;
      }
    }
    if (best < 0) break; // nothing left to merge
    const a = Math.floor(best / SH);
    const b = best % SH;
    const id = vocab.length;
    vocab.push(concat(vocab[a]!, vocab[b]!));
    merges.push([vocab[a]!, vocab[b]!]);
    const affected = pairWords.get(best)!;
    pairWords.delete(best);
    for (const wi of affected) {
      const w = words[wi]!;
      let has = false;
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) { has = true; break; }
      if (!has) continue;
      addWord(wi, -1);
      const nw: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          nw.push(id);
          i++;
        } else nw.push(w[i]!);
      }
      words[wi] = Int32Array.from(nw);
      addWord(wi, 1);
    }
    pairCount.delete(best);
  }
  return { vocab, merges, specialTokens: specials };
}

/** The GPT-2 byte-to-unicode form of a byte string (the token text in tokenizer.json / GGUF). */
export function byteLevelString(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += BYTE_CHAR[x]!;
  return s;
}

const BYTE_CHAR: string[] = (() => {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const t: string[] = new Array(256);
  for (let i = 0; i < 256; i++) t[bs[i]!] = String.fromCharCode(cs[i]!);
  return t;
})();

/** Token strings per id (special tokens verbatim, the rest in GPT-2 byte-level form). */
export function bpeTokenStrings(m: BpeModel): string[] {
  return m.vocab.map((b, i) => (i < m.specialTokens.length ? m.specialTokens[i]! : byteLevelString(b)));
}

/**
 * A HF tokenizer.json for the model: BPE over GPT-2 byte-level pre-tokenization; `bos` (a special
 * token) is prepended by the post-processor when given.
 */
export function bpeTokenizerJson(m: BpeModel, bos: string | null = m.specialTokens[0] ?? null): unknown {
  const toks = bpeTokenStrings(m);
  const vocab: Record<string, number> = {};
  toks.forEach((t, i) => (vocab[t] = i));
  const bosId = bos === null ? -1 : m.specialTokens.indexOf(bos);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: m.specialTokens.map((s, id) => ({ id, content: s, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: bosId < 0 ? null : {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [bos!]: { id: bos, ids: [bosId], tokens: [bos] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false,
      ignore_merges: false, vocab, merges: m.merges.map(([a, b]) => [byteLevelString(a), byteLevelString(b)]),
    },
  };
}

/** GGUF `tokenizer.ggml.*` metadata ("gpt2" byte-level BPE); `bos`/`eos` name special tokens. */
export function bpeGgufMetadata(m: BpeModel, o: { bos?: string | null; eos?: string | null } = {}): GGUFMetadataEntry[] {
  const toks = bpeTokenStrings(m);
  const bos = o.bos === undefined ? (m.specialTokens[0] ?? null) : o.bos;
  const eos = o.eos === undefined ? (m.specialTokens[0] ?? null) : o.eos;
  const md: GGUFMetadataEntry[] = [
    ['tokenizer.ggml.model', 'string', 'gpt2'],
    ['tokenizer.ggml.pre', 'string', 'gpt-2'],
    ['tokenizer.ggml.tokens', { array: 'string' }, toks],
    ['tokenizer.ggml.token_type', { array: 'int32' }, toks.map((_t, i) => (i < m.specialTokens.length ? 3 : 1))],
    ['tokenizer.ggml.merges', { array: 'string' }, m.merges.map(([a, b]) => `${byteLevelString(a)} ${byteLevelString(b)}`)],
  ];
  if (bos !== null) {
    md.push(['tokenizer.ggml.bos_token_id', 'uint32', m.specialTokens.indexOf(bos)]);
    md.push(['tokenizer.ggml.add_bos_token', 'bool', true]);
  }
  if (eos !== null) md.push(['tokenizer.ggml.eos_token_id', 'uint32', m.specialTokens.indexOf(eos)]);
  return md;
}
