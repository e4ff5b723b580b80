// GGUF block types we read but do not keep: Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K. Real files mix them in
// (llama.cpp's Q4_K_M falls back to Q5_0 for rows that are not a multiple of 256, Q5_K_M is mostly Q5_K, Q3_K/Q2_K
// files exist); the GGUF reader dequantizes them exactly (ggml's dequantize_row_* semantics) and transcodes the
// values to Q8_0 at load, so every backend runs them with its Q8_0 kernels. Q8_0 resolves each block of 32 to
// max|x|/127, finer than any of these types' steps, so the transcoding error is at most half a Q8_0 step.
//
// Every product below is exact in float32 (an f16 scale times small integers), so computing in float64 and
// rounding once with Math.fround gives ggml's float32 bits (gguf-quants.json checks this bit for bit).

import { f16BitsToF32 } from './half.js';

const fr = Math.fround;
const f16 = (b: Uint8Array, p: number): number => f16BitsToF32(b[p]! | (b[p + 1]! << 8));
const u32 = (b: Uint8Array, p: number): number => (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;

export type TranscodedType = 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q2_K' | 'Q3_K' | 'Q5_K';

interface Layout {
  blockElems: number;
  blockBytes: number;
  /** Dequantizes the block at src[p..] into out[o..o+blockElems). */
  block(src: Uint8Array, p: number, out: Float32Array, o: number): void;
}

/** ggml's get_scale_min_k4: 6-bit scale and min of sub-block j from the 12 packed bytes at s. */
function scaleMinK4(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j]! & 63, b[s + j + 4]! & 63];
  return [(b[s + j + 4]! & 15) | ((b[s + j - 4]! >> 6) << 4), (b[s + j + 4]! >> 4) | ((b[s + j]! >> 6) << 4)];
}

