// Reading weights as f32 in the reference backend: f32 is viewed in place, every other dtype
// is dequantized one row at a time (quantized models stay quantized in memory).

import type { HostTensor } from '../../formats/tensor.js';
import { dequantizeRow } from '../../formats/dtypes/index.js';
import type { Dense, Value } from '../backend.js';

export function f32View(t: HostTensor): Float32Array | null {
  if (t.dtype !== 'f32') return null;
  return new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
}

/** Row `r` of a 2-D weight [rows, cols] as f32 (a view for f32, else dequantized into `scratch`). */
export function weightRow(t: HostTensor, r: number, scratch: Float32Array): Float32Array {
  const cols = t.shape[t.shape.length - 1]!;
  const v = f32View(t);
  if (v !== null) return v.subarray(r * cols, (r + 1) * cols);
  dequantizeRow(t.dtype, t.data, r, cols, scratch);
  return scratch;
}

const smallCache = new WeakMap<HostTensor, Float32Array>();

/** A whole value as f32. Weights are converted once and cached (meant for vectors: norms, biases). */
export function asF32(v: Value): Float32Array {
  if (v.kind === 'dense') {
    if (!(v.data instanceof Float32Array)) throw new Error('expected an f32 value, got i32');
    return v.data;
  }
  const t = v.tensor;
  const view = f32View(t);
  if (view !== null) return view;
  let c = smallCache.get(t);
  if (c === undefined) {
    const cols = t.shape[t.shape.length - 1] ?? 1;
    const rows = t.shape.length <= 1 ? 1 : t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    c = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) dequantizeRow(t.dtype, t.data, r, cols, c.subarray(r * cols, (r + 1) * cols));
    smallCache.set(t, c);
  }
  return c;
}

export function asI32(v: Value): Int32Array {
  if (v.kind !== 'dense' || !(v.data instanceof Int32Array)) throw new Error('expected an i32 value');
  return v.data;
}

export function shapeOf(v: Value): readonly number[] {
  return v.kind === 'dense' ? v.shape : v.tensor.shape;
}

export function denseF32(shape: readonly number[]): Dense {
  return { kind: 'dense', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) };
}
