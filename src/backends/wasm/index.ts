// The WebAssembly backend: SIMD kernels (AssemblyScript, ./assembly) over one shared WebAssembly.Memory.
//
// Memory layout (all 64-byte aligned, above the module's static area):
//   - persistent region, bump-allocated with exact-size free lists: weights (copied in once per HostTensor,
//     cached by tensor identity), f32 copies of small non-f32 weights (norm vectors), and mirrors of the
//     session's state buffers (the KV cache lives here, so attention never copies it per step);
//   - the activation arena: a list of chunks (taken from the persistent region once, reused forever),
//     reset at the start of every graph run (Backend.beginRun). Kernel outputs are Dense values whose
//     Float32Array views point into the arena; graph outputs are copied out to plain JS arrays so they
//     survive the next run. Inputs computed elsewhere (plain JS arrays) are copied into the arena.
// The memory is shared (SharedArrayBuffer: never detached, so old views stay valid) and grows on demand;
// new views are made from the current buffer after every grow. Single thread for now: a later phase runs
// the same kernels in worker threads over this memory.

import * as v8 from 'node:v8';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Backend, Dense, ExecContext, Kernel, KernelTable, RunOptions, Value } from '../backend.js';
import { dense } from '../backend.js';
import type { Graph, Node } from '../../graph/graph.js';
import type { OpAttrs, OpName } from '../../graph/ops.js';
import { DTYPE_LAYOUT, type DType, type HostTensor } from '../../formats/tensor.js';
import { asF32 } from '../reference/weights.js';
import './webassembly.js';
import * as os from 'node:os';
import { JOB_GEMM, JOB_GEMV, ThreadPool, chunkKernelNames, type PoolStats } from './pool.js';
import { SG_NT, sgemmPlan } from './sgemm-plan.js';

/** dtype codes of the kernels (assembly/matmul.ts). */
const DT_CODE: Record<DType, number> = { f32: 0, f16: 1, bf16: 2, q8_0: 3, q4_0: 4, q4_k: 5, q6_k: 6 };

interface Exports {
  heap_base(): number;
  deq_row(dt: number, src: number, K: number, dst: number): void;
  deq_matrix_row(dt: number, w: number, row: number, K: number, dst: number): void;
  gemv_f32(w: number, x: number, y: number, N: number, K: number): void;
  gemv_f16(w: number, x: number, y: number, N: number, K: number): void;
  gemv_bf16(w: number, x: number, y: number, N: number, K: number): void;
  gemm_f32(x: number, w: number, y: number, T: number, N: number, K: number, NB: number): void;
  gemm_deq(dt: number, x: number, w: number, y: number, T: number, N: number, K: number, panel: number, NB: number): void;
  quant_q8(x: number, K: number, xq: number, xd: number, xs: number): void;
  widen_q8(xq: number, K: number, x16: number): void;
  gemv_q8_0(w: number, x16: number, xd: number, y: number, N: number, K: number): void;
  // assembly/qgemm.ts: block-quantized GEMV (x in the form prep_q8_0 / prep_q4_0 make)
  prep_q8_0(xq: number, K: number, xa: number): void;
  prep_q4_0(xq: number, K: number, xa: number): void;
  gemv_q8_0x(w: number, xa: number, xd: number, y: number, N: number, K: number): void;
  gemv_q4_0x(w: number, xa: number, xd: number, xs: number, y: number, N: number, K: number): void;
  gemv_q4_kx(w: number, xq: number, xd: number, xs: number, y: number, N: number, K: number): void;
  gemv_q6_kx(w: number, xq: number, xd: number, y: number, N: number, K: number): void;
  q8_0_has_m128(w: number, nblocks: number): number;
  qgemm4_panel_bytes(K: number): number;
  qgemm4_chunk(c: number, tid: number, dt: number, xq: number, xd: number, xs: number, w: number, y: number,
    T: number, N: number, K: number, NB: number, scratch: number, stride: number, cpc: number): void;
  gemm_f32_ld(x: number, w: number, y: number, T: number, N: number, K: number, NB: number, ldy: number): void;
  gemm_deq_ld(dt: number, x: number, w: number, y: number, T: number, N: number, K: number, panel: number, NB: number, ldy: number): void;
  gemv_q4_k(w: number, xq: number, xd: number, xs: number, y: number, N: number, K: number): void;
  binop(op: number, a: number, b: number, out: number, n: number, m: number): void;
  unop(op: number, x: number, out: number, n: number): void;
  rmsnorm(x: number, w: number, out: number, total: number, G: number, eps: number): void;
  layernorm(x: number, w: number, b: number, out: number, T: number, D: number, eps: number): void;
  rope(x: number, out: number, cs: number, T: number, W: number, hd: number, rd: number, neox: number): void;
  argmax(x: number, n: number): number;
  /** assembly/sample.ts: argmax with the semantics of sampler.ts argmax (SIMD). */
  argmax_f32(x: number, n: number): number;
  attention_decode_combine(out: number, part: number, H: number, hd: number, chunks: number): void;
}

export interface WasmBackendOptions {
  /** Use the relaxed-SIMD build: true requires it, false never, 'auto' (default) when this V8 validates it. */
  relaxed?: boolean | 'auto';
  /** Maximum memory in 64 KiB pages (default 65536 = 4 GiB, the wasm32 limit). */
  maxPages?: number;
  /** Threads running kernels (the calling thread is one of them). Default: os.availableParallelism(). */
  threads?: number;
  /** GEMV on fewer weight bytes than this runs on one thread (default 512 KiB: thread hand-off costs more). */
  minParallelBytes?: number;
  /** GEMM with fewer multiply-adds (T*N*K) than this runs on one thread (default 2^21). */
  minParallelMacs?: number;
  /** Attention with fewer multiply-adds (query rows x keys x head_dim x 2) than this runs on one thread (default 2^18). */
  minParallelAttention?: number;
  /** Bytes of weights per GEMV chunk (default 256 KiB; tests use tiny chunks to exercise the split). */
  chunkBytes?: number;
  /** Keep measuring whether all threads beat the calling thread alone and use the faster (default true;
   *  false: always split big work, for tests). */
  adaptive?: boolean;
}

