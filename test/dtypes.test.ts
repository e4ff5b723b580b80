// Dtype codecs: bit-exact dequantization and byte-exact quantization against llama.cpp golden data
// (shared/models/reference/gguf-quants.json), round-trip error bounds, and f16/bf16 edge cases checked
// against independently computed values.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  bf16BitsToF32,
  dequantize,
  dequantizeRow,
  f16BitsToF32,
  f32Bits,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32FromBits,
  f32ToBf16Bits,
  f32ToF16Bits,
  quantize,
  readTensorAsF32,
  rowBytes,
} from '../src/formats/dtypes/index.js';
import { DTYPE_LAYOUT, type DType, type HostTensor } from '../src/formats/tensor.js';
import { RistrettoError } from '../src/errors.js';

// ---------------------------------------------------------------------------------------------
// Locating shared/models

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('no package.json above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

const MODELS_DIR = process.env['RISTRETTO_MODELS_DIR'] ?? resolve(repoRoot(), '..', 'shared', 'models');
const GOLDEN_PATH = join(MODELS_DIR, 'reference', 'gguf-quants.json');

interface GoldenCase {
  name: string;
  kind: 'quantize' | 'random_bytes' | 'ggml_c_quantized';
  n_blocks: number;
  n_elems: number;
  input?: number[];
  c_quantizer?: string;
  c_quantizer_input?: number[];
  bytes_hex: string;
  dequantized: number[];
  dequantized_f32le_sha256: string;
}
interface GoldenType {
  type: string;
  block_bytes: number;
  block_elems: number;
  cases: GoldenCase[];
}

const GOLDEN_TYPES: Record<string, DType> = { F16: 'f16', BF16: 'bf16', Q8_0: 'q8_0', Q4_0: 'q4_0', Q4_K: 'q4_k', Q6_K: 'q6_k' };

function loadGolden(): GoldenType[] | null {
  if (!existsSync(GOLDEN_PATH)) return null;
  return (JSON.parse(readFileSync(GOLDEN_PATH, 'utf8')) as { types: GoldenType[] }).types;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function hexToBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
function bytesToHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}
function hex32(u: number): string {
  return '0x' + (u >>> 0).toString(16).padStart(8, '0');
}

/** null when `actual` and `expected` have identical float32 bit patterns; else a description of the first mismatch. */
function firstBitMismatch(actual: Float32Array, expected: Float32Array): string | null {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) return `index ${i}: got ${actual[i]} (${hex32(a[i]!)}), expected ${expected[i]} (${hex32(e[i]!)})`;
  }
  return null;
}

/** null when byte arrays are equal; else the first differing byte. */
function firstByteMismatch(actual: Uint8Array, expected: Uint8Array): string | null {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) return `byte ${i}: got 0x${actual[i]!.toString(16)}, expected 0x${expected[i]!.toString(16)}`;
  }
  return null;
}

function sha256F32(x: Float32Array): string {
  const le = new Uint8Array(x.length * 4);
  const dv = new DataView(le.buffer);
  for (let i = 0; i < x.length; i++) dv.setFloat32(4 * i, x[i]!, true);
  return createHash('sha256').update(le).digest('hex');
}

/** Deterministic PRNG (mulberry32) and a Box-Muller normal. */
function rng(seed: number): { uniform(): number; normal(): number } {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { uniform, normal: () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()) };
}

// ---------------------------------------------------------------------------------------------
// Golden data (llama.cpp gguf-py / ggml C)

