// Byte-level BPE (GPT-2, Llama 3, Qwen2/Qwen3), exact to HF `tokenizers`.
//
// Pipeline (HF order): added/special tokens are cut out of the raw text (added-tokens.ts), each remaining piece is
// normalized (NFC for Qwen), pre-tokenized (Split regexes + ByteLevel, pretokenize.ts), mapped to the GPT-2
// bytes->unicode alphabet, and merged by BPE (lowest merge rank first, leftmost on ties, as HF's priority queue does;
// `ignore_merges` takes a pre-token that is itself in the vocabulary as is). The post-processor may add tokens
// (TemplateProcessing, e.g. BOS). Decoding maps symbols back to bytes and decodes UTF-8 with U+FFFD replacement.

import { FormatError, InvalidArgumentError, UnsupportedError } from '../errors.js';
import { parsePostProcessor, type SpecialsAround } from './post-processor.js';
import { EOS_LIKE_TOKENS, type DecodeOptions, type EncodeOptions, type Tokenizer } from './tokenizer.js';
import { AddedTokenMatcher, addedTokensFromJson, encodeAroundAddedTokens, type AddedToken } from './added-tokens.js';
import { decodeUtf8Chunks } from './stream-decoder.js';
import type { GGUFMetadataEntry } from '../formats/gguf.js';
import {
  compileRegex,
  ggufPreTokenizer,
  GPT2_PATTERN,
  LLAMA3_PATTERN,
  QWEN2_PATTERN,
  runPreTokenizer,
  splitText,
  type PreTokenizeStep,
  type SplitBehavior,
} from './pretokenize.js';

// ---------------------------------------------------------------------------------------------------------------
// GPT-2 bytes <-> unicode table

function buildByteTables(): { byteToChar: string[]; charToByte: Int16Array } {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const byteToChar: string[] = new Array(256);
  const charToByte = new Int16Array(512).fill(-1);
  for (let i = 0; i < bs.length; i++) {
    byteToChar[bs[i]!] = String.fromCharCode(cs[i]!);
    charToByte[cs[i]!] = bs[i]!;
  }
  return { byteToChar, charToByte };
}

const { byteToChar: BYTE_TO_CHAR, charToByte: CHAR_TO_BYTE } = buildByteTables();

/** The GPT-2 byte-level form of `s`: its UTF-8 bytes, each mapped to one printable character. */
export function toByteLevel(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out += BYTE_TO_CHAR[c];
      continue;
    }
    if (c < 0x800) {
      out += BYTE_TO_CHAR[0xc0 | (c >> 6)]! + BYTE_TO_CHAR[0x80 | (c & 63)]!;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        out +=
          BYTE_TO_CHAR[0xf0 | (cp >> 18)]! +
          BYTE_TO_CHAR[0x80 | ((cp >> 12) & 63)]! +
          BYTE_TO_CHAR[0x80 | ((cp >> 6) & 63)]! +
          BYTE_TO_CHAR[0x80 | (cp & 63)]!;
        continue;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate, as TextEncoder does
    out += BYTE_TO_CHAR[0xe0 | (c >> 12)]! + BYTE_TO_CHAR[0x80 | ((c >> 6) & 63)]! + BYTE_TO_CHAR[0x80 | (c & 63)]!;
  }
  return out;
}

/**
 * Bytes of a token string as HF's ByteLevel decoder produces them: every character mapped back through the table,
 * or, when some character is not in the table (added tokens like "<|im_start|>" are, non-ASCII ones may not be),
 * the string's own UTF-8 bytes.
 */
export function byteLevelTokenBytes(token: string): Uint8Array {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const b = c < 512 ? CHAR_TO_BYTE[c]! : -1;
    if (b < 0) return utf8.encode(token);
    out[i] = b;
  }
  return out;
}

const utf8 = new TextEncoder();

