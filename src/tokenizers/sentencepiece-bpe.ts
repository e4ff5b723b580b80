// SentencePiece-style BPE (Llama 1/2 family, TinyLlama, Mistral v0.1, stories*): one implementation, three sources.
//
//  - llama2.c `tokenizer.bin` (run.c `encode`): pieces merged by the HIGHEST score among adjacent pairs whose
//    concatenation is in the vocabulary (leftmost wins ties); characters missing from the vocabulary become
//    `<0xXX>` byte tokens BEFORE merging.
//  - HF `tokenizer.json` (BPE + byte_fallback): merges by rank (lowest first, leftmost on ties) between the exact
//    listed pairs; byte fallback before merging, else `<unk>` (fused when fuse_unk).
//  - GGUF (llama.cpp SPM): merges by score like run.c, but characters missing from the vocabulary stay raw text
//    symbols during merging and become byte tokens only at the end (llama.cpp `resegment`).
//
// Merging uses a doubly linked list of symbols and a binary heap of candidate pairs with lazy invalidation,
// O(n log n); it is exactly equivalent to "repeatedly merge the best adjacent pair, leftmost on ties".
// Input is additionally cut at "isolating" characters: characters that can never take part in any merge (no
// multi-symbol vocabulary entry / no merge rule contains them, e.g. "\n" in Llama 2). Cutting there cannot
// change the result, since no pair across such a character can ever merge and pairs in different pieces never
// interact; it only keeps the working set small.

import { FormatError, InvalidArgumentError, UnsupportedError } from '../errors.js';
import { readLlama2cTokenizer, type Llama2cTokenizer } from '../formats/llama2c.js';
import type { DecodeOptions, EncodeOptions, Tokenizer } from './tokenizer.js';
import { AddedTokenMatcher, type AddedToken } from './added-tokens.js';
import { compileRegex, splitText, type SplitBehavior } from './pretokenize.js';
import { decodeWithTokenBytes } from './stream-decoder.js';
import { sentencePieceConfigFromTokenizerJson } from './tokenizer-json.js';

/** GGUF `tokenizer.ggml.token_type` values (llama.cpp `llama_token_type`). */
export const TokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** GGUF metadata value (mirrors `src/formats/gguf.ts`; arrays are plain JS arrays). */
export type GGUFMetadataValue = number | bigint | boolean | string | GGUFMetadataValue[];

/** One normalizer step, applied in order to every non-empty piece of text between added tokens. */
export type NormalizerStep = { type: 'prepend'; prepend: string } | { type: 'replace'; from: string; to: string };

/** HF Metaspace pre-tokenizer. */
export interface MetaspaceSpec {
  replacement: string;
  prependScheme: 'always' | 'first' | 'never';
  split: boolean;
}

/** HF Split pre-tokenizer (Gemma 3: String " ", MergedWithPrevious). `regex`: `pattern` is an Oniguruma regex. */
export interface SplitSpec {
  pattern: string;
  regex: boolean;
  behavior: SplitBehavior;
  invert: boolean;
}

/** One pre-tokenizer step, applied in order to the normalized text (HF pre_tokenizer, or a Sequence of them). */
export type PreTokenizerSpec = ({ type: 'metaspace' } & MetaspaceSpec) | ({ type: 'split' } & SplitSpec);

/** The plain description every constructor builds. */
export interface SentencePieceBPEConfig {
  /** Vocabulary in SentencePiece form ("▁" for space, "<0x0A>" byte tokens, "<s>"). */
  tokens: readonly string[];
  /** Score mode (llama2.c, GGUF): a pair merges when its concatenation is a token; higher score first. */
  scores?: ArrayLike<number>;
  /** Rank mode (tokenizer.json): only these pairs merge, earlier = higher priority. Exactly one of scores/merges. */
  merges?: ReadonlyArray<readonly [string, string]>;
  /** GGUF token types (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte). */
  tokenTypes?: ArrayLike<number>;
  bosId: number | null;
  eosId: number | null;
  unkId: number | null;
  addBos: boolean;
  addEos: boolean;
  /** Prepend one space to the (non-empty) text before encoding. */
  addSpacePrefix: boolean;
  /** Characters missing from the vocabulary become `<0xXX>` tokens (else `unkId`). */
  byteFallback: boolean;