test('golden gguf-quants.json: dequantize bit-exact, quantize byte-exact', async (t) => {
  const golden = loadGolden();
  if (golden === null) {
    t.skip(`shared models not found: ${GOLDEN_PATH} is missing (set RISTRETTO_MODELS_DIR)`);
    return;
  }
  const seen = new Set<string>();
  for (const gt of golden) {
    const dtype = GOLDEN_TYPES[gt.type];
    if (dtype === undefined) continue; // Q4_1, Q5_x, Q2_K, Q3_K, Q5_K: not DTypes of ours
    seen.add(gt.type);
    assert.equal(gt.block_bytes, DTYPE_LAYOUT[dtype].blockBytes, `${gt.type} block bytes`);
    assert.equal(gt.block_elems, DTYPE_LAYOUT[dtype].blockElems, `${gt.type} block elems`);
    assert.ok(gt.cases.length > 0);
    for (const c of gt.cases) {
      await t.test(`${gt.type} ${c.name}`, () => {
        const bytes = hexToBytes(c.bytes_hex);
        const expected = Float32Array.from(c.dequantized);
        assert.equal(sha256F32(expected), c.dequantized_f32le_sha256, 'golden values parse to the recorded float32 bits');

        // whole-buffer dequantize, into a fresh array and into a caller's array
        const got = dequantize(dtype, bytes, c.n_elems);
        const mismatch = firstBitMismatch(got, expected);
        assert.equal(mismatch, null, `${gt.type} ${c.name} dequantize: ${mismatch}`);
        assert.equal(sha256F32(got), c.dequantized_f32le_sha256);
        const into = new Float32Array(c.n_elems + 3).fill(NaN);
        assert.equal(dequantize(dtype, bytes, c.n_elems, into), into);
        assert.equal(firstBitMismatch(into.subarray(0, c.n_elems), expected), null);

        // per-row decode: rows of one block (32 elements for f16/bf16)
        const rowLen = Math.max(32, DTYPE_LAYOUT[dtype].blockElems);
        const row = new Float32Array(rowLen);
        for (let r = 0; r < c.n_elems / rowLen; r++) {
          dequantizeRow(dtype, bytes, r, rowLen, row);
          const m = firstBitMismatch(row, expected.subarray(r * rowLen, (r + 1) * rowLen));
          assert.equal(m, null, `${gt.type} ${c.name} row ${r}: ${m}`);
        }

        // quantize: gguf-py golden for 'quantize' cases, ggml C golden for the K-quant 'ggml_c_quantized' cases
        const input = c.kind === 'quantize' ? c.input : c.kind === 'ggml_c_quantized' ? c.c_quantizer_input : undefined;
        if (input !== undefined) {
          const q = quantize(dtype, Float32Array.from(input));
          const qm = firstByteMismatch(q, bytes);
          assert.equal(qm, null, `${gt.type} ${c.name} quantize: ${qm}`);
        }
      });
    }
  }
  assert.deepEqual([...seen].sort(), Object.keys(GOLDEN_TYPES).sort(), 'every dtype has golden cases');
});