/** transformers' clean_up_tokenization. */
export function cleanUpTokenization(s: string): string {
  return s
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration


export interface ByteLevelBPEConfig {
  /** Token string per id (holes allowed). */
  vocab: Map<string, number>;
  /** Merges in rank order, as pairs. */
  merges: [string, string][];
  addedTokens: AddedToken[];
  normalize: ((s: string) => string) | null;
  preTokenizer: PreTokenizeStep[];
  ignoreMerges: boolean;
  /** Token ids the post-processor puts around a single sequence. */
  postProcessor: SpecialsAround | null;
  bosId: number | null;
  eosIds: number[];
  cleanUpTokenizationSpaces: boolean;
  /** Where the config came from, for error messages. */
  source: string;
  /** llama.cpp's `tokenizer.ggml.pre` name for this pre-tokenization (normalizer, split, ignore_merges), null when
   *  it has none: then the tokenizer cannot be written into a GGUF file. */
  ggufPre?: string | null;
}

export interface ByteLevelDecodeOptions extends DecodeOptions {
  /** transformers' clean_up_tokenization_spaces (default: the tokenizer_config's value, else false). */
  cleanUpTokenizationSpaces?: boolean;
}

const CACHE_LIMIT = 200_000;
const SHIFT = 2 ** 21; // ids < 2^21

function buildNormalizer(n: any, source: string): ((s: string) => string) | null {
  if (n === null || n === undefined) return null;
  switch (n.type) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD': {
      const form = n.type as 'NFC';
      return (s) => s.normalize(form);
    }
    case 'Lowercase':
      return (s) => s.toLowerCase();
    case 'Sequence': {
      const fs = (n.normalizers ?? []).map((x: any) => buildNormalizer(x, source)).filter((f: any) => f !== null) as ((
        s: string,
      ) => string)[];
      if (fs.length === 0) return null;
      return (s) => fs.reduce((acc, f) => f(acc), s);
    }
    default:
      throw new UnsupportedError(`${source}: normalizer "${n.type}" is not supported by the byte-level BPE tokenizer`);
  }
}

function buildPreTokenizer(p: any, source: string): { steps: PreTokenizeStep[]; byteLevel: boolean } {
  if (p === null || p === undefined) {
    throw new UnsupportedError(`${source}: a byte-level BPE tokenizer needs a ByteLevel pre_tokenizer (found none)`);
  }
  const steps: PreTokenizeStep[] = [];
  let byteLevel = false;
  const add = (q: any): void => {
    if (byteLevel) {
      throw new UnsupportedError(`${source}: pre_tokenizer "${q.type}" after ByteLevel is not supported`);
    }
    switch (q.type) {
      case 'Sequence':
        for (const x of q.pretokenizers ?? []) add(x);
        return;
      case 'Split': {
        const pat = q.pattern ?? {};
        let pattern: RegExp | string;
        if (typeof pat.Regex === 'string') pattern = compileRegex(pat.Regex);
        else if (typeof pat.String === 'string') pattern = pat.String;
        else throw new FormatError({ file: source, where: 'pre_tokenizer Split.pattern', expected: 'Regex or String' });
        const behavior = String(q.behavior) as SplitBehavior;
        if (!['Isolated', 'Removed', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'].includes(behavior)) {
          throw new UnsupportedError(`${source}: pre_tokenizer Split behavior "${q.behavior}"`);
        }
        const invert = Boolean(q.invert);
        steps.push((s) => splitText(s, pattern, behavior, invert));
        return;
      }
      case 'ByteLevel': {
        if (q.add_prefix_space) steps.push((s) => [s.startsWith(' ') ? s : ' ' + s]);
        if (q.use_regex !== false) {
          const re = compileRegex(GPT2_PATTERN);
          steps.push((s) => splitText(s, re, 'Isolated'));
        }
        byteLevel = true;
        return;
      }
      default:
        throw new UnsupportedError(`${source}: pre_tokenizer "${q.type}" is not supported by the byte-level BPE tokenizer`);
    }
  };
  add(p);
  if (!byteLevel) {
    throw new UnsupportedError(`${source}: pre_tokenizer has no ByteLevel step; not a byte-level BPE tokenizer`);
  }
  return { steps, byteLevel };
}

/**
 * llama.cpp's pre-tokenizer name for a tokenizer.json, when its normalizer, pre_tokenizer and ignore_merges are
 * exactly one of the families llama.cpp reproduces with the same regex: GPT-2 (ByteLevel with its regex), Llama 3
 * (Split on the Llama 3 regex + ByteLevel, ignore_merges), Qwen2/3 (NFC, Split on the Qwen2 regex + ByteLevel).
 */
function ggufPreOf(json: any): string | null {
  const p = json.pre_tokenizer;
  const norm = json.normalizer ?? null;
  const ignore = Boolean(json.model?.ignore_merges);
  const plainByteLevel = (q: any): boolean => q?.type === 'ByteLevel' && !q.add_prefix_space;
  if (plainByteLevel(p) && p.use_regex !== false && norm === null && !ignore) return 'gpt-2';
  const seq = p?.type === 'Sequence' && Array.isArray(p.pretokenizers) && p.pretokenizers.length === 2 ? p.pretokenizers : null;
  const split = seq?.[0];
  if (!seq || split?.type !== 'Split' || split.behavior !== 'Isolated' || split.invert || !plainByteLevel(seq[1]) || seq[1].use_regex !== false) return null;
  const re = split.pattern?.Regex;
  if (re === LLAMA3_PATTERN && norm === null && ignore) return 'llama-bpe';
  if (re === QWEN2_PATTERN && norm?.type === 'NFC' && !ignore) return 'qwen2';
  return null;
}

function checkDecoder(d: any, source: string): void {
  if (d === null || d === undefined) {
    throw new UnsupportedError(`${source}: decoder null (a byte-level BPE tokenizer needs the ByteLevel decoder)`);
  }
  if (d.type === 'ByteLevel') return;
  if (d.type === 'Sequence' && Array.isArray(d.decoders) && d.decoders.length === 1) return checkDecoder(d.decoders[0], source);
  throw new UnsupportedError(`${source}: decoder "${d.type}" is not supported by the byte-level BPE tokenizer`);
}

function tokenContent(v: any): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof v.content === 'string') return v.content;
  return null;
}