  // ---- refinements (defaults reproduce llama.cpp / run.c) ----
  name?: string;
  /** Every end-of-sequence id (default [eosId]). */
  eosIds?: readonly number[];
  /** Texts used to look up concatenations in score mode (default `tokens`); llama2.c's BOS piece is "\n<s>\n". */
  mergeTexts?: readonly string[];
  /** 'before-merges' (run.c, HF) or 'after-merges' (llama.cpp). Default 'after-merges' in score mode. */
  byteFallbackStage?: 'before-merges' | 'after-merges';
  /** Score mode: only concatenations with score > this merge (run.c starts best_score at -1e10). */
  minMergeScore?: number;
  /**
   * Added tokens, matched in the text with HF `tokenizers` semantics (added-tokens.ts: leftmost-longest,
   * lstrip/rstrip/single_word, `normalized` ones matched after normalization; special ones only with parseSpecial).
   * Default: from tokenTypes (control/unknown special, user-defined always), matched in the raw text.
   */
  addedTokens?: readonly AddedToken[];
  /** Ids that count as special (skipped by decode). Default: control + unknown tokens, bos, eos, unk, special added tokens. */
  specialIds?: readonly number[];
  /** Normalizer steps; default (addSpacePrefix ? prepend "▁" : nothing) then replace " " -> "▁". */
  normalizer?: readonly NormalizerStep[];
  /** Pre-tokenizer steps on the normalized text (default none: the whole text between added tokens is one word). */
  preTokenizers?: readonly PreTokenizerSpec[];
  /** HF fuse_unk: consecutive unknown characters become one unk token. */
  fuseUnk?: boolean;
  /** HF ignore_merges: a whole word present in the vocabulary is emitted as is. */
  ignoreMerges?: boolean;
  /** Ids added before / after the text when addSpecialTokens (default: [bosId] if addBos / [eosId] if addEos). */
  prefixIds?: readonly number[];
  suffixIds?: readonly number[];
  /** Leading spaces removed from the first decoded piece (tokenBytes with prevId null). Default 1 if addSpacePrefix. */
  decodeStripLeadingSpaces?: number;
  /** Replacement character shown for space in tokens (default "▁"). */
  spaceSymbol?: string;
}

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);
const BYTE_TOKEN_RE = /^<0x([0-9A-Fa-f]{2})>$/;

function hex2(b: number): string {
  return b.toString(16).toUpperCase().padStart(2, '0');
}

/** Applies normalizer steps (HF Prepend adds nothing to an empty string). */
function normalizeText(text: string, steps: readonly NormalizerStep[]): string {
  let s = text;
  for (const step of steps) {
    if (step.type === 'prepend') {
      if (s.length > 0) s = step.prepend + s;
    } else s = s.replaceAll(step.from, step.to);
  }
  return s;
}

/** UTF-8 bytes of one code point into `out`. */
function cpUtf8(cp: number, out: number[]): void {
  if (cp < 0x80) out.push(cp);
  else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
  else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
}

/**
 * Open-addressing hash map from a pair of non-negative int32 ids to an int32 value. Much faster than a Map keyed
 * by a * V + b, which for large vocabularies (262k) exceeds the small-integer range and hashes as a double.
 */
class PairTable {
  private ka: Int32Array;
  private kb: Int32Array;
  private val: Int32Array;
  private mask: number;
  size = 0;

  constructor(expected = 1024) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.ka = new Int32Array(cap).fill(-1);
    this.kb = new Int32Array(cap);
    this.val = new Int32Array(cap);
    this.mask = cap - 1;
  }

  private slot(a: number, b: number): number {
    let i = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77)) & this.mask;
    for (;;) {
      const k = this.ka[i]!;
      if (k === -1 || (k === a && this.kb[i] === b)) return i;
      i = (i + 1) & this.mask;
    }
  }

  /** The value for (a, b), or `absent`. */
  get(a: number, b: number, absent: number): number {
    const i = this.slot(a, b);
    return this.ka[i] === -1 ? absent : this.val[i]!;
  }

  set(a: number, b: number, v: number): void {
    const i = this.slot(a, b);
    if (this.ka[i] === -1) {
      this.ka[i] = a;
      this.kb[i] = b;
      if (++this.size * 2 > this.mask + 1) {
        this.val[i] = v;
        this.grow();
        return;
      }
    }
    this.val[i] = v;
  }

  forEachKey(f: (a: number, b: number) => void): void {
    for (let i = 0; i <= this.mask; i++) if (this.ka[i] !== -1) f(this.ka[i]!, this.kb[i]!);
  }

  private grow(): void {
    const { ka, kb, val } = this;
    const cap = (this.mask + 1) * 2;
    this.ka = new Int32Array(cap).fill(-1);
    this.kb = new Int32Array(cap);
    this.val = new Int32Array(cap);
    this.mask = cap - 1;
    for (let i = 0; i < ka.length; i++) {
      if (ka[i] === -1) continue;
      const j = this.slot(ka[i]!, kb[i]!);
      this.ka[j] = ka[i]!;
      this.kb[j] = kb[i]!;
      this.val[j] = val[i]!;
    }
  }
}

/** Growable working arrays for one BPE run (reused between calls). */
class Work {
  cap = 0;
  id = new Int32Array(0);
  start = new Int32Array(0);
  end = new Int32Array(0);
  prev = new Int32Array(0);
  next = new Int32Array(0);
  ver = new Int32Array(0);
  // heap
  hcap = 0;
  hPrio = new Float64Array(0);
  hL = new Int32Array(0);
  hR = new Int32Array(0);
  hVL = new Int32Array(0);
  hVR = new Int32Array(0);
  hn = 0;

  ensure(n: number): void {
    if (n <= this.cap) return;
    const c = Math.max(n, this.cap * 2, 64);
    this.id = new Int32Array(c);
    this.start = new Int32Array(c);
    this.end = new Int32Array(c);
    this.prev = new Int32Array(c);
    this.next = new Int32Array(c);
    this.ver = new Int32Array(c);
    this.cap = c;
  }

