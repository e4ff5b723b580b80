// Host tensors: what a format reader hands to the rest of the engine.
// Bytes stay in the file's own encoding (little-endian); quantized types stay quantized.

export type DType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_k' | 'q6_k';

/** Elements per block and bytes per block for every dtype (plain types: block of 1). */
export const DTYPE_LAYOUT: Record<DType, { blockElems: number; blockBytes: number }> = {
  f32: { blockElems: 1, blockBytes: 4 },
  f16: { blockElems: 1, blockBytes: 2 },
  bf16: { blockElems: 1, blockBytes: 2 },
  q8_0: { blockElems: 32, blockBytes: 34 }, // f16 d + 32 x int8
  q4_0: { blockElems: 32, blockBytes: 18 }, // f16 d + 16 bytes of nibbles
  q4_k: { blockElems: 256, blockBytes: 144 }, // f16 d, f16 dmin, 12 bytes scales, 128 bytes nibbles
  q6_k: { blockElems: 256, blockBytes: 210 }, // 128 ql, 64 qh, 16 int8 scales, f16 d
};

/**
 * A tensor in host memory. `data` starts at byte 0 of its own ArrayBuffer region
 * aligned to at least 4 bytes, so `new Float32Array(data.buffer, data.byteOffset, n)` works for f32.
 * `shape` is row-major, outermost first (PyTorch order: a linear weight is [out, in]).
 */
export interface HostTensor {
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

export function numElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Byte size of a tensor of `dtype` and `shape`; throws a RangeError when rows do not split into whole blocks. */
export function byteSize(dtype: DType, shape: readonly number[]): number {
  const { blockElems, blockBytes } = DTYPE_LAYOUT[dtype];
  const n = numElements(shape);
  if (n % blockElems !== 0) throw new RangeError(`${dtype}: ${n} elements is not a multiple of the block size ${blockElems}`);
  return (n / blockElems) * blockBytes;
}

/** Shape and dtype of a tensor in a file, before its bytes are read. */
export interface TensorInfo {
  name: string;
  /** null when the file uses a tensor type we cannot decode; `typeName` then says which. */
  dtype: DType | null;
  typeName: string;
  shape: number[];
  byteLength: number;
}

/**
 * A checkpoint's tensors, read lazily one at a time with positional reads,
 * so no file is ever held in one Buffer (Node 20 caps a Buffer at 4 GiB).
 */
export interface TensorSource {
  readonly path: string;
  list(): TensorInfo[];
  has(name: string): boolean;
  /** Reads one tensor; throws NOT_FOUND for an unknown name, UNSUPPORTED for an undecodable dtype. */
  read(name: string): HostTensor;
  close(): void;
}

/** [rows, cols] -> [cols, rows] for element-wise dtypes (f32/f16/bf16); blocks cannot be transposed. */
export function transpose2d(t: HostTensor): HostTensor {
  if (t.shape.length !== 2) throw new RangeError(`transpose2d: tensor "${t.name}" is ${t.shape.length}-D`);
  const { blockElems, blockBytes: es } = DTYPE_LAYOUT[t.dtype];
  if (blockElems !== 1) throw new RangeError(`transpose2d: tensor "${t.name}" is block-quantized (${t.dtype})`);
  const [R, C] = t.shape as [number, number];
  const out = new Uint8Array(t.data.byteLength);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      const src = (r * C + c) * es;
      const dst = (c * R + r) * es;
      for (let b = 0; b < es; b++) out[dst + b] = t.data[src + b]!;
    }
  }
  return { name: t.name, dtype: t.dtype, shape: [C, R], data: out };
}