// ---------------------------------------------------------------------------------------------------------------

export class ByteLevelBPETokenizer implements Tokenizer {
  readonly kind = 'byte-level-bpe' as const;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosIds: readonly number[];
  /** Default for decode's cleanUpTokenizationSpaces (tokenizer_config clean_up_tokenization_spaces). */
  readonly cleanUpTokenizationSpaces: boolean;

  private readonly vocab: Map<string, number>;
  private readonly idToTok: (string | undefined)[];
  /** (leftId * 2^21 + rightId) -> rank * 2^21 + mergedId */
  private readonly merges: Map<number, number>;
  private readonly added: AddedTokenMatcher;
  private readonly normalize: ((s: string) => string) | null;
  private readonly preTokenizer: PreTokenizeStep[];
  private readonly ignoreMerges: boolean;
  private readonly postProcessor: SpecialsAround | null;
  private readonly mergeList: [string, string][];
  private readonly addedList: AddedToken[];
  private readonly ggufPre: string | null;
  private readonly cache = new Map<string, number[]>();
  /** Byte-level char code -> vocab id of the one-character token. */
  private readonly charIds: Int32Array;

  constructor(cfg: ByteLevelBPEConfig) {
    this.vocab = cfg.vocab;
    let maxId = -1;
    for (const id of cfg.vocab.values()) if (id > maxId) maxId = id;
    for (const t of cfg.addedTokens) if (t.id > maxId) maxId = t.id;
    if (maxId >= SHIFT) throw new UnsupportedError(`${cfg.source}: vocabulary ids up to ${maxId} exceed 2^21`);
    this.vocabSize = maxId + 1;
    this.idToTok = new Array(maxId + 1);
    for (const [tok, id] of cfg.vocab) this.idToTok[id] = tok;
    for (const t of cfg.addedTokens) if (this.idToTok[t.id] === undefined) this.idToTok[t.id] = t.content;
    this.merges = new Map();
    cfg.merges.forEach(([a, b], rank) => {
      const ia = cfg.vocab.get(a);
      const ib = cfg.vocab.get(b);
      const im = cfg.vocab.get(a + b);
      if (ia === undefined || ib === undefined || im === undefined) return; // HF refuses such files; we skip
      const key = ia * SHIFT + ib;
      if (!this.merges.has(key)) this.merges.set(key, rank * SHIFT + im);
    });
    this.charIds = new Int32Array(512).fill(-1);
    for (let c = 0; c < 512; c++) {
      const id = cfg.vocab.get(String.fromCharCode(c));
      if (id !== undefined) this.charIds[c] = id;
    }
    this.normalize = cfg.normalize;
    this.added = new AddedTokenMatcher(cfg.addedTokens, cfg.normalize);
    this.preTokenizer = cfg.preTokenizer;
    this.ignoreMerges = cfg.ignoreMerges;
    this.postProcessor = cfg.postProcessor;
    this.mergeList = cfg.merges;
    this.addedList = cfg.addedTokens;
    this.ggufPre = cfg.ggufPre ?? null;
    this.bosId = cfg.bosId;
    this.eosIds = Object.freeze([...new Set(cfg.eosIds)]);
    this.cleanUpTokenizationSpaces = cfg.cleanUpTokenizationSpaces;
  }

