// GemmKernels on the WebAssembly backend, threaded on its pool:
//   nt / nn / tn   the packed SGEMM of assembly/sgemm.ts (sgemm_chunk: one chunk = one tile of C, computed
//                  over all of k by one thread, so results do not depend on thread timing);
//   attention      assembly/train.ts attention_bwd_chunk (one chunk per KV head);
//   cross-entropy  ce_fwd_chunk / ce_bwd_chunk (rows of logits): the forward runs as a one-op backend ahead
//                  of the wasm backend and keeps each row's max and 1/sum for the backward, which then needs
//                  one exp per logit (softmax - one-hot, fused).
// Operands already in the backend's memory (resident: allocF32 arrays, the backward's gradient buffers from
// zeros, views of resident weights) are used in place; others are copied into a reusable scratch region
// per call. Float64 operands (the finite-difference oracle) and tiny products go to the TypeScript kernels.

import type { Backend, Dense, Value } from '../backends/backend.js';
import { dense } from '../backends/backend.js';
import type { Node } from '../graph/graph.js';
import { SG_NN, SG_NT, SG_STRIDE, SG_TN, sgemmPlan } from '../backends/wasm/sgemm-plan.js';
import { jsGemm, type Arr, type AttentionShape, type ElementwiseKernels, type GemmKernels } from './gemm.js';
import type { OptimKernels } from './optim.js';

/** The parts of the wasm backend this file uses (structural, so it does not pin the backend's full type). */
export interface WasmGemmHost {
  readonly exports: object;
  readonly memory: WebAssembly.Memory;
  readonly threads: number;
  alloc(bytes: number): number;
  /** Whether a view is in this memory (the backend tracks every buffer the memory has had). */
  isResident?(a: ArrayBufferView): boolean;
  runKernel(name: string, args: ArrayLike<number>, chunks: number, parallel?: boolean, work?: number): void;
}

const KERNELS = ['sgemm_chunk', 'attention_bwd_chunk', 'ce_fwd_chunk', 'ce_bwd_chunk', 'adamw_chunk', 'sum_squares', 'scale_chunk', 'fill_zero', 'silu_bwd_chunk', 'acc_chunk', 'rmsnorm_bwd_chunk', 'rmsnorm_bwd_w', 'abs_max'];

/** Whether this wasm backend build has the training kernels. */
export function hasTrainKernels(b: { readonly exports: object }): boolean {
  const ex = b.exports as Record<string, unknown>;
  return KERNELS.every((k) => typeof ex[k] === 'function');
}

/** Products with fewer multiply-adds run on the calling thread only. */
const MIN_PARALLEL_MACS = 1 << 21;
const LAYOUT = { nt: SG_NT, nn: SG_NN, tn: SG_TN } as const;

/** GemmKernels plus what the wasm path adds (resident arrays, the fused cross-entropy's forward backend). */
export interface WasmGemmKernels extends GemmKernels {
  /** A one-op backend running cross_entropy's forward in wasm (put it ahead of the wasm backend). */
  readonly lossBackend: Backend;
}

