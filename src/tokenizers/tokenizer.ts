// The one interface every tokenizer implements (SentencePiece-BPE, byte-level BPE, WordPiece).

export interface EncodeOptions {
  /** Add the tokens the tokenizer's post-processor adds (BOS for Llama-style). Default true. */
  addSpecialTokens?: boolean;
  /** Turn special-token text found in `text` (e.g. "<s>") into that token. Default false: it stays plain text. */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Drop special/control tokens (BOS, EOS, ...). Default true. */
  skipSpecialTokens?: boolean;
}

export interface Tokenizer {
  readonly kind: 'sentencepiece-bpe' | 'byte-level-bpe' | 'wordpiece';
  readonly vocabSize: number;
  readonly bosId: number | null;
  /** Every end-of-sequence id (Llama 3 has several). */
  readonly eosIds: readonly number[];
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** The token's text form as stored in the vocabulary ("▁Once", "<0x0A>", "Ġworld"). */
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  isSpecial(id: number): boolean;
  /**
   * Bytes token `id` contributes to decoded text, given the previous token (null at the start):
   * "▁" -> space, "<0xXX>" -> that byte, byte-level symbols -> their bytes, special tokens -> empty.
   * SentencePiece strips the dummy-prefix space of the first piece here. Used by StreamDecoder.
   */
  tokenBytes(id: number, prevId: number | null): Uint8Array;
}

/**
 * Token texts that end a sequence wherever a vocabulary has them as special tokens; tokenizers report them in
 * `eosIds` next to the configured EOS (Llama 3 <|eot_id|>, Qwen <|im_end|>, Gemma <end_of_turn>, ...).
 */
export const EOS_LIKE_TOKENS: readonly string[] = [
  '<|endoftext|>', '<|end_of_text|>', '<|eot_id|>', '<|eom_id|>', '<|im_end|>', '</s>', '<|end|>', '<eos>', '<end_of_turn>',
];
