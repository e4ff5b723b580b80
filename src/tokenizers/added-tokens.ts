// Added / special tokens: finding them in text before pre-tokenization, exactly as HF `tokenizers`'
// AddedVocabulary does (tokenizer-agnostic: used by the byte-level BPE and the SentencePiece tokenizers).
//
// HF semantics reproduced here:
//  - Two passes. Tokens with `normalized: false` are matched on the raw text first; every remaining text piece is
//    then normalized (by the tokenizer's normalizer) and tokens with `normalized: true` are matched on it (their
//    patterns being the normalized form of their content).
//  - Matching is leftmost-longest over all tokens of a pass (aho-corasick MatchKind::LeftmostLongest), scanning on
//    after each match.
//  - `single_word`: a match is dropped when the character before it or after it is a word character (\w).
//  - `lstrip`: whitespace before the match is swallowed into the token (not past the previous match);
//    `rstrip`: whitespace after it likewise.
//  - With `parseSpecial: false` (HF `encode_special_tokens = true`, i.e. transformers' split_special_tokens), a
//    match of a *special* token is skipped (its text stays plain text); non-special added tokens still match.

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
}

/** A piece of the input: plain text (already normalized when `normalized` is true) or an added token. */
export type AddedTokenSegment =
  | { kind: 'text'; text: string; normalized: boolean }
  | { kind: 'token'; id: number; token: AddedToken; text: string };

/** Read HF tokenizer.json `added_tokens` entries (snake_case flags). */
export function addedTokensFromJson(list: unknown): AddedToken[] {
  if (!Array.isArray(list)) return [];
  return list.map((t: any) => ({
    id: Number(t.id),
    content: String(t.content),
    special: Boolean(t.special),
    singleWord: Boolean(t.single_word),
    lstrip: Boolean(t.lstrip),
    rstrip: Boolean(t.rstrip),
    normalized: t.normalized === undefined ? !t.special : Boolean(t.normalized),
  }));
}

interface TrieNode {
  next: Map<number, TrieNode>;
  /** Index into `tokens` of the token ending here, or -1. */
  token: number;
}

const WORD_CHAR = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]/u;
const WHITE = /\p{White_Space}/u;

function lastChar(s: string, end: number): string {
  if (end <= 0) return '';
  const c = s.charCodeAt(end - 1);
  if (c >= 0xdc00 && c <= 0xdfff && end >= 2) return s.slice(end - 2, end);
  return s.slice(end - 1, end);
}
function firstChar(s: string, start: number): string {
  if (start >= s.length) return '';
  return String.fromCodePoint(s.codePointAt(start)!);
}

/** A leftmost-longest matcher over a set of patterns (UTF-16 trie). */
class PatternSet {
  private readonly root: TrieNode = { next: new Map(), token: -1 };
  readonly size: number;
  constructor(readonly patterns: { text: string; token: AddedToken }[]) {
    let n = 0;
    patterns.forEach((p, idx) => {
      if (p.text.length === 0) return;
      let node = this.root;
      for (let i = 0; i < p.text.length; i++) {
        const c = p.text.charCodeAt(i);
        let nx = node.next.get(c);
        if (!nx) {
          nx = { next: new Map(), token: -1 };
          node.next.set(c, nx);
        }
        node = nx;
      }
      // First definition wins for duplicate contents (same text -> same match).
      if (node.token < 0) node.token = idx;
      n++;
    });
    this.size = n;
  }

  /** Leftmost-longest match starting at or after `from`: [start, end, patternIndex] or null. */
  find(text: string, from: number): [number, number, number] | null {
    const root = this.root;
    for (let s = from; s < text.length; s++) {
      let node = root.next.get(text.charCodeAt(s));
      if (!node) continue;
      let best = -1;
      let bestEnd = -1;
      let i = s + 1;
      while (true) {
        if (node.token >= 0) {
          best = node.token;
          bestEnd = i;
        }
        if (i >= text.length) break;
        const nx: TrieNode | undefined = node.next.get(text.charCodeAt(i));
        if (!nx) break;
        node = nx;
        i++;
      }
      if (best >= 0) return [s, bestEnd, best];
    }
    return null;
  }
}

export interface SplitAddedOptions {
  /** Match special tokens (default false: their text stays plain text). */
  parseSpecial?: boolean;
}

/**
 * Ids of `text` split at its added tokens: a token segment is its id, a text segment is normalized (unless it
 * already is) and handed to `encodeText`, which appends its ids.
 */
