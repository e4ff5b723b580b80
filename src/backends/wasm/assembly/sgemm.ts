// Packed single-precision GEMM for training (and the f32 forward):
//   C[M,N] (+)= op(A) op(B), row-major f32, three layouts:
//     layout 0 (NT): A[M,K] . B[N,K]^T   A(i,k) = A[i*K + k],  B(k,j) = B[j*K + k]
//     layout 1 (NN): A[M,K] . B[K,N]     A(i,k) = A[i*K + k],  B(k,j) = B[k*N + j]
//     layout 2 (TN): A[K,M]^T . B[K,N]   A(i,k) = A[k*M + i],  B(k,j) = B[k*N + j]
//
// Work split (sgemm_chunk): C is cut into tiles of MT rows x NT columns; chunk c is tile
// (c / nTilesN, c % nTilesN) and computes it completely (every k, in ascending k blocks), so the
// result does not depend on which thread ran which chunk (deterministic reductions).
// Per k block of KC values the tile's A rows and B columns are packed into the calling thread's
// scratch (scratch + tid * stride):
//   Apack: blocks of 4 rows, each KC x 4 floats k-major  (Apack[ib][k][r] = A(i0 + 4 ib + r, k0 + k))
//   Bpack: blocks of 8 cols, each KC x 8 floats k-major  (Bpack[jb][k][c] = B(k0 + k, j0 + 8 jb + c))
// zero-padded to whole blocks, so one 4x8 micro-kernel (8 f32x4 accumulators, A broadcast with
// load32_splat, B two vector loads per k) serves all three layouts. Loop order: for each 8-column B
// micro-panel (KC x 32 bytes, L1-resident) run down the tile's 4-row A micro-panels (the packed A
// tile, MT x KC floats, stays in L2). Edge tiles go through a 4x8 temporary.
// Scratch per thread: (MT + NT) * KC * 4 + 128 bytes, plus a 64-byte header at its end (stride - 64) that
// records which A rows are packed, so a thread packs a row block of A once per product (job id) when all of
// k fits one block, not once per column tile.

import { fma4 } from './common';