  private growHeap(): void {
    const c = Math.max(64, this.hcap * 2);
    const p = new Float64Array(c);
    p.set(this.hPrio);
    const l = new Int32Array(c);
    l.set(this.hL);
    const r = new Int32Array(c);
    r.set(this.hR);
    const vl = new Int32Array(c);
    vl.set(this.hVL);
    const vr = new Int32Array(c);
    vr.set(this.hVR);
    this.hPrio = p;
    this.hL = l;
    this.hR = r;
    this.hVL = vl;
    this.hVR = vr;
    this.hcap = c;
  }

  /** (prio, left) lexicographic: lower priority value first, then leftmost. */
  private less(i: number, j: number): boolean {
    const a = this.hPrio[i]!;
    const b = this.hPrio[j]!;
    return a < b || (a === b && this.hL[i]! < this.hL[j]!);
  }

  private swap(i: number, j: number): void {
    const p = this.hPrio[i]!;
    this.hPrio[i] = this.hPrio[j]!;
    this.hPrio[j] = p;
    let t = this.hL[i]!;
    this.hL[i] = this.hL[j]!;
    this.hL[j] = t;
    t = this.hR[i]!;
    this.hR[i] = this.hR[j]!;
    this.hR[j] = t;
    t = this.hVL[i]!;
    this.hVL[i] = this.hVL[j]!;
    this.hVL[j] = t;
    t = this.hVR[i]!;
    this.hVR[i] = this.hVR[j]!;
    this.hVR[j] = t;
  }

  push(prio: number, l: number, r: number): void {
    if (this.hn === this.hcap) this.growHeap();
    let i = this.hn++;
    this.hPrio[i] = prio;
    this.hL[i] = l;
    this.hR[i] = r;
    this.hVL[i] = this.ver[l]!;
    this.hVR[i] = this.ver[r]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Removes the top entry (caller read it at index 0 first). */
  pop(): void {
    const n = --this.hn;
    if (n === 0) return;
    this.swap(0, n);
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      let m = l;
      if (l + 1 < n && this.less(l + 1, l)) m = l + 1;
      if (!this.less(m, i)) break;
      this.swap(i, m);
      i = m;
    }
  }
}

export class SentencePieceBPETokenizer implements Tokenizer {
  readonly kind = 'sentencepiece-bpe' as const;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosIds: readonly number[];
  readonly eosId: number | null;
  readonly unkId: number | null;
  readonly name: string;
  readonly config: Readonly<SentencePieceBPEConfig>;

  private readonly tokens: readonly string[];
  private readonly tokenToIdMap = new Map<string, number>();
  /** Lookup of merge-candidate texts (mergeTexts) -> id. */
  private readonly pieceToId = new Map<string, number>();
  private readonly mergeTexts: readonly string[];
  private readonly scoreMode: boolean;
  private readonly scores: Float64Array | null;
  private readonly minMergeScore: number;
  private readonly mergeMap: PairTable; // (a, b) -> merge index (rank mode)
  private readonly mergeNew: Int32Array = new Int32Array(0);
  private readonly pairCache = new PairTable(); // (a, b) -> new id or -1 (score mode)
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly isByteToken: Uint8Array;
  private readonly byteValue: Int16Array;
  private readonly special: Uint8Array;
  private readonly afterStage: boolean;
  private readonly normalizer: readonly NormalizerStep[];
  private readonly preTokenizers: readonly PreTokenizerSpec[];
  private readonly splitPatterns: (RegExp | string)[];
  private readonly prefixIds: readonly number[];
  private readonly suffixIds: readonly number[];
  private readonly stripSpaces: number;
  private readonly spaceSymbol: string;
  private readonly fuseUnk: boolean;
  private readonly ignoreMerges: boolean;
  private readonly byteFallback: boolean;
  private readonly added: AddedTokenMatcher;
  /** Per code point (BMP + lazily for astral): 1 = can take part in a merge, 0 = isolating. */
  private readonly mergeableChars = new Set<number>();
  private readonly mergeableUnknown: boolean;
  private readonly pieceBytes: (Uint8Array | null)[];
  private readonly work = new Work();

