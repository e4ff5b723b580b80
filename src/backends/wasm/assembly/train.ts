// Training GEMMs (the matmul backward), accumulating into C:
//   gemm_nn_acc: C[M,N] += A[M,K]   @ B[K,N]    (dX += dY @ W)
//   gemm_tn_acc: C[M,N] += A[K,M]^T @ B[K,N]    (dW += dY^T @ X)
// One blocked kernel for both, A addressed through byte strides (A(i,k) at a + i*sai + k*sak).
// Blocks: KB values of k (the B panel KB x 8 stays in L1), IB rows of A, 4x8 register tiles
// (8 f32x4 accumulators), scalar code for the remainder rows/columns. Same build flags as the
// other kernels (imported shared memory, no allocation, no static data).
// attention_bwd: the backward of ops.ts attention (scores recomputed, float32).

import { exp4, expf, fma4, hsum, expShiftSum } from './common';

const KB: i32 = 256;
const IB: i32 = 16;

// @ts-ignore: decorator
@inline function tile4x8(a: usize, sai: usize, sak: usize, b: usize, ldb: usize, c: usize, ldc: usize, kn: i32): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let pa = a;
  let pb = b;
  for (let k = 0; k < kn; k++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    const a0 = f32x4.splat(load<f32>(pa));
    const a1 = f32x4.splat(load<f32>(pa + sai));
    const a2 = f32x4.splat(load<f32>(pa + 2 * sai));
    const a3 = f32x4.splat(load<f32>(pa + 3 * sai));
    c00 = fma4(a0, b0, c00); c01 = fma4(a0, b1, c01);
    c10 = fma4(a1, b0, c10); c11 = fma4(a1, b1, c11);
    c20 = fma4(a2, b0, c20); c21 = fma4(a2, b1, c21);
    c30 = fma4(a3, b0, c30); c31 = fma4(a3, b1, c31);
    pa += sak;
    pb += ldb;
  }
  let pc = c;
  v128.store(pc, f32x4.add(v128.load(pc), c00)); v128.store(pc, f32x4.add(v128.load(pc, 16), c01), 16);
  pc += ldc;
  v128.store(pc, f32x4.add(v128.load(pc), c10)); v128.store(pc, f32x4.add(v128.load(pc, 16), c11), 16);
  pc += ldc;
  v128.store(pc, f32x4.add(v128.load(pc), c20)); v128.store(pc, f32x4.add(v128.load(pc, 16), c21), 16);
  pc += ldc;
  v128.store(pc, f32x4.add(v128.load(pc), c30)); v128.store(pc, f32x4.add(v128.load(pc, 16), c31), 16);
}

/** Scalar C[i,j] += sum_k A(i,k) B[k,j] for rows i0..i1, columns j0..j1 (remainders). */
function scalarBlock(a: usize, sai: usize, sak: usize, b: usize, ldb: usize, c: usize, ldc: usize, i0: i32, i1: i32, j0: i32, j1: i32, kn: i32): void {
  for (let i = i0; i < i1; i++) {
    for (let j = j0; j < j1; j++) {
      let s: f32 = 0;
      let pa = a + <usize>i * sai;
      let pb = b + (<usize>j << 2);
      for (let k = 0; k < kn; k++) {
        s += load<f32>(pa) * load<f32>(pb);
        pa += sak;
        pb += ldb;
      }
      const pc = c + <usize>i * ldc + (<usize>j << 2);
      store<f32>(pc, load<f32>(pc) + s);
    }
  }
}

