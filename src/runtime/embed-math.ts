// Pooling and quantization of sentence embeddings, on the host, in double precision.
// Every pooling is a pooling matrix P [K, n] applied to the hidden states H [n, D] of one sequence: mean = one row
// of 1/n, CLS = a one-hot row at 0, last token = a one-hot row at n-1, late chunking = one row of 1/n_k per chunk.

export type Pooling = 'mean' | 'cls' | 'last';
export type EmbeddingOutput = 'float' | 'int8' | 'binary' | 'ubinary';
/** float: Float32Array; int8 and binary (+1/-1): Int8Array; ubinary (packed bits, MSB first): Uint8Array. */
export type OutputArray<O extends EmbeddingOutput> = O extends 'float' ? Float32Array : O extends 'ubinary' ? Uint8Array : Int8Array;

/** A sparse pooling matrix: row k holds (row index, weight) pairs. */
export type PoolingMatrix = { rows: Int32Array; weights: Float64Array }[];

/** Uniform weights over [start, end). */
export function spanRow(start: number, end: number): { rows: Int32Array; weights: Float64Array } {
  const n = end - start;
  if (n <= 0) throw new RangeError(`pooling span [${start}, ${end}) is empty`);
  const rows = new Int32Array(n);
  for (let i = 0; i < n; i++) rows[i] = start + i;
  return { rows, weights: new Float64Array(n).fill(1 / n) };
}

/** The pooling matrix of one n-token sequence: mean over all n tokens, the first (CLS) or the last token. */
export function poolingMatrix(pooling: Pooling, n: number): PoolingMatrix {
  if (pooling === 'mean') return [spanRow(0, n)];
  return [spanRow(pooling === 'cls' ? 0 : n - 1, pooling === 'cls' ? 1 : n)];
}

/**
 * Late-chunking spans recovered from separator positions, as pplx-embed does: chunk 0 = [0, s1) (it includes a
 * BOS/CLS prefix), chunk k = [s_k + 1, s_{k+1}), the last chunk = [s_last + 1, end); separators belong to no chunk.
 * `end` (default ids.length) excludes a trailing suffix that is not part of the last chunk.
 */
export function lateChunkSpans(ids: readonly number[], separatorId: number, end = ids.length): [number, number][] {
  const spans: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < end; i++) {
    if (ids[i] !== separatorId) continue;
    spans.push([start, i]);
    start = i + 1;
  }
  spans.push([start, end]);
  return spans;
}

/** P @ H for one sequence: H is [n, D] row-major (f32), the result K vectors of D doubles. */
export function applyPooling(hidden: Float32Array, D: number, P: PoolingMatrix): Float64Array[] {
  return P.map(({ rows, weights }) => {
    const out = new Float64Array(D);
    for (let r = 0; r < rows.length; r++) {
      const w = weights[r]!;
      const o = rows[r]! * D;
      if (o + D > hidden.length) throw new RangeError(`pooling row ${rows[r]} is outside the ${hidden.length / D} hidden rows`);
      for (let d = 0; d < D; d++) out[d] += w * hidden[o + d]!;
    }
    return out;
  });
}

export function l2Normalize(x: Float64Array): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const n = Math.sqrt(ss);
  // sentence-transformers' Normalize (torch F.normalize): x / max(||x||, 1e-12)
  const denom = Math.max(n, 1e-12);
  return x.map((v) => v / denom);
}

/** Round half to even (torch.round / numpy.round). */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** int8 = clamp(round_half_even(tanh(x) * 127), -128, 127). */
export function quantizeInt8(x: ArrayLike<number>): Int8Array {
  const out = new Int8Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.min(127, Math.max(-128, roundHalfEven(Math.tanh(x[i]!) * 127)));
  return out;
}

/** binary = +1 where x >= 0, else -1. */
export function quantizeBinary(x: ArrayLike<number>): Int8Array {
  const out = new Int8Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! >= 0 ? 1 : -1;
  return out;
}

/** ubinary = the bits (x >= 0) packed most significant first (numpy.packbits): dim 0 is bit 7 of byte 0. */
export function packBits(x: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(x.length / 8));
  for (let i = 0; i < x.length; i++) if (x[i]! >= 0) out[i >> 3] |= 0x80 >> (i & 7);
  return out;
}

/**
 * The requested output form of a pooled vector. Quantized forms always come from the unnormalised pooled
 * vector (pplx-embed); `normalize` applies to float output only.
 */
export function finishEmbedding<O extends EmbeddingOutput>(pooled: Float64Array, output: O, normalize: boolean): OutputArray<O> {
  switch (output) {
    case 'int8':
      return quantizeInt8(pooled) as OutputArray<O>;
    case 'binary':
      return quantizeBinary(pooled) as OutputArray<O>;
    case 'ubinary':
      return packBits(pooled) as OutputArray<O>;
    default:
      return Float32Array.from(normalize ? l2Normalize(pooled) : pooled) as OutputArray<O>;
  }
}