  constructor(config: SentencePieceBPEConfig) {
    const V = config.tokens.length;
    if (V === 0) throw new InvalidArgumentError('SentencePieceBPETokenizer: empty vocabulary');
    if ((config.scores === undefined) === (config.merges === undefined)) {
      throw new InvalidArgumentError('SentencePieceBPETokenizer: give exactly one of `scores` (score mode) or `merges` (rank mode)');
    }
    if (config.scores !== undefined && config.scores.length !== V) {
      throw new InvalidArgumentError(`SentencePieceBPETokenizer: ${config.scores.length} scores for ${V} tokens`);
    }
    if (config.tokenTypes !== undefined && config.tokenTypes.length !== V) {
      throw new InvalidArgumentError(`SentencePieceBPETokenizer: ${config.tokenTypes.length} token types for ${V} tokens`);
    }
    const checkId = (what: string, id: number | null): number | null => {
      if (id === null) return null;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new InvalidArgumentError(`SentencePieceBPETokenizer: ${what} ${id} outside the vocabulary (size ${V})`);
      return id;
    };
    this.config = config;
    this.name = config.name ?? 'sentencepiece-bpe';
    this.vocabSize = V;
    this.tokens = config.tokens;
    this.bosId = checkId('bosId', config.bosId);
    this.eosId = checkId('eosId', config.eosId);
    this.unkId = checkId('unkId', config.unkId);
    this.eosIds = (config.eosIds ?? (this.eosId === null ? [] : [this.eosId])).map((id) => checkId('eos id', id)!);
    this.spaceSymbol = config.spaceSymbol ?? '▁';
    this.byteFallback = config.byteFallback;
    this.fuseUnk = config.fuseUnk ?? false;
    this.ignoreMerges = config.ignoreMerges ?? false;

    for (let i = 0; i < V; i++) {
      const t = config.tokens[i]!;
      if (!this.tokenToIdMap.has(t)) this.tokenToIdMap.set(t, i);
    }
    this.mergeTexts = config.mergeTexts ?? config.tokens;
    if (this.mergeTexts.length !== V) throw new InvalidArgumentError('SentencePieceBPETokenizer: mergeTexts length differs from tokens');
    for (let i = 0; i < V; i++) {
      const t = this.mergeTexts[i]!;
      if (!this.pieceToId.has(t)) this.pieceToId.set(t, i);
    }

    // Byte tokens.
    this.isByteToken = new Uint8Array(V);
    this.byteValue = new Int16Array(V).fill(-1);
    const types = config.tokenTypes;
    for (let i = 0; i < V; i++) {
      const m = BYTE_TOKEN_RE.exec(config.tokens[i]!);
      if (m && (types === undefined || types[i] === TokenType.BYTE || types[i] === TokenType.NORMAL)) {
        this.isByteToken[i] = 1;
        this.byteValue[i] = parseInt(m[1]!, 16);
      }
    }
    for (let b = 0; b < 256; b++) {
      const id = this.tokenToIdMap.get(`<0x${hex2(b)}>`);
      if (id !== undefined) this.byteIds[b] = id;
    }

    // Special ids.
    this.special = new Uint8Array(V);
    if (config.specialIds !== undefined) {
      for (const id of config.specialIds) this.special[checkId('special id', id)!] = 1;
    } else {
      if (types !== undefined) {
        for (let i = 0; i < V; i++) if (types[i] === TokenType.CONTROL || types[i] === TokenType.UNKNOWN) this.special[i] = 1;
      }
      for (const id of [this.bosId, this.unkId, ...this.eosIds]) if (id !== null) this.special[id] = 1;
      for (const a of config.addedTokens ?? []) if (a.special) this.special[checkId('added token', a.id)!] = 1;
    }

    // Added tokens.
    let added: readonly AddedToken[];
    if (config.addedTokens !== undefined) {
      for (const a of config.addedTokens) checkId('added token', a.id);
      added = config.addedTokens;
    } else {
      const list: AddedToken[] = [];
      for (let i = 0; i < V; i++) {
        const ty = types?.[i];
        const isSpecial = ty === undefined ? this.special[i] === 1 : ty === TokenType.CONTROL || ty === TokenType.UNKNOWN;
        if ((isSpecial || ty === TokenType.USER_DEFINED) && config.tokens[i]!.length > 0) {
          list.push({ id: i, content: config.tokens[i]!, special: isSpecial, singleWord: false, lstrip: false, rstrip: false, normalized: false });
        }
      }
      added = list;
    }

    // Merge tables.
    this.minMergeScore = config.minMergeScore ?? -Infinity;
    if (config.scores !== undefined) {
      this.scoreMode = true;
      this.scores = Float64Array.from(config.scores as ArrayLike<number>);
      this.afterStage = (config.byteFallbackStage ?? 'after-merges') === 'after-merges';
      this.mergeNew = new Int32Array(0);
      this.mergeMap = new PairTable(1);
    } else {
      this.scoreMode = false;
      this.scores = null;
      this.afterStage = false;
      if (config.byteFallbackStage === 'after-merges') throw new InvalidArgumentError('SentencePieceBPETokenizer: byte fallback after merges needs score mode');
      const merges = config.merges!;
      this.mergeMap = new PairTable(merges.length);
      const newIds = new Int32Array(merges.length);
      for (let i = 0; i < merges.length; i++) {
        const [a, b] = merges[i]!;
        const ia = this.tokenToIdMap.get(a);
        const ib = this.tokenToIdMap.get(b);
        const ic = this.tokenToIdMap.get(a + b);
        if (ia === undefined || ib === undefined || ic === undefined) {
          const missing = ia === undefined ? a : ib === undefined ? b : a + b;
          throw new InvalidArgumentError(`SentencePieceBPETokenizer: merge #${i} "${a} ${b}": token "${missing}" is not in the vocabulary`);
        }
        newIds[i] = ic;
        this.mergeMap.set(ia, ib, i); // later duplicates win, as in HF tokenizers' HashMap collect
      }
      this.mergeNew = newIds;
    }

    // Characters that can take part in a merge (everything else isolates the text around it).
    if (this.scoreMode) {
      for (let i = 0; i < V; i++) {
        const t = this.mergeTexts[i]!;
        let n = 0;
        for (const _ of t) if (++n > 1) break;
        if (n > 1) for (const ch of t) this.mergeableChars.add(ch.codePointAt(0)!);
      }
      // Unknown characters: as raw text (after stage) they are not in any multi-char piece by construction of the
      // set above; as byte tokens (before stage) they could only merge if some piece contains "<0x".
      let anyByteText = false;
      if (!this.afterStage) {
        for (let i = 0; i < V; i++) if (!this.isByteToken[i] && this.mergeTexts[i]!.includes('<0x')) anyByteText = true;
      }
      this.mergeableUnknown = anyByteText;
    } else {
      const inMerge = new Uint8Array(V);
      this.mergeMap.forEachKey((a, b) => {
        inMerge[a] = 1;
        inMerge[b] = 1;
      });
      for (let i = 0; i < V; i++) {
        if (!inMerge[i]) continue;
        const t = config.tokens[i]!;
        let n = 0;
        for (const _ of t) if (++n > 1) break;
        if (n === 1) this.mergeableChars.add(t.codePointAt(0)!);
      }
      let unk = false;
      for (let b = 0; b < 256; b++) if (this.byteIds[b]! >= 0 && inMerge[this.byteIds[b]!]) unk = true;
      if (this.unkId !== null && inMerge[this.unkId]) unk = true;
      this.mergeableUnknown = unk;
    }

    this.preTokenizers = config.preTokenizers ?? [];
    this.splitPatterns = this.preTokenizers.map((p) => (p.type === 'split' ? (p.regex ? compileRegex(p.pattern) : p.pattern) : ''));
    this.normalizer =
      config.normalizer ??
      (this.preTokenizers.some((p) => p.type === 'metaspace')
        ? []
        : [...(config.addSpacePrefix ? [{ type: 'prepend', prepend: ' ' } as const] : []), { type: 'replace', from: ' ', to: this.spaceSymbol } as const]);
    const steps = this.normalizer;
    this.added = new AddedTokenMatcher(added, steps.length === 0 ? null : (text) => normalizeText(text, steps));
    this.prefixIds = (config.prefixIds ?? (config.addBos && this.bosId !== null ? [this.bosId] : [])).map((id) => checkId('prefix id', id)!);
    this.suffixIds = (config.suffixIds ?? (config.addEos && this.eosId !== null ? [this.eosId] : [])).map((id) => checkId('suffix id', id)!);
    this.stripSpaces = config.decodeStripLeadingSpaces ?? (config.addSpacePrefix ? 1 : 0);
    this.pieceBytes = new Array<Uint8Array | null>(V).fill(null);
  }