test('a broken dequantizer fails the golden comparison', (t) => {
  const golden = loadGolden();
  if (golden === null) {
    t.skip(`shared models not found: ${GOLDEN_PATH} is missing (set RISTRETTO_MODELS_DIR)`);
    return;
  }
  const byType = (ty: string, kind: string): GoldenCase => golden.find((g) => g.type === ty)!.cases.find((c) => c.kind === kind)!;

  // Q4_0 with the common nibble-order bug (elements 2j / 2j+1 instead of j / j+16), and with an off-by-one zero point
  const c4 = byType('Q4_0', 'random_bytes');
  const bytes = hexToBytes(c4.bytes_hex);
  const expected = Float32Array.from(c4.dequantized);
  const interleaved = new Float32Array(c4.n_elems);
  const offByOne = new Float32Array(c4.n_elems);
  for (let b = 0; b < c4.n_blocks; b++) {
    const d = f16BitsToF32(bytes[18 * b]! | (bytes[18 * b + 1]! << 8));
    for (let j = 0; j < 16; j++) {
      const v = bytes[18 * b + 2 + j]!;
      interleaved[32 * b + 2 * j] = d * ((v & 15) - 8);
      interleaved[32 * b + 2 * j + 1] = d * ((v >> 4) - 8);
      offByOne[32 * b + j] = d * ((v & 15) - 7);
      offByOne[32 * b + j + 16] = d * ((v >> 4) - 7);
    }
  }
  assert.notEqual(firstBitMismatch(interleaved, expected), null);
  assert.notEqual(firstBitMismatch(offByOne, expected), null);

  // one ulp anywhere is caught, and the message names the index and both values
  const got = dequantize('q4_0', bytes, c4.n_elems);
  const bits = new Uint32Array(got.buffer);
  bits[77] = bits[77]! + 1;
  const msg = firstBitMismatch(got, expected);
  assert.ok(msg !== null && msg.startsWith('index 77:'), String(msg));

  // Q6_K read with unsigned sub-block scales (a missing int8 sign extension) is caught by the random-bytes case
  const c6 = byType('Q6_K', 'random_bytes');
  const b6 = hexToBytes(c6.bytes_hex);
  const good6 = dequantize('q6_k', b6, c6.n_elems);
  const broken6 = new Float32Array(good6);
  for (let b = 0; b < c6.n_blocks; b++) {
    for (let e = 0; e < 256; e++) {
      const s = b6[210 * b + 192 + (e >> 4)]!;
      if (s >= 128) broken6[256 * b + e] = Math.fround(good6[256 * b + e]! * (s / (s - 256))); // as if scale were s, not s - 256
    }
  }
  assert.notEqual(firstBitMismatch(broken6, Float32Array.from(c6.dequantized)), null);
});

// ---------------------------------------------------------------------------------------------
// f16 / bf16 conversions against independently computed values

/** Independent f16 decoder: sign * 2^(e-15) * (1 + m/1024), subnormals 2^-14 * m/1024. */
function f16Reference(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  if (e === 0) return s * Math.pow(2, -14) * (m / 1024);
  return s * Math.pow(2, e - 15) * (1 + m / 1024);
}

test('f16 -> f32: all 65536 patterns equal an independent formula', () => {
  for (let h = 0; h < 65536; h++) {
    const got = f16BitsToF32(h);
    const want = f16Reference(h);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `pattern 0x${h.toString(16)}`);
    else assert.ok(Object.is(got, want), `pattern 0x${h.toString(16)}: got ${got}, want ${want}`);
  }
  // NaN payloads survive the bulk decoder bit for bit
  const nanBytes = new Uint8Array([0x01, 0x7c, 0xff, 0xff, 0x00, 0x7e]);
  const out = dequantize('f16', nanBytes, 3);
  assert.deepEqual([...new Uint32Array(out.buffer)], [0x7f802000, 0xffffe000, 0x7fc00000]);
});

test('f32 -> f16: known constants, ties to even, subnormals, overflow, signed zero, NaN', () => {
  const cases: Array<[number, number]> = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff], // largest finite
    [65519.99609375, 0x7bff], // just below the overflow tie
    [65520, 0x7c00], // tie between 65504 and 2^16 rounds to even = Inf
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [Math.pow(2, -14), 0x0400], // smallest normal
    [Math.pow(2, -24), 0x0001], // smallest subnormal
    [Math.pow(2, -25), 0x0000], // tie between 0 and 2^-24: even = 0
    [-Math.pow(2, -25), 0x8000],
    [Math.pow(2, -25) * (1 + Math.pow(2, -23)), 0x0001], // just above the tie
    [3 * Math.pow(2, -25), 0x0002], // tie between 1 and 2 units: even = 2
    [5 * Math.pow(2, -25), 0x0002], // tie between 2 and 3 units: even = 2
    [1023 * Math.pow(2, -24), 0x03ff], // largest subnormal
    [1023.5 * Math.pow(2, -24), 0x0400], // tie rounds up into the smallest normal
    [1 + Math.pow(2, -11), 0x3c00], // tie: even mantissa 0
    [1 + 3 * Math.pow(2, -11), 0x3c02], // tie: even mantissa 2
    [1 + Math.pow(2, -11) + Math.pow(2, -23), 0x3c01], // above the tie
    [2049, 0x6800], // ties at integer scale
    [2051, 0x6802],
    [0.1, 0x2e66],
    [-1 / 3, 0xb555],
  ];
  for (const [x, h] of cases) {
    assert.equal(f32ToF16Bits(x), h, `f16(${x}) = 0x${f32ToF16Bits(x).toString(16)}, expected 0x${h.toString(16)}`);
  }
  assert.equal(f16BitsToF32(0x7bff), 65504);
  assert.equal(f16BitsToF32(0x0001), Math.pow(2, -24));
  const nan = f32ToF16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.ok((nan & 0x3ff) !== 0 && (nan & 0x200) !== 0, 'NaN stays a quiet NaN');
  assert.equal(f32BitsToF16Bits(0x7f800001) & 0x200, 0x200, 'signalling NaN made quiet');
  // every finite f16 survives f16 -> f32 -> f16
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue;
    assert.equal(f32ToF16Bits(f16BitsToF32(h)), h);
  }
});

