// A pool of worker threads running the wasm kernels on the backend's one shared WebAssembly.Memory.
//
// Dispatch (no allocation, no postMessage per job): a control SharedArrayBuffer holds
//   I32[WORD]  (generation << 16) | next unclaimed chunk; CLOSED as chunk once a job is over
//   I32[DONE]  chunks finished in the current job
//   I32[SLEEPERS] workers blocked in Atomics.wait (the main thread notifies only when > 0)
//   F64[ARGS..] the job's arguments (kind, pointers, sizes, chunk count)
// The main thread writes the arguments, resets DONE and publishes a new WORD; every thread (the main
// one included) then claims chunks with a compare-and-swap on WORD until none is left, so a worker
// that the host time-slices away simply claims nothing (work stealing). A claim can only succeed
// while its job is live, which is what makes the arguments a worker read before claiming valid.
// Workers spin on WORD for a while after each job (decode launches many small jobs back to back),
// then sleep in Atomics.wait.
//
// Adaptive (so that more threads are never slower than one): the pool keeps measuring. A probe window of
// 2 x PROBE jobs runs each job on all threads or on the main thread alone, chosen at random per job, so both
// modes see the same mix of job kinds (GEMV bytes and GEMM multiply-adds are different work units: comparing
// a window of prefill GEMMs with a window of decode GEMVs would be meaningless); it compares the throughput
// (work units per ms of wall time, for jobs big enough to split) and runs the next EXPLOIT jobs the faster
// way. When the other vCPU is busy with another process or time-sliced by the host, the worker's spinning
// only steals time from the main thread and the solo mode wins; on an idle machine the parallel one does.

import { Worker } from 'node:worker_threads';

export const WORD = 0;
export const DONE = 1;
export const SLEEPERS = 2;
export const STOP = 3;
/** Byte offset of the Float64 arguments in the control buffer. */
export const ARGS_BYTE = 64;
export const NARGS = 16;
/** Index of the chunk count in the arguments. */
export const N_CHUNKS = 15;
export const CLOSED = 0xffff;
/** Spin iterations (each an Atomics.load) before a worker sleeps: ~0.3-1 ms. */
export const SPIN = 20000;
const PROBE = 256;
/** Jobs before the first probe (all parallel: a prompt's prefill, the first decode steps). */
const FIRST_PROBE = 512;
/** Jobs at the start of a probe window left out of its measurement (the workers are waking up). */
const PROBE_WARMUP = 32;
const EXPLOIT = 4096;

/** Job kinds (F64[0]). */
export const JOB_GEMV = 1;
export const JOB_GEMM = 2;
/** A chunk kernel: any export named `*_chunk` with the signature (chunk: i32, tid: i32, up to 13 args).
 *  a = [kind, kernel id, arg0 .. arg12]; the kernel does chunk `chunk` of its own work split. */
export const JOB_KERNEL = 3;
/** Arguments a chunk kernel can take after (chunk, tid). */
export const KERNEL_ARGS = 13;

type ChunkKernel = (c: number, tid: number, ...args: number[]) => void;
const kernelTables = new WeakMap<object, ChunkKernel[]>();

/** Names of the module's chunk kernels, numbered the same way on every thread (sorted export names). */
export function chunkKernelNames(ex: object): string[] {
  return Object.keys(ex).filter((k) => k.endsWith('_chunk') && typeof (ex as Record<string, unknown>)[k] === 'function').sort();
}

function chunkKernels(ex: object): ChunkKernel[] {
  let t = kernelTables.get(ex);
  if (!t) {
    t = chunkKernelNames(ex).map((k) => (ex as Record<string, ChunkKernel>)[k]!);
    kernelTables.set(ex, t);
  }
  return t;
}

/** The kernel exports runChunk needs. */
export interface ChunkExports {
  gemv_f32(w: number, x: number, y: number, N: number, K: number): void;
  gemv_f16(w: number, x: number, y: number, N: number, K: number): void;
  gemv_bf16(w: number, x: number, y: number, N: number, K: number): void;
  gemv_q8_0(w: number, x16: number, xd: number, y: number, N: number, K: number): void;
  gemv_q8_0x(w: number, xa: number, xd: number, y: number, N: number, K: number): void;
  gemv_q4_0x(w: number, xa: number, xd: number, xs: number, y: number, N: number, K: number): void;
  gemv_q4_kx(w: number, xq: number, xd: number, xs: number, y: number, N: number, K: number): void;
  gemv_q6_kx(w: number, xq: number, xd: number, y: number, N: number, K: number): void;
  gemm_f32_ld(x: number, w: number, y: number, T: number, N: number, K: number, NB: number, ldy: number): void;
  gemm_deq_ld(dt: number, x: number, w: number, y: number, T: number, N: number, K: number, panel: number, NB: number, ldy: number): void;
}