  /** Build from a parsed HF tokenizer.json (and optionally its tokenizer_config.json). */
  static fromTokenizerJson(json: any, tokenizerConfig?: any, source = 'tokenizer.json'): ByteLevelBPETokenizer {
    if (!json || typeof json !== 'object') throw new FormatError({ file: source, where: 'root', expected: 'an object' });
    const model = json.model;
    if (!model || model.type !== 'BPE') {
      throw new UnsupportedError(`${source}: model type "${model?.type}" (the byte-level tokenizer needs BPE)`);
    }
    if (model.dropout) throw new UnsupportedError(`${source}: BPE dropout`);
    if (model.continuing_subword_prefix || model.end_of_word_suffix) {
      throw new UnsupportedError(`${source}: BPE continuing_subword_prefix / end_of_word_suffix`);
    }
    if (model.byte_fallback) throw new UnsupportedError(`${source}: BPE byte_fallback in a byte-level tokenizer`);
    const vocab = new Map<string, number>();
    if (!model.vocab || typeof model.vocab !== 'object') {
      throw new FormatError({ file: source, where: 'model.vocab', expected: 'an object' });
    }
    for (const [k, v] of Object.entries(model.vocab)) vocab.set(k, Number(v));
    const merges: [string, string][] = [];
    for (const [i, m] of (model.merges ?? []).entries()) {
      if (Array.isArray(m) && m.length === 2) merges.push([String(m[0]), String(m[1])]);
      else if (typeof m === 'string') {
        const sp = m.indexOf(' ');
        if (sp < 0 || m.indexOf(' ', sp + 1) >= 0) {
          throw new FormatError({ file: source, where: `model.merges[${i}]`, expected: '"a b"', found: JSON.stringify(m) });
        }
        merges.push([m.slice(0, sp), m.slice(sp + 1)]);
      } else throw new FormatError({ file: source, where: `model.merges[${i}]`, found: JSON.stringify(m) });
    }
    const normalize = buildNormalizer(json.normalizer, source);
    const { steps } = buildPreTokenizer(json.pre_tokenizer, source);
    checkDecoder(json.decoder, source);
    const addedTokens = addedTokensFromJson(json.added_tokens);
    const post = parsePostProcessor(json.post_processor, source, (s) => addedTokens.find((t) => t.content === s)?.id ?? vocab.get(s));
    const lookup = (s: string | null): number | null => {
      if (s === null) return null;
      const a = addedTokens.find((t) => t.content === s);
      if (a) return a.id;
      return vocab.get(s) ?? null;
    };
    const cfg = tokenizerConfig ?? {};
    let bosId = lookup(tokenContent(cfg.bos_token));
    if (bosId === null && tokenizerConfig === undefined && post) bosId = post.prefix[0] ?? null;
    const eosIds: number[] = [];
    const eos = lookup(tokenContent(cfg.eos_token));
    if (eos !== null) eosIds.push(eos);
    for (const s of EOS_LIKE_TOKENS) {
      const a = addedTokens.find((t) => t.content === s && t.special);
      if (a) eosIds.push(a.id);
    }
    return new ByteLevelBPETokenizer({
      vocab,
      merges,
      addedTokens,
      normalize,
      preTokenizer: steps,
      ignoreMerges: Boolean(model.ignore_merges),
      postProcessor: post,
      bosId,
      eosIds,
      cleanUpTokenizationSpaces: Boolean(cfg.clean_up_tokenization_spaces),
      source,
      ggufPre: ggufPreOf(json),
    });
  }