  // ------------------------------------------------------------------ constructors

  /**
   * llama2.c `tokenizer.bin` (a path, read by formats/llama2c.ts `readLlama2cTokenizer`, or its result) with run.c
   * `encode(text, bos=1, eos=0)` semantics. `vocabSize` (from the model header) reads exactly that many tokens.
   */
  static fromLlama2cTokenizer(source: string | Llama2cTokenizer, opts?: { vocabSize?: number }): SentencePieceBPETokenizer {
    const data = typeof source === 'string' ? readLlama2cTokenizer(source, opts?.vocabSize) : source;
    const V = data.vocab.length;
    // llama2.c's export replaced "▁" by " " and wrote BOS/EOS as "\n<s>\n" / "\n</s>\n".
    const mergeTexts = data.vocab.map((p) => p.replaceAll(' ', '▁'));
    const tokens = mergeTexts.slice();
    const types = new Uint8Array(V).fill(TokenType.NORMAL);
    let bosId: number | null = null;
    let eosId: number | null = null;
    let unkId: number | null = null;
    for (let i = 0; i < V; i++) {
      const p = data.vocab[i]!;
      if (p === '\n<s>\n') {
        tokens[i] = '<s>';
        types[i] = TokenType.CONTROL;
        if (bosId === null) bosId = i;
      } else if (p === '\n</s>\n') {
        tokens[i] = '</s>';
        types[i] = TokenType.CONTROL;
        if (eosId === null) eosId = i;
      } else if (p === '<unk>' && unkId === null) {
        types[i] = TokenType.UNKNOWN;
        unkId = i;
      } else if (BYTE_TOKEN_RE.test(p)) types[i] = TokenType.BYTE;
    }
    // run.c hard-codes BOS = 1, EOS = 2.
    if (bosId === null && V > 1) bosId = 1;
    if (eosId === null && V > 2) eosId = 2;
    return new SentencePieceBPETokenizer({
      name: 'llama2.c tokenizer.bin',
      tokens,
      mergeTexts,
      scores: data.scores,
      tokenTypes: types,
      bosId,
      eosId,
      unkId,
      addBos: true,
      addEos: false,
      addSpacePrefix: true,
      byteFallback: true,
      byteFallbackStage: 'before-merges',
      minMergeScore: -1e10,
    });
  }