/**
 * Runs chunk `c` of the job described by `a` on thread `tid` (0 = main).
 *  GEMV: a = [kind, dt, w, rowBytes, x, xd, xs, y, N, K, rowsPerChunk]
 *  GEMM: a = [kind, dt, x, w, rowBytes, y, T, N, K, NB, panelBase, panelStride, colsPerChunk]

 *  a[N_CHUNKS] is the job's chunk count.
 */
export function runChunk(ex: ChunkExports, a: Float64Array, c: number, tid: number): void {
  switch (a[0]) {
    case JOB_GEMV: {
      const dt = a[1]!, rb = a[3]!, N = a[8]!, K = a[9]!, rpc = a[10]!;
      const r0 = c * rpc;
      const n = Math.min(N, r0 + rpc) - r0;
      const w = a[2]! + r0 * rb;
      const y = a[7]! + r0 * 4;
      switch (dt) {
        case 0: return ex.gemv_f32(w, a[4]!, y, n, K);
        case 1: return ex.gemv_f16(w, a[4]!, y, n, K);
        case 2: return ex.gemv_bf16(w, a[4]!, y, n, K);
        // q8_0 / q4_0: assembly/qgemm.ts (x prepared by prep_q8_0 / prep_q4_0); 7: q8_0 holding a -128 quant
        // in the relaxed build, the int16 kernel of matmul.ts (x widened by widen_q8)
        case 3: return ex.gemv_q8_0x(w, a[4]!, a[5]!, y, n, K);
        case 4: return ex.gemv_q4_0x(w, a[4]!, a[5]!, a[6]!, y, n, K);
        case 5: return ex.gemv_q4_kx(w, a[4]!, a[5]!, a[6]!, y, n, K);
        case 7: return ex.gemv_q8_0(w, a[4]!, a[5]!, y, n, K);
        default: return ex.gemv_q6_kx(w, a[4]!, a[5]!, y, n, K);
      }
    }
    case JOB_GEMM: {
      const dt = a[1]!, rb = a[4]!, T = a[6]!, N = a[7]!, K = a[8]!, NB = a[9]!, cpc = a[12]!;
      const n0 = c * cpc;
      const nb = Math.min(N, n0 + cpc) - n0;
      const w = a[3]! + n0 * rb;
      const y = a[5]! + n0 * 4;
      if (dt === 0) return ex.gemm_f32_ld(a[2]!, w, y, T, nb, K, NB, N);
      return ex.gemm_deq_ld(dt, a[2]!, w, y, T, nb, K, a[10]! + tid * a[11]!, NB, N);
    }
    case JOB_KERNEL:
      return chunkKernels(ex)[a[1]!]!(c, tid, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, a[12]!, a[13]!, a[14]!);
  }
}

export interface PoolStats {
  jobs: number;
  parallelJobs: number;
  /** Chunks run by workers (not the main thread). */
  workerChunks: number;
  totalChunks: number;
  /** Jobs after which the main thread waited > 1 ms for a worker. */
  stalls: number;
  /** Whether the pool is currently running jobs on the main thread alone (adaptive fallback). */
  solo: boolean;
}

export class ThreadPool {
  readonly threads: number;
  private readonly i32: Int32Array;
  readonly args: Float64Array;
  private readonly workers: Worker[] = [];
  private gen = 0;
  /** 0: probing (each job parallel or solo at random), 1: exploiting `useParallel`. A pool starts by exploiting
   *  parallel (a prompt's few big GEMMs all split); the first probe comes FIRST_PROBE jobs later. */
  private phase = 1;
  private coin = 0x9e3779b9;
  private phaseJobs = EXPLOIT - FIRST_PROBE;
  private useParallel = true;
  private soloStreak = 0;
  private workP = 0;
  private msP = 0;
  private workS = 0;
  private msS = 0;
  /** Adaptive mode on (off: always parallel when asked, for tests). */
  adaptive = true;
  private disposed = false;
  readonly stats: PoolStats = { jobs: 0, parallelJobs: 0, workerChunks: 0, totalChunks: 0, stalls: 0, solo: false };

  private constructor(threads: number, private readonly ex: ChunkExports) {
    this.threads = threads;
    const sab = new SharedArrayBuffer(ARGS_BYTE + NARGS * 8);
    this.i32 = new Int32Array(sab, 0, ARGS_BYTE / 4);
    this.args = new Float64Array(sab, ARGS_BYTE, NARGS);
    this.i32[WORD] = CLOSED;
  }

  /** Starts `threads - 1` workers that instantiate `module` over `memory` (the main thread is the first thread). */
  static async create(threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory, ex: ChunkExports): Promise<ThreadPool> {
    const pool = new ThreadPool(Math.max(1, threads), ex);
    const url = new URL('./worker.js', import.meta.url);
    const ready: Promise<void>[] = [];
    for (let i = 1; i < pool.threads; i++) {
      const w = new Worker(url, { workerData: { module, memory, ctl: pool.i32.buffer, tid: i } });
      w.unref(); // never keeps the process alive
      pool.workers.push(w);
      ready.push(new Promise((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', reject);
      }));
    }
    await Promise.all(ready);
    return pool;
  }

