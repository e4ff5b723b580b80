// Reader for llama2.c `tokenizer.bin` (as written by llama2.c's tokenizer.py export and read by run.c):
//   int32 max_token_length
//   then per token: float32 score, int32 byte length, that many bytes (UTF-8, no terminator)
// all little-endian. The vocabulary size is not stored: run.c takes it from the model header; here it is
// either given or the file is read to EOF. The export replaced SentencePiece's "▁" by " " and wrote BOS/EOS as
// "\n<s>\n" / "\n</s>\n"; pieces are returned exactly as stored.

import * as fs from 'node:fs';
import { FormatError, RistrettoError } from '../errors.js';

export interface Llama2cTokenizerData {
  maxTokenLength: number;
  /** Pieces exactly as stored (spaces, not "▁"). */
  pieces: string[];
  scores: Float32Array;
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Parses tokenizer.bin bytes. `vocabSize` (from the model header) reads exactly that many tokens; else to EOF. */
export function parseLlama2cTokenizer(bytes: Uint8Array, file = '<tokenizer.bin>', vocabSize?: number): Llama2cTokenizerData {
  if (vocabSize !== undefined && (!Number.isInteger(vocabSize) || vocabSize <= 0)) {
    throw new FormatError({ file, where: 'vocab_size', expected: 'a positive integer', found: String(vocabSize) });
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = bytes.byteLength;
  if (size < 4) throw new FormatError({ file, where: 'header.max_token_length', expected: '4 bytes', found: `file of ${size} bytes` });
  const maxTokenLength = dv.getInt32(0, true);
  if (maxTokenLength <= 0 || maxTokenLength > 1 << 20) {
    throw new FormatError({ file, where: 'header.max_token_length', expected: 'an integer in 1..1048576', found: String(maxTokenLength) });
  }
  const pieces: string[] = [];
  const scores: number[] = [];
  let o = 4;
  while (vocabSize === undefined ? o < size : pieces.length < vocabSize) {
    const i = pieces.length;
    if (o + 8 > size) {
      throw new FormatError({
        file,
        where: `token ${i} header at offset ${o}`,
        expected: vocabSize === undefined ? '8 bytes (float32 score, int32 length)' : `${vocabSize} tokens`,
        found: `${size - o} bytes left (end of file)`,
      });
    }
    const score = dv.getFloat32(o, true);
    const len = dv.getInt32(o + 4, true);
    if (Number.isNaN(score)) throw new FormatError({ file, where: `token ${i} score at offset ${o}`, expected: 'a number', found: 'NaN' });
    if (len < 0 || len > maxTokenLength) {
      throw new FormatError({ file, where: `token ${i} length at offset ${o + 4}`, expected: `0..${maxTokenLength} (max_token_length)`, found: String(len) });
    }
    o += 8;
    if (o + len > size) throw new FormatError({ file, where: `token ${i} bytes at offset ${o}`, expected: `${len} bytes`, found: `${size - o} bytes left (end of file)` });
    let piece: string;
    try {
      piece = utf8Strict.decode(bytes.subarray(o, o + len));
    } catch {
      throw new FormatError({ file, where: `token ${i} bytes at offset ${o}`, expected: 'valid UTF-8', found: 'invalid byte sequence' });
    }
    o += len;
    pieces.push(piece);
    scores.push(score);
  }
  if (pieces.length === 0) throw new FormatError({ file, where: 'tokens', expected: 'at least one token', found: 'none' });
  return { maxTokenLength, pieces, scores: Float32Array.from(scores) };
}

/** Reads and parses a tokenizer.bin file. */
export function readLlama2cTokenizer(path: string, vocabSize?: number): Llama2cTokenizerData {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new FormatError({ file: path, where: 'file', expected: 'a regular file', found: 'a directory' });
    throw new RistrettoError('NOT_FOUND', `cannot read tokenizer file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseLlama2cTokenizer(bytes, path, vocabSize);
}