  /** Build from GGUF metadata of a `tokenizer.ggml.model = "gpt2"` file. */
  static fromGGUFMetadata(meta: Map<string, unknown>, source = 'GGUF'): ByteLevelBPETokenizer {
    const get = (k: string): unknown => meta.get(k);
    const model = get('tokenizer.ggml.model');
    if (model !== 'gpt2') {
      throw new UnsupportedError(`${source}: tokenizer.ggml.model "${String(model)}" is not byte-level BPE ("gpt2")`);
    }
    const tokens = get('tokenizer.ggml.tokens');
    if (!Array.isArray(tokens)) {
      throw new FormatError({ file: source, where: 'tokenizer.ggml.tokens', expected: 'an array of strings' });
    }
    const mergesRaw = get('tokenizer.ggml.merges');
    if (!Array.isArray(mergesRaw)) {
      throw new FormatError({ file: source, where: 'tokenizer.ggml.merges', expected: 'an array of strings' });
    }
    const types = get('tokenizer.ggml.token_type');
    const typeArr = Array.isArray(types) ? types.map(Number) : [];
    const vocab = new Map<string, number>();
    const addedTokens: AddedToken[] = [];
    tokens.forEach((t, id) => {
      const s = String(t);
      if (!vocab.has(s)) vocab.set(s, id);
      const ty = typeArr[id] ?? 1;
      // 2 unknown, 3 control, 4 user-defined: matched in text as added tokens (control/unknown are special)
      if (ty === 2 || ty === 3 || ty === 4) {
        addedTokens.push({
          id,
          content: s,
          special: ty !== 4,
          singleWord: false,
          lstrip: false,
          rstrip: false,
          normalized: false,
        });
      }
    });
    const merges: [string, string][] = mergesRaw.map((m, i) => {
      const s = String(m);
      const sp = s.indexOf(' ');
      if (sp < 0) throw new FormatError({ file: source, where: `tokenizer.ggml.merges[${i}]`, expected: '"a b"', found: JSON.stringify(s) });
      return [s.slice(0, sp), s.slice(sp + 1)];
    });
    const preName = get('tokenizer.ggml.pre');
    const pre = ggufPreTokenizer(typeof preName === 'string' ? preName : undefined);
    const steps: PreTokenizeStep[] = pre.patterns.map((p) => {
      const re = compileRegex(p);
      return (s: string) => splitText(s, re, 'Isolated');
    });
    const num = (k: string): number | null => {
      const v = get(k);
      return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : null;
    };
    const bosId = num('tokenizer.ggml.bos_token_id');
    const eosIds: number[] = [];
    for (const k of ['tokenizer.ggml.eos_token_id', 'tokenizer.ggml.eot_token_id', 'tokenizer.ggml.eom_token_id']) {
      const v = num(k);
      if (v !== null) eosIds.push(v);
    }
    const addBosMeta = get('tokenizer.ggml.add_bos_token');
    const addEosMeta = get('tokenizer.ggml.add_eos_token');
    const addBos = typeof addBosMeta === 'boolean' ? addBosMeta : pre.addBos;
    const post: SpecialsAround = {
      prefix: addBos && bosId !== null ? [bosId] : [],
      suffix: addEosMeta === true && eosIds.length ? [eosIds[0]!] : [],
    };
    const nfc = pre.nfc ? (s: string) => s.normalize('NFC') : null;
    return new ByteLevelBPETokenizer({
      vocab,
      merges,
      addedTokens,
      normalize: nfc,
      preTokenizer: steps,
      ignoreMerges: pre.ignoreMerges,
      postProcessor: post.prefix.length + post.suffix.length > 0 ? post : null,
      bosId,
      eosIds,
      cleanUpTokenizationSpaces: false,
      source,
      ggufPre: typeof preName === 'string' ? preName : 'default',
    });
  }