export interface WasmBackend extends Backend {
  readonly name: 'wasm';
  /** Whether the relaxed-SIMD kernels are in use. */
  readonly relaxed: boolean;
  readonly memory: WebAssembly.Memory;
  /** The raw kernel exports (byte offsets into `memory`), for benchmarks and the later threaded phase. */
  readonly exports: Exports;
  /** Copies weights into wasm memory now (load time) instead of at first use. */
  uploadWeights(tensors: Iterable<HostTensor>): void;
  /** Copies a weight into wasm memory and returns it as a tensor whose data is a view of that memory,
   *  so the caller can drop its own copy (the weights are then held once, by this backend). */
  place(t: HostTensor): HostTensor;
  beginRun(graph: Graph, options: RunOptions): void;
  /** Index of the first largest value (greedy sampling); copies `x` in when it is not in wasm memory. */
  argmax(x: Float32Array): number;
  /** Bytes in use: persistent (weights, states), arena capacity, and the memory's size. */
  stats(): { persistentBytes: number; arenaBytes: number; memoryBytes: number };
  /** Allocates persistent wasm memory (64-byte aligned) and returns its byte offset (benchmarks, tests). */
  alloc(bytes: number): number;
  /** A Float32Array view of `n` floats at byte offset `ptr` over the current buffer. */
  f32View(ptr: number, n: number): Float32Array;
  /** Whether `a` is a view of this backend's memory (any of its buffers: the memory grows). */
  isResident(a: ArrayBufferView): boolean;
  /** Threads the kernels run on (1 = the calling thread only). */
  readonly threads: number;
  /** Dispatch counters of the thread pool. */
  poolStats(): PoolStats;
  /**
   * Runs chunks 0..chunks-1 of the chunk kernel export `name` (signature (chunk, tid, ...args), see
   * pool.ts JOB_KERNEL) on the pool's threads; `parallel` false keeps it on the calling thread, `work`
   * is the job's size for the pool's adaptive measurement.
   */
  runKernel(name: string, args: ArrayLike<number>, chunks: number, parallel?: boolean, work?: number): void;
  /** Stops the worker threads (the backend keeps working on the calling thread). */
  dispose(): void;
}

const ALIGN = 64;
const PAGE = 65536;
const CHUNK = 4 << 20;
/** Arena blocks up to this size have array-indexed free lists (see Heap.arenaSmall). */
const SMALL_ARENA = 1 << 20;

function align(n: number): number {
  return n <= 0x7fffff00 ? (n + (ALIGN - 1)) & ~(ALIGN - 1) : Math.ceil(n / ALIGN) * ALIGN;
}

/** A stack of block offsets with its own count (emptied by n = 0: no array length changes on the hot path). */
interface FreeList {
  items: number[];
  n: number;
}

const moduleCache = new Map<string, Promise<WebAssembly.Module>>();

function wasmPath(name: string): string {
  // this file compiles to dist/src/backends/wasm/index.js; the kernels are in dist/wasm/
  return fileURLToPath(new URL(`../../../wasm/${name}`, import.meta.url));
}

let relaxedFlagSet = false;

/** Whether this V8 accepts the relaxed-SIMD build (sets --experimental-wasm-relaxed-simd once). */
export function relaxedSimdAvailable(): boolean {
  if (!relaxedFlagSet) {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    relaxedFlagSet = true;
  }
  try {
    return WebAssembly.validate(fs.readFileSync(wasmPath('kernels-relaxed.wasm')));
  } catch {
    return false;
  }
}

function compile(name: string): Promise<WebAssembly.Module> {
  let p = moduleCache.get(name);
  if (p === undefined) {
    p = WebAssembly.compile(fs.readFileSync(wasmPath(name)));
    moduleCache.set(name, p);
  }
  return p;
}

/** The heap: persistent allocations (bump + exact-size free lists) and the per-run arena. */
class Heap {
  u8!: Uint8Array;
  f32!: Float32Array;
  i32!: Int32Array;
  /** Every SharedArrayBuffer this memory has handed out (one per grow): a Dense is resident when its buffer is one. */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private top: number;
  private readonly free = new Map<number, number[]>();
  persistentBytes = 0;
  private readonly chunks: { base: number; size: number }[] = [];
  private chunk = 0;
  private off = 0;

  constructor(readonly memory: WebAssembly.Memory, base: number, private readonly maxPages: number) {
    this.top = align(Math.max(base, 1024));
    this.refresh();
  }

  /** The current buffer (the common case of resident()). */
  private buf!: ArrayBufferLike;

  refresh(): void {
    const buf = this.memory.buffer;
    this.buf = buf;
    this.buffers.add(buf);
    this.u8 = new Uint8Array(buf);
    this.f32 = new Float32Array(buf);
    this.i32 = new Int32Array(buf);
  }

  resident(a: Float32Array | Int32Array | Uint8Array): boolean {
    const b = a.buffer;
    return b === this.buf || this.buffers.has(b);
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const havePages = have / PAGE;
    const needPages = Math.ceil(end / PAGE);
    if (needPages > this.maxPages) throw new RangeError(`wasm backend: ${end} bytes exceed the memory limit of ${this.maxPages * PAGE} bytes`);
    const want = Math.min(this.maxPages, Math.max(needPages, Math.ceil(havePages * 1.25)));
    this.memory.grow(want - havePages);
    this.refresh();
  }

  /** Whether the last alloc reused freed memory (not zero) rather than fresh pages (zero). */
  reused = false;

  alloc(bytes: number): number {
    const size = align(Math.max(bytes, 1));
    const list = this.free.get(size);
    if (list !== undefined && list.length > 0) {
      this.persistentBytes += size;
      this.reused = true;
      return list.pop()!;
    }
    this.reused = false;
    const p = this.top;
    this.ensure(p + size);
    this.top = p + size;
    this.persistentBytes += size;
    return p;
  }

  release(ptr: number, bytes: number): void {
    const size = align(Math.max(bytes, 1));
    let list = this.free.get(size);
    if (list === undefined) this.free.set(size, (list = []));
    list.push(ptr);
    this.persistentBytes -= size;
  }

