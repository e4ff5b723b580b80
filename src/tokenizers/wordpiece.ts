// WordPiece (BERT family: MiniLM, bge, e5, ...), with HF `tokenizers` semantics:
//   added/special tokens matched first (added-tokens.ts), then BertNormalizer (clean text, CJK spacing,
//   accent stripping, lowercase), BertPreTokenizer (whitespace, then every punctuation char on its own),
//   greedy longest-match-first WordPiece with a "##" continuation prefix, and a TemplateProcessing /
//   BertProcessing post-processor ([CLS] $A [SEP]).
// Loads from `tokenizer.json` or from GGUF metadata (`tokenizer.ggml.model = "bert"`, llama.cpp's "phantom
// space" vocabulary form: "▁word" starts a word, a bare "word" continues one).

import { FormatError, InvalidArgumentError, UnsupportedError } from '../errors.js';
import { parsePostProcessor } from './post-processor.js';
import { AddedTokenMatcher, addedTokensFromJson, encodeAroundAddedTokens, type AddedToken } from './added-tokens.js';
import type { DecodeOptions, EncodeOptions, Tokenizer } from './tokenizer.js';

export interface BertNormalizerOptions {
  cleanText: boolean;
  handleChineseChars: boolean;
  /** null: follow `lowercase` (HF's default). */
  stripAccents: boolean | null;
  lowercase: boolean;
}

export interface WordPieceConfig {
  /** id -> token, in HF form ("word", "##piece", "[CLS]"). */
  tokens: readonly string[];
  unkId: number;
  continuingSubwordPrefix: string;
  maxInputCharsPerWord: number;
  /** null: no normalizer. */
  normalizer: BertNormalizerOptions | null;
  addedTokens: AddedToken[];
  /** Ids the post-processor puts before and after the text ([CLS] / [SEP]). */
  prefixIds: number[];
  suffixIds: number[];
  clsId: number | null;
  sepId: number | null;
  padId: number | null;
  /** Apply the WordPiece decoder's cleanup (" ." -> ".", " n't" -> "n't", ...). */
  decodeCleanup: boolean;
  source: string;
}

const BERT_NORMALIZER_DEFAULTS: BertNormalizerOptions = { cleanText: true, handleChineseChars: true, stripAccents: null, lowercase: true };

const CONTROL = /\p{C}/u;
const WHITESPACE = /\p{White_Space}/u;
const PUNCT = /\p{P}/u;
const MARK_NONSPACING = /\p{Mn}/gu;

/** HF `is_control`: category C*, except \t \n \r (which count as whitespace). */
function isControl(ch: string): boolean {
  return ch !== '\t' && ch !== '\n' && ch !== '\r' && CONTROL.test(ch);
}