function gemmAcc(a: usize, sai: usize, sak: usize, b: usize, c: usize, M: i32, N: i32, K: i32): void {
  const ldb = <usize>N << 2;
  const ldc = <usize>N << 2;
  const N8 = N & ~7;
  for (let k0 = 0; k0 < K; k0 += KB) {
    const kn = min(KB, K - k0);
    const ak = a + <usize>k0 * sak;
    const bk = b + <usize>k0 * ldb;
    for (let i0 = 0; i0 < M; i0 += IB) {
      const i1 = min(M, i0 + IB);
      const i4 = i0 + ((i1 - i0) & ~3);
      for (let j = 0; j < N8; j += 8) {
        for (let i = i0; i < i4; i += 4) {
          tile4x8(ak + <usize>i * sai, sai, sak, bk + (<usize>j << 2), ldb, c + <usize>i * ldc + (<usize>j << 2), ldc, kn);
        }
      }
      if (i4 < i1) scalarBlock(ak, sai, sak, bk, ldb, c, ldc, i4, i1, 0, N8, kn);
      if (N8 < N) scalarBlock(ak, sai, sak, bk, ldb, c, ldc, i0, i1, N8, N, kn);
    }
  }
}

/** C[M,N] += A[M,K] @ B[K,N] (row-major f32, byte offsets). */
export function gemm_nn_acc(a: usize, b: usize, c: usize, M: i32, N: i32, K: i32): void {
  gemmAcc(a, <usize>K << 2, 4, b, c, M, N, K);
}

/** C[M,N] += A[K,M]^T @ B[K,N] (row-major f32, byte offsets). */
export function gemm_tn_acc(a: usize, b: usize, c: usize, M: i32, N: i32, K: i32): void {
  gemmAcc(a, 4, <usize>M << 2, b, c, M, N, K);
}

// @ts-ignore: decorator
@inline function dot(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = fma4(v128.load(a + (<usize>i << 2)), v128.load(b + (<usize>i << 2)), acc);
  let s = hsum(acc);
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

/** y[0..n) += a * x[0..n). */
// @ts-ignore: decorator
@inline function axpy(y: usize, a: f32, x: usize, n: i32): void {
  const av = f32x4.splat(a);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(y + (<usize>i << 2), fma4(av, v128.load(x + (<usize>i << 2)), v128.load(y + (<usize>i << 2))));
  for (; i < n; i++) store<f32>(y + (<usize>i << 2), a * load<f32>(x + (<usize>i << 2)) + load<f32>(y + (<usize>i << 2)));
}

/**
 * Backward of attention (q [T, H*hd], k/v [S, KVH*hd], out/dout [T, H*hd], pos i32[T]):
 *   p = softmax(scale q.k_j) over j <= pos[t] (causal) or all j; ds_j = p_j (dout.v_j - dout.out) scale;
 *   dq += sum_j ds_j k_j;  dk_j += ds_j q;  dv_j += p_j dout.
 * dq/dk/dv are accumulated into (0: not wanted). scratch: S floats.
 */
export function attention_bwd(q: usize, k: usize, v: usize, out: usize, dout: usize, dq: usize, dk: usize, dv: usize, pos: usize,
  T: i32, S: i32, H: i32, KVH: i32, hd: i32, causal: i32, scale: f32, scratch: usize): void {
  const qW = H * hd;
  const kW = KVH * hd;
  const group = H / KVH;
  for (let t = 0; t < T; t++) {
    const last = causal ? load<i32>(pos + (<usize>t << 2)) : S - 1;
    const n = last + 1;
    for (let h = 0; h < H; h++) {
      const qo = <usize>(t * qW + h * hd) << 2;
      const qp = q + qo;
      const ko = (h / group) * hd;
      let mx: f32 = -Infinity;
      for (let j = 0; j < n; j++) {
        const s = dot(qp, k + (<usize>(j * kW + ko) << 2), hd) * scale;
        store<f32>(scratch + (<usize>j << 2), s);
        mx = max(mx, s);
      }
      const sum = expShiftSum(scratch, n, mx);
      const inv: f32 = 1.0 / sum;
      const dop = dout + qo;
      const doo = dot(dop, out + qo, hd);
      for (let j = 0; j < n; j++) {
        const pj = load<f32>(scratch + (<usize>j << 2)) * inv;
        const ro = <usize>(j * kW + ko) << 2;
        const ds = pj * (dot(dop, v + ro, hd) - doo) * scale;
        if (dv != 0) axpy(dv + ro, pj, dop, hd);
        if (dk != 0) axpy(dk + ro, ds, qp, hd);
        if (dq != 0) axpy(dq + qo, ds, k + ro, hd);
      }
    }
  }
}