test('f32 -> f16: random float32 values round to the nearest f16 (ties to even), by exhaustive search', () => {
  // independent reference: sorted non-negative finite f16 values, nearest by binary search
  const vals: number[] = [];
  for (let h = 0; h < 0x7c00; h++) vals.push(f16Reference(h));
  const nearest = (a: number): number => {
    if (a >= 65520) return 0x7c00;
    let lo = 0;
    let hi = vals.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (vals[mid]! <= a) lo = mid;
      else hi = mid;
    }
    const dl = a - vals[lo]!;
    const dh = vals[hi]! - a;
    if (dl < dh) return lo;
    if (dh < dl) return hi;
    return lo % 2 === 0 ? lo : hi;
  };
  const r = rng(42);
  for (let i = 0; i < 200000; i++) {
    // exponents spread over f16's range and beyond (2^-30 .. 2^17)
    const u = ((r.uniform() * 0x100000000) >>> 0) & 0x807fffff;
    const exp = 97 + Math.floor(r.uniform() * 48);
    const bits = (u | (exp << 23)) >>> 0;
    const x = f32FromBits(bits);
    const want = (bits & 0x80000000 ? 0x8000 : 0) | nearest(Math.abs(x));
    assert.equal(f32BitsToF16Bits(bits), want, `float32 ${hex32(bits)} (${x})`);
  }
});