  /**
   * GGUF `tokenizer.ggml.*` metadata (model "gpt2") that reads back as this tokenizer, or null when its
   * pre-tokenization has no llama.cpp name. Token types: 1 normal, 3 special added (control), 4 other added
   * (user-defined), 5 for ids the vocabulary skips (written as `[PAD<id>]`).
   */
  toGGUFMetadata(): GGUFMetadataEntry[] | null {
    if (this.ggufPre === null) return null;
    const tokens: string[] = [];
    const types: number[] = [];
    const added = new Map(this.addedList.map((a) => [a.id, a]));
    for (let id = 0; id < this.vocabSize; id++) {
      const a = added.get(id);
      const t = this.idToTok[id];
      tokens.push(t ?? `[PAD${id}]`);
      types.push(a !== undefined ? (a.special ? 3 : 4) : t === undefined ? 5 : 1);
    }
    const md: GGUFMetadataEntry[] = [
      ['tokenizer.ggml.model', 'string', 'gpt2'],
      ['tokenizer.ggml.pre', 'string', this.ggufPre],
      ['tokenizer.ggml.tokens', { array: 'string' }, tokens],
      ['tokenizer.ggml.token_type', { array: 'int32' }, types],
      ['tokenizer.ggml.merges', { array: 'string' }, this.mergeList.map(([a, b]) => `${a} ${b}`)],
    ];
    if (this.bosId !== null) md.push(['tokenizer.ggml.bos_token_id', 'uint32', this.bosId]);
    if (this.eosIds.length > 0) md.push(['tokenizer.ggml.eos_token_id', 'uint32', this.eosIds[0]!]);
    const pre = this.postProcessor?.prefix ?? [];
    const suf = this.postProcessor?.suffix ?? [];
    md.push(['tokenizer.ggml.add_bos_token', 'bool', pre.length === 1 && pre[0] === this.bosId]);
    md.push(['tokenizer.ggml.add_eos_token', 'bool', suf.length === 1 && suf[0] === this.eosIds[0]]);
    if ((pre.length > 0 && !(pre.length === 1 && pre[0] === this.bosId)) || (suf.length > 0 && !(suf.length === 1 && suf[0] === this.eosIds[0]))) return null;
    return md;
  }

