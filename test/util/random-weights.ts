// Random f32 weights for tiny architecture tests (values do not matter, shapes do).

import type { HostTensor } from '../../src/formats/tensor.js';
import { prng } from '../helpers/models.js';

export function randomTensor(name: string, shape: number[], rand: () => number, scale = 1): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const f = new Float32Array(n);
  // Norm weights (1-D) around 1, matrices around 0 with 1/sqrt(fan_in) spread.
  const fanIn = shape[shape.length - 1]!;
  for (let i = 0; i < n; i++) {
    const u = rand() * 2 - 1;
    f[i] = shape.length === 1 ? 1 + 0.1 * u : (scale * u * Math.sqrt(3)) / Math.sqrt(fanIn);
  }
  return { name, dtype: 'f32', shape, data: new Uint8Array(f.buffer) };
}

export function randomWeights(params: Map<string, number[]>, seed: number): Map<string, HostTensor> {
  const rand = prng(seed);
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of params) {
    // Embeddings get unit scale so activations are not tiny.
    out.set(name, randomTensor(name, shape, rand, name.includes('embed') ? Math.sqrt(shape[1]!) : 1));
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
