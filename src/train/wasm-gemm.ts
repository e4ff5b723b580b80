// GemmKernels on the WebAssembly backend: nt is the forward GEMM (gemm_f32), nn and tn are the
// training kernels of assembly/train.ts (blocked, SIMD, accumulating into C). Operands that live in
// JS memory are copied into one reusable scratch region of the backend's memory per call (a few
// percent of the GEMM time at training shapes). Float64 operands (the finite-difference oracle) and
// tiny products go to the plain TypeScript kernels.

import type { Backend } from '../backends/backend.js';
import { jsGemm, type Arr, type GemmKernels } from './gemm.js';

interface TrainExports {
  gemm_f32(x: number, w: number, y: number, T: number, N: number, K: number, NB: number): void;
  gemm_nn_acc(a: number, b: number, c: number, M: number, N: number, K: number): void;
  gemm_tn_acc(a: number, b: number, c: number, M: number, N: number, K: number): void;
  attention_bwd(q: number, k: number, v: number, out: number, dout: number, dq: number, dk: number, dv: number, pos: number,
    T: number, S: number, H: number, KVH: number, hd: number, causal: number, scale: number, scratch: number): void;
}

/** The parts of the wasm backend this file uses (structural, so it does not pin the backend's full type). */
export interface WasmGemmHost {
  readonly exports: object;
  readonly memory: WebAssembly.Memory;
  alloc(bytes: number): number;
}

/** Whether this wasm backend build has the training kernels. */
export function hasTrainKernels(b: WasmGemmHost): boolean {
  const ex = b.exports as Partial<TrainExports>;
  return typeof ex.gemm_nn_acc === 'function' && typeof ex.gemm_tn_acc === 'function' && typeof ex.gemm_f32 === 'function' && typeof ex.attention_bwd === 'function';
}

function panelRows(K: number): number {
  return Math.max(2, Math.min(64, Math.floor(65536 / K) & ~1));
}

/** GemmKernels over the wasm backend's kernels (throws when the build lacks gemm_nn_acc / gemm_tn_acc). */
export function wasmGemm(b: WasmGemmHost): GemmKernels {
  if (!hasTrainKernels(b)) throw new Error('wasm backend: this build has no training kernels (gemm_nn_acc, gemm_tn_acc); rebuild with npm run build');
  const ex = b.exports as TrainExports;
  let scratch = 0;
  let scratchBytes = 0;
  const f32 = (): Float32Array => new Float32Array(b.memory.buffer);
  /** Byte offsets of f32 operands of the given float counts in the scratch region. */
  const placeN = (...ns: number[]): number[] => {
    const al = (n: number): number => Math.ceil((n * 4) / 64) * 64;
    const need = ns.reduce((a, n) => a + al(n), 0);
    if (need > scratchBytes) {
      // The old region stays allocated (the backend has no free for callers); the region only grows
      // a few times (to the largest product of the model).
      scratchBytes = Math.max(need, Math.ceil(scratchBytes * 1.5));
      scratch = b.alloc(scratchBytes);
    }
    const out: number[] = [];
    let p = scratch;
    for (const n of ns) {
      out.push(p);
      p += al(n);
    }
    return out;
  };
  const place = (n0: number, n1: number, n2: number): [number, number, number] => placeN(n0, n1, n2) as [number, number, number];
  const small = (M: number, N: number, K: number): boolean => M * N * K < 4096;
  const isF64 = (...a: Arr[]): boolean => a.some((x) => x instanceof Float64Array);
  return {
    name: 'wasm',
    nt(M, N, K, A, B, C) {
      if (isF64(A, B, C) || M < 4 || small(M, N, K)) return jsGemm.nt(M, N, K, A, B, C);
      const [pa, pb, pc] = place(M * K, N * K, M * N);
      const h = f32();
      h.set(A.subarray(0, M * K), pa >> 2);
      h.set(B.subarray(0, N * K), pb >> 2);
      ex.gemm_f32(pa, pb, pc, M, N, K, panelRows(K));
      (C as Float32Array).set(f32().subarray(pc >> 2, (pc >> 2) + M * N));
    },
    nn(M, N, K, A, B, C) {
      if (isF64(A, B, C) || small(M, N, K)) return jsGemm.nn(M, N, K, A, B, C);
      const [pa, pb, pc] = place(M * K, K * N, M * N);
      const h = f32();
      h.set(A.subarray(0, M * K), pa >> 2);
      h.set(B.subarray(0, K * N), pb >> 2);
      h.set(C.subarray(0, M * N), pc >> 2);
      ex.gemm_nn_acc(pa, pb, pc, M, N, K);
      (C as Float32Array).set(f32().subarray(pc >> 2, (pc >> 2) + M * N));
    },
    tn(M, N, K, A, B, C) {
      if (isF64(A, B, C) || small(M, N, K)) return jsGemm.tn(M, N, K, A, B, C);
      const [pa, pb, pc] = place(K * M, K * N, M * N);
      const h = f32();
      h.set(A.subarray(0, K * M), pa >> 2);
      h.set(B.subarray(0, K * N), pb >> 2);
      h.set(C.subarray(0, M * N), pc >> 2);
      ex.gemm_tn_acc(pa, pb, pc, M, N, K);
      (C as Float32Array).set(f32().subarray(pc >> 2, (pc >> 2) + M * N));
    },
    attentionBackward(a, q, k, v, out, dout, pos, dq, dk, dv) {
      if (isF64(q, k, v, out, dout, ...[dq, dk, dv].filter((x): x is Arr => x !== null))) return false;
      const nq = q.length;
      const nk = k.length;
      const [pq, pk, pv, po, pd, pdq, pdk, pdv, pp, ps] = placeN(nq, nk, nk, nq, nq, dq ? nq : 0, dk ? nk : 0, dv ? nk : 0, pos.length, a.S);
      const h = f32();
      h.set(q, pq! >> 2);
      h.set(k, pk! >> 2);
      h.set(v, pv! >> 2);
      h.set(out, po! >> 2);
      h.set(dout, pd! >> 2);
      if (dq) h.set(dq, pdq! >> 2);
      if (dk) h.set(dk, pdk! >> 2);
      if (dv) h.set(dv, pdv! >> 2);
      new Int32Array(b.memory.buffer).set(pos, pp! >> 2);
      ex.attention_bwd(pq!, pk!, pv!, po!, pd!, dq ? pdq! : 0, dk ? pdk! : 0, dv ? pdv! : 0, pp!, a.T, a.S, a.nHeads, a.nKvHeads, a.headDim, a.causal ? 1 : 0, a.scale, ps!);
      const r = f32();
      if (dq) (dq as Float32Array).set(r.subarray(pdq! >> 2, (pdq! >> 2) + nq));
      if (dk) (dk as Float32Array).set(r.subarray(pdk! >> 2, (pdk! >> 2) + nk));
      if (dv) (dv as Float32Array).set(r.subarray(pdv! >> 2, (pdv! >> 2) + nk));
      return true;
    },
  };
}

/** The fast float32 training setup: the wasm backend for the forward (reference as fallback) and its GEMMs. */
export async function createFastTraining(o: { threads?: number } = {}): Promise<{ backends: Backend[]; gemm: GemmKernels; dispose: () => void }> {
  const { createWasmBackend } = await import('../backends/wasm/index.js');
  const wasm = await createWasmBackend(o.threads === undefined ? {} : { threads: o.threads } as Parameters<typeof createWasmBackend>[0]);
  const dispose = (): void => (wasm as { dispose?: () => void }).dispose?.();
  return { backends: [wasm], gemm: wasmGemm(wasm), dispose };
}