const LAYOUTS: Record<TranscodedType, Layout> = {
  // d f16, m f16, qs[16]: y[j] = d*(qs[j]&15) + m, y[j+16] = d*(qs[j]>>4) + m
  Q4_1: {
    blockElems: 32, blockBytes: 20,
    block(b, p, out, o) {
      const d = f16(b, p), m = f16(b, p + 2);
      for (let j = 0; j < 16; j++) {
        const q = b[p + 4 + j]!;
        out[o + j] = fr(d * (q & 15) + m);
        out[o + j + 16] = fr(d * (q >> 4) + m);
      }
    },
  },
  // d f16, qh u32 (bit j = 5th bit of element j), qs[16]: y = d*(q - 16)
  Q5_0: {
    blockElems: 32, blockBytes: 22,
    block(b, p, out, o) {
      const d = f16(b, p), qh = u32(b, p + 2);
      for (let j = 0; j < 16; j++) {
        const q = b[p + 6 + j]!;
        out[o + j] = fr(d * (((q & 15) | (((qh >>> j) & 1) << 4)) - 16));
        out[o + j + 16] = fr(d * (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16));
      }
    },
  },
  // d f16, m f16, qh u32, qs[16]: y = d*q + m
  Q5_1: {
    blockElems: 32, blockBytes: 24,
    block(b, p, out, o) {
      const d = f16(b, p), m = f16(b, p + 2), qh = u32(b, p + 4);
      for (let j = 0; j < 16; j++) {
        const q = b[p + 8 + j]!;
        out[o + j] = fr(d * ((q & 15) | (((qh >>> j) & 1) << 4)) + m);
        out[o + j + 16] = fr(d * ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) + m);
      }
    },
  },
  // scales[16] (low nibble scale, high nibble min), qs[64] (2 bits), d f16, dmin f16.
  // Each half of 128: 4 shifts x 2 groups of 16, group g uses scales[is++]: y = d*sc*q - dmin*mn
  Q2_K: {
    blockElems: 256, blockBytes: 84,
    block(b, p, out, o) {
      const d = f16(b, p + 80), dmin = f16(b, p + 82);
      let is = 0;
      let y = o;
      for (let half = 0; half < 2; half++) {
        const q = p + 16 + 32 * half;
        for (let shift = 0; shift < 8; shift += 2) {
          for (let g = 0; g < 2; g++) {
            const sc = b[p + is++]!;
            const dl = d * (sc & 15), ml = dmin * (sc >> 4);
            for (let l = 0; l < 16; l++) out[y++] = fr(dl * ((b[q + 16 * g + l]! >> shift) & 3) - ml);
          }
        }
      }
    },
  },
  // hmask[32], qs[64] (2 low bits), scales[12] (16 x 6-bit, offset 32), d f16.
  // q = low 2 bits - (high bit clear ? 4 : 0); y = d*(scale - 32)*q
  Q3_K: {
    blockElems: 256, blockBytes: 110,
    block(b, p, out, o) {
      const d = f16(b, p + 108);
      const s = p + 96;
      const scales = new Array<number>(16);
      for (let j = 0; j < 16; j++) {
        const low = j < 8 ? (b[s + j]! & 15) : (b[s + j - 8]! >> 4);
        const high = (b[s + 8 + (j & 3)]! >> (2 * (j >> 2))) & 3;
        scales[j] = (low | (high << 4)) - 32;
      }
      let is = 0;
      let m = 1;
      let y = o;
      for (let half = 0; half < 2; half++) {
        const q = p + 32 + 32 * half;
        for (let shift = 0; shift < 8; shift += 2) {
          for (let g = 0; g < 2; g++) {
            const dl = d * scales[is++]!;
            for (let l = 0; l < 16; l++) {
              const k = 16 * g + l;
              out[y++] = fr(dl * (((b[q + k]! >> shift) & 3) - ((b[p + k]! & m) !== 0 ? 0 : 4)));
            }
          }
          m <<= 1;
        }
      }
    },
  },
  // d f16, dmin f16, scales[12] (as Q4_K), qh[32], qs[128]. Chunk c of 64: low nibbles then high nibbles, 5th bits
  // from qh bit 2c / 2c+1: y = d*sc*q - dmin*mn
  Q5_K: {
    blockElems: 256, blockBytes: 176,
    block(b, p, out, o) {
      const d = f16(b, p), dmin = f16(b, p + 2);
      const qh = p + 16, ql = p + 48;
      let y = o;
      for (let c = 0; c < 4; c++) {
        const [sc1, m1] = scaleMinK4(b, p + 4, 2 * c);
        const [sc2, m2] = scaleMinK4(b, p + 4, 2 * c + 1);
        const d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2;
        const u1 = 1 << (2 * c), u2 = 2 << (2 * c);
        for (let l = 0; l < 32; l++) out[y++] = fr(d1 * ((b[ql + 32 * c + l]! & 15) + ((b[qh + l]! & u1) !== 0 ? 16 : 0)) - mm1);
        for (let l = 0; l < 32; l++) out[y++] = fr(d2 * ((b[ql + 32 * c + l]! >> 4) + ((b[qh + l]! & u2) !== 0 ? 16 : 0)) - mm2);
      }
    },
  },
};

export function isTranscodedType(name: string): name is TranscodedType {
  return Object.prototype.hasOwnProperty.call(LAYOUTS, name);
}

/** Block size and bytes of a transcoded type. */
export function transcodedLayout(t: TranscodedType): { blockElems: number; blockBytes: number } {
  const { blockElems, blockBytes } = LAYOUTS[t];
  return { blockElems, blockBytes };
}

/** Dequantizes `n` elements (a multiple of the block size) of type `t` to float32, as ggml does. */
export function dequantizeTranscoded(t: TranscodedType, bytes: Uint8Array, n: number, out = new Float32Array(n)): Float32Array {
  const L = LAYOUTS[t];
  const blocks = n / L.blockElems;
  if (!Number.isInteger(blocks)) throw new RangeError(`${t}: ${n} elements is not a whole number of ${L.blockElems}-element blocks`);
  if (bytes.length < blocks * L.blockBytes) throw new RangeError(`${t}: ${blocks} blocks need ${blocks * L.blockBytes} bytes, got ${bytes.length}`);
  for (let i = 0; i < blocks; i++) L.block(bytes, i * L.blockBytes, out, i * L.blockElems);
  return out;
}
