// The small bounds-checked positional reader every checkpoint reader uses.
// Files are never read whole: `FileReader` does positional `fs.readSync` calls into buffers sized for one
// header or one tensor, and `Cursor` walks a header sequentially through a bounded read-ahead window.
// Every out-of-bounds read is a FormatError naming the file, the field, and the offsets involved.

import * as fs from 'node:fs';
import { FormatError, InvalidArgumentError, RistrettoError, UnsupportedError } from '../errors.js';
import type { HostTensor, TensorInfo, TensorSource } from './tensor.js';

/** Throws a FormatError; `never` so callers can use it in expressions. */
export function fail(file: string, where: string, expected?: string, found?: string): never {
  throw new FormatError({ file, where, expected, found });
}

/** Converts a u64/i64 field to a number, rejecting values that are not exactly representable. */
export function safeNumber(v: bigint, file: string, where: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
    fail(file, where, `at most ${Number.MAX_SAFE_INTEGER}`, v.toString());
  }
  return Number(v);
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Decodes UTF-8 strictly; invalid bytes are a FormatError. */
export function decodeUtf8(bytes: Uint8Array, file: string, where: string): string {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return fail(file, where, 'valid UTF-8', 'invalid byte sequence');
  }
}

/** Opens a file for reading; a missing file is NOT_FOUND, a directory is a FormatError. */
export function openFd(file: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new RistrettoError('NOT_FOUND', `file not found: ${file}`, { cause: e });
    if (code === 'EISDIR') fail(file, 'file', 'a regular file', 'a directory');
    throw new RistrettoError('NOT_FOUND', `cannot open ${file}: ${(e as Error).message}`, { cause: e });
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    fail(file, 'file', 'a regular file', 'not a regular file');
  }
  return { fd, size: st.size };
}

export class FileReader {
  readonly path: string;
  readonly size: number;
  private fd: number | null;

  constructor(path: string) {
    const { fd, size } = openFd(path);
    this.path = path;
    this.fd = fd;
    this.size = size;
  }

