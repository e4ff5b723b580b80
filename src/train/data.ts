// Token files for training and the reproducible window sampler.
//
// Format (little-endian), written by `ristretto tokenize`:
//   0  "RTOK"            magic
//   4  u32 version = 1
//   8  u32 bytes per token (2: uint16 when the vocabulary fits, else 4: uint32)
//  12  u32 vocab size
//  16  u64 token count
//  24  u32 BOS id (0xffffffff: none)
//  28  u32 document count
//  32  tokens
// Training reads windows with positional reads: the file is never loaded whole.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, InvalidArgumentError } from '../errors.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { Rng } from './rng.js';

export const TOKEN_FILE_MAGIC = 'RTOK';
export const TOKEN_HEADER_BYTES = 32;
const NO_ID = 0xffffffff;

export interface TokenFileHeader {
  bytesPerToken: 2 | 4;
  vocabSize: number;
  tokens: number;
  bosId: number | null;
  documents: number;
}

/** Writes a token file atomically (temp file, fsync, rename), streaming tokens in chunks. */
export class TokenFileWriter {
  private readonly fd: number;
  private readonly tmp: string;
  private readonly buf: Buffer;
  private fill = 0;
  private count = 0;
  private docs = 0;
  readonly bytesPerToken: 2 | 4;

  constructor(readonly file: string, readonly vocabSize: number, readonly bosId: number | null) {
    this.bytesPerToken = vocabSize <= 65536 ? 2 : 4;
    this.tmp = `${file}.tmp-${process.pid}`;
    this.fd = fs.openSync(this.tmp, 'w');
    fs.writeSync(this.fd, Buffer.alloc(TOKEN_HEADER_BYTES));
    this.buf = Buffer.alloc(1 << 20);
  }

  /** Appends one document's tokens. */
  addDocument(ids: readonly number[]): void {
    this.docs++;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new InvalidArgumentError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      if (this.fill + 4 > this.buf.length) this.flush();
      if (this.bytesPerToken === 2) this.buf.writeUInt16LE(id, this.fill);
      else this.buf.writeUInt32LE(id, this.fill);
      this.fill += this.bytesPerToken;
      this.count++;
    }
  }

  private flush(): void {
    if (this.fill > 0) fs.writeSync(this.fd, this.buf, 0, this.fill);
    this.fill = 0;
  }

  finish(): TokenFileHeader {
    this.flush();
    const h = Buffer.alloc(TOKEN_HEADER_BYTES);
    h.write(TOKEN_FILE_MAGIC, 0, 'latin1');
    h.writeUInt32LE(1, 4);
    h.writeUInt32LE(this.bytesPerToken, 8);
    h.writeUInt32LE(this.vocabSize, 12);
    h.writeBigUInt64LE(BigInt(this.count), 16);
    h.writeUInt32LE(this.bosId ?? NO_ID, 24);
    h.writeUInt32LE(this.docs, 28);
    fs.writeSync(this.fd, h, 0, h.length, 0);
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    fs.renameSync(this.tmp, this.file);
    return { bytesPerToken: this.bytesPerToken, vocabSize: this.vocabSize, tokens: this.count, bosId: this.bosId, documents: this.docs };
  }

  abort(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
    fs.rmSync(this.tmp, { force: true });
  }
}

/** A token file opened for positional reads. */
export class TokenFile {
  readonly header: TokenFileHeader;
  private readonly fd: number;
  private scratch = Buffer.alloc(0);

  constructor(readonly file: string) {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      throw new InvalidArgumentError(`${file}: cannot open the token file`);
    }
    this.fd = fd;
    const size = fs.fstatSync(fd).size;
    const h = Buffer.alloc(TOKEN_HEADER_BYTES);
    if (fs.readSync(fd, h, 0, TOKEN_HEADER_BYTES, 0) !== TOKEN_HEADER_BYTES) {
      this.close();
      throw new FormatError({ file, where: 'header', expected: `${TOKEN_HEADER_BYTES} bytes`, found: `${size} bytes` });
    }
    const magic = h.toString('latin1', 0, 4);
    if (magic !== TOKEN_FILE_MAGIC) {
      this.close();
      throw new FormatError({ file, where: 'magic', expected: `"${TOKEN_FILE_MAGIC}" (a file written by ristretto tokenize)`, found: JSON.stringify(magic) });
    }
    const version = h.readUInt32LE(4);
    const bpt = h.readUInt32LE(8);
    if (version !== 1 || (bpt !== 2 && bpt !== 4)) {
      this.close();
      throw new FormatError({ file, where: 'header', expected: 'version 1 with 2 or 4 bytes per token', found: `version ${version}, ${bpt} bytes per token` });
    }
    const tokens = Number(h.readBigUInt64LE(16));
    const want = TOKEN_HEADER_BYTES + tokens * bpt;
    if (size !== want) {
      this.close();
      throw new FormatError({ file, where: 'size', expected: `${want} bytes for ${tokens} tokens`, found: `${size} bytes (truncated or corrupted)` });
    }
    const bos = h.readUInt32LE(24);
    this.header = { bytesPerToken: bpt, vocabSize: h.readUInt32LE(12), tokens, bosId: bos === NO_ID ? null : bos, documents: h.readUInt32LE(28) };
  }

  get length(): number {
    return this.header.tokens;
  }

  /** Tokens [start, start + n) into out. */
  read(start: number, n: number, out = new Int32Array(n)): Int32Array {
    if (start < 0 || start + n > this.length) throw new RangeError(`${this.file}: window [${start}, ${start + n}) is outside ${this.length} tokens`);
    const bpt = this.header.bytesPerToken;
    const bytes = n * bpt;
    if (this.scratch.length < bytes) this.scratch = Buffer.alloc(bytes);
    fs.readSync(this.fd, this.scratch, 0, bytes, TOKEN_HEADER_BYTES + start * bpt);
    for (let i = 0; i < n; i++) out[i] = bpt === 2 ? this.scratch.readUInt16LE(i * 2) : this.scratch.readUInt32LE(i * 4);
    return out;
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}