  /** HF `tokenizer.json` (already JSON-parsed) of the SentencePiece-BPE kind, plus optional tokenizer_config.json. */
  static fromTokenizerJson(json: unknown, tokenizerConfig?: unknown): SentencePieceBPETokenizer {
    return new SentencePieceBPETokenizer(sentencePieceConfigFromTokenizerJson(json, tokenizerConfig));
  }

  /** GGUF metadata of a `tokenizer.ggml.model` = "llama" vocabulary (llama.cpp SPM semantics). */
  static fromGGUFMetadata(metadata: Map<string, GGUFMetadataValue>, file = '<gguf>'): SentencePieceBPETokenizer {
    return new SentencePieceBPETokenizer(sentencePieceConfigFromGGUF(metadata, file));
  }

  // ------------------------------------------------------------------ Tokenizer

  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 && id < this.vocabSize ? this.tokens[id] : undefined;
  }

  tokenToId(token: string): number | undefined {
    return this.tokenToIdMap.get(token);
  }

  isSpecial(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.vocabSize && this.special[id] === 1;
  }

  tokenBytes(id: number, prevId: number | null): Uint8Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new InvalidArgumentError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
    }
    if (this.special[id]) return EMPTY;
    if (this.isByteToken[id]) return Uint8Array.of(this.byteValue[id]!);
    let b = this.pieceBytes[id];
    if (b === null || b === undefined) {
      b = utf8.encode(this.tokens[id]!.replaceAll(this.spaceSymbol, ' '));
      this.pieceBytes[id] = b;
    }
    if (this.stripSpaces > 0 && prevId === null) {
      let k = 0;
      while (k < this.stripSpaces && k < b.length && b[k] === 0x20) k++;
      if (k > 0) return b.subarray(k);
    }
    return b;
  }

  decode(ids: readonly number[], options?: DecodeOptions): string {
    return decodeWithTokenBytes(this, ids, options?.skipSpecialTokens ?? true);
  }

  encode(text: string, options?: EncodeOptions): number[] {
    if (typeof text !== 'string') throw new InvalidArgumentError(`encode: text must be a string, got ${typeof text}`);
    const addSpecial = options?.addSpecialTokens ?? true;
    const out: number[] = [];
    if (addSpecial) out.push(...this.prefixIds);
    const segs = this.added.split(text, { parseSpecial: options?.parseSpecial ?? false });
    for (let k = 0; k < segs.length; k++) {
      const seg = segs[k]!;
      if (seg.kind === 'token') out.push(seg.id);
      else this.encodeNormalized(seg.text, k === 0, out);
    }
    if (addSpecial) out.push(...this.suffixIds);
    return out;
  }

  // ------------------------------------------------------------------ internals

  /**
   * Pre-tokenizes one normalized piece of text between added tokens and runs BPE on each pre-token. `atStart`: the
   * piece starts at offset 0 of the input (Metaspace prepend_scheme "first").
   */
  private encodeNormalized(text: string, atStart: boolean, out: number[]): void {
    if (text.length === 0) return;
    if (this.preTokenizers.length === 0) {
      this.encodeWord(text, out);
      return;
    }
    let pieces = [text];
    this.preTokenizers.forEach((p, k) => {
      const next: string[] = [];
      pieces.forEach((piece, j) => {
        if (p.type === 'split') {
          for (const x of splitText(piece, this.splitPatterns[k]!, p.behavior, p.invert)) next.push(x);
          return;
        }
        let s = piece.replaceAll(' ', p.replacement);
        if ((p.prependScheme === 'always' || (p.prependScheme === 'first' && atStart && j === 0)) && !s.startsWith(p.replacement)) s = p.replacement + s;
        if (!p.split) {
          next.push(s);
          return;
        }
        // Split before every replacement character (HF MergedWithNext).
        let from = 0;
        for (let i = s.indexOf(p.replacement, 1); i > 0; i = s.indexOf(p.replacement, i + p.replacement.length)) {
          if (i > from) next.push(s.slice(from, i));
          from = i;
        }
        next.push(s.slice(from));
      });
      pieces = next;
    });
    for (const piece of pieces) this.encodeWord(piece, out);
  }

  /** Whether the symbol for code point `cp` could ever take part in a merge (else it isolates its neighbours). */
  private isMergeableCp(cp: number, known: boolean): boolean {
    if (known || (this.scoreMode && this.afterStage)) return this.mergeableChars.has(cp);
    return this.mergeableUnknown;
  }

  /** Cuts `word` at isolating characters and runs BPE on each run. */
  private encodeWord(word: string, out: number[]): void {
    if (word.length === 0) return;
    if (this.ignoreMerges) {
      const id = this.tokenToIdMap.get(word);
      if (id !== undefined) {
        out.push(id);
        return;
      }
    }
    let runStart = 0;
    let i = 0;
    while (i < word.length) {
      const c = word.charCodeAt(i);
      let cp = c;
      let len = 1;
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < word.length) {
        const d = word.charCodeAt(i + 1);
        if (d >= 0xdc00 && d < 0xe000) {
          cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          len = 2;
        }
      }
      const known = this.pieceToId.has(word.slice(i, i + len));
      if (!this.isMergeableCp(cp, known)) {
        if (i > runStart) this.bpe(word, runStart, i, out);
        this.bpe(word, i, i + len, out);
        runStart = i + len;
      }
      i += len;
    }
    if (runStart < word.length) this.bpe(word, runStart, word.length, out);
  }

  /** Result id of merging adjacent symbols l, r (or -1) and its priority (lower first) via `this.lastPrio`. */
  private lastPrio = 0;

  private pairResult(word: string, w: Work, l: number, r: number): number {
    const a = w.id[l]!;
    const b = w.id[r]!;
    if (this.scoreMode) {
      let id: number;
      if (a >= 0 && b >= 0) {
        id = this.pairCache.get(a, b, -2);
        if (id === -2) {
          id = this.pieceToId.get(this.mergeTexts[a]! + this.mergeTexts[b]!) ?? -1;
          if (id >= 0 && !(this.scores![id]! > this.minMergeScore)) id = -1;
          this.pairCache.set(a, b, id);
        }
      } else {
        id = this.pieceToId.get(word.slice(w.start[l]!, w.end[r]!)) ?? -1;
        if (id >= 0 && !(this.scores![id]! > this.minMergeScore)) id = -1;
      }
      if (id >= 0) this.lastPrio = -this.scores![id]!;
      return id;
    }
    if (a < 0 || b < 0) return -1;
    const m = this.mergeMap.get(a, b, -1);
    if (m < 0) return -1;
    this.lastPrio = m;
    return this.mergeNew[m]!;
  }

  private bpe(word: string, from: number, to: number, out: number[]): void {
    const w = this.work;
    w.ensure((to - from) * 4 + 4);
    let n = 0;
    const bytes: number[] = [];
    // Initial symbols: one per code point; unknown code points -> byte tokens (before stage), a raw symbol
    // (after stage) or unk.
    for (let i = from; i < to; ) {
      const c = word.charCodeAt(i);
      let len = 1;
      let cp = c;
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < to) {
        const d = word.charCodeAt(i + 1);
        if (d >= 0xdc00 && d < 0xe000) {
          len = 2;
          cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        }
      }
      const id = this.pieceToId.get(len === 1 ? word[i]! : word.slice(i, i + 2));
      if (id !== undefined) {
        w.id[n] = id;
        w.start[n] = i;
        w.end[n] = i + len;
        n++;
      } else if (this.afterStage) {
        w.id[n] = -1;
        w.start[n] = i;
        w.end[n] = i + len;
        n++;
      } else {
        bytes.length = 0;
        cpUtf8(cp >= 0xd800 && cp < 0xe000 ? 0xfffd : cp, bytes);
        let ok = this.byteFallback;
        if (ok) for (const b of bytes) if (this.byteIds[b]! < 0) ok = false;
        if (ok) {
          for (const b of bytes) {
            w.id[n] = this.byteIds[b]!;
            w.start[n] = i;
            w.end[n] = i + len;
            n++;
          }
        } else if (this.unkId !== null) {
          if (this.fuseUnk && n > 0 && w.id[n - 1] === this.unkId) w.end[n - 1] = i + len;
          else {
            w.id[n] = this.unkId;
            w.start[n] = i;
            w.end[n] = i + len;
            n++;
          }
        } // else: HF drops characters it cannot represent
      }
      i += len;
    }
    if (n === 0) return;
    if (n === 1) {
      this.emit(word, w, 0, out);
      return;
    }
    for (let k = 0; k < n; k++) {
      w.prev[k] = k - 1;
      w.next[k] = k + 1 < n ? k + 1 : -1;
      w.ver[k] = 0;
    }
    w.hn = 0;
    for (let k = 0; k + 1 < n; k++) {
      const id = this.pairResult(word, w, k, k + 1);
      if (id >= 0) w.push(this.lastPrio, k, k + 1);
    }
    while (w.hn > 0) {
      const l = w.hL[0]!;
      const r = w.hR[0]!;
      const vl = w.hVL[0]!;
      const vr = w.hVR[0]!;
      w.pop();
      if (w.ver[l] !== vl || w.ver[r] !== vr || w.next[l] !== r) continue; // stale
      const id = this.pairResult(word, w, l, r);
      if (id < 0) continue;
      // Merge r into l.
      w.id[l] = id;
      w.end[l] = w.end[r]!;
      const nr = w.next[r]!;
      w.next[l] = nr;
      if (nr >= 0) w.prev[nr] = l;
      w.ver[l]!++;
      w.ver[r] = -1; // dead
      w.next[r] = -2;
      const pl = w.prev[l]!;
      if (pl >= 0) {
        const id2 = this.pairResult(word, w, pl, l);
        if (id2 >= 0) w.push(this.lastPrio, pl, l);
      }
      if (nr >= 0) {
        const id2 = this.pairResult(word, w, l, nr);
        if (id2 >= 0) w.push(this.lastPrio, l, nr);
      }
    }
    for (let k = 0; k >= 0; k = w.next[k]!) this.emit(word, w, k, out);
  }

  private emit(word: string, w: Work, k: number, out: number[]): void {
    const id = w.id[k]!;
    if (id >= 0) {
      out.push(id);
      return;
    }
    // Raw (after-stage) symbol that is not a token: its bytes as byte tokens (llama.cpp resegment), else unk.
    const bytes = utf8.encode(word.slice(w.start[k]!, w.end[k]!));
    for (const b of bytes) {
      const bid = this.byteIds[b]!;
      if (bid >= 0) out.push(bid);
      else if (this.unkId !== null) out.push(this.unkId);
    }
  }
}