  /** Arena blocks freed during the run, by size (activation shapes repeat layer after layer): sizes up to
   *  SMALL_ARENA in arenaSmall[size / ALIGN] (no hashing: a decode step does this ~200 times), larger ones by size. */
  private readonly arenaSmall: (FreeList | undefined)[] = [];
  private readonly arenaFree = new Map<number, FreeList>();
  /** The lists that received a block this run: arenaUsed[0 .. nUsed) (resetArena empties just these). */
  private readonly arenaUsed: FreeList[] = [];
  private nUsed = 0;

  private freeList(size: number): FreeList {
    if (size <= SMALL_ARENA) {
      const i = size / ALIGN;
      let l = this.arenaSmall[i];
      if (l === undefined) {
        while (this.arenaSmall.length < i) this.arenaSmall.push(undefined);
        this.arenaSmall[i] = l = { items: [], n: 0 };
      }
      return l;
    }
    let l = this.arenaFree.get(size);
    if (l === undefined) this.arenaFree.set(size, (l = { items: [], n: 0 }));
    return l;
  }

  resetArena(): void {
    this.chunk = 0;
    this.off = 0;
    const used = this.arenaUsed;
    for (let i = 0; i < this.nUsed; i++) used[i]!.n = 0;
    this.nUsed = 0;
  }

  /** Returns an arena block to the run's free lists (it is handed out again before the bump pointer moves). */
  arenaRelease(ptr: number, bytes: number): void {
    const l = this.freeList(align(Math.max(bytes, 1)));
    if (l.n === 0) this.arenaUsed[this.nUsed++] = l;
    l.items[l.n++] = ptr;
  }

  get arenaBytes(): number {
    return this.chunks.reduce((a, c) => a + c.size, 0);
  }

  /** Per-run memory: valid until arenaRelease or the next resetArena. */
  arena(bytes: number): number {
    const size = align(Math.max(bytes, 1));
    const fl = size <= SMALL_ARENA ? this.arenaSmall[size / ALIGN] : this.arenaFree.get(size);
    if (fl !== undefined && fl.n > 0) return fl.items[--fl.n]!;
    while (this.chunk < this.chunks.length) {
      const c = this.chunks[this.chunk]!;
      if (this.off + size <= c.size) {
        const p = c.base + this.off;
        this.off += size;
        return p;
      }
      this.chunk++;
      this.off = 0;
    }
    const csize = Math.max(CHUNK, size);
    const base = this.alloc(csize);
    this.persistentBytes -= align(csize); // arena chunks are counted in arenaBytes
    this.chunks.push({ base, size: csize });
    this.chunk = this.chunks.length - 1;
    this.off = size;
    return base;
  }
}