/** 4x8 micro-kernel: C[4,8] (+)= Apanel[kc][4] . Bpanel[kc][8]; ldc in bytes. */
// @ts-ignore: decorator
@inline function mk4x8(pa: usize, pb: usize, kc: i32, c: usize, ldc: usize, add: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = fma4(a, b0, c00); c01 = fma4(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = fma4(a, b0, c10); c11 = fma4(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = fma4(a, b0, c20); c21 = fma4(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = fma4(a, b0, c30); c31 = fma4(a, b1, c31);
    pa += 16;
    pb += 32;
  }
  let p = c;
  if (add) {
    v128.store(p, f32x4.add(v128.load(p), c00)); v128.store(p, f32x4.add(v128.load(p, 16), c01), 16);
    p += ldc;
    v128.store(p, f32x4.add(v128.load(p), c10)); v128.store(p, f32x4.add(v128.load(p, 16), c11), 16);
    p += ldc;
    v128.store(p, f32x4.add(v128.load(p), c20)); v128.store(p, f32x4.add(v128.load(p, 16), c21), 16);
    p += ldc;
    v128.store(p, f32x4.add(v128.load(p), c30)); v128.store(p, f32x4.add(v128.load(p, 16), c31), 16);
  } else {
    v128.store(p, c00); v128.store(p, c01, 16);
    p += ldc;
    v128.store(p, c10); v128.store(p, c11, 16);
    p += ldc;
    v128.store(p, c20); v128.store(p, c21, 16);
    p += ldc;
    v128.store(p, c30); v128.store(p, c31, 16);
  }
}

/** Packs rows i0..i0+mr of A (mr <= MT) for k0..k0+kc; A(i,k) at a + i*sai + k*sak (bytes). */
function packA(a: usize, sai: usize, sak: usize, mr: i32, kc: i32, dst: usize): void {
  const full = mr & ~3;
  let d = dst;
  if (sak == 4) {
    // rows contiguous in k (NT, NN): 4x4 transposes
    const k4 = kc & ~3;
    for (let i = 0; i < full; i += 4) {
      const r0 = a + <usize>i * sai;
      const r1 = r0 + sai, r2 = r1 + sai, r3 = r2 + sai;
      let k = 0;
      for (; k < k4; k += 4) {
        const o = <usize>k << 2;
        const x0 = v128.load(r0 + o), x1 = v128.load(r1 + o), x2 = v128.load(r2 + o), x3 = v128.load(r3 + o);
        const t0 = i32x4.shuffle(x0, x1, 0, 4, 1, 5);
        const t1 = i32x4.shuffle(x2, x3, 0, 4, 1, 5);
        const t2 = i32x4.shuffle(x0, x1, 2, 6, 3, 7);
        const t3 = i32x4.shuffle(x2, x3, 2, 6, 3, 7);
        const q = d + (<usize>k << 4);
        v128.store(q, i32x4.shuffle(t0, t1, 0, 1, 4, 5));
        v128.store(q, i32x4.shuffle(t0, t1, 2, 3, 6, 7), 16);
        v128.store(q, i32x4.shuffle(t2, t3, 0, 1, 4, 5), 32);
        v128.store(q, i32x4.shuffle(t2, t3, 2, 3, 6, 7), 48);
      }
      for (; k < kc; k++) {
        const o = <usize>k << 2;
        const q = d + (<usize>k << 4);
        store<f32>(q, load<f32>(r0 + o));
        store<f32>(q, load<f32>(r1 + o), 4);
        store<f32>(q, load<f32>(r2 + o), 8);
        store<f32>(q, load<f32>(r3 + o), 12);
      }
      d += <usize>kc << 4;
    }
  } else if (sai == 4) {
    // columns contiguous in i (TN): one vector per k
    for (let i = 0; i < full; i += 4) {
      let s = a + (<usize>i << 2);
      let q = d;
      for (let k = 0; k < kc; k++) {
        v128.store(q, v128.load(s));
        s += sak;
        q += 16;
      }
      d += <usize>kc << 4;
    }
  } else {
    for (let i = 0; i < full; i += 4) {
      for (let k = 0; k < kc; k++) {
        for (let r = 0; r < 4; r++) store<f32>(d + (<usize>k << 4) + (<usize>r << 2), load<f32>(a + <usize>(i + r) * sai + <usize>k * sak));
      }
      d += <usize>kc << 4;
    }
  }
  if (full < mr) {
    const rem = mr - full;
    for (let k = 0; k < kc; k++) {
      for (let r = 0; r < 4; r++) {
        const v: f32 = r < rem ? load<f32>(a + <usize>(full + r) * sai + <usize>k * sak) : 0;
        store<f32>(d + (<usize>k << 4) + (<usize>r << 2), v);
      }
    }
  }
}

/** Packs columns j0..j0+nc of B for k0..k0+kc; B(k,j) at b + k*sbk + j*sbj (bytes). */
function packB(b: usize, sbk: usize, sbj: usize, nc: i32, kc: i32, dst: usize): void {
  const full = nc & ~7;
  let d = dst;
  if (sbj == 4) {
    // rows of B[K,N] (NN, TN): two vectors per k
    for (let j = 0; j < full; j += 8) {
      let s = b + (<usize>j << 2);
      let q = d;
      for (let k = 0; k < kc; k++) {
        v128.store(q, v128.load(s));
        v128.store(q, v128.load(s, 16), 16);
        s += sbk;
        q += 32;
      }
      d += <usize>kc << 5;
    }
  } else if (sbk == 4) {
    // B[N,K] (NT): 8 rows of B, transposed 4 k at a time
    const k4 = kc & ~3;
    for (let j = 0; j < full; j += 8) {
      const r0 = b + <usize>j * sbj;
      const r1 = r0 + sbj, r2 = r1 + sbj, r3 = r2 + sbj, r4 = r3 + sbj, r5 = r4 + sbj, r6 = r5 + sbj, r7 = r6 + sbj;
      let k = 0;
      for (; k < k4; k += 4) {
        const o = <usize>k << 2;
        const q = d + (<usize>k << 5);
        let x0 = v128.load(r0 + o), x1 = v128.load(r1 + o), x2 = v128.load(r2 + o), x3 = v128.load(r3 + o);
        let t0 = i32x4.shuffle(x0, x1, 0, 4, 1, 5);
        let t1 = i32x4.shuffle(x2, x3, 0, 4, 1, 5);
        let t2 = i32x4.shuffle(x0, x1, 2, 6, 3, 7);
        let t3 = i32x4.shuffle(x2, x3, 2, 6, 3, 7);
        v128.store(q, i32x4.shuffle(t0, t1, 0, 1, 4, 5));
        v128.store(q, i32x4.shuffle(t0, t1, 2, 3, 6, 7), 32);
        v128.store(q, i32x4.shuffle(t2, t3, 0, 1, 4, 5), 64);
        v128.store(q, i32x4.shuffle(t2, t3, 2, 3, 6, 7), 96);
        x0 = v128.load(r4 + o); x1 = v128.load(r5 + o); x2 = v128.load(r6 + o); x3 = v128.load(r7 + o);
        t0 = i32x4.shuffle(x0, x1, 0, 4, 1, 5);
        t1 = i32x4.shuffle(x2, x3, 0, 4, 1, 5);
        t2 = i32x4.shuffle(x0, x1, 2, 6, 3, 7);
        t3 = i32x4.shuffle(x2, x3, 2, 6, 3, 7);
        v128.store(q, i32x4.shuffle(t0, t1, 0, 1, 4, 5), 16);
        v128.store(q, i32x4.shuffle(t0, t1, 2, 3, 6, 7), 48);
        v128.store(q, i32x4.shuffle(t2, t3, 0, 1, 4, 5), 80);
        v128.store(q, i32x4.shuffle(t2, t3, 2, 3, 6, 7), 112);
      }
      for (; k < kc; k++) {
        const o = <usize>k << 2;
        const q = d + (<usize>k << 5);
        store<f32>(q, load<f32>(r0 + o));
        store<f32>(q, load<f32>(r1 + o), 4);
        store<f32>(q, load<f32>(r2 + o), 8);
        store<f32>(q, load<f32>(r3 + o), 12);
        store<f32>(q, load<f32>(r4 + o), 16);
        store<f32>(q, load<f32>(r5 + o), 20);
        store<f32>(q, load<f32>(r6 + o), 24);
        store<f32>(q, load<f32>(r7 + o), 28);
      }
      d += <usize>kc << 5;
    }
  } else {
    for (let j = 0; j < full; j += 8) {
      for (let k = 0; k < kc; k++) {
        for (let c = 0; c < 8; c++) store<f32>(d + (<usize>k << 5) + (<usize>c << 2), load<f32>(b + <usize>k * sbk + <usize>(j + c) * sbj));
      }
      d += <usize>kc << 5;
    }
  }
  if (full < nc) {
    const rem = nc - full;
    for (let k = 0; k < kc; k++) {
      for (let c = 0; c < 8; c++) {
        const v: f32 = c < rem ? load<f32>(b + <usize>k * sbk + <usize>(full + c) * sbj) : 0;
        store<f32>(d + (<usize>k << 5) + (<usize>c << 2), v);
      }
    }
  }
}

/**
 * The tile rows i0..i1, columns j0..j1 of C (+)= op(A) op(B) (see the header). acc 0 overwrites C,
 * 1 adds to it. a/b/c byte offsets; KC the k block; work: per-thread scratch (see the header).
 */
function sgemmTile(a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, layout: i32, acc: i32,
  i0: i32, i1: i32, j0: i32, j1: i32, KC: i32, work: usize, hdr: usize, job: i32): void {
  // byte strides of A(i,k) and B(k,j)
  let sai: usize, sak: usize, sbk: usize, sbj: usize;
  if (layout == 0) { sai = <usize>K << 2; sak = 4; sbk = 4; sbj = <usize>K << 2; }
  else if (layout == 1) { sai = <usize>K << 2; sak = 4; sbk = <usize>N << 2; sbj = 4; }
  else { sai = 4; sak = <usize>M << 2; sbk = <usize>N << 2; sbj = 4; }
  gemmTile(a, sai, sak, b, sbk, sbj, c, <usize>N << 2, i0, i1, j0, j1, K, KC, acc, work, hdr, job);
}

/**
 * C(i,j) (+)= sum_k A(i,k) B(k,j) for rows i0..i1, columns j0..j1 (at most MT x NT of the scratch layout),
 * all k in blocks of KC, with A(i,k) at a + i*sai + k*sak, B(k,j) at b + k*sbk + j*sbj, C(i,j) at
 * c + i*ldc + 4j (bytes). Any strides: sak == 4 or sai == 4 (and sbj == 4 or sbk == 4) pack with vectors.
 * For other kernels (attention backward) that multiply strided sub-matrices.
 */
export function gemm_tile_strided(a: usize, sai: usize, sak: usize, b: usize, sbk: usize, sbj: usize, c: usize, ldc: usize,
  i0: i32, i1: i32, j0: i32, j1: i32, K: i32, KC: i32, acc: i32, work: usize): void {
  gemmTile(a, sai, sak, b, sbk, sbj, c, ldc, i0, i1, j0, j1, K, KC, acc, work, 0, 0);
}

/**
 * gemm_tile_strided with a packed-A cache: when `job` != 0 and all of k is one block, the A rows i0..i1
 * packed by this thread's previous tile of the same job (recorded at `hdr`: job, i0, i1) are reused, so a
 * row block is packed once per thread instead of once per column tile.
 */
// @ts-ignore: decorator
@inline function gemmTile(a: usize, sai: usize, sak: usize, b: usize, sbk: usize, sbj: usize, c: usize, ldc: usize,
  i0: i32, i1: i32, j0: i32, j1: i32, K: i32, KC: i32, acc: i32, work: usize, hdr: usize, job: i32): void {
  const mr = i1 - i0;
  const nc = j1 - j0;
  if (mr <= 0 || nc <= 0) return;
  if (K <= 0) {
    if (acc == 0) for (let i = i0; i < i1; i++) memory.fill(c + <usize>i * ldc + (<usize>j0 << 2), 0, <usize>nc << 2);
    return;
  }
  const mB = (mr + 3) >> 2;
  const nB = (nc + 7) >> 3;
  const apack = work;
  const bpack = apack + (<usize>(mB * 4) * <usize>KC << 2);
  const tmp = bpack + (<usize>(nB * 8) * <usize>KC << 2);
  if (acc != 0) {
    // C is read and added to: touch the tile row by row first (sequential, so the hardware prefetcher
    // streams it into cache); otherwise every 4x8 update waits on 4 cold cache lines (-20% on a 32 MB C)
    let s: i32 = 0;
    for (let i = i0; i < i1; i++) {
      const row = c + <usize>i * ldc;
      for (let j = j0; j < j1; j += 16) s |= load<i32>(row + (<usize>j << 2));
    }
    store<i32>(tmp, s);
  }
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = min(KC, K - k0);
    packB(b + <usize>k0 * sbk + <usize>j0 * sbj, sbk, sbj, nc, kc, bpack);
    if (job == 0 || kc != K || load<i32>(hdr) != job || load<i32>(hdr, 4) != i0 || load<i32>(hdr, 8) != i1) {
      packA(a + <usize>i0 * sai + <usize>k0 * sak, sai, sak, mr, kc, apack);
      if (job != 0) {
        store<i32>(hdr, kc == K ? job : 0);
        store<i32>(hdr, i0, 4);
        store<i32>(hdr, i1, 8);
      }
    }
    const add = acc != 0 || k0 > 0;
    for (let jb = 0; jb < nB; jb++) {
      const pb = bpack + (<usize>(jb * kc) << 5);
      const j = j0 + jb * 8;
      const cw = min(8, j1 - j);
      for (let ib = 0; ib < mB; ib++) {
        const pa = apack + (<usize>(ib * kc) << 4);
        const i = i0 + ib * 4;
        const rh = min(4, i1 - i);
        const pc = c + <usize>i * ldc + (<usize>j << 2);
        if (rh == 4 && cw == 8) {
          mk4x8(pa, pb, kc, pc, ldc, add);
        } else {
          mk4x8(pa, pb, kc, tmp, 32, false);
          for (let r = 0; r < rh; r++) {
            for (let q = 0; q < cw; q++) {
              const dst = pc + <usize>r * ldc + (<usize>q << 2);
              const v = load<f32>(tmp + (<usize>r << 5) + (<usize>q << 2));
              store<f32>(dst, add ? load<f32>(dst) + v : v);
            }
          }
        }
      }
    }
  }
}

/**
 * Chunk `chunk` of C[M,N] (+)= op(A) op(B): tile (chunk / ceil(N/NT), chunk % ceil(N/NT)) of MT x NT
 * (MT a multiple of 4, NT of 8). Run by the pool (JOB_KERNEL): scratch + tid * stride is this thread's
 * packing space, at least (MT + NT) * KC * 4 + 128 bytes.
 */
export function sgemm_chunk(chunk: i32, tid: i32, a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, layout: i32, acc: i32,
  MT: i32, NT: i32, KC: i32, scratch: usize, stride: usize): void {
  const nTn = (N + NT - 1) / NT;
  const tm = chunk / nTn;
  const tn = chunk - tm * nTn;
  const i0 = tm * MT;
  const j0 = tn * NT;
  // acc = overwrite/add flag (bit 0) | job id << 1 (0: no packed-A reuse); the cache header is the last
  // 64 bytes of the thread's scratch (the packing layout ends at least 128 bytes before)
  const work = scratch + <usize>tid * stride;
  sgemmTile(a, b, c, M, N, K, layout, acc & 1, i0, min(M, i0 + MT), j0, min(N, j0 + NT), KC, work, work + stride - 64, acc >>> 1);
}