// ---------------------------------------------------------------------- GGUF

function gguf(md: Map<string, GGUFMetadataValue>, key: string): GGUFMetadataValue | undefined {
  return md.get(key);
}

function ggufInt(md: Map<string, GGUFMetadataValue>, key: string, file: string, V: number, dflt: number | null): number | null {
  const v = gguf(md, key);
  if (v === undefined) return dflt;
  if (typeof v !== 'number' && typeof v !== 'bigint') throw new FormatError({ file, where: `metadata ${key}`, expected: 'an integer', found: typeof v });
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (!Number.isInteger(n)) throw new FormatError({ file, where: `metadata ${key}`, expected: 'an integer', found: String(v) });
  // llama.cpp uses -1 / 0xFFFFFFFF for "none".
  if (n < 0 || n >= V) return null;
  return n;
}

function ggufBool(md: Map<string, GGUFMetadataValue>, key: string, file: string, dflt: boolean): boolean {
  const v = gguf(md, key);
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new FormatError({ file, where: `metadata ${key}`, expected: 'a bool', found: typeof v });
  return v;
}

/** Builds the config from GGUF metadata (llama.cpp SPM: `tokenizer.ggml.model` = "llama"). */
export function sentencePieceConfigFromGGUF(md: Map<string, GGUFMetadataValue>, file = '<gguf>'): SentencePieceBPEConfig {
  const model = gguf(md, 'tokenizer.ggml.model');
  if (model === undefined) throw new FormatError({ file, where: 'metadata tokenizer.ggml.model', expected: 'a tokenizer model name', found: 'nothing' });
  if (model !== 'llama') {
    throw new UnsupportedError(
      `${file}: tokenizer.ggml.model "${String(model)}" is not a SentencePiece-BPE vocabulary (expected "llama")` +
        (model === 'gpt2' ? '; it is a byte-level BPE' : ''),
    );
  }
  const toks = gguf(md, 'tokenizer.ggml.tokens');
  if (!Array.isArray(toks) || toks.length === 0) throw new FormatError({ file, where: 'metadata tokenizer.ggml.tokens', expected: 'a non-empty string array', found: Array.isArray(toks) ? 'an empty array' : typeof toks });
  const tokens = toks.map((t, i) => {
    if (typeof t !== 'string') throw new FormatError({ file, where: `metadata tokenizer.ggml.tokens[${i}]`, expected: 'a string', found: typeof t });
    return t;
  });
  const V = tokens.length;
  const numArray = (key: string, dflt: number): Float64Array => {
    const v = gguf(md, key);
    if (v === undefined) return new Float64Array(V).fill(dflt);
    if (!Array.isArray(v) || v.length !== V) throw new FormatError({ file, where: `metadata ${key}`, expected: `an array of ${V} numbers`, found: Array.isArray(v) ? `${v.length} entries` : typeof v });
    const a = new Float64Array(V);
    for (let i = 0; i < V; i++) {
      const x = v[i];
      const n = typeof x === 'bigint' ? Number(x) : x;
      if (typeof n !== 'number' || Number.isNaN(n)) throw new FormatError({ file, where: `metadata ${key}[${i}]`, expected: 'a number', found: String(x) });
      a[i] = n;
    }
    return a;
  };
  const scores = numArray('tokenizer.ggml.scores', 0);
  const types = numArray('tokenizer.ggml.token_type', TokenType.NORMAL);
  return {
    name: 'gguf llama (SPM)',
    tokens,
    scores,
    tokenTypes: types,
    bosId: ggufInt(md, 'tokenizer.ggml.bos_token_id', file, V, 1 < V ? 1 : null),
    eosId: ggufInt(md, 'tokenizer.ggml.eos_token_id', file, V, 2 < V ? 2 : null),
    unkId: ggufInt(md, 'tokenizer.ggml.unknown_token_id', file, V, 0),
    addBos: ggufBool(md, 'tokenizer.ggml.add_bos_token', file, true),
    addEos: ggufBool(md, 'tokenizer.ggml.add_eos_token', file, false),
    addSpacePrefix: ggufBool(md, 'tokenizer.ggml.add_space_prefix', file, true),
    byteFallback: true,
    byteFallbackStage: 'after-merges',
  };
}