/** Bytes of one row of K elements of dtype code dt (as assembly/matmul.ts rowBytes). */
function rowBytesOf(dt: number, K: number): number {
  switch (dt) {
    case 0: return K * 4;
    case 1: case 2: return K * 2;
    case 3: return (K / 32) * 34;
    case 4: return (K / 32) * 18;
    case 5: return (K / 256) * 144;
    default: return (K / 256) * 210;
  }
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function shapeOfValue(v: Value): readonly number[] {
  return v.kind === 'dense' ? v.shape : v.tensor.shape;
}

/** Panel height for GEMM on non-f32 weights: NB rows of K f32 ~ 256 KiB (L2-resident), even, 2..64. */
function panelRows(K: number): number {
  return Math.max(2, Math.min(64, Math.floor(65536 / K) & ~1));
}

export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  const want = opts.relaxed ?? 'auto';
  let relaxed = false;
  if (want !== false) {
    relaxed = relaxedSimdAvailable();
    if (want === true && !relaxed) throw new Error('wasm backend: relaxed SIMD is not available in this runtime');
  }
  const mod = await compile(relaxed ? 'kernels-relaxed.wasm' : 'kernels-simd.wasm');
  const maxPages = opts.maxPages ?? 65536;
  const memory = new WebAssembly.Memory({ initial: 32, maximum: maxPages, shared: true });
  const instance = await WebAssembly.instantiate(mod, { env: { memory } });
  const ex = instance.exports as unknown as Exports;
  const heap = new Heap(memory, Math.max(ex.heap_base(), 65536), maxPages);
  const threads = Math.max(1, Math.floor(opts.threads ?? os.availableParallelism()));
  const pool = await ThreadPool.create(threads, mod, memory, ex);
  const A = pool.args;
  const kernelIds = new Map<string, number>();
  const sgemmId = chunkKernelNames(ex).indexOf('sgemm_chunk');
  let sgemmJob = 0;
  // the 4-bit integer GEMM needs relaxed SIMD (i16x8.relaxed_dot_i8x16_i7x16_s); the simd build dequantizes to f32
  const qgemm4Id = relaxed ? chunkKernelNames(ex).indexOf('qgemm4_chunk') : -1;
  pool.adaptive = opts.adaptive ?? true;
  const minParallelBytes = opts.minParallelBytes ?? 512 * 1024;
  const minParallelMacs = opts.minParallelMacs ?? 1 << 21;
  const minParallelAttention = opts.minParallelAttention ?? 1 << 18;
  const chunkBytes = opts.chunkBytes ?? 262144;

  // ---- weights and states --------------------------------------------------------------------
  const weightPtr = new WeakMap<HostTensor, number>();
  const vecPtr = new WeakMap<HostTensor, number>();
  const stateMirror = new WeakMap<Float32Array, Float32Array>();
  const gcPressure = new WeakMap<Float32Array, ArrayBuffer>();
  const reclaim = new FinalizationRegistry<{ ptr: number; bytes: number }>(({ ptr, bytes }) => heap.release(ptr, bytes));

  function uploadTensor(t: HostTensor): number {
    let p = weightPtr.get(t);
    if (p === undefined && heap.resident(t.data)) {
      p = t.data.byteOffset; // already in wasm memory (placed at load time)
      weightPtr.set(t, p);
    }
    if (p === undefined) {
      p = heap.alloc(t.data.byteLength);
      heap.u8.set(t.data, p);
      weightPtr.set(t, p);
      reclaim.register(t, { ptr: p, bytes: t.data.byteLength });
    }
    return p;
  }

  /** An f32 copy of a (small) weight of any dtype, for norms and biases. */
  function vectorPtr(t: HostTensor): number {
    if (t.dtype === 'f32') return uploadTensor(t);
    let p = vecPtr.get(t);
    if (p === undefined) {
      const f = asF32({ kind: 'weight', tensor: t });
      p = heap.alloc(f.byteLength);
      heap.f32.set(f, p >>> 2);
      vecPtr.set(t, p);
      reclaim.register(t, { ptr: p, bytes: f.byteLength });
    }
    return p;
  }

  // ---- per-run state ---------------------------------------------------------------------------
  let copyAll = false;
  let keepViews = false;
  /** RunOptions.outputViews: graph outputs are handed out as arena views too. */
  let viewOutputs = false;
  /** What the backend derives once per graph: which nodes are outputs, each value's last consumer, the inputs each
   *  node is the last consumer of (frees[freeStart[n] .. freeStart[n + 1]), outputs excluded), and the Dense value
   *  each node returned last run with its offset (arena offsets repeat run after run for the same graph, so the same
   *  view object is handed out again instead of a new one per node). */
  interface GraphState {
    isOut: Uint8Array;
    lastUse: Int32Array;
    frees: Int32Array;
    freeStart: Int32Array;
    dense: (Dense | undefined)[];
    densePtr: Float64Array;
  }
  const graphState = new WeakMap<Graph, GraphState>();
  function graphStateOf(graph: Graph): GraphState {
    let gs = graphState.get(graph);
    if (gs === undefined || gs.dense.length !== graph.nodes.length) {
      const count = graph.nodes.length;
      const isOut = new Uint8Array(count);
      for (const id of graph.outputs.values()) isOut[id] = 1;
      const lu = new Int32Array(count).fill(-1);
      for (const n of graph.nodes) for (const i of n.inputs) lu[i] = n.id;
      const freeStart = new Int32Array(count + 1);
      const frees: number[] = [];
      for (let n = 0; n < count; n++) {
        freeStart[n] = frees.length;
        for (const i of graph.nodes[n]!.inputs) if (lu[i] === n && isOut[i] === 0 && !frees.includes(i, freeStart[n])) frees.push(i);
      }
      freeStart[count] = frees.length;
      gs = { isOut, lastUse: lu, frees: Int32Array.from(frees), freeStart, dense: new Array(count).fill(undefined), densePtr: new Float64Array(count).fill(-1) };
      graphState.set(graph, gs);
    }
    return gs;
  }
  let gs: GraphState = { isOut: new Uint8Array(0), lastUse: new Int32Array(0), frees: new Int32Array(0), freeStart: new Int32Array(1), dense: [], densePtr: new Float64Array(0) };
  // In-run reuse: a node's output block is released after its last consumer ran (when that consumer is a wasm
  // kernel), and a kernel's scratch right after the kernel, so a long prefill needs about one layer's memory.
  let ownPtr = new Float64Array(0); // arena block owned by each node's output this run (-1: none)
  let ownSize = new Float64Array(0);
  /** The current kernel's scratch blocks: (offset, bytes) pairs in scratchList[0 .. nScratch). */
  const scratchList: number[] = [];
  let nScratch = 0;

  function scratch(bytes: number): number {
    const p = heap.arena(bytes);
    scratchList[nScratch++] = p;
    scratchList[nScratch++] = bytes;
    return p;
  }

  /** After the wasm kernel of `node`: free its scratch and the inputs it was the last consumer of. */
  function afterNode(node: Node): void {
    for (let i = 0; i < nScratch; i += 2) heap.arenaRelease(scratchList[i]!, scratchList[i + 1]!);
    nScratch = 0;
    if (copyAll || keepViews) return;
    const { frees, freeStart } = gs;
    const n = node.id;
    for (let j = freeStart[n]!, e = freeStart[n + 1]!; j < e; j++) {
      const i = frees[j]!;
      if (ownPtr[i]! >= 0) {
        heap.arenaRelease(ownPtr[i]!, ownSize[i]!);
        ownPtr[i] = -1;
      }
    }
  }

  function view(ptr: number, n: number): Float32Array {
    return new Float32Array(heap.u8.buffer, ptr, n);
  }

  /** A Dense view of wasm memory that carries its byte offset (f32In reads it without asking the view for its
   *  buffer, a slow getter). */
  function residentDense(shape: readonly number[], data: Float32Array, ptr: number): Dense {
    const d: Dense & { ptr: number } = { kind: 'dense', shape, data, ptr };
    return d;
  }

  /** Byte offset of an f32 value in wasm memory (copied into the arena when it lives in JS memory). */
  function f32In(v: Value): number {
    if (v.kind === 'weight') return vectorPtr(v.tensor);
    const ptr = (v as { ptr?: number }).ptr;
    if (ptr !== undefined) return ptr;
    const d = v.data;
    if (!(d instanceof Float32Array)) throw new Error('wasm backend: expected an f32 value, got i32');
    if (heap.resident(d)) return d.byteOffset;
    const p = scratch(d.byteLength);
    heap.f32.set(d, p >>> 2);
    return p;
  }

  function i32In(v: Value): number {
    if (v.kind !== 'dense' || !(v.data instanceof Int32Array)) throw new Error('wasm backend: expected an i32 value');
    const d = v.data;
    if (heap.resident(d)) return d.byteOffset;
    const p = scratch(d.byteLength);
    heap.i32.set(d, p >>> 2);
    return p;
  }

  function out(node: Node): number {
    const bytes = numel(node.shape) * 4;
    const p = heap.arena(bytes);
    ownPtr[node.id] = p;
    ownSize[node.id] = bytes;
    return p;
  }

  /** The result of `node` at ptr: an arena view, or a JS copy when the value must outlive the run. */
  function done(node: Node, ptr: number): Dense {
    const id = node.id;
    if (copyAll || (gs.isOut[id] === 1 && !keepViews && !viewOutputs)) return dense(node.shape, view(ptr, numel(node.shape)).slice());
    // a view of the same bytes as last run's is the same value (views of an older buffer of this shared memory
    // stay valid: it grows in place)
    if (gs.densePtr[id] === ptr) return gs.dense[id]!;
    const d = residentDense(node.shape, view(ptr, numel(node.shape)), ptr);
    gs.dense[id] = d;
    gs.densePtr[id] = ptr;
    return d;
  }

  // ---- matmul ----------------------------------------------------------------------------------
  function matmul(node: Node<'matmul'>, [xv, wv]: Value[]): Value {
    const [T, K] = shapeOfValue(xv!) as [number, number];
    const N = shapeOfValue(wv!)[0]!;
    const x = f32In(xv!);
    let dtype: DType = 'f32';
    let w: number;
    if (wv!.kind === 'weight') {
      dtype = wv!.tensor.dtype;
      w = uploadTensor(wv!.tensor);
    } else {
      w = f32In(wv!);
    }
    const y = out(node);
    const dt = DT_CODE[dtype];
    const rb = rowBytesOf(dt, K);
    if (T < 4) {
      // relaxed q8_0 GEMV multiplies w by sign(x) in int8: a tensor holding a -128 quant takes the int16 kernel (7)
      const gdt = dt === 3 && relaxed && q8HasM128(wv!.kind === 'weight' ? wv!.tensor : undefined, w, N, K) ? 7 : dt;
      for (let t = 0; t < T; t++) gemvRow(gdt, w, rb, x + t * K * 4, y + t * N * 4, N, K);
    } else if ((dt === 4 || dt === 5) && qgemm4Id >= 0) {
      // 4-bit weights, relaxed build: integer GEMM (assembly/qgemm.ts). x quantized to int8 blocks once for all
      // T rows (as the GEMV does); each thread unpacks panels of NB rows of W into its slice of the scratch.
      const nb = K / 32;
      const xq = scratch(T * K);
      const xd = scratch(T * nb * 4);
      const xs = scratch(T * nb * 4);
      ex.quant_q8(x, T * K, xq, xd, xs);
      const NB = Math.max(4, Math.min(64, Math.floor(262144 / (K * 1.25)) & ~3));
      const stride = NB * ex.qgemm4_panel_bytes(K);
      const sc = scratch(stride * pool.threads);
      const cpc = NB * Math.max(1, Math.floor(Math.ceil(N / NB) / (4 * pool.threads)));
      pool.runKernel(qgemm4Id, [dt, xq, xd, xs, w, y, T, N, K, NB, sc, stride, cpc], Math.ceil(N / cpc), T * N * K >= minParallelMacs, (T * N * K) / 8);
    } else if (dt === 0 && sgemmId >= 0) {
      // f32 weights: the packed SGEMM (assembly/sgemm.ts, layout NT: y[T,N] = x[T,K] . W[N,K]^T), one C tile
      // per chunk; each thread packs into its own slice of the scratch
      const pl = sgemmPlan(T, N, K, pool.threads);
      const sc = scratch(pl.stride * pool.threads);
      // a job id lets each thread pack its rows of x once (sgemm_chunk's cache header: the last 64 bytes of
      // each thread's scratch, cleared here since arena memory holds stale data)
      for (let t = 1; t <= pool.threads; t++) heap.i32[(sc + t * pl.stride - 64) >>> 2] = 0;
      sgemmJob = sgemmJob >= 0x3fffffff ? 1 : sgemmJob + 1;
      pool.runKernel(sgemmId, [x, w, y, T, N, K, SG_NT, sgemmJob * 2, pl.MT, pl.NT, pl.KC, sc, pl.stride], pl.chunks, T * N * K >= minParallelMacs, (T * N * K) / 8);
    } else {
      // columns (rows of W) split into chunks of whole panels; every thread has its own panel scratch
      const NB = panelRows(K);
      const panelBytes = dt === 0 ? 0 : NB * K * 4;
      const panel = dt === 0 ? 0 : scratch(panelBytes * pool.threads);
      const panels = Math.ceil(N / NB);
      const cpc = NB * Math.max(1, Math.floor(panels / (4 * pool.threads)));
      A[0] = JOB_GEMM; A[1] = dt; A[2] = x; A[3] = w; A[4] = rb; A[5] = y; A[6] = T; A[7] = N; A[8] = K;
      A[9] = NB; A[10] = panel; A[11] = panelBytes; A[12] = cpc;
      pool.run(Math.ceil(N / cpc), T * N * K >= minParallelMacs, (T * N * K) / 8);
    }
    return done(node, y);
  }

  const q8m128 = new WeakMap<HostTensor, boolean>();
  /** Whether the q8_0 weight at w holds a -128 quant (scanned once per tensor). */
  function q8HasM128(t: HostTensor | undefined, w: number, N: number, K: number): boolean {
    if (t === undefined) return true;
    let r = q8m128.get(t);
    if (r === undefined) q8m128.set(t, (r = ex.q8_0_has_m128(w, (N * K) / 32) === 1));
    return r;
  }

  /** One row x[K] against W[N, K]: activations quantized to int8 for block types, rows split over threads.
   *  dt: the kernel's dtype code (JOB_GEMV in pool.ts; 7 = q8_0 through the int16 kernel). */
  function gemvRow(dt: number, w: number, rb: number, x: number, y: number, N: number, K: number): void {
    A[0] = JOB_GEMV; A[1] = dt; A[2] = w; A[3] = rb; A[7] = y; A[8] = N; A[9] = K;
    if (dt <= 2) {
      A[4] = x;
    } else {
      const nb = K / 32;
      const xq = scratch(K);
      const xd = scratch(nb * 4);
      const xs = scratch(nb * 4);
      ex.quant_q8(x, K, xq, xd, xs);
      let xa = xq;
      if (dt === 3) {
        xa = scratch(K * 2);
        ex.prep_q8_0(xq, K, xa);
      } else if (dt === 4) {
        xa = scratch(K * 2);
        ex.prep_q4_0(xq, K, xa);
      } else if (dt === 7) {
        xa = scratch(K * 2);
        ex.widen_q8(xq, K, xa);
      }
      A[4] = xa; A[5] = xd; A[6] = xs;
    }
    const bytes = N * rb;
    // ~256 KiB of weights per chunk (a multiple of 4 rows: the kernels do 4 rows per pass)
    const rpc = Math.max(4, Math.floor(chunkBytes / rb) & ~3);
    A[10] = rpc;
    pool.run(Math.ceil(N / rpc), bytes >= minParallelBytes && N >= 8, bytes);
  }

  // ---- attention (assembly/attention.ts) -------------------------------------------------------
  // Chunks of (kv head, block of rpc query rows) on the pool; see the kernel file for the split and the math.
  const attnArgs = new Float64Array(13);
  const decArgs = new Float64Array(10);
  const attnIds = new Map<string, number>();

  /** Runs attention_chunk or attention_masked_chunk; `aux` is the positions (i32) or the mask (f32), `keys` the
   *  keys of one sequence (scores scratch per thread), `avgKeys` the mean keys per query row (work estimate). */
  function attend(name: 'attention_chunk' | 'attention_masked_chunk', a: OpAttrs['attention'], q: number, k: number, v: number,
    y: number, aux: number, T: number, S: number, flags: number, keys: number, avgKeys: number): void {
    let id = attnIds.get(name);
    if (id === undefined) attnIds.set(name, (id = pool.kernelId(name)));
    const rows = T * (a.nHeads / a.nKvHeads); // query rows per kv head
    // ~8 chunks per thread, 4..64 rows each (a multiple of 4: the kernel's tiles), under the pool's 65535 chunks
    const rpc = Math.max(4 * Math.ceil((rows * a.nKvHeads) / 4 / 60000), Math.min(64, 4 * Math.ceil((rows * a.nKvHeads) / (32 * pool.threads))));
    const chunks = a.nKvHeads * Math.ceil(rows / rpc);
    const macs = T * a.nHeads * avgKeys * a.headDim * 2;
    const A = attnArgs;
    A[0] = q; A[1] = k; A[2] = v; A[3] = y; A[4] = aux; A[5] = T; A[6] = S; A[7] = a.nHeads * 65536 + a.nKvHeads;
    A[8] = a.headDim; A[9] = flags; A[10] = a.scale; A[11] = scratch(pool.threads * (keys + Math.ceil(a.headDim / 4)) * 16); A[12] = rpc;
    pool.runKernel(id, A, chunks, macs >= minParallelAttention, macs / 8);
  }

  /** One query row over n keys (decode), split over keys: chunks of kb keys for all heads, then a merge (the
   *  kernel's flash-decoding comment). Used when query heads share a kv head by at most 2: for larger groups the
   *  row tiles of attention_chunk share each K load between 4 heads and are faster. */
  function attendDecode(a: OpAttrs['attention'], q: number, k: number, v: number, y: number, n: number): void {
    let id = attnIds.get('attention_decode_chunk');
    if (id === undefined) attnIds.set('attention_decode_chunk', (id = pool.kernelId('attention_decode_chunk')));
    const H = a.nHeads;
    const macs = H * n * a.headDim * 2;
    const parallel = macs >= minParallelAttention;
    // up to 16 chunks of >= 64 keys; the split depends on n only, so results do not depend on the thread count
    const kb = Math.max(64, 4 * Math.ceil(n / 64));
    const chunks = Math.ceil(n / kb);
    const part = scratch(chunks * H * (a.headDim + 2) * 4);
    const A = decArgs;
    A[0] = q; A[1] = k; A[2] = v; A[3] = n; A[4] = H * 65536 + a.nKvHeads; A[5] = a.headDim; A[6] = a.scale;
    A[7] = scratch(pool.threads * H * kb * 4); A[8] = part; A[9] = kb;
    pool.runKernel(id, A, chunks, parallel, macs / 8);
    ex.attention_decode_combine(y, part, H, a.headDim, chunks);
  }

  // ---- rope tables -----------------------------------------------------------------------------
  const invFreqCache = new WeakMap<object, Float64Array>();
  function invFreqOf(a: OpAttrs['rope']): Float64Array {
    let f = invFreqCache.get(a);
    if (f === undefined) {
      const rd = a.rotaryDim ?? a.headDim;
      const half = rd / 2;
      f = new Float64Array(half);
      for (let i = 0; i < half; i++) f[i] = a.invFreq !== undefined ? a.invFreq[i]! : Math.pow(a.theta, (-2 * i) / rd);
      invFreqCache.set(a, f);
    }
    return f;
  }

  /** The cos/sin table of one position (decode), kept in persistent memory with the frequencies and position it
   *  holds, so the rope nodes of a step compute it once. */
  const rope1 = { inv: undefined as Float64Array | undefined, pos: -1, ptr: 0, half: 0 };
  function rope1Table(half: number): number {
    if (half > rope1.half) {
      if (rope1.half > 0) heap.release(rope1.ptr, rope1.half * 8);
      rope1.ptr = heap.alloc(half * 8);
      rope1.half = half;
    }
    rope1.inv = undefined;
    return rope1.ptr;
  }

  // ---- kernels ---------------------------------------------------------------------------------
  const kernels: KernelTable = {
    // as the reference backend's, with the Dense of last run handed out again when the context feeds the same array
    input: (node, _in, ctx: ExecContext) => {
      const a = ctx.input(node.attrs.name);
      const c = gs.dense[node.id];
      if (c !== undefined && c.data === a) return c;
      const d = dense(node.shape, a);
      gs.dense[node.id] = d;
      gs.densePtr[node.id] = -1;
      return d;
    },

    state: (node, _in, ctx: ExecContext) => {
      const host = ctx.state(node.attrs.name, node.shape);
      let m = heap.resident(host) ? host : stateMirror.get(host);
      if (m === undefined) {
        const p = heap.alloc(host.byteLength);
        heap.f32.set(host, p >>> 2);
        m = view(p, host.length);
        stateMirror.set(host, m);
        reclaim.register(host, { ptr: p, bytes: host.byteLength });
      }
      if (copyAll || gs.isOut[node.id] === 1) return dense(node.shape, m.slice());
      // the same state buffer as last run: the same value
      const c = gs.dense[node.id];
      if (c !== undefined && c.data === m) return c;
      const d = residentDense(node.shape, m, m.byteOffset);
      gs.dense[node.id] = d;
      gs.densePtr[node.id] = -1;
      return d;
    },

    embedding: (node, [table, ids]) => {
      const [V, D] = shapeOfValue(table!) as [number, number];
      const idv = (ids as Dense).data as Int32Array;
      const y = out(node);
      const src = table!.kind === 'weight' ? uploadTensor(table!.tensor) : f32In(table!);
      const dt = table!.kind === 'weight' ? DT_CODE[table!.tensor.dtype] : 0;
      for (let t = 0; t < idv.length; t++) {
        const id = idv[t]!;
        if (id < 0 || id >= V) throw new RangeError(`embedding: token id ${id} is outside the vocabulary (0..${V - 1})`);
        ex.deq_matrix_row(dt, src, id, D, y + t * D * 4);
      }
      return done(node, y);
    },

    matmul,

    add: (node, [a, b]) => {
      const y = out(node);
      ex.binop(0, f32In(a!), f32In(b!), y, numel(node.shape), numel(shapeOfValue(b!)));
      return done(node, y);
    },
    mul: (node, [a, b]) => {
      const y = out(node);
      ex.binop(1, f32In(a!), f32In(b!), y, numel(node.shape), numel(shapeOfValue(b!)));
      return done(node, y);
    },

    rmsnorm: (node, [x, w]) => {
      const y = out(node);
      ex.rmsnorm(f32In(x!), f32In(w!), y, numel(node.shape), numel(shapeOfValue(w!)), node.attrs.eps);
      return done(node, y);
    },

    layernorm: (node, [x, w, b]) => {
      const [T, D] = node.shape as [number, number];
      const y = out(node);
      ex.layernorm(f32In(x!), f32In(w!), f32In(b!), y, T, D, node.attrs.eps);
      return done(node, y);
    },

    rope: (node, [x, p]) => {
      const a = node.attrs;
      const [T, W] = node.shape as [number, number];
      const rd = a.rotaryDim ?? a.headDim;
      const half = rd / 2;
      const inv = invFreqOf(a);
      const pos = (p as Dense).data as Int32Array;
      let cs: number;
      if (T === 1 && inv === rope1.inv && pos[0] === rope1.pos) {
        cs = rope1.ptr; // one token: every layer's q and k rotate by the same table (the graph shares the attrs)
      } else {
        cs = T === 1 ? rope1Table(half) : scratch(T * half * 8);
        const f = heap.f32;
        for (let t = 0; t < T; t++) {
          const o = (cs >>> 2) + t * half * 2;
          const pt = pos[t]!;
          for (let i = 0; i < half; i++) {
            const ang = pt * inv[i]!;
            f[o + 2 * i] = Math.cos(ang);
            f[o + 2 * i + 1] = Math.sin(ang);
          }
        }
        if (T === 1) {
          rope1.inv = inv;
          rope1.pos = pos[0]!;
        }
      }
      const y = out(node);
      ex.rope(f32In(x!), y, cs, T, W, a.headDim, rd, a.style === 'neox' ? 1 : 0);
      return done(node, y);
    },

    attention: (node, [q, k, v, p]) => {
      const a = node.attrs;
      const T = node.shape[0]!;
      const S = shapeOfValue(k!)[0]!;
      const pos = (p as Dense).data as Int32Array;
      let keys = T * S;
      if (a.causal) {
        keys = 0;
        for (let t = 0; t < T; t++) {
          if (pos[t]! >= S) throw new RangeError(`attention: position ${pos[t]} is outside the ${S} keys`);
          if (pos[t]! < 0) throw new RangeError(`attention: position ${pos[t]} is negative`);
          keys += pos[t]! + 1;
        }
      }
      const y = out(node);
      if (T === 1 && a.nHeads <= 2 * a.nKvHeads) attendDecode(a, f32In(q!), f32In(k!), f32In(v!), y, keys);
      else attend('attention_chunk', a, f32In(q!), f32In(k!), f32In(v!), y, i32In(p!), T, S, a.causal ? 1 : 0, S, keys / T);
      return done(node, y);
    },

    attention_masked: (node, [q, k, v, m]) => {
      const a = node.attrs;
      const T = node.shape[0]!;
      const S = shapeOfValue(k!)[0]!;
      const Sb = S / a.batch;
      const y = out(node);
      attend('attention_masked_chunk', a, f32In(q!), f32In(k!), f32In(v!), y, f32In(m!), T, S, a.batch * 2 + (a.causal ? 1 : 0), Sb, a.causal ? (Sb + 1) / 2 : Sb);
      return done(node, y);
    },

    kv_write: (node, [c, x, p]) => {
      const cache = c as Dense;
      const [S, C] = cache.shape as [number, number];
      const cp = (cache as { ptr?: number }).ptr ?? (cache.data as Float32Array).byteOffset;
      const xp = f32In(x!);
      const pos = (p as Dense).data as Int32Array;
      const f = heap.f32;
      for (let t = 0; t < pos.length; t++) {
        const r = pos[t]!;
        if (r < 0 || r >= S) throw new RangeError(`kv_write: position ${r} is outside the cache of ${S} rows`);
        if (C <= 256) {
          // a short row (decode): a plain loop beats copyWithin's call
          const d = (cp >>> 2) + r * C, s = (xp >>> 2) + t * C;
          for (let i = 0; i < C; i++) f[d + i] = f[s + i]!;
        } else {
          heap.u8.copyWithin(cp + r * C * 4, xp + t * C * 4, xp + (t + 1) * C * 4);
        }
      }
      return copyAll || gs.isOut[node.id] === 1 ? dense(cache.shape, (cache.data as Float32Array).slice()) : cache;
    },

    silu: (node, [x]) => {
      const y = out(node);
      ex.unop(0, f32In(x!), y, numel(node.shape));
      return done(node, y);
    },
    gelu_tanh: (node, [x]) => {
      const y = out(node);
      ex.unop(1, f32In(x!), y, numel(node.shape));
      return done(node, y);
    },
    gelu_erf: (node, [x]) => {
      const y = out(node);
      ex.unop(2, f32In(x!), y, numel(node.shape));
      return done(node, y);
    },

    slice_rows: (node, [x]) => {
      const C = shapeOfValue(x!)[1]!;
      const { start, count } = node.attrs;
      const xp = f32In(x!);
      if (copyAll || gs.isOut[node.id] === 1) return dense(node.shape, view(xp + start * C * 4, count * C).slice());
      const src = node.inputs[0]!;
      if (gs.lastUse[src] === node.id && ownPtr[src]! >= 0) {
        // a view, no copy: the input's block now belongs to this node (released after this node's last use)
        ownPtr[node.id] = ownPtr[src]!;
        ownSize[node.id] = ownSize[src]!;
        ownPtr[src] = -1;
        return residentDense(node.shape, view(xp + start * C * 4, count * C), xp + start * C * 4);
      }
      const y = out(node);
      heap.u8.copyWithin(y, xp + start * C * 4, xp + (start + count) * C * 4);
      return done(node, y);
    },
    slice_cols: (node, [x]) => {
      const [T, C] = shapeOfValue(x!) as [number, number];
      const { start, count } = node.attrs;
      const xp = f32In(x!);
      const y = out(node);
      for (let t = 0; t < T; t++) heap.u8.copyWithin(y + t * count * 4, xp + (t * C + start) * 4, xp + (t * C + start + count) * 4);
      return done(node, y);
    },
  };

  for (const op of Object.keys(kernels) as OpName[]) {
    const k = kernels[op] as Kernel;
    (kernels as Record<string, Kernel>)[op] = (node, inputs, ctx) => {
      const r = k(node, inputs, ctx);
      afterNode(node);
      return r;
    };
  }

  const isF32 = (v: Value | undefined): boolean => v !== undefined && (v.kind === 'weight' || v.data instanceof Float32Array);

  function supports(node: Node, inputs: Value[]): boolean {
    const op: OpName = node.op;
    switch (op) {
      case 'matmul': {
        const [x, w] = inputs;
        if (!isF32(x) || x!.kind !== 'dense') return false;
        if (w!.kind === 'dense') return w!.data instanceof Float32Array;
        const t = w!.tensor;
        const K = node.shape.length === 2 ? shapeOfValue(x!)[1]! : 0;
        return t.shape.length === 2 && DT_CODE[t.dtype] !== undefined && K % DTYPE_LAYOUT[t.dtype].blockElems === 0;
      }
      case 'embedding': {
        const t = inputs[0]!;
        if (t.kind === 'dense') return t.data instanceof Float32Array;
        return t.tensor.shape.length === 2 && DT_CODE[t.tensor.dtype] !== undefined && t.tensor.shape[1]! % DTYPE_LAYOUT[t.tensor.dtype].blockElems === 0;
      }
      case 'kv_write': {
        const c = inputs[0]!;
        return c.kind === 'dense' && c.data instanceof Float32Array && heap.resident(c.data) && isF32(inputs[1]);
      }
      case 'state':
        return true;
      case 'rope':
      case 'silu':
      case 'gelu_tanh':
      case 'gelu_erf':
      case 'slice_rows':
      case 'slice_cols':
        return isF32(inputs[0]);
      case 'attention':
        return isF32(inputs[0]) && isF32(inputs[1]) && isF32(inputs[2]);
      default:
        return inputs.every((v) => isF32(v));
    }
  }

  const backend: WasmBackend = {
    name: 'wasm',
    relaxed,
    memory,
    exports: ex,
    kernels,
    supports,
    beginRun(graph: Graph, options: RunOptions) {
      heap.resetArena();
      gs = graphStateOf(graph);
      // retainViews: retained values stay arena views (valid until the next run), nothing is freed in-run
      keepViews = options.retain !== undefined && options.retainViews === true;
      copyAll = options.retain !== undefined && !keepViews;
      viewOutputs = options.outputViews === true;
      if (ownPtr.length < graph.nodes.length) {
        ownPtr = new Float64Array(graph.nodes.length);
        ownSize = new Float64Array(graph.nodes.length);
      }
      ownPtr.fill(-1);
      nScratch = 0;
    },
    uploadWeights(tensors: Iterable<HostTensor>) {
      for (const t of tensors) uploadTensor(t);
    },
    allocState(length: number): Float32Array {
      const bytes = length * 4;
      const p = heap.alloc(bytes);
      if (heap.reused) heap.f32.fill(0, p >>> 2, (p >>> 2) + length); // fresh pages are zero (and stay uncommitted until used)
      const s = view(p, length);
      reclaim.register(s, { ptr: p, bytes });
      // V8 does not see wasm memory: an untouched ArrayBuffer of the same size (virtual, never committed) tells
      // its GC how much this state holds, so dropped sessions are collected and their blocks reclaimed
      gcPressure.set(s, new ArrayBuffer(bytes));
      return s;
    },
    place(t: HostTensor): HostTensor {
      if (heap.resident(t.data)) return t;
      const bytes = t.data.byteLength;
      const p = heap.alloc(bytes);
      heap.u8.set(t.data, p);
      const placed: HostTensor = { ...t, data: new Uint8Array(heap.u8.buffer, p, bytes) };
      weightPtr.set(placed, p);
      reclaim.register(placed, { ptr: p, bytes });
      return placed;
    },
    argmax(x: Float32Array): number {
      if (heap.resident(x)) return ex.argmax_f32(x.byteOffset, x.length);
      heap.resetArena(); // between runs only: the arena holds nothing that outlives a run
      const p = heap.arena(x.byteLength);
      heap.f32.set(x, p >>> 2);
      return ex.argmax_f32(p, x.length);
    },
    stats: () => ({ persistentBytes: heap.persistentBytes, arenaBytes: heap.arenaBytes, memoryBytes: memory.buffer.byteLength }),
    alloc: (bytes: number) => heap.alloc(bytes),
    f32View: (ptr: number, n: number) => view(ptr, n),
    isResident: (a: ArrayBufferView) => heap.resident(a as Float32Array),
    threads: pool.threads,
    poolStats: () => ({ ...pool.stats }),
    runKernel(name: string, args: ArrayLike<number>, chunks: number, parallel = true, work = 1): void {
      let id = kernelIds.get(name);
      if (id === undefined) kernelIds.set(name, (id = pool.kernelId(name)));
      pool.runKernel(id, args, chunks, parallel, work);
    },
    dispose: () => pool.dispose(),
  };
  return backend;
}