  // -------------------------------------------------------------------------------------------------------------

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new InvalidArgumentError(`encode: text must be a string, got ${typeof text}`);
    const ids = encodeAroundAddedTokens(this.added, text, options.parseSpecial ?? false, this.normalize, (t, out) => this.encodeText(t, out));
    if ((options.addSpecialTokens ?? true) && this.postProcessor) return [...this.postProcessor.prefix, ...ids, ...this.postProcessor.suffix];
    return ids;
  }

  /** Pre-tokenize + BPE a normalized text piece that contains no added tokens. */
  private encodeText(text: string, ids: number[]): void {
    if (text.length === 0) return;
    const pieces = runPreTokenizer(this.preTokenizer, text);
    const cache = this.cache;
    for (const p of pieces) {
      let r = cache.get(p);
      if (r === undefined) {
        r = this.bpe(toByteLevel(p));
        if (cache.size >= CACHE_LIMIT) cache.clear();
        cache.set(p, r);
      }
      for (let k = 0; k < r.length; k++) ids.push(r[k]!);
    }
  }

  /** BPE-merge one byte-level word into ids. */
  private bpe(word: string): number[] {
    if (this.ignoreMerges) {
      const whole = this.vocab.get(word);
      if (whole !== undefined) return [whole];
    }
    const n = word.length;
    const sym: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.charIds[word.charCodeAt(i)]!;
      if (id >= 0) sym.push(id); // a character without a token is dropped (HF with unk_token null)
    }
    if (sym.length <= 1) return sym;
    return sym.length <= 48 ? this.mergeSmall(sym) : this.mergeHeap(sym);
  }

  /** Repeatedly apply the lowest-rank (leftmost on ties) merge; O(n^2), fast for short words. */
  private mergeSmall(sym: number[]): number[] {
    const merges = this.merges;
    while (sym.length > 1) {
      let best = Infinity;
      let bestPos = -1;
      for (let i = 0; i + 1 < sym.length; i++) {
        const m = merges.get(sym[i]! * SHIFT + sym[i + 1]!);
        if (m !== undefined && m < best) {
          best = m;
          bestPos = i;
        }
      }
      if (bestPos < 0) break;
      sym[bestPos] = best % SHIFT;
      sym.splice(bestPos + 1, 1);
    }
    return sym;
  }

  /** HF's algorithm: a priority queue of (rank, position) over a linked list of symbols. */
  private mergeHeap(init: number[]): number[] {
    const merges = this.merges;
    const n = init.length;
    const sym = Int32Array.from(init);
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    // binary min-heap of keys rank * 2^31 + pos (rank < 2^21, pos < 2^31)
    const heap: number[] = [];
    const P = 2 ** 31;
    const push = (k: number): void => {
      let i = heap.length;
      heap.push(k);
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p]! <= k) break;
        heap[i] = heap[p]!;
        i = p;
      }
      heap[i] = k;
    };
    const pop = (): number => {
      const top = heap[0]!;
      const last = heap.pop()!;
      if (heap.length > 0) {
        let i = 0;
        const len = heap.length;
        while (true) {
          const l = 2 * i + 1;
          if (l >= len) break;
          const r = l + 1;
          const c = r < len && heap[r]! < heap[l]! ? r : l;
          if (heap[c]! >= last) break;
          heap[i] = heap[c]!;
          i = c;
        }
        heap[i] = last;
      }
      return top;
    };
    for (let i = 0; i + 1 < n; i++) {
      const m = merges.get(sym[i]! * SHIFT + sym[i + 1]!);
      if (m !== undefined) push(Math.floor(m / SHIFT) * P + i);
    }
    while (heap.length > 0) {
      const key = pop();
      const rank = Math.floor(key / P);
      const pos = key % P;
      if (!alive[pos]) continue;
      const nx = next[pos]!;
      if (nx < 0) continue;
      const m = merges.get(sym[pos]! * SHIFT + sym[nx]!);
      if (m === undefined || Math.floor(m / SHIFT) !== rank) continue; // stale entry
      sym[pos] = m % SHIFT;
      alive[nx] = 0;
      const nn = next[nx]!;
      next[pos] = nn;
      if (nn >= 0) prev[nn] = pos;
      const pv = prev[pos]!;
      if (pv >= 0) {
        const m2 = merges.get(sym[pv]! * SHIFT + sym[pos]!);
        if (m2 !== undefined) push(Math.floor(m2 / SHIFT) * P + pv);
      }
      if (nn >= 0) {
        const m3 = merges.get(sym[pos]! * SHIFT + sym[nn]!);
        if (m3 !== undefined) push(Math.floor(m3 / SHIFT) * P + pos);
      }
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]!) out.push(sym[i]!);
    return out;
  }

  // -------------------------------------------------------------------------------------------------------------

  decode(ids: readonly number[], options: ByteLevelDecodeOptions = {}): string {
    const skip = options.skipSpecialTokens ?? true;
    const parts: Uint8Array[] = [];
    for (const id of ids) {
      const tok = this.tokenString(id);
      if (tok === undefined) continue; // HF drops unknown ids
      if (skip && this.added.isSpecialContent(tok)) continue;
      parts.push(byteLevelTokenBytes(tok));
    }
    const s = decodeUtf8Chunks(parts);
    return (options.cleanUpTokenizationSpaces ?? this.cleanUpTokenizationSpaces) ? cleanUpTokenization(s) : s;
  }

  /** The string HF's decoder sees for `id`: the added token's content, else the vocabulary string. */
  private tokenString(id: number): string | undefined {
    const a = this.added.get(id);
    if (a) return a.content;
    return this.idToTok[id];
  }

  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 ? this.idToTok[id] : undefined;
  }

  tokenToId(token: string): number | undefined {
    return this.added.getByContent(token)?.id ?? this.vocab.get(token);
  }

  isSpecial(id: number): boolean {
    return this.added.isSpecial(id);
  }

  /** The added tokens (special and not), e.g. for chat templates. */
  get addedTokens(): readonly AddedToken[] {
    return this.added.tokens;
  }

  tokenBytes(id: number, _prevId: number | null): Uint8Array {
    const tok = this.tokenString(id);
    if (tok === undefined) return new Uint8Array(0);
    return byteLevelTokenBytes(tok);
  }
}