test('f32 <-> bf16: edge cases and random values against a nearest-neighbour reference', () => {
  assert.equal(f32ToBf16Bits(1), 0x3f80);
  assert.equal(f32ToBf16Bits(1.00390625), 0x3f80); // tie (1 + 2^-8): even
  assert.equal(f32ToBf16Bits(1.01171875), 0x3f82); // tie (1 + 3 * 2^-8): even
  assert.equal(f32ToBf16Bits(-0), 0x8000);
  assert.equal(f32ToBf16Bits(3.4028234663852886e38), 0x7f80); // max float rounds to Inf
  assert.equal(f32ToBf16Bits(3.3895313892515355e38), 0x7f7f); // largest finite bf16
  assert.equal(f32ToBf16Bits(-Infinity), 0xff80);
  assert.equal(f32BitsToBf16Bits(0x00000001), 0x0000); // float32 subnormals round like any value
  assert.equal(f32BitsToBf16Bits(0x00008001), 0x0001);
  assert.equal(f32BitsToBf16Bits(0x7f800001), 0x7fc0, 'signalling NaN made quiet');
  assert.equal(f32BitsToBf16Bits(0xffc12345), 0xffc1);
  assert.equal(bf16BitsToF32(0x3f80), 1);
  assert.equal(bf16BitsToF32(0xc049), -3.140625);
  assert.equal(bf16BitsToF32(0x0001), f32FromBits(0x00010000));

  const r = rng(7);
  for (let i = 0; i < 200000; i++) {
    let bits = (r.uniform() * 0x100000000) >>> 0;
    if (i % 4 === 0) bits = ((bits & 0xffff0000) | 0x8000) >>> 0; // exact ties
    if (i % 4 === 1) bits = ((bits & 0xffff0000) | (r.uniform() < 0.5 ? 0x7fff : 0x8001)) >>> 0;
    if ((bits & 0x7f800000) === 0x7f800000) continue;
    const x = f32FromBits(bits);
    const lo = (bits & 0xffff0000) >>> 0;
    const hi = lo + 0x10000;
    const vLo = f32FromBits(lo);
    // past the largest finite value the next candidate is 2^128 (IEEE overflow rounds as if it existed)
    const vHi = (hi & 0x7f800000) === 0x7f800000 ? Math.sign(x) * Math.pow(2, 128) : f32FromBits(hi);
    const dl = Math.abs(x - vLo);
    const dh = Math.abs(vHi - x);
    const want = (dl < dh ? lo : dh < dl ? hi : (lo >>> 16) % 2 === 0 ? lo : hi) >>> 16;
    assert.equal(f32BitsToBf16Bits(bits), want & 0xffff, `float32 ${hex32(bits)}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Round trips on random data

function normalData(seed: number, n: number, outliers = false): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = r.normal() * (outliers && r.uniform() < 0.03 ? 10 : 1) * (1 + 3 * Math.floor(i / 256) % 7);
  return x;
}

test('round trip: f32 exact, f16/bf16 within half an ulp', () => {
  const x = normalData(1, 4096, true);
  assert.equal(firstBitMismatch(dequantize('f32', quantize('f32', x), x.length), x), null);
  const h = dequantize('f16', quantize('f16', x), x.length);
  const b = dequantize('bf16', quantize('bf16', x), x.length);
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]!);
    if (a >= Math.pow(2, -14)) assert.ok(Math.abs(h[i]! - x[i]!) <= a * Math.pow(2, -11), `f16 at ${i}`);
    assert.ok(Math.abs(b[i]! - x[i]!) <= a * Math.pow(2, -8), `bf16 at ${i}`);
  }
});

test('round trip: q8_0 error <= d/2 per block (plus the f16 rounding of d)', () => {
  const x = normalData(2, 32 * 200, true);
  for (let i = 0; i < 32; i++) x[32 * 5 + i] = 0; // an all-zero block decodes to zeros
  const q = quantize('q8_0', x);
  assert.equal(q.length, rowBytes('q8_0', x.length));
  const y = dequantize('q8_0', q, x.length);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]!));
    const d32 = Math.fround(amax / 127);
    const d16 = f16BitsToF32(q[34 * b]! | (q[34 * b + 1]! << 8));
    // q = round(x / d32) with |q| <= 127, decoded with d16: |x - q d16| <= d32/2 + 127 |d16 - d32| (+ float32 slop)
    const bound = (d32 / 2) * (1 + 1e-6) + 127 * Math.abs(d16 - d32);
    for (let j = 0; j < 32; j++) {
      const err = Math.abs(x[32 * b + j]! - y[32 * b + j]!);
      assert.ok(err <= bound, `block ${b} elem ${j}: error ${err} > ${bound}`);
    }
  }
  for (let j = 0; j < 32; j++) assert.ok(Object.is(y[32 * 5 + j], 0));
});

test('round trip: q4_0 error <= |d|/2, or |d| for the clamped mirror of the max', () => {
  const x = normalData(3, 32 * 200, true);
  const q = quantize('q4_0', x);
  const y = dequantize('q4_0', q, x.length);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      if (Math.abs(x[32 * b + j]!) > amax) {
        amax = Math.abs(x[32 * b + j]!);
        max = x[32 * b + j]!;
      }
    }
    const d32 = Math.abs(Math.fround(max / -8));
    const d16 = Math.abs(f16BitsToF32(q[18 * b]! | (q[18 * b + 1]! << 8)));
    const slop = 8 * Math.abs(d16 - d32) + d32 * 1e-6;
    for (let j = 0; j < 32; j++) {
      const xi = x[32 * b + j]!;
      const err = Math.abs(xi - y[32 * b + j]!);
      const clamped = xi * Math.sign(max) <= -7.5 * d32; // opposite sign to max, beyond the last level
      const bound = (clamped ? d32 : d32 / 2) + slop;
      assert.ok(err <= bound, `block ${b} elem ${j}: error ${err} > ${bound}`);
    }
    // the largest-magnitude element is reproduced up to the f16 rounding of d
    const jm = Array.from(x.subarray(32 * b, 32 * b + 32)).indexOf(max);
    assert.ok(Math.abs(y[32 * b + jm]! - max) <= slop + 1e-12);
  }
});

test('q4_0 quantize evaluates x * id + 8.5 in float64 as gguf-py does (not ggml C\'s float32)', () => {
  // max = -24 gives d = 3, id = fl(1/3); for this x, x * id + 8.5 is just below 10 in float64 (trunc 9)
  // while C's fl(fl(x * id) + 8.5f) is exactly 10.
  const x = Math.fround(4.499998569488525);
  const d = Math.fround(-24 / -8);
  const id = Math.fround(1 / d);
  assert.equal(Math.trunc(x * id + 8.5), 9);
  assert.equal(Math.trunc(Math.fround(Math.fround(x * id) + 8.5)), 10, 'the two recipes differ on this input');
  const block = new Float32Array(32);
  block[0] = -24;
  block[1] = x;
  const q = quantize('q4_0', block);
  assert.equal(f16BitsToF32(q[0]! | (q[1]! << 8)), 3);
  assert.equal(q[2]! & 15, 0, 'the max maps to q = 0');
  assert.equal(q[3]! & 15, 9);
  assert.equal(q[4]! & 15, 8, 'zeros map to q = 8');
});

/**
 * K-quant accuracy. Reference points: an ideal uniform quantizer with L levels spanning a block's range r
 * has RMSE r / ((L - 1) sqrt 12): 0.0192 r for 4 bits, 0.0046 r for 6 bits. We require each super-block's
 * RMSE <= 0.025 r (Q4_K) and <= 0.006 r (Q6_K), and over N(0, 1)-like data a relative RMSE (RMSE / RMS of x)
 * below 0.085 (Q4_K, measured 0.071) and 0.021 (Q6_K, measured 0.018), Q4_K beating Q4_0 on the same data.
 */
test('round trip: q4_k / q6_k relative error', () => {
  const x = normalData(4, 256 * 48, true);
  for (let i = 0; i < 256; i++) x[256 * 7 + i] = 0; // zero super-block
  for (let i = 0; i < 256; i++) x[256 * 9 + i] = 5 + Math.abs(x[256 * 9 + i]!); // all-positive block (min clamps to 0)
  const rmse = (a: Float32Array, b: Float32Array, lo: number, hi: number): number => {
    let s = 0;
    for (let i = lo; i < hi; i++) s += (a[i]! - b[i]!) ** 2;
    return Math.sqrt(s / (hi - lo));
  };
  const r = rng(40);
  const gauss = new Float32Array(256 * 64);
  for (let i = 0; i < gauss.length; i++) gauss[i] = r.normal();
  let rms = 0;
  for (const v of gauss) rms += v * v;
  rms = Math.sqrt(rms / gauss.length);
  const results: Record<string, number> = {};
  for (const [dtype, perBlock, global] of [
    ['q4_k', 0.025, 0.085],
    ['q6_k', 0.006, 0.021],
  ] as const) {
    const q = quantize(dtype, x);
    assert.equal(q.length, (x.length / 256) * DTYPE_LAYOUT[dtype].blockBytes);
    const y = dequantize(dtype, q, x.length);
    for (let b = 0; b < x.length / 256; b++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 256 * b; i < 256 * (b + 1); i++) {
        lo = Math.min(lo, x[i]!);
        hi = Math.max(hi, x[i]!);
      }
      const e = rmse(x, y, 256 * b, 256 * (b + 1));
      assert.ok(e <= perBlock * (hi - lo), `${dtype} block ${b}: rmse ${e} > ${perBlock} * range ${hi - lo}`);
    }
    for (let i = 0; i < 256; i++) assert.ok(y[256 * 7 + i] === 0, `${dtype} zero block`); // -0 for q6_k (0 * -32), as in ggml
    // relative RMSE on plain N(0, 1) data
    const yn = dequantize(dtype, quantize(dtype, gauss), gauss.length);
    results[dtype] = rmse(gauss, yn, 0, gauss.length) / rms;
    assert.ok(results[dtype]! < global, `${dtype} relative rmse ${results[dtype]}`);
  }
  const y40 = dequantize('q4_0', quantize('q4_0', gauss), gauss.length);
  assert.ok(results['q4_k']! < rmse(gauss, y40, 0, gauss.length) / rms, 'q4_k beats q4_0');
  assert.ok(results['q6_k']! < results['q4_k']!);
});

// ---------------------------------------------------------------------------------------------
// API: rowBytes, dequantizeRow, readTensorAsF32, argument errors

test('rowBytes and dequantizeRow on a multi-row matrix of every dtype', () => {
  const rows = 3;
  const rowLen = 512;
  const x = normalData(5, rows * rowLen);
  for (const dtype of Object.keys(DTYPE_LAYOUT) as DType[]) {
    const { blockElems, blockBytes } = DTYPE_LAYOUT[dtype];
    assert.equal(rowBytes(dtype, rowLen), (rowLen / blockElems) * blockBytes);
    const q = quantize(dtype, x);
    assert.equal(q.length, rows * rowBytes(dtype, rowLen));
    const all = dequantize(dtype, q, x.length);
    const row = new Float32Array(rowLen + 1).fill(-1);
    for (let r = 0; r < rows; r++) {
      assert.equal(dequantizeRow(dtype, q, r, rowLen, row), row);
      assert.equal(firstBitMismatch(row.subarray(0, rowLen), all.subarray(r * rowLen, (r + 1) * rowLen)), null, `${dtype} row ${r}`);
      assert.equal(row[rowLen], -1, 'nothing written past the row');
    }
    // decoding from a Uint8Array that is a view at an odd offset gives the same values
    const shifted = new Uint8Array(q.length + 1);
    shifted.set(q, 1);
    assert.equal(firstBitMismatch(dequantize(dtype, shifted.subarray(1), x.length), all), null);
    assert.throws(() => dequantizeRow(dtype, q, rows, rowLen, row), RistrettoError);
  }
  assert.throws(() => rowBytes('q4_k', 100), /multiple of the block size 256/);
  assert.throws(() => rowBytes('q8_0', 48), RistrettoError);
  assert.throws(() => dequantize('q8_0', new Uint8Array(33), 32), /need 34 bytes/);
  assert.throws(() => dequantize('q4_0', new Uint8Array(36), 40), RistrettoError);
  assert.throws(() => dequantize('f32', new Uint8Array(8), 2, new Float32Array(1)), RistrettoError);
  assert.throws(() => quantize('q6_k', new Float32Array(100)), RistrettoError);
  assert.throws(() => dequantize('nope' as DType, new Uint8Array(4), 1), RistrettoError);
});

test('readTensorAsF32: zero-copy f32 view, copies otherwise', () => {
  const x = normalData(6, 64);
  const f32Bytes = quantize('f32', x);
  const t: HostTensor = { name: 'w', dtype: 'f32', shape: [2, 32], data: f32Bytes };
  const v = readTensorAsF32(t);
  assert.equal(v.buffer, f32Bytes.buffer, 'f32 read is a view');
  assert.equal(firstBitMismatch(v, x), null);

  const unaligned = new Uint8Array(f32Bytes.length + 2);
  unaligned.set(f32Bytes, 2);
  const u = readTensorAsF32({ ...t, data: unaligned.subarray(2) });
  assert.notEqual(u.buffer, unaligned.buffer);
  assert.equal(firstBitMismatch(u, x), null);

  const q: HostTensor = { name: 'q', dtype: 'q8_0', shape: [2, 32], data: quantize('q8_0', x) };
  assert.equal(firstBitMismatch(readTensorAsF32(q), dequantize('q8_0', q.data, 64)), null);
  assert.throws(() => readTensorAsF32({ ...t, data: f32Bytes.subarray(0, 100) }), /tensor "w"/);
  assert.throws(() => readTensorAsF32({ ...q, shape: [2, 48] }), /tensor "q"/);
});

test('f32Bits / f32FromBits are inverse on non-NaN patterns', () => {
  for (const bits of [0, 0x80000000, 0x3f800000, 0x00000001, 0x7f7fffff, 0xff800000]) {
    assert.equal(f32Bits(f32FromBits(bits)), bits);
  }
});

// ---------------------------------------------------------------------------------------------
// Types read from GGUF and kept as Q8_0 (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K)

test('golden gguf-quants.json: Q4_1/Q5_0/Q5_1/Q2_K/Q3_K/Q5_K dequantize bit-exact; GGUF reads them as Q8_0 within half a step', async (t) => {
  const golden = loadGolden();
  if (golden === null) {
    t.skip(`shared models not found: ${GOLDEN_PATH} is missing (set RISTRETTO_MODELS_DIR)`);
    return;
  }
  const { dequantizeTranscoded, isTranscodedType, transcodedLayout } = await import('../src/formats/dtypes/transcode.js');
  const { writeGGUF, openGGUF } = await import('../src/formats/gguf.js');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'ristretto-transcode-'));
  const ids: Record<string, number> = { Q4_1: 3, Q5_0: 6, Q5_1: 7, Q2_K: 10, Q3_K: 11, Q5_K: 13 };
  const seen: string[] = [];
  try {
    for (const gt of golden) {
      if (!isTranscodedType(gt.type)) continue;
      seen.push(gt.type);
      const L = transcodedLayout(gt.type);
      assert.deepEqual([L.blockBytes, L.blockElems], [gt.block_bytes, gt.block_elems], `${gt.type} layout`);
      for (const c of gt.cases) {
        const bytes = hexToBytes(c.bytes_hex);
        const expected = Float32Array.from(c.dequantized);
        const got = dequantizeTranscoded(gt.type, bytes, c.n_elems);
        assert.equal(firstBitMismatch(got, expected), null, `${gt.type} ${c.name}: ${firstBitMismatch(got, expected)}`);
        // through a GGUF file: one row per case, read back as Q8_0
        const file = join(dir, `${gt.type}-${c.name}.gguf`);
        writeGGUF(file, { tensors: [{ name: 'w', shape: [1, c.n_elems], ggmlType: ids[gt.type]!, data: bytes }] });
        const f = openGGUF(file);
        const info = f.list()[0]!;
        assert.deepEqual([info.dtype, info.typeName], ['q8_0', gt.type]);
        const read = f.read('w');
        f.close();
        assert.equal(read.dtype, 'q8_0');
        assert.equal(read.data.byteLength, info.byteLength);
        const back = dequantize('q8_0', read.data, c.n_elems);
        for (let b = 0; b < c.n_elems / 32; b++) {
          let amax = 0;
          for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(expected[32 * b + i]!));
          const step = amax / 127;
          for (let i = 0; i < 32; i++) {
            const e = Math.abs(back[32 * b + i]! - expected[32 * b + i]!);
            // half a step, plus what the f16 rounding of the Q8_0 scale adds over 127 steps
            assert.ok(e <= 0.5 * step + amax / 1024, `${gt.type} ${c.name} element ${32 * b + i}: error ${e} > half a Q8_0 step ${step / 2}`);
          }
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(seen.sort(), ['Q2_K', 'Q3_K', 'Q4_1', 'Q5_0', 'Q5_1', 'Q5_K']);
});
