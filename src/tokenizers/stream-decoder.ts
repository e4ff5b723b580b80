// Incremental detokenisation for any `Tokenizer`.
//
// Each token contributes `tokenizer.tokenBytes(id, prevId)` bytes (special tokens contribute nothing; when
// `skipSpecialTokens` is false their vocabulary text is emitted instead). `prevId` is the previous token that
// contributed output (null until one has): like HF's decoders (Strip after Fuse), a SentencePiece tokenizer then
// strips the dummy-prefix space of the first emitted piece only, wherever BOS or other skipped tokens are. The bytes go through one streaming
// UTF-8 TextDecoder, so a character whose bytes are spread over several tokens (byte-fallback emoji, byte-level
// BPE pieces) is emitted only once it is complete: `push()` never returns half a UTF-8 sequence. Invalid byte
// sequences become U+FFFD exactly as a one-shot `TextDecoder.decode` would, so the concatenation of every
// `push()` plus `flush()` equals `decodeWithTokenBytes(tokenizer, ids)`, which tokenizers use for `decode()`.

import type { Tokenizer } from './tokenizer.js';

export interface StreamDecoderOptions {
  /** Drop special/control tokens (BOS, EOS, ...). Default true. */
  skipSpecialTokens?: boolean;
}

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);
/** The bytes one token adds to the decoded stream (shared by StreamDecoder and decode()). */
export function tokenStreamBytes(tokenizer: Tokenizer, id: number, prevId: number | null, skipSpecialTokens: boolean): Uint8Array {
  if (tokenizer.isSpecial(id)) {
    if (skipSpecialTokens) return EMPTY;
    const text = tokenizer.idToToken(id);
    return text === undefined ? EMPTY : utf8.encode(text);
  }
  return tokenizer.tokenBytes(id, prevId);
}


/** Concatenates byte chunks and decodes them as UTF-8 (invalid sequences become U+FFFD; a BOM is kept). */
export function decodeUtf8Chunks(parts: readonly Uint8Array[]): string {
  let total = 0;
  for (const p of parts) total += p.length;
  const all = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(all);
}

/** One-shot decode with exactly the semantics of StreamDecoder. */
export function decodeWithTokenBytes(tokenizer: Tokenizer, ids: readonly number[], skipSpecialTokens = true): string {
  const parts: Uint8Array[] = [];
  let prev: number | null = null;
  for (const id of ids) {
    const b = tokenStreamBytes(tokenizer, id, prev, skipSpecialTokens);
    if (b.length > 0 || !(skipSpecialTokens && tokenizer.isSpecial(id))) prev = id;
    if (b.length > 0) parts.push(b);
  }
  return decodeUtf8Chunks(parts);
}

export class StreamDecoder {
  private readonly tokenizer: Tokenizer;
  private readonly skipSpecialTokens: boolean;
  private decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  private prevId: number | null = null;

  constructor(tokenizer: Tokenizer, opts?: StreamDecoderOptions) {
    this.tokenizer = tokenizer;
    this.skipSpecialTokens = opts?.skipSpecialTokens ?? true;
  }

  /** Feeds one token id; returns the text completed by it (possibly ""). */
  push(id: number): string {
    const bytes = tokenStreamBytes(this.tokenizer, id, this.prevId, this.skipSpecialTokens);
    if (bytes.length > 0 || !(this.skipSpecialTokens && this.tokenizer.isSpecial(id))) this.prevId = id;
    if (bytes.length === 0) return '';
    return this.decoder.decode(bytes, { stream: true });
  }

  /** Ends the stream: returns any pending text (an incomplete trailing sequence becomes U+FFFD) and resets. */
  flush(): string {
    const rest = this.decoder.decode();
    this.decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
    this.prevId = null;
    return rest;
  }
}