/** GemmKernels over the wasm backend's kernels (throws when the build lacks them). */
export function wasmGemm(b: WasmGemmHost): WasmGemmKernels {
  if (!hasTrainKernels(b)) throw new Error('wasm backend: this build has no training kernels (sgemm_chunk, ...); rebuild with npm run build');
  const mem = b.memory;
  // Every buffer the memory has handed out (it changes on grow; old views stay valid, shared memory).
  const buffers = new WeakSet<ArrayBufferLike>();
  const current = (): ArrayBufferLike => {
    const buf = mem.buffer;
    buffers.add(buf);
    return buf;
  };
  const resident = (x: Arr): boolean => {
    current();
    return buffers.has(x.buffer) || (b.isResident?.(x) ?? false);
  };
  const view = (ptr: number, n: number): Float32Array => new Float32Array(current(), ptr, n);
  const fillZero = (b.exports as { fill_zero(ptr: number, bytes: number): void }).fill_zero;
  const al = (bytes: number): number => Math.ceil(bytes / 64) * 64;

  // per-call scratch for operands that live in JS memory
  let scratch = 0;
  let scratchBytes = 0;
  const ensureScratch = (need: number): void => {
    if (need > scratchBytes) {
      // the old region stays allocated (the backend has no free for callers); it grows only a few times
      scratchBytes = Math.max(need, Math.ceil(scratchBytes * 1.5));
      scratch = b.alloc(scratchBytes);
    }
  };
  /** Byte offsets of the operands: resident ones in place, others copied into scratch (when `copy`). */
  const placeAll = (ops: { a: Arr | Int32Array; n: number; copy: boolean }[]): number[] => {
    let need = 0;
    for (const o of ops) if (!resident(o.a as Arr)) need += al(o.n * 4);
    ensureScratch(need);
    const out: number[] = [];
    let p = scratch;
    for (const o of ops) {
      if (resident(o.a as Arr)) {
        out.push(o.a.byteOffset);
        continue;
      }
      out.push(p);
      if (o.copy) {
        if (o.a instanceof Int32Array) new Int32Array(current(), p, o.n).set(o.a.subarray(0, o.n));
        else view(p, o.n).set(o.a.subarray(0, o.n));
      }
      p += al(o.n * 4);
    }
    return out;
  };
  const copyOut = (dst: Arr, p: number, n: number): void => {
    if (!resident(dst)) (dst as Float32Array).set(view(p, n));
  };

  // per-thread packing scratch of the SGEMM and attention
  const threads = b.threads;
  const sgScratch = b.alloc(SG_STRIDE * threads);
  fillZero(sgScratch, SG_STRIDE * threads); // no stale packed-A cache headers
  let job = 0;
  const small = (M: number, N: number, K: number): boolean => M * N * K < 4096;
  const isF64 = (...a: (Arr | null)[]): boolean => a.some((x) => x instanceof Float64Array);

  function sgemm(op: 'nt' | 'nn' | 'tn', M: number, N: number, K: number, A: Arr, B: Arr, C: Arr, acc: boolean): void {
    if (K === 0) {
      if (!acc) C.fill(0, 0, M * N);
      return;
    }
    const [pa, pb, pc] = placeAll([{ a: A, n: M * K, copy: true }, { a: B, n: N * K, copy: true }, { a: C, n: M * N, copy: acc }]);
    const { MT, NT, KC, chunks } = sgemmPlan(M, N, K, threads);
    const macs = M * N * K;
    // a new job id per product (bits 1..30 of the flag): sgemm_chunk then packs each row block of A once per thread
    job = job >= 0x3fffffff ? 1 : job + 1;
    b.runKernel('sgemm_chunk', [pa!, pb!, pc!, M, N, K, LAYOUT[op], (acc ? 1 : 0) + job * 2, MT, NT, KC, sgScratch, SG_STRIDE], chunks, macs >= MIN_PARALLEL_MACS, macs);
    copyOut(C, pc!, M * N);
  }

  // ---- the backward's gradient buffers: a bump arena reset by backwardBegin ----------------------
  let arena = 0;
  let arenaCap = 0;
  let arenaTop = 0;
  let arenaNeed = 0;

  // ---- cross-entropy -------------------------------------------------------------------------------
  /** What the last forward left for the backward: its logits and targets (by identity) and row stats. */
  let ce: { x: Float32Array; tgt: Int32Array; T: number; V: number; px: number; pt: number; rowMax: number; invSum: number } | null = null;
  let ceRegion = 0;
  let ceBytes = 0;

  /** Runs ce_fwd over logits x[T,V]; returns the loss summed over counted rows (f64, row order) and the count. */
  function ceForward(x: Float32Array, tgt: Int32Array, T: number, V: number): { sum: number; cnt: number } {
    for (let t = 0; t < T; t++) if (tgt[t]! >= V) throw new RangeError(`cross_entropy: target ${tgt[t]} is outside the ${V} classes`);
    // region: [stats: loss f64 T, invSum f64 T, rowMax f32 T][x copy][tgt copy]
    const statBytes = al(T * 8) * 2 + al(T * 4);
    const xr = resident(x);
    const need = statBytes + (xr ? 0 : al(T * V * 4)) + al(T * 4);
    if (need > ceBytes) {
      ceBytes = Math.max(need, Math.ceil(ceBytes * 1.25));
      ceRegion = b.alloc(ceBytes);
    }
    const loss = ceRegion;
    const invSum = loss + al(T * 8);
    const rowMax = invSum + al(T * 8);
    let p = rowMax + al(T * 4);
    let px = x.byteOffset;
    if (!xr) {
      px = p;
      view(px, T * V).set(x.subarray(0, T * V));
      p += al(T * V * 4);
    }
    const pt = p;
    new Int32Array(current(), pt, T).set(tgt.subarray(0, T));
    const rpc = Math.max(1, Math.min(T, Math.ceil(16384 / V)));
    b.runKernel('ce_fwd_chunk', [px, pt, T, V, rpc, loss, rowMax, invSum], Math.ceil(T / rpc), T * V >= 1 << 16, T * V);
    const l = new Float64Array(current(), loss, T);
    let sum = 0;
    let cnt = 0;
    for (let t = 0; t < T; t++) {
      if (tgt[t]! < 0) continue;
      sum += l[t]!;
      cnt++;
    }
    ce = { x, tgt, T, V, px, pt, rowMax, invSum };
    return { sum, cnt };
  }

  const lossBackend: Backend = {
    name: 'wasm-loss',
    kernels: {
      cross_entropy: (node: Node<'cross_entropy'>, [lv, tv]: Value[]) => {
        const x = (lv as Dense).data as Float32Array;
        const tgt = (tv as Dense).data as Int32Array;
        const shape = (lv as Dense).shape;
        const V = shape[shape.length - 1]!;
        const T = x.length / V;
        const { sum, cnt } = ceForward(x, tgt, T, V);
        return dense(node.shape, Float32Array.of(cnt === 0 ? 0 : sum / cnt));
      },
    },
    supports(_node, inputs) {
      const [l, t] = inputs;
      return l !== undefined && l.kind === 'dense' && l.data instanceof Float32Array && t !== undefined && t.kind === 'dense' && t.data instanceof Int32Array;
    },
  };

  // optimizer arithmetic on resident arrays, elementwise chunks of OPT_PER values (bit-identical to optim.ts)
  const OPT_PER = 1 << 16;
  const optChunks = (n: number): number => Math.max(1, Math.ceil(n / OPT_PER));
  const optim: OptimKernels = {
    resident: (a) => resident(a),
    alloc: (n) => {
      const p = b.alloc(Math.max(4, n * 4));
      fillZero(p, n * 4);
      return view(p, n);
    },
    adamw(p, g, m, v, b1, b2, eps, decay, stepSize, bc2s) {
      const n = p.length;
      b.runKernel('adamw_chunk', [p.byteOffset, g.byteOffset, m.byteOffset, v.byteOffset, n, OPT_PER, b1, b2, eps, decay, stepSize, bc2s], optChunks(n), n >= 4 * OPT_PER, n);
    },
    absMax: (g) => (b.exports as { abs_max(g: number, n: number): number }).abs_max(g.byteOffset, g.length),
    sumSquares: (g, acc) => (b.exports as { sum_squares(g: number, n: number, acc: number): number }).sum_squares(g.byteOffset, g.length, acc),
    scale(g, s) {
      const n = g.length;
      b.runKernel('scale_chunk', [g.byteOffset, n, OPT_PER, s], optChunks(n), n >= 4 * OPT_PER, n);
    },
  };

  // elementwise backward rules on resident float32 arrays (elementwise chunks; rmsnorm's dx by rows, its dw
  // in row order on the calling thread, so every sum has one fixed order)
  const EW_PER = 1 << 14;
  // Every float32 call runs the kernel (arrays outside the memory are copied in and the outputs back): the
  // arithmetic must not depend on where an array lives, or a resumed run would differ from an uninterrupted one.
  const f32 = (...a: (Arr | null)[]): boolean => a.every((x) => x === null || x instanceof Float32Array);
  /** Byte offsets of the arrays (null: 0), runs fn, copies the non-resident outputs (indices in `outs`) back. */
  const inMemory = (arrs: (Arr | null)[], outs: number[], fn: (p: number[]) => void): void => {
    const p = placeAll(arrs.map((a) => ({ a: a ?? new Float32Array(0), n: a === null ? 0 : a.length, copy: true })));
    fn(arrs.map((a, i) => (a === null ? 0 : p[i]!)));
    for (const i of outs) if (arrs[i] !== null) copyOut(arrs[i]!, p[i]!, arrs[i]!.length);
  };
  const ew = (name: string, args: number[], n: number): void => b.runKernel(name, [...args, n, EW_PER], Math.max(1, Math.ceil(n / EW_PER)), n >= 4 * EW_PER, n);
  const rmsW = (b.exports as { rmsnorm_bwd_w(x: number, dy: number, gw: number, rows: number, G: number, eps: number): void }).rmsnorm_bwd_w;
  const elementwise: ElementwiseKernels = {
    silu(x, dy, g) {
      if (!f32(x, dy, g)) return false;
      inMemory([x, dy, g], [2], ([px, pd, pg]) => ew('silu_bwd_chunk', [px!, pd!, pg!], g.length));
      return true;
    },
    accumulate(g, dy, other) {
      if (!f32(g, dy, other)) return false;
      inMemory([g, dy, other], [0], ([pg, pd, po]) => ew('acc_chunk', [pg!, pd!, po!], g.length));
      return true;
    },
    rmsnorm(x, w, dy, eps, gx, gw) {
      if (!f32(x, w, dy, gx, gw)) return false;
      const G = w.length;
      const rows = x.length / G;
      inMemory([x, w, dy, gx, gw], [3, 4], ([px, pw, pd, pgx, pgw]) => {
        if (gx !== null) {
          const per = Math.max(1, Math.floor(EW_PER / G));
          b.runKernel('rmsnorm_bwd_chunk', [px!, pw!, pd!, pgx!, rows, G, per, eps], Math.ceil(rows / per), x.length >= 4 * EW_PER, x.length);
        }
        if (gw !== null) rmsW(px!, pd!, pgw!, rows, G, eps);
      });
      return true;
    },
  };

  return {
    name: 'wasm',
    lossBackend,
    optim,
    elementwise,
    nt(M, N, K, A, B, C) {
      if (isF64(A, B, C) || M < 4 || small(M, N, K)) return jsGemm.nt(M, N, K, A, B, C);
      sgemm('nt', M, N, K, A, B, C, false);
    },
    nn(M, N, K, A, B, C) {
      if (isF64(A, B, C) || small(M, N, K)) return jsGemm.nn(M, N, K, A, B, C);
      sgemm('nn', M, N, K, A, B, C, true);
    },
    tn(M, N, K, A, B, C) {
      if (isF64(A, B, C) || small(M, N, K)) return jsGemm.tn(M, N, K, A, B, C);
      sgemm('tn', M, N, K, A, B, C, true);
    },
    allocF32(n: number): Float32Array {
      const p = b.alloc(Math.max(4, n * 4));
      fillZero(p, n * 4); // the backend may hand out reused memory
      return view(p, n);
    },
    backwardBegin(): void {
      if (arenaNeed > arenaCap && arenaCap >= 0) {
        try {
          arena = b.alloc(Math.ceil(arenaNeed * 1.125));
          arenaCap = Math.ceil(arenaNeed * 1.125);
        } catch (e) {
          // the memory is full (wasm32: 4 GiB): gradient buffers stay JS arrays (the kernels copy them)
          if (!(e instanceof RangeError)) throw e;
          arenaCap = -1;
        }
      }
      arenaTop = 0;
      arenaNeed = 0;
    },
    zeros(n: number): Float32Array | null {
      const bytes = al(n * 4);
      arenaNeed += bytes;
      if (arenaTop + bytes > arenaCap) return null; // (arenaCap -1: disabled)
      const v = view(arena + arenaTop, n);
      fillZero(arena + arenaTop, n * 4);
      arenaTop += bytes;
      return v;
    },
    crossEntropyBackward(x: Arr, tgt: Int32Array, s: number, g: Arr): boolean {
      if (isF64(x, g)) return false;
      const T = tgt.length;
      const V = x.length / T;
      if (ce === null || ce.x !== x || ce.tgt !== tgt || ce.T !== T || ce.V !== V) ceForward(x as Float32Array, tgt, T, V);
      const c = ce!;
      const gr = resident(g);
      let pg = g.byteOffset;
      if (!gr) {
        const [p] = placeAll([{ a: g, n: T * V, copy: true }]);
        pg = p!;
      }
      const rpc = Math.max(1, Math.min(T, Math.ceil(16384 / V)));
      b.runKernel('ce_bwd_chunk', [c.px, c.pt, T, V, rpc, c.rowMax, c.invSum, pg, s, 2], Math.ceil(T / rpc), T * V >= 1 << 16, T * V);
      if (!gr) copyOut(g, pg, T * V);
      return true;
    },
    attentionBackward(a: AttentionShape, q, k, v, out, dout, pos, dq, dk, dv) {
      if (isF64(q, k, v, out, dout, dq, dk, dv)) return false;
      const nq = q.length;
      const nk = k.length;
      // per thread: P and dS (T x S floats each), a row of T floats, then the SGEMM packing scratch
      const stride = al(2 * a.T * a.S * 4 + a.T * 4) + SG_STRIDE;
      const [pq, pk, pv, po, pd, pdq, pdk, pdv, pp, args, sc] = placeAll([
        { a: q, n: nq, copy: true }, { a: k, n: nk, copy: true }, { a: v, n: nk, copy: true }, { a: out, n: nq, copy: true }, { a: dout, n: nq, copy: true },
        { a: dq ?? q, n: dq ? nq : 0, copy: true }, { a: dk ?? k, n: dk ? nk : 0, copy: true }, { a: dv ?? v, n: dv ? nk : 0, copy: true },
        { a: pos, n: pos.length, copy: true },
        // the kernel's argument block and per-thread score rows (scratch only: never resident)
        { a: new Int32Array(18), n: 18, copy: false }, { a: new Float32Array(0), n: (stride / 4) * threads, copy: false },
      ]);
      const I = new Int32Array(current(), args!, 18);
      I.set([pq!, pk!, pv!, po!, pd!, dq ? pdq! : 0, dk ? pdk! : 0, dv ? pdv! : 0, pp!, a.T, a.S, a.nHeads, a.nKvHeads, a.headDim, a.causal ? 1 : 0, 0, sc!, stride]);
      new Float32Array(I.buffer, args! + 60, 1)[0] = a.scale;
      const work = a.T * a.S * a.nHeads * a.headDim;
      b.runKernel('attention_bwd_chunk', [args!], a.nKvHeads, work >= 1 << 20, work);
      if (dq) copyOut(dq, pdq!, nq);
      if (dk) copyOut(dk, pdk!, nk);
      if (dv) copyOut(dv, pdv!, nk);
      return true;
    },
  };
}

/** The fast float32 training setup: the wasm backend for the forward (reference as fallback) and its GEMMs. */
export async function createFastTraining(o: { threads?: number; adaptive?: boolean } = {}): Promise<{ backends: Backend[]; gemm: WasmGemmKernels; dispose: () => void }> {
  const { createWasmBackend } = await import('../backends/wasm/index.js');
  const wasm = await createWasmBackend({ ...(o.threads === undefined ? {} : { threads: o.threads }), ...(o.adaptive === undefined ? {} : { adaptive: o.adaptive }) });
  const dispose = (): void => (wasm as { dispose?: () => void }).dispose?.();
  const gemm = wasmGemm(wasm);
  return { backends: [gemm.lossBackend, wasm], gemm, dispose };
}
