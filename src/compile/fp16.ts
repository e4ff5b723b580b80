// fp16 helpers for the ANE target: bulk rounding to fp16 (storage semantics of the interpreter), and the
// hex-float literal form MIL text uses for fp16 scalars (`0x1.4f8p-17`).

import { f16ToF32Table, f32BitsToF16Bits, f32ToF16Bits, f16BitsToF32 } from '../formats/dtypes/half.js';

export const FP16_MAX = 65504;

/** Rounds every element of `a` to the nearest fp16 value in place (ties to even; overflow to +-Inf). */
export function roundF16InPlace(a: Float32Array): Float32Array {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const table = f16ToF32Table();
  for (let i = 0; i < a.length; i++) a[i] = table[f32BitsToF16Bits(u[i]!)]!;
  return a;
}

/** A copy of `a` rounded to fp16. */
export function toF16Values(a: ArrayLike<number>): Float32Array {
  return roundF16InPlace(Float32Array.from(a));
}

/** `x` rounded to fp16. */
export function f16(x: number): number {
  return f16BitsToF32(f32ToF16Bits(x));
}

/**
 * The canonical hex-float text of a number (C99 `%a` style, normalised, trailing zero digits dropped):
 * 1 -> `0x1p+0`, 1e-5 as fp16 -> `0x1.5p-17`, -65504 -> `-0x1.ffcp+15`, 0 -> `0x0p+0`.
 * Exact for every float32 value (so for every fp16 value).
 */
export function hexFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  const neg = x < 0 || Object.is(x, -0);
  let a = Math.abs(x);
  if (a === 0) return `${neg ? '-' : ''}0x0p+0`;
  let e = Math.floor(Math.log2(a));
  // correct rounding of log2 at the edges
  while (a / 2 ** e >= 2) e++;
  while (a / 2 ** e < 1) e--;
  let m = a / 2 ** e - 1; // [0, 1)
  let digits = '';
  // 52 bits is enough for any double; stop when exact
  for (let i = 0; i < 13 && m > 0; i++) {
    m *= 16;
    const d = Math.floor(m);
    digits += d.toString(16);
    m -= d;
  }
  return `${neg ? '-' : ''}0x1${digits ? '.' + digits : ''}p${e >= 0 ? '+' : ''}${e}`;
}

/** Parses a hex float (`0x1.8p+3`, `-0x.8p0`, `0x10`) or returns null when `s` is not one. */
export function parseHexFloat(s: string): number | null {
  const m = /^([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?\d+))?$/.exec(s);
  if (m === null || (m[2] === '' && (m[3] ?? '') === '')) return null;
  let v = 0;
  for (const c of m[2]!) v = v * 16 + parseInt(c, 16);
  let scale = 1 / 16;
  for (const c of m[3] ?? '') {
    v += parseInt(c, 16) * scale;
    scale /= 16;
  }
  v *= 2 ** Number(m[4] ?? '0');
  return m[1] === '-' ? -v : v;
}