export interface Window {
  ids: Int32Array;
  targets: Int32Array;
}

export interface SamplerState {
  rng: { s: number; spare: number | null };
  /** Training windows drawn so far. */
  drawn: number;
}

/**
 * Samples training windows of seqLen+1 tokens uniformly from the first (1 - valFraction) of the file,
 * from a seeded RNG whose state goes into checkpoints; validation windows are a fixed, evenly spaced
 * set from the held-out tail.
 */
export class WindowSampler {
  readonly trainTokens: number;
  private readonly rng: Rng;
  drawn = 0;

  constructor(readonly data: TokenFile, readonly seqLen: number, readonly valFraction: number, seed: number) {
    if (!(valFraction >= 0 && valFraction < 1)) throw new InvalidArgumentError(`validation fraction must be in [0, 1), got ${valFraction}`);
    this.trainTokens = Math.floor(data.length * (1 - valFraction));
    if (this.trainTokens < seqLen + 1) {
      throw new InvalidArgumentError(`${data.file}: ${this.trainTokens} training tokens cannot fill one window of ${seqLen + 1}; use a shorter --seq or more data`);
    }
    if (valFraction > 0 && data.length - this.trainTokens < seqLen + 1) {
      throw new InvalidArgumentError(`${data.file}: the validation split (${data.length - this.trainTokens} tokens) cannot fill one window of ${seqLen + 1}; raise --val-fraction or use more data`);
    }
    this.rng = new Rng(seed ^ 0x5eed);
  }

  private window(start: number): Window {
    const w = this.data.read(start, this.seqLen + 1);
    return { ids: w.subarray(0, this.seqLen), targets: w.subarray(1) };
  }

  nextTrain(): Window {
    this.drawn++;
    return this.window(this.rng.int(this.trainTokens - this.seqLen));
  }

  /** `count` validation windows, the same on every call. */
  validation(count: number): Window[] {
    if (this.valFraction === 0) return [];
    const lo = this.trainTokens;
    const span = this.data.length - lo - (this.seqLen + 1);
    const out: Window[] = [];
    for (let i = 0; i < count; i++) out.push(this.window(lo + (count === 1 ? 0 : Math.floor((span * i) / (count - 1)))));
    return out;
  }

  getState(): SamplerState {
    return { rng: this.rng.getState(), drawn: this.drawn };
  }

  setState(s: SamplerState): void {
    this.rng.setState(s.rng);
    this.drawn = s.drawn;
  }
}

export interface TokenizeOptions {
  /** Separator between documents inside a file (default "<|endoftext|>"). */
  docSeparator?: string;
  /** Add the tokenizer's special tokens (BOS) at the start of each document. Default true. */
  addSpecialTokens?: boolean;
  onProgress?: (done: number, total: number, tokens: number) => void;
}

/** Tokenizes text files into a token file; every document starts with BOS (when the tokenizer adds one). */
export function tokenizeFiles(tokenizer: Tokenizer, inputs: readonly string[], out: string, o: TokenizeOptions = {}): TokenFileHeader {
  const sep = o.docSeparator ?? '<|endoftext|>';
  const special = o.addSpecialTokens ?? true;
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const w = new TokenFileWriter(out, tokenizer.vocabSize, special ? tokenizer.bosId : null);
  try {
    const texts = inputs.map((f) => {
      try {
        return fs.readFileSync(f, 'utf8');
      } catch {
        throw new InvalidArgumentError(`${f}: cannot read the input text`);
      }
    });
    const total = texts.reduce((a, t) => a + t.length, 0);
    let done = 0;
    for (const text of texts) {
      const docs = sep === '' ? [text] : text.split(sep);
      for (const raw of docs) {
        const doc = raw.trim();
        done += raw.length + sep.length;
        if (doc === '') continue;
        // Long documents are encoded a paragraph block at a time (tokenizers are not linear-time on
        // megabytes); only the first block gets the special tokens.
        const ids: number[] = [];
        const blocks = doc.length > 65536 ? splitBlocks(doc, 16384) : [doc];
        blocks.forEach((b, i) => ids.push(...tokenizer.encode(b, { addSpecialTokens: special && i === 0 })));
        w.addDocument(ids);
        o.onProgress?.(Math.min(done, total), total, 0);
      }
    }
    return w.finish();
  } catch (e) {
    w.abort();
    throw e;
  }
}

/** Splits text after paragraph breaks into blocks of roughly `size` characters. */
function splitBlocks(text: string, size: number): string[] {
  const out: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + size);
    if (end < text.length) {
      const br = text.indexOf('\n\n', end);
      end = br < 0 ? text.length : br + 2;
    }
    out.push(text.slice(start, end));
    start = end;
  }
  return out;
}
