// Shared test helpers: where the read-only model files are, temp dirs, a seeded PRNG, and a raw byte builder
// for hand-crafting (hostile) binary files.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file compiles to dist/test/helpers/models.js). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Path of the shared models directory ($RISTRETTO_MODELS, else ../shared/models next to the repo), or null. */
export function modelsDir(): string | null {
  const dir = process.env.RISTRETTO_MODELS ?? path.resolve(repoRoot, '../shared/models');
  return fs.existsSync(path.join(dir, 'PROVENANCE.md')) ? dir : null;
}

interface Skippable {
  skip(message?: string): void;
}

/**
 * Returns the path of `rel` inside the models dir, or null after marking the test skipped with a visible message.
 * Usage: `const f = modelFileOrSkip(t, 'gguf/stories260K.gguf'); if (!f) return;`
 */
export function modelFileOrSkip(t: Skippable, rel = ''): string | null {
  const dir = modelsDir();
  const p = dir === null ? null : path.join(dir, rel);
  if (p === null || !fs.existsSync(p)) {
    t.skip(`shared/models not found (${rel || 'models dir'}); set RISTRETTO_MODELS or provide ../shared/models`);
    return null;
  }
  return p;
}

/** Marks `t` skipped with a visible message when the models dir is absent; returns the dir otherwise. */
export function skipIfNoModels(t: Skippable): string | null {
  const dir = modelsDir();
  if (dir === null) t.skip('shared/models not found; set RISTRETTO_MODELS or provide ../shared/models');
  return dir;
}

/** A fresh temp directory, removed at process exit. */
export function tempDir(prefix = 'ristretto-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Little-endian byte builder for hand-made files. */
export class Bytes {
  private parts: number[] = [];
  get length(): number {
    return this.parts.length;
  }
  private put(n: number, f: (dv: DataView) => void): this {
    const b = new Uint8Array(n);
    f(new DataView(b.buffer));
    for (const x of b) this.parts.push(x);
    return this;
  }
  u8(v: number): this { return this.put(1, (d) => d.setUint8(0, v)); }
  u16(v: number): this { return this.put(2, (d) => d.setUint16(0, v, true)); }
  u32(v: number): this { return this.put(4, (d) => d.setUint32(0, v, true)); }
  i32(v: number): this { return this.put(4, (d) => d.setInt32(0, v, true)); }
  u64(v: bigint | number): this { return this.put(8, (d) => d.setBigUint64(0, BigInt(v), true)); }
  f32(v: number): this { return this.put(4, (d) => d.setFloat32(0, v, true)); }
  raw(b: Uint8Array | number[] | string): this {
    for (const x of typeof b === 'string' ? new TextEncoder().encode(b) : b) this.parts.push(x);
    return this;
  }
  /** A GGUF string: u64 length + bytes. */
  gstr(s: string | Uint8Array): this {
    const b = typeof s === 'string' ? new TextEncoder().encode(s) : s;
    return this.u64(b.length).raw(b);
  }
  pad(to: number): this {
    while (this.parts.length % to) this.parts.push(0);
    return this;
  }
  build(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** Random bytes from a seeded PRNG. */
export function randomBytes(n: number, rand: () => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}