/** The CJK Unified Ideograph blocks BERT puts spaces around (HF `is_chinese_char`). */
function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** ASCII punctuation (incl. $ + < = > ^ ` | ~, which Unicode calls symbols) or Unicode P*. */
function isBertPunctuation(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  if ((c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e)) return true;
  return PUNCT.test(ch);
}

/** HF BertNormalizer, in its order: clean text, CJK spacing, strip accents (NFD, drop Mn), lowercase per char. */
export function bertNormalize(text: string, o: BertNormalizerOptions): string {
  let s = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (o.cleanText) {
      if (cp === 0 || cp === 0xfffd || isControl(ch)) continue;
      if (WHITESPACE.test(ch)) {
        s += ' ';
        continue;
      }
    }
    s += o.handleChineseChars && isChineseChar(cp) ? ` ${ch} ` : ch;
  }
  if (o.stripAccents ?? o.lowercase) s = s.normalize('NFD').replace(MARK_NONSPACING, '');
  if (o.lowercase) {
    // Per character, as Rust's char::to_lowercase (no context-dependent final sigma).
    let l = '';
    for (const ch of s) l += ch.toLowerCase();
    s = l;
  }
  return s;
}

/** HF BertPreTokenizer: split on whitespace (dropped), then isolate every punctuation character. */
export function bertPreTokenize(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  for (const ch of text) {
    if (ch === ' ' || WHITESPACE.test(ch)) {
      if (cur) words.push(cur);
      cur = '';
    } else if (isBertPunctuation(ch)) {
      if (cur) words.push(cur);
      words.push(ch);
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (cur) words.push(cur);
  return words;
}

/** WordPiece decoder cleanup (HF decoders::wordpiece::cleanup). */
function cleanup(s: string): string {
  return s
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(' do not', " don't")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export class WordPieceTokenizer implements Tokenizer {
  readonly kind = 'wordpiece' as const;
  readonly vocabSize: number;
  /** [CLS] plays the role of BOS. */
  readonly bosId: number | null;
  /** [SEP] plays the role of EOS. */
  readonly eosIds: readonly number[];
  readonly clsId: number | null;
  readonly sepId: number | null;
  readonly padId: number | null;
  readonly unkId: number;
  readonly prefixIds: readonly number[];
  readonly suffixIds: readonly number[];

  private readonly vocab = new Map<string, number>();
  private readonly tokens: readonly string[];
  private readonly added: AddedTokenMatcher;
  private readonly normalize: ((s: string) => string) | null;
  private readonly prefix: string;
  private readonly maxChars: number;
  private readonly cleanupOnDecode: boolean;
  private readonly cache = new Map<string, number[]>();

  constructor(cfg: WordPieceConfig) {
    this.tokens = cfg.tokens;
    cfg.tokens.forEach((t, id) => {
      if (!this.vocab.has(t)) this.vocab.set(t, id);
    });
    for (const a of cfg.addedTokens) if (!this.vocab.has(a.content)) this.vocab.set(a.content, a.id);
    this.vocabSize = Math.max(cfg.tokens.length, ...cfg.addedTokens.map((a) => a.id + 1));
    const n = cfg.normalizer;
    this.normalize = n === null ? null : (s: string) => bertNormalize(s, n);
    this.added = new AddedTokenMatcher(cfg.addedTokens, this.normalize);
    this.prefix = cfg.continuingSubwordPrefix;
    this.maxChars = cfg.maxInputCharsPerWord;
    this.unkId = cfg.unkId;
    this.prefixIds = cfg.prefixIds;
    this.suffixIds = cfg.suffixIds;
    this.clsId = cfg.clsId;
    this.sepId = cfg.sepId;
    this.padId = cfg.padId;
    this.bosId = cfg.clsId;
    this.eosIds = cfg.sepId === null ? [] : [cfg.sepId];
    this.cleanupOnDecode = cfg.decodeCleanup;
  }

  /** From a parsed HF tokenizer.json (model type WordPiece) and optional tokenizer_config.json. */
  static fromTokenizerJson(json: unknown, tokenizerConfig?: unknown, source = 'tokenizer.json'): WordPieceTokenizer {
    if (!isObj(json) || !isObj(json['model'])) throw new FormatError({ file: source, where: 'model', expected: 'an object' });
    const model = json['model'];
    if (model['type'] !== undefined && model['type'] !== 'WordPiece') throw new UnsupportedError(`${source}: model type ${JSON.stringify(model['type'])} is not WordPiece`);
    const vocab = model['vocab'];
    if (!isObj(vocab)) throw new FormatError({ file: source, where: 'model.vocab', expected: 'an object of token -> id' });
    const tokens: string[] = [];
    for (const [tok, id] of Object.entries(vocab)) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 1 << 24) throw new FormatError({ file: source, where: `model.vocab[${JSON.stringify(tok)}]`, expected: 'a non-negative integer id', found: String(id) });
      tokens[id] = tok;
    }
    const addedTokens = addedTokensFromJson(json['added_tokens']);
    for (const a of addedTokens) if (tokens[a.id] === undefined) tokens[a.id] = a.content;
    for (let i = 0; i < tokens.length; i++) if (tokens[i] === undefined) tokens[i] = '';
    const idOf = (s: string): number | undefined => (typeof vocab[s] === 'number' ? (vocab[s] as number) : addedTokens.find((a) => a.content === s)?.id);

    const unkName = typeof model['unk_token'] === 'string' ? model['unk_token'] : '[UNK]';
    const unkId = idOf(unkName);
    if (unkId === undefined) throw new FormatError({ file: source, where: 'model.unk_token', expected: 'a token in the vocabulary', found: JSON.stringify(unkName) });
    const prefix = model['continuing_subword_prefix'] ?? '##';
    if (typeof prefix !== 'string') throw new FormatError({ file: source, where: 'model.continuing_subword_prefix', expected: 'a string', found: typeof prefix });
    const maxChars = model['max_input_chars_per_word'] ?? 100;
    if (typeof maxChars !== 'number') throw new FormatError({ file: source, where: 'model.max_input_chars_per_word', expected: 'a number', found: typeof maxChars });

    const normalizer = parseBertNormalizer(json['normalizer'], source);
    parseBertPreTokenizer(json['pre_tokenizer'], source);
    const pp = parsePostProcessor(json['post_processor'], source, idOf);
    const prefixIds = pp?.prefix ?? [];
    const suffixIds = pp?.suffix ?? [];
    const decoder = json['decoder'];
    if (decoder !== null && decoder !== undefined && (!isObj(decoder) || decoder['type'] !== 'WordPiece')) {
      throw new UnsupportedError(`${source}: decoder ${JSON.stringify(isObj(decoder) ? decoder['type'] : decoder)} is not supported for WordPiece (supported: WordPiece)`);
    }
    const cfg = isObj(tokenizerConfig) ? tokenizerConfig : {};
    const named = (k: string, dflt: string): number | null => {
      const v = cfg[k];
      const name = typeof v === 'string' ? v : isObj(v) && typeof v['content'] === 'string' ? v['content'] : dflt;
      return idOf(name) ?? null;
    };
    return new WordPieceTokenizer({
      tokens,
      unkId,
      continuingSubwordPrefix: prefix,
      maxInputCharsPerWord: maxChars,
      normalizer,
      addedTokens,
      prefixIds,
      suffixIds,
      clsId: named('cls_token', '[CLS]'),
      sepId: named('sep_token', '[SEP]'),
      padId: named('pad_token', '[PAD]'),
      decodeCleanup: isObj(decoder) ? decoder['cleanup'] !== false : true,
      source,
    });
  }

  /**
   * From GGUF metadata (`tokenizer.ggml.model = "bert"`). llama.cpp stores the vocabulary in "phantom space"
   * form: "▁w" is a word-initial piece (HF "w"), "[...]" a special token, any other "w" a continuation (HF "##w").
   */
  static fromGGUFMetadata(meta: Map<string, unknown>, source = 'GGUF'): WordPieceTokenizer {
    const model = meta.get('tokenizer.ggml.model');
    if (model !== 'bert') throw new UnsupportedError(`${source}: tokenizer.ggml.model "${String(model)}" is not WordPiece ("bert")`);
    const raw = meta.get('tokenizer.ggml.tokens');
    if (!Array.isArray(raw) || raw.length === 0) throw new FormatError({ file: source, where: 'tokenizer.ggml.tokens', expected: 'a non-empty array of strings' });
    const typesRaw = meta.get('tokenizer.ggml.token_type');
    const types = Array.isArray(typesRaw) ? typesRaw.map(Number) : [];
    const num = (k: string): number | null => {
      const v = meta.get(k);
      return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : null;
    };
    const tokens: string[] = [];
    const addedTokens: AddedToken[] = [];
    raw.forEach((t, id) => {
      const s = String(t);
      const ty = types[id] ?? 1;
      let hf: string;
      if (s.startsWith('▁')) hf = s.slice(1);
      else if (ty === 3 || (s.startsWith('[') && s.endsWith(']') && s.length > 2)) hf = s;
      else hf = '##' + s;
      tokens.push(hf);
      // 2 unknown, 3 control, 4 user-defined: matched in the raw text as added tokens.
      if (ty === 2 || ty === 3 || ty === 4) addedTokens.push({ id, content: s, special: ty !== 4, singleWord: false, lstrip: false, rstrip: false, normalized: false });
    });
    const unkId = num('tokenizer.ggml.unknown_token_id') ?? tokens.indexOf('[UNK]');
    if (unkId < 0 || unkId >= tokens.length) throw new FormatError({ file: source, where: 'tokenizer.ggml.unknown_token_id', expected: 'a token id', found: String(unkId) });
    const clsId = num('tokenizer.ggml.cls_token_id') ?? num('tokenizer.ggml.bos_token_id');
    const sepId = num('tokenizer.ggml.seperator_token_id') ?? num('tokenizer.ggml.separator_token_id') ?? num('tokenizer.ggml.eos_token_id');
    const addBos = meta.get('tokenizer.ggml.add_bos_token');
    const addEos = meta.get('tokenizer.ggml.add_eos_token');
    return new WordPieceTokenizer({
      tokens,
      unkId,
      continuingSubwordPrefix: '##',
      maxInputCharsPerWord: 100,
      normalizer: BERT_NORMALIZER_DEFAULTS,
      addedTokens,
      prefixIds: clsId !== null && addBos !== false ? [clsId] : [],
      suffixIds: sepId !== null && addEos !== false ? [sepId] : [],
      clsId,
      sepId,
      padId: num('tokenizer.ggml.padding_token_id'),
      decodeCleanup: true,
      source,
    });
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new InvalidArgumentError(`encode: text must be a string, got ${typeof text}`);
    const ids = encodeAroundAddedTokens(this.added, text, options.parseSpecial ?? false, this.normalize, (t, out) => {
      for (const w of bertPreTokenize(t)) this.encodeWord(w, out);
    });
    if (options.addSpecialTokens ?? true) return [...this.prefixIds, ...ids, ...this.suffixIds];
    return ids;
  }

  /** Greedy longest-match-first; a word with an unmatchable rest, or too long, is one [UNK]. */
  private encodeWord(word: string, out: number[]): void {
    const hit = this.cache.get(word);
    if (hit !== undefined) {
      for (const id of hit) out.push(id);
      return;
    }
    const chars = Array.from(word);
    let pieces: number[] = [];
    if (chars.length > this.maxChars) pieces = [this.unkId];
    else {
      let start = 0;
      while (start < chars.length) {
        let end = chars.length;
        let found = -1;
        while (start < end) {
          const sub = (start > 0 ? this.prefix : '') + chars.slice(start, end).join('');
          const id = this.vocab.get(sub);
          if (id !== undefined) {
            found = id;
            break;
          }
          end--;
        }
        if (found < 0) {
          pieces = [this.unkId];
          break;
        }
        pieces.push(found);
        start = end;
      }
    }
    if (this.cache.size < 100_000) this.cache.set(word, pieces);
    for (const id of pieces) out.push(id);
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skip = options.skipSpecialTokens ?? true;
    let s = '';
    let first = true;
    for (const id of ids) {
      if (skip && this.isSpecial(id)) continue;
      const tok = this.tokens[id];
      if (tok === undefined) throw new InvalidArgumentError(`decode: token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      let piece = tok;
      if (!first) piece = tok.startsWith(this.prefix) ? tok.slice(this.prefix.length) : ' ' + tok;
      s += this.cleanupOnDecode ? cleanup(piece) : piece;
      first = false;
    }
    return s;
  }

  idToToken(id: number): string | undefined {
    return this.tokens[id];
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  isSpecial(id: number): boolean {
    return this.added.isSpecial(id);
  }

  tokenBytes(id: number, prevId: number | null): Uint8Array {
    if (this.isSpecial(id)) return new Uint8Array(0);
    const tok = this.tokens[id] ?? '';
    const cont = tok.startsWith(this.prefix);
    const text = cont ? tok.slice(this.prefix.length) : prevId === null || this.isSpecial(prevId) ? tok : ' ' + tok;
    return new TextEncoder().encode(text);
  }
}

function parseBertNormalizer(n: unknown, source: string): BertNormalizerOptions | null {
  if (n === null || n === undefined) return null;
  if (!isObj(n) || n['type'] !== 'BertNormalizer') {
    throw new UnsupportedError(`${source}: normalizer ${JSON.stringify(isObj(n) ? n['type'] : n)} is not supported for WordPiece (supported: BertNormalizer)`);
  }
  const b = (k: string, d: boolean): boolean => (typeof n[k] === 'boolean' ? (n[k] as boolean) : d);
  return {
    cleanText: b('clean_text', true),
    handleChineseChars: b('handle_chinese_chars', true),
    stripAccents: typeof n['strip_accents'] === 'boolean' ? n['strip_accents'] : null,
    lowercase: b('lowercase', true),
  };
}

function parseBertPreTokenizer(p: unknown, source: string): void {
  if (isObj(p) && p['type'] === 'BertPreTokenizer') return;
  throw new UnsupportedError(`${source}: pre_tokenizer ${JSON.stringify(isObj(p) ? p['type'] : p)} is not supported for WordPiece (supported: BertPreTokenizer)`);
}