  /** Reads `length` bytes at `offset` into a fresh ArrayBuffer; FormatError naming `where` if past EOF. */
  bytes(offset: number, length: number, where: string): Uint8Array {
    if (this.fd === null) throw new InvalidArgumentError(`${this.path}: read after close()`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      fail(this.path, where, `${length} bytes at offset ${offset} inside the file`, `file size ${this.size}`);
    }
    let out: Uint8Array;
    try {
      out = new Uint8Array(length);
    } catch {
      throw new UnsupportedError(`${this.path}: ${where}: ${length} bytes is too large for one host buffer`);
    }
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, out, done, Math.min(length - done, 0x40000000), offset + done);
      if (n === 0) fail(this.path, where, `${length} bytes at offset ${offset}`, `end of file after ${done} bytes`);
      done += n;
    }
    return out;
  }

  private view(offset: number, n: number, where: string): DataView {
    const b = this.bytes(offset, n, where);
    return new DataView(b.buffer, b.byteOffset, n);
  }
  u8(offset: number, where: string): number { return this.view(offset, 1, where).getUint8(0); }
  u32(offset: number, where: string): number { return this.view(offset, 4, where).getUint32(0, true); }
  i32(offset: number, where: string): number { return this.view(offset, 4, where).getInt32(0, true); }
  u64(offset: number, where: string): bigint { return this.view(offset, 8, where).getBigUint64(0, true); }
  f32(offset: number, where: string): number { return this.view(offset, 4, where).getFloat32(0, true); }
  /** `length` bytes at `offset` decoded as strict UTF-8. */
  string(offset: number, length: number, where: string): string {
    return decodeUtf8(this.bytes(offset, length, where), this.path, where);
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * Opens `path` and hands the reader to `parse`, which keeps it open (lazy tensor reads) on success; the reader is
 * closed, and the error rethrown, when `parse` throws.
 */
export function openAndParse<T>(path: string, parse: (r: FileReader) => T): T {
  const r = new FileReader(path);
  try {
    return parse(r);
  } catch (e) {
    r.close();
    throw e;
  }
}

/**
 * Sequential little-endian reads through a read-ahead window (1 MiB), for headers with many small fields
 * (a GGUF vocabulary has 100k+ strings). `pos` is the absolute file offset of the next field.
 */
export class Cursor {
  private buf: Uint8Array = new Uint8Array(0);
  private dv = new DataView(this.buf.buffer);
  private bufStart = 0;
  constructor(readonly r: FileReader, public pos: number) {}

  get remaining(): number { return this.r.size - this.pos; }

  /** Makes `n` bytes at `pos` available in the window and returns their index in it. */
  private take(n: number, where: string): number {
    if (n > this.remaining) fail(this.r.path, where, `${n} bytes at offset ${this.pos}`, `file size ${this.r.size}`);
    let i = this.pos - this.bufStart;
    if (i < 0 || i + n > this.buf.length) {
      const len = Math.min(Math.max(n, 1 << 20), this.remaining);
      this.buf = this.r.bytes(this.pos, len, where);
      this.dv = new DataView(this.buf.buffer);
      this.bufStart = this.pos;
      i = 0;
    }
    this.pos += n;
    return i;
  }
  u8(where: string): number { const i = this.take(1, where); return this.buf[i]!; }
  i8(where: string): number { const i = this.take(1, where); return this.dv.getInt8(i); }
  u16(where: string): number { const i = this.take(2, where); return this.dv.getUint16(i, true); }
  i16(where: string): number { const i = this.take(2, where); return this.dv.getInt16(i, true); }
  u32(where: string): number { const i = this.take(4, where); return this.dv.getUint32(i, true); }
  i32(where: string): number { const i = this.take(4, where); return this.dv.getInt32(i, true); }
  u64(where: string): bigint { const i = this.take(8, where); return this.dv.getBigUint64(i, true); }
  i64(where: string): bigint { const i = this.take(8, where); return this.dv.getBigInt64(i, true); }
  f32(where: string): number { const i = this.take(4, where); return this.dv.getFloat32(i, true); }
  f64(where: string): number { const i = this.take(8, where); return this.dv.getFloat64(i, true); }
  /** A copy of the next `n` bytes. */
  bytes(n: number, where: string): Uint8Array {
    const i = this.take(n, where);
    return this.buf.slice(i, i + n);
  }
  /** The next `n` bytes as strict UTF-8 (no copy). */
  string(n: number, where: string): string {
    const i = this.take(n, where);
    return decodeUtf8(this.buf.subarray(i, i + n), this.r.path, where);
  }
}

/** Where a tensor lives in a file: its info plus the absolute byte offset of its data. */
export interface TensorEntry {
  info: TensorInfo;
  offset: number;
  /** A type converted at load (GGUF's Q5_0, Q3_K, ...): bytes in the file, and raw bytes -> info.dtype bytes. */
  transcode?: { storedBytes: number; convert(raw: Uint8Array): Uint8Array };
}

/**
 * A TensorSource over one file whose tensors are at known absolute offsets (already validated to lie inside
 * the file). Unknown names are NOT_FOUND; tensors with `dtype: null` are UnsupportedError.
 */
export class FileTensorSource implements TensorSource {
  constructor(protected readonly reader: FileReader, protected readonly entries: Map<string, TensorEntry>) {}
  get path(): string { return this.reader.path; }
  list(): TensorInfo[] {
    return [...this.entries.values()].map((e) => ({ ...e.info, shape: [...e.info.shape] }));
  }
  has(name: string): boolean { return this.entries.has(name); }
  read(name: string): HostTensor {
    const e = this.entries.get(name);
    if (!e) throw new RistrettoError('NOT_FOUND', `${this.path}: no tensor named "${name}"`);
    if (e.info.dtype === null) {
      throw new UnsupportedError(`${this.path}: tensor "${name}" has type ${e.info.typeName}, which cannot be decoded`);
    }
    if (e.transcode !== undefined) {
      const raw = this.reader.bytes(e.offset, e.transcode.storedBytes, `tensor "${name}" data`);
      return { name, dtype: e.info.dtype, shape: [...e.info.shape], data: e.transcode.convert(raw) };
    }
    const data = this.reader.bytes(e.offset, e.info.byteLength, `tensor "${name}" data`);
    return { name, dtype: e.info.dtype, shape: [...e.info.shape], data };
  }
  close(): void { this.reader.close(); }
}

/** Writes all of `chunks` to an open fd at its current position. */
export function writeAll(fd: number, chunk: Uint8Array): void {
  let done = 0;
  while (done < chunk.length) done += fs.writeSync(fd, chunk, done, chunk.length - done);
}
