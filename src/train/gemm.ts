// The matrix products the trainer needs, behind one small interface so a fast GEMM (WebAssembly,
// threads, the ANE) can be slotted in without touching the backward rules. Every backward of
// `matmul` is expressed with these three shapes of product:
//   forward   Y[T,N]  = X[T,K] @ W[N,K]^T        (nt)
//   backward dX[T,K] += dY[T,N] @ W[N,K]         (nn)
//            dW[N,K] += dY[T,N]^T @ X[T,K]       (tn)
// Arrays are row-major; float32 or float64 (the float64 path is used by finite-difference tests).

import type { OptimKernels } from './optim.js';

export type Arr = Float32Array | Float64Array;

export interface GemmKernels {
  readonly name: string;
  /** C[M,N] = A[M,K] @ B[N,K]^T (overwrites C). */
  nt(M: number, N: number, K: number, A: Arr, B: Arr, C: Arr): void;
  /** C[M,N] += A[M,K] @ B[K,N]. */
  nn(M: number, N: number, K: number, A: Arr, B: Arr, C: Arr): void;
  /** C[M,N] += A[K,M]^T @ B[K,N]. */
  tn(M: number, N: number, K: number, A: Arr, B: Arr, C: Arr): void;
  /** Optional fast attention backward (float32; see the attention rule in autodiff.ts); dq/dk/dv
   *  are accumulated into, null when not wanted. Returns false when it declines (the JS rule runs). */
  attentionBackward?(a: AttentionShape, q: Arr, k: Arr, v: Arr, out: Arr, dout: Arr, pos: Int32Array, dq: Arr | null, dk: Arr | null, dv: Arr | null): boolean;
  /** Optional fused cross-entropy backward (float32): g[T,V] += s * (softmax(x) - onehot(tgt)) over the rows
   *  with tgt >= 0. Returns false when it declines (the JS rule runs). */
  crossEntropyBackward?(x: Arr, tgt: Int32Array, s: number, g: Arr): boolean;
  /** Optional: a zeroed float32 array in the kernels' own memory, kept for the program's life (parameters,
   *  gradients: products on them then need no copies). */
  allocF32?(n: number): Float32Array;
  /** Optional: the backward pass starts (buffers from zeros() of the previous pass may be reused). */
  backwardBegin?(): void;
  /** Optional: a zeroed float32 gradient buffer valid until the next backwardBegin, or null (use a JS array). */
  zeros?(n: number): Float32Array | null;
  /** Optional fast optimizer arithmetic (AdamW, gradient norm and scaling) on the same memory. */
  readonly optim?: OptimKernels;
  /** Optional float32 kernels for elementwise backward rules. */
  readonly elementwise?: ElementwiseKernels;
}

/** Float32 kernels for the elementwise backward rules of autodiff.ts (the same formulas, float32 arithmetic);
 *  each returns false when it declines (float64, arrays it cannot reach), and the rule's own loop runs. */
export interface ElementwiseKernels {
  /** g += dy * s (1 + x (1 - s)), s = sigmoid(x). */
  silu(x: Arr, dy: Arr, g: Arr): boolean;
  /** g += dy (other null) or g += dy * other; all of the same length. */
  accumulate(g: Arr, dy: Arr, other: Arr | null): boolean;
  /** rmsnorm over groups of w.length: gx += inv dy w - x inv^3 / G sum(dy w x);  gw += dy x inv. */
  rmsnorm(x: Arr, w: Arr, dy: Arr, eps: number, gx: Arr | null, gw: Arr | null): boolean;
}

export interface AttentionShape {
  T: number;
  S: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  causal: boolean;
  scale: number;
}

/** Plain TypeScript products with double-precision accumulation (the reference for faster kernels). */
export const jsGemm: GemmKernels = {
  name: 'js',
  nt(M, N, K, A, B, C) {
    for (let i = 0; i < M; i++) {
      const ao = i * K;
      for (let j = 0; j < N; j++) {
        const bo = j * K;
        let acc = 0;
        for (let k = 0; k < K; k++) acc += A[ao + k]! * B[bo + k]!;
        C[i * N + j] = acc;
      }
    }
  },
  nn(M, N, K, A, B, C) {
    const acc = new Float64Array(N);
    for (let i = 0; i < M; i++) {
      acc.fill(0);
      const ao = i * K;
      for (let k = 0; k < K; k++) {
        const a = A[ao + k]!;
        if (a === 0) continue;
        const bo = k * N;
        for (let j = 0; j < N; j++) acc[j] += a * B[bo + j]!;
      }
      const co = i * N;
      for (let j = 0; j < N; j++) C[co + j] += acc[j]!;
    }
  },
  tn(M, N, K, A, B, C) {
    const acc = new Float64Array(N);
    for (let i = 0; i < M; i++) {
      acc.fill(0);
      for (let k = 0; k < K; k++) {
        const a = A[k * M + i]!;
        if (a === 0) continue;
        const bo = k * N;
        for (let j = 0; j < N; j++) acc[j] += a * B[bo + j]!;
      }
      const co = i * N;
      for (let j = 0; j < N; j++) C[co + j] += acc[j]!;
    }
  },
};

/** A zeroed array of the same element type as `like`. */
export function zerosLike(like: Arr, n: number): Arr {
  return like instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
}

export function zeros(precision: 'f32' | 'f64', n: number): Arr {
  return precision === 'f64' ? new Float64Array(n) : new Float32Array(n);
}
