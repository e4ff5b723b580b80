// Training checkpoints: model + optimizer state + step + RNG + data position in one file,
// written atomically (temp file, fsync, rename, fsync of the folder) and sealed with a SHA-256 of
// everything before the trailer. A truncated or corrupted file is rejected before anything is used.
//
// Layout:  "RSTCKPT1" | u32 header bytes | u32 0 | header JSON | zero pad to 8 | tensor bytes |
//          "RSTCKEND" | sha256(all bytes before "RSTCKEND")

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RistrettoError } from '../errors.js';
import type { Arr } from './gemm.js';

const MAGIC = 'RSTCKPT1';
const END = 'RSTCKEND';
const TRAILER = 8 + 32;

/** A checkpoint that is truncated, corrupted, or not a checkpoint at all. */
export class CheckpointError extends RistrettoError {
  constructor(readonly file: string, reason: string) {
    super('FORMAT', `${file}: ${reason}; the checkpoint was not loaded`);
    this.name = 'CheckpointError';
  }
}

export interface TensorRecord {
  name: string;
  dtype: 'f32' | 'f64';
  shape: number[];
  offset: number;
  bytes: number;
}

export interface CheckpointContents<S> {
  step: number;
  /** Named tensor groups, e.g. params, adam.m, adam.v. */
  tensors: Map<string, Map<string, Arr>>;
  /** Everything else (JSON): config, optimizer counters, RNG and data position, history, options. */
  state: S;
}