  /**
   * Runs chunks 0..n-1 of the job in `this.args` (written by the caller) on every thread and returns
   * when all are done. `parallel` false (small work) runs them on the calling thread.
   */
  run(n: number, parallel = true, work = 1): void {
    const st = this.stats;
    st.jobs++;
    st.totalChunks += n;
    if (this.workers.length === 0 || n <= 1 || !parallel) {
      for (let c = 0; c < n; c++) runChunk(this.ex, this.args, c, 0);
      return;
    }
    if (!this.adaptive) {
      this.runParallel(n);
      return;
    }
    let usePar = this.useParallel;
    if (this.phase === 0) {
      this.coin = (Math.imul(this.coin, 1664525) + 1013904223) >>> 0; // LCG: the job's mode in this probe
      usePar = (this.coin >>> 31) === 1;
    }
    const t0 = performance.now();
    if (usePar) this.runParallel(n);
    else for (let c = 0; c < n; c++) runChunk(this.ex, this.args, c, 0);
    const ms = performance.now() - t0;
    // the first jobs of a probe wake the workers (asleep after a solo stretch): not measured
    if (this.phase === 0 && this.phaseJobs >= PROBE_WARMUP) {
      if (usePar) {
        this.workP += work;
        this.msP += ms;
      } else {
        this.workS += work;
        this.msS += ms;
      }
    }
    if (++this.phaseJobs >= (this.phase === 1 ? EXPLOIT << this.soloStreak : 2 * PROBE)) {
      this.phaseJobs = 0;
      if (this.phase === 0 && this.msP > 0 && this.msS > 0) {
        // parallel must win by 3% to be worth the second core
        this.useParallel = this.workP / this.msP > 1.03 * (this.workS / this.msS);
        st.solo = !this.useParallel;
        // while solo keeps winning, probe less and less often (up to every 16 x EXPLOIT jobs): a probe on a
        // time-sliced vCPU costs stalls
        this.soloStreak = this.useParallel ? 0 : Math.min(this.soloStreak + 1, 4);
      }
      this.workP = this.msP = this.workS = this.msS = 0;
      this.phase = 1 - this.phase;
    }
  }

  /** Id of the chunk kernel export `name` (see JOB_KERNEL); throws when this build lacks it. */
  kernelId(name: string): number {
    const i = chunkKernelNames(this.ex).indexOf(name);
    if (i < 0) throw new Error(`wasm backend: this build has no chunk kernel ${name}; rebuild with npm run build`);
    return i;
  }

  /**
   * Runs chunks 0..n-1 of chunk kernel `id` with `args` (at most KERNEL_ARGS numbers: byte offsets,
   * sizes, floats; the kernel's parameter types convert them). Same scheduling as run().
   */
  runKernel(id: number, args: ArrayLike<number>, n: number, parallel = true, work = 1): void {
    if (args.length > KERNEL_ARGS) throw new Error(`wasm backend: a chunk kernel takes at most ${KERNEL_ARGS} arguments`);
    const A = this.args;
    A[0] = JOB_KERNEL;
    A[1] = id;
    for (let i = 0; i < KERNEL_ARGS; i++) A[2 + i] = i < args.length ? args[i]! : 0;
    this.run(n, parallel, work);
  }

  private runParallel(n: number): void {
    const st = this.stats;
    st.parallelJobs++;
    const I = this.i32;
    this.args[N_CHUNKS] = n;
    const g = (this.gen = (this.gen + 1) & 0xffff);
    Atomics.store(I, DONE, 0);
    Atomics.store(I, WORD, g << 16); // publish: arguments are already written
    if (Atomics.load(I, SLEEPERS) > 0) Atomics.notify(I, WORD);
    let mine = 0;
    for (;;) {
      const w = Atomics.load(I, WORD);
      const c = w & 0xffff;
      if (c >= n) break;
      if (Atomics.compareExchange(I, WORD, w, w + 1) !== w) continue;
      runChunk(this.ex, this.args, c, 0);
      mine++;
    }
    let done = Atomics.add(I, DONE, mine) + mine;
    if (done < n) {
      const t0 = performance.now();
      while ((done = Atomics.load(I, DONE)) < n) {
        /* spin: the worker holds a chunk */
      }
      if (performance.now() - t0 > 0.5) st.stalls++;
    }
    st.workerChunks += n - mine;
    Atomics.store(I, WORD, (g << 16) | CLOSED); // close the job before the next one rewrites the arguments
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    Atomics.store(this.i32, STOP, 1);
    Atomics.notify(this.i32, WORD);
    for (const w of this.workers) void w.terminate();
    this.workers.length = 0;
  }
}