export function encodeAroundAddedTokens(
  added: AddedTokenMatcher,
  text: string,
  parseSpecial: boolean,
  normalize: ((s: string) => string) | null,
  encodeText: (text: string, ids: number[]) => void,
): number[] {
  const ids: number[] = [];
  for (const seg of added.split(text, { parseSpecial })) {
    if (seg.kind === 'token') {
      ids.push(seg.id);
      continue;
    }
    encodeText(!seg.normalized && normalize ? normalize(seg.text) : seg.text, ids);
  }
  return ids;
}

export class AddedTokenMatcher {
  private readonly raw: PatternSet;
  private readonly norm: PatternSet;
  private readonly byId = new Map<number, AddedToken>();
  private readonly byContent = new Map<string, AddedToken>();

  /**
   * @param tokens the added tokens
   * @param normalize the tokenizer's normalizer (null when none); used on text pieces and on the content of
   *   `normalized: true` tokens.
   */
  constructor(
    readonly tokens: readonly AddedToken[],
    private readonly normalize: ((s: string) => string) | null = null,
  ) {
    const raw: { text: string; token: AddedToken }[] = [];
    const norm: { text: string; token: AddedToken }[] = [];
    for (const t of tokens) {
      this.byId.set(t.id, t);
      if (!this.byContent.has(t.content)) this.byContent.set(t.content, t);
      if (t.normalized) norm.push({ text: normalize ? normalize(t.content) : t.content, token: t });
      else raw.push({ text: t.content, token: t });
    }
    this.raw = new PatternSet(raw);
    this.norm = new PatternSet(norm);
  }

  get(id: number): AddedToken | undefined {
    return this.byId.get(id);
  }
  getByContent(content: string): AddedToken | undefined {
    return this.byContent.get(content);
  }
  isSpecial(id: number): boolean {
    return this.byId.get(id)?.special ?? false;
  }
  /** True when `content` is the content of a special added token (HF decode's skip test works on strings). */
  isSpecialContent(content: string): boolean {
    return this.byContent.get(content)?.special ?? false;
  }

  /**
   * Split `text` into text pieces and added tokens. Text pieces are returned normalized (`normalized: true`)
   * when a normalizer was given.
   */
  split(text: string, options: SplitAddedOptions = {}): AddedTokenSegment[] {
    const parseSpecial = options.parseSpecial ?? false;
    const out: AddedTokenSegment[] = [];
    const first = this.findMatches(text, this.raw, parseSpecial);
    for (const seg of first) {
      if (seg.kind === 'token') {
        out.push(seg);
        continue;
      }
      const n = this.normalize ? this.normalize(seg.text) : seg.text;
      for (const s2 of this.findMatches(n, this.norm, parseSpecial)) {
        if (s2.kind === 'text') out.push({ kind: 'text', text: s2.text, normalized: this.normalize !== null });
        else out.push(s2);
      }
    }
    return out;
  }

  private findMatches(sentence: string, set: PatternSet, parseSpecial: boolean): AddedTokenSegment[] {
    if (set.size === 0 || sentence.length === 0) {
      return sentence.length === 0 ? [] : [{ kind: 'text', text: sentence, normalized: false }];
    }
    const out: AddedTokenSegment[] = [];
    let startOffset = 0;
    let from = 0;
    while (from < sentence.length) {
      const m = set.find(sentence, from);
      if (!m) break;
      let [start, stop] = m;
      const token = set.patterns[m[2]]!.token;
      from = stop;
      if (start < startOffset) continue; // overlaps a previous rstrip
      if (!parseSpecial && token.special) continue;
      if (token.singleWord) {
        const startSpace = start === 0 || !WORD_CHAR.test(lastChar(sentence, start));
        const stopSpace = stop === sentence.length || !WORD_CHAR.test(firstChar(sentence, stop));
        if (!startSpace || !stopSpace) continue;
      }
      if (token.lstrip) {
        let s = start;
        while (s > 0) {
          const ch = lastChar(sentence, s);
          if (!WHITE.test(ch)) break;
          s -= ch.length;
        }
        start = Math.max(s, startOffset);
      }
      if (token.rstrip) {
        while (stop < sentence.length) {
          const ch = firstChar(sentence, stop);
          if (!WHITE.test(ch)) break;
          stop += ch.length;
        }
        from = stop;
      }
      if (startOffset < start) out.push({ kind: 'text', text: sentence.slice(startOffset, start), normalized: false });
      out.push({ kind: 'token', id: token.id, token, text: sentence.slice(start, stop) });
      startOffset = stop;
    }
    if (startOffset < sentence.length) out.push({ kind: 'text', text: sentence.slice(startOffset), normalized: false });
    return out;
  }
}