function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, '0')}.ckpt`;
}

/** Checkpoint files in `dir`, oldest first. */
export function listCheckpoints(dir: string): { step: number; file: string }[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((f) => /^step-(\d{8})\.ckpt$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), file: path.join(dir, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

/** Writes `dir/step-NNNNNNNN.ckpt` atomically and keeps the newest `keep` checkpoints. Returns the path. */
export function saveCheckpoint<S>(dir: string, c: CheckpointContents<S>, keep = 3): string {
  fs.mkdirSync(dir, { recursive: true });
  const records: TensorRecord[] = [];
  const blobs: Arr[] = [];
  let offset = 0;
  for (const [group, m] of c.tensors) {
    for (const [name, a] of m) {
      const dtype = a instanceof Float64Array ? 'f64' : 'f32';
      records.push({ name: `${group}/${name}`, dtype, shape: [a.length], offset, bytes: a.byteLength });
      blobs.push(a);
      offset += a.byteLength;
      offset = (offset + 7) & ~7;
    }
  }
  const header = Buffer.from(JSON.stringify({ format: 'ristretto-train-checkpoint', version: 1, step: c.step, tensors: records, state: c.state }), 'utf8');
  const pre = Buffer.alloc(16);
  pre.write(MAGIC, 0, 'latin1');
  pre.writeUInt32LE(header.length, 8);
  const pad = Buffer.alloc((8 - ((16 + header.length) % 8)) % 8);
  const file = path.join(dir, checkpointName(c.step));
  const tmp = `${file}.tmp-${process.pid}`;
  const hash = createHash('sha256');
  const fd = fs.openSync(tmp, 'w');
  try {
    const put = (b: Uint8Array): void => {
      hash.update(b);
      let o = 0;
      while (o < b.length) o += fs.writeSync(fd, b, o, b.length - o);
    };
    put(pre);
    put(header);
    put(pad);
    let pos = 0;
    for (let i = 0; i < blobs.length; i++) {
      const a = blobs[i]!;
      const rec = records[i]!;
      if (rec.offset > pos) put(Buffer.alloc(rec.offset - pos));
      put(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      pos = rec.offset + a.byteLength;
    }
    if (offset > pos) put(Buffer.alloc(offset - pos));
    const trailer = Buffer.alloc(TRAILER);
    trailer.write(END, 0, 'latin1');
    hash.digest().copy(trailer, 8);
    let o = 0;
    while (o < trailer.length) o += fs.writeSync(fd, trailer, o, trailer.length - o);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  fsyncDir(dir);
  // Keep the newest `keep`; never delete the one just written.
  const all = listCheckpoints(dir);
  for (const old of all.slice(0, Math.max(0, all.length - keep))) if (old.file !== file) fs.rmSync(old.file, { force: true });
  return file;
}

function fsyncDir(dir: string): void {
  try {
    const d = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(d);
    } finally {
      fs.closeSync(d);
    }
  } catch {
    /* some platforms cannot fsync a directory */
  }
}

/** Removes temp files left by a run killed while writing. */
export function cleanTempFiles(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const f of fs.readdirSync(dir)) if (/\.tmp-\d+$/.test(f)) fs.rmSync(path.join(dir, f), { force: true });
}

/** Verifies the checksum of a checkpoint (streaming) and returns its parsed header; throws CheckpointError. */
export function verifyCheckpoint(file: string): { header: { step: number; tensors: TensorRecord[]; state: unknown }; dataStart: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    throw new RistrettoError('NOT_FOUND', `${file}: no such checkpoint`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size < 16 + TRAILER) throw new CheckpointError(file, `truncated (${size} bytes)`);
    const pre = Buffer.alloc(16);
    fs.readSync(fd, pre, 0, 16, 0);
    if (pre.toString('latin1', 0, 8) !== MAGIC) throw new CheckpointError(file, 'not a ristretto training checkpoint (bad magic)');
    const trailer = Buffer.alloc(TRAILER);
    fs.readSync(fd, trailer, 0, TRAILER, size - TRAILER);
    if (trailer.toString('latin1', 0, 8) !== END) throw new CheckpointError(file, 'truncated or incomplete (no end marker)');
    const hash = createHash('sha256');
    const chunk = Buffer.alloc(1 << 22);
    for (let pos = 0; pos < size - TRAILER; ) {
      const n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, size - TRAILER - pos), pos);
      if (n <= 0) throw new CheckpointError(file, 'short read');
      hash.update(chunk.subarray(0, n));
      pos += n;
    }
    if (!hash.digest().equals(trailer.subarray(8))) throw new CheckpointError(file, 'corrupted (SHA-256 checksum mismatch)');
    const hlen = pre.readUInt32LE(8);
    if (16 + hlen > size - TRAILER) throw new CheckpointError(file, 'corrupted (header length)');
    const hb = Buffer.alloc(hlen);
    fs.readSync(fd, hb, 0, hlen, 16);
    let header: { step: number; tensors: TensorRecord[]; state: unknown };
    try {
      header = JSON.parse(hb.toString('utf8'));
    } catch {
      throw new CheckpointError(file, 'corrupted (header is not JSON)');
    }
    const dataStart = (16 + hlen + 7) & ~7;
    for (const r of header.tensors) {
      if (dataStart + r.offset + r.bytes > size - TRAILER) throw new CheckpointError(file, `corrupted (tensor ${r.name} lies outside the file)`);
    }
    return { header, dataStart, size };
  } finally {
    fs.closeSync(fd);
  }
}

/** Loads a checkpoint after verifying its checksum. */
export function loadCheckpoint<S>(file: string): CheckpointContents<S> {
  const { header, dataStart } = verifyCheckpoint(file);
  const fd = fs.openSync(file, 'r');
  try {
    const tensors = new Map<string, Map<string, Arr>>();
    for (const r of header.tensors) {
      const slash = r.name.indexOf('/');
      const group = r.name.slice(0, slash);
      const name = r.name.slice(slash + 1);
      const buf = new ArrayBuffer(r.bytes);
      fs.readSync(fd, new Uint8Array(buf), 0, r.bytes, dataStart + r.offset);
      const a = r.dtype === 'f64' ? new Float64Array(buf) : new Float32Array(buf);
      let m = tensors.get(group);
      if (m === undefined) tensors.set(group, (m = new Map()));
      m.set(name, a);
    }
    return { step: header.step, tensors, state: header.state as S };
  } finally {
    fs.closeSync(fd);
  }
}
