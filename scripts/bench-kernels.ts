// Single-thread kernel throughput of the wasm backend: GEMV GB/s of weights per dtype at 2048x2048 and
// 4096x4096 (cache-resident on big-L3 hosts) and streamed (rotating copies, ~150 MB: what decode sees),
// and GEMM GFLOPS / GOPS at T = 128, for the plain SIMD and the relaxed SIMD builds. For the block types
// the GEMV columns are the kernels in use (assembly/qgemm.ts) and `old` the matmul.ts ones still kept for
// q8_0 (tensors with a -128 quant) and q4_k (tail rows);
// the GEMM of q4_0/q4_k in the relaxed build is the integer GEMM (qgemm4_chunk), `deq` the dequantize-to-f32
// GEMM the other cases use.
// Run: npm run build && node dist/scripts/bench-kernels.js [--quick]
// Compare with /work/shared/reference/cpu-limits.md (one core: GEMV fp32 22-25 GB/s, int8 22-26,
// fp16 11-13, 4-bit ~8 / 13-15.6 relaxed; GEMM fp32 50-53 GFLOPS). Timed in process CPU time, since the
// host may time-slice the two vCPUs; memory bandwidth shared with other processes still shows.

import { createWasmBackend, relaxedSimdAvailable, type WasmBackend } from '../src/backends/wasm/index.js';
import { rowBytes } from '../src/formats/dtypes/index.js';
import type { DType } from '../src/formats/tensor.js';

const DT_CODE: Record<DType, number> = { f32: 0, f16: 1, bf16: 2, q8_0: 3, q4_0: 4, q4_k: 5, q6_k: 6 };
const quick = process.argv.includes('--quick');

/** Random weights with sane scales (no NaN/Inf/denormals): plain values in [-1, 1), block scales ~0.01. */
function fillWeights(b: WasmBackend, dtype: DType, N: number, K: number): number {
  const bytes = N * rowBytes(dtype, K);
  const p = b.alloc(bytes);
  const u8 = new Uint8Array(b.memory.buffer, p, bytes);
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 16) & 0xff;
  for (let i = 0; i < bytes; i++) u8[i] = rnd();
  const dv = new DataView(b.memory.buffer, p, bytes);
  const f16 = 0x2000; // ~0.0078
  switch (dtype) {
    case 'f32':
      for (let i = 0; i < bytes; i += 4) dv.setFloat32(i, (rnd() - 128) / 128, true);
      break;
    case 'f16':
      for (let i = 0; i < bytes; i += 2) dv.setUint16(i, 0x3000 | ((rnd() & 0x83) << 8) | rnd(), true);
      break;
    case 'bf16':
      for (let i = 0; i < bytes; i += 2) dv.setUint16(i, 0x3e00 | ((rnd() & 0x80) << 8) | (rnd() & 0x7f), true);
      break;
    case 'q8_0':
      for (let i = 0; i < bytes; i += 34) dv.setUint16(i, f16, true);
      break;
    case 'q4_0':
      for (let i = 0; i < bytes; i += 18) dv.setUint16(i, f16, true);
      break;
    case 'q4_k':
      for (let i = 0; i < bytes; i += 144) {
        dv.setUint16(i, f16, true);
        dv.setUint16(i + 2, f16, true);
      }
      break;
    case 'q6_k':
      for (let i = 0; i < bytes; i += 210) dv.setUint16(i + 208, f16, true);
      break;
  }
  return p;
}

function fillF32(b: WasmBackend, n: number): number {
  const p = b.alloc(n * 4);
  const f = b.f32View(p, n);
  for (let i = 0; i < n; i++) f[i] = Math.sin(i * 0.37) * 0.5;
  return p;
}

/** CPU seconds of this process (user + system): robust when the host time-slices the vCPUs. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Median CPU seconds per call over batches of >= 20 ms, after warm-up (the first calls run in V8's baseline tier). */
function time(fn: () => void, minSeconds = quick ? 0.15 : 0.5): number {
  for (let i = 0; i < 5; i++) fn();
  const samples: number[] = [];
  const t0 = cpuSeconds();
  while (cpuSeconds() - t0 < minSeconds || samples.length < 5) {
    const s = cpuSeconds();
    let n = 0;
    do {
      fn();
      n++;
    } while (cpuSeconds() - s < 0.02);
    samples.push((cpuSeconds() - s) / n);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1]!;
}

const weightCache = new Map<string, number>();

/** GEMV GB/s; `copies` > 1 rotates over that many copies of W (streamed from memory); `old`: matmul.ts kernels. */
function gemv(b: WasmBackend, dtype: DType, N: number, K: number, copies = 1, old = false): number {
  const ex = b.exports;
  const ws: number[] = [];
  for (let c = 0; c < copies; c++) {
    const key = `${dtype} ${N} ${K} ${c}`;
    let p = weightCache.get(key);
    if (p === undefined) weightCache.set(key, (p = fillWeights(b, dtype, N, K)));
    ws.push(p);
  }
  let ci = 0;
  const x = fillF32(b, K);
  const y = b.alloc(N * 4);
  const xq = b.alloc(K);
  const xd = b.alloc(K / 8);
  const xs = b.alloc(K / 8);
  const x16 = b.alloc(K * 2);
  const run = (): void => {
    const w = ws[ci++ % copies]!;
    if (!old && dtype.startsWith('q')) {
      ex.quant_q8(x, K, xq, xd, xs);
      if (dtype === 'q8_0') {
        ex.prep_q8_0(xq, K, x16);
        ex.gemv_q8_0x(w, x16, xd, y, N, K);
      } else if (dtype === 'q4_0') {
        ex.prep_q4_0(xq, K, x16);
        ex.gemv_q4_0x(w, x16, xd, xs, y, N, K);
      } else if (dtype === 'q4_k') ex.gemv_q4_kx(w, xq, xd, xs, y, N, K);
      else ex.gemv_q6_kx(w, xq, xd, y, N, K);
      return;
    }
    switch (dtype) {
      case 'f32': return ex.gemv_f32(w, x, y, N, K);
      case 'f16': return ex.gemv_f16(w, x, y, N, K);
      case 'bf16': return ex.gemv_bf16(w, x, y, N, K);
      default:
        ex.quant_q8(x, K, xq, xd, xs);
        if (dtype === 'q8_0') {
          ex.widen_q8(xq, K, x16);
          ex.gemv_q8_0(w, x16, xd, y, N, K);
        }
        else if (dtype === 'q4_k') ex.gemv_q4_k(w, xq, xd, xs, y, N, K);
    }
  };
  const sec = time(run);
  return (N * rowBytes(dtype, K)) / sec / 1e9;
}

/** GEMM G(FL)OPS; `deq`: force the dequantize-to-f32 GEMM for q4_0/q4_k (relaxed build). */
function gemm(b: WasmBackend, dtype: DType, T: number, N: number, K: number, deq = false): number {
  const ex = b.exports;
  const w = fillWeights(b, dtype, N, K);
  const x = fillF32(b, T * K);
  const y = b.alloc(T * N * 4);
  const NB = Math.max(2, Math.min(64, Math.floor(65536 / K) & ~1));
  const panel = b.alloc(NB * K * 4);
  const int4 = !deq && b.relaxed && (dtype === 'q4_0' || dtype === 'q4_k');
  // integer GEMM: x quantized for all rows, panels of NB4 rows unpacked (as the backend's matmul does)
  const NB4 = Math.max(4, Math.min(64, Math.floor(262144 / (K * 1.25)) & ~3));
  const xq = int4 ? b.alloc(T * K) : 0;
  const xd = int4 ? b.alloc(T * K / 8) : 0;
  const xs = int4 ? b.alloc(T * K / 8) : 0;
  const stride = int4 ? NB4 * ex.qgemm4_panel_bytes(K) : 0;
  const sc = int4 ? b.alloc(stride) : 0;
  const run = (): void => {
    if (int4) {
      ex.quant_q8(x, T * K, xq, xd, xs);
      ex.qgemm4_chunk(0, 0, DT_CODE[dtype], xq, xd, xs, w, y, T, N, K, NB4, sc, stride, N);
    } else if (dtype === 'f32') ex.gemm_f32(x, w, y, T, N, K, NB);
    else ex.gemm_deq(DT_CODE[dtype], x, w, y, T, N, K, panel, NB);
  };
  const sec = time(run);
  return (2 * T * N * K) / sec / 1e9;
}

async function main(): Promise<void> {
  const variants: [string, boolean][] = [['simd', false]];
  if (relaxedSimdAvailable()) variants.push(['relaxed', true]);
  const dtypes: DType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k', 'q6_k'];
  console.log(`wasm kernels, one thread, node ${process.version}`);
  for (const [name, relaxed] of variants) {
    const b = await createWasmBackend({ relaxed });
    weightCache.clear(); // pointers into the previous backend's memory
    console.log(`\n[${name}] GEMV GB/s of weights (int8-quantized activations for q*); stream: 2048x768 x N copies, ~150 MB`);
    console.log(`${'dtype'.padEnd(6)} ${'2048x2048'.padStart(10)} ${'4096x4096'.padStart(10)} ${'stream'.padStart(8)} ${'old 2048'.padStart(9)} ${'old strm'.padStart(9)}`);
    for (const dt of dtypes) {
      const a = gemv(b, dt, 2048, 2048);
      const c = gemv(b, dt, 4096, 4096);
      const copies = Math.ceil(150e6 / (2048 * rowBytes(dt, 768)));
      const st = quick ? NaN : gemv(b, dt, 2048, 768, copies);
      const q = dt === 'q8_0' || dt === 'q4_k'; // the matmul.ts kernels still in use (int16 q8_0 fallback, q4_k tail rows)
      const o = q ? gemv(b, dt, 2048, 2048, 1, true) : NaN;
      const os = q && !quick ? gemv(b, dt, 2048, 768, copies, true) : NaN;
      console.log(`${dt.padEnd(6)} ${a.toFixed(1).padStart(10)} ${c.toFixed(1).padStart(10)} ${st.toFixed(1).padStart(8)} ${o.toFixed(1).padStart(9)} ${os.toFixed(1).padStart(9)}`);
    }
    console.log(`\n[${name}] GEMM G(FL)OPS, T=128 (non-f32 W dequantized per panel, or integer GEMM for 4-bit in relaxed)`);
    console.log(`${'dtype'.padEnd(6)} ${'2048x2048'.padStart(10)} ${'4096x4096'.padStart(10)} ${'deq 2048'.padStart(9)}`);
    for (const dt of quick ? (['f32', 'q8_0', 'q4_0'] as DType[]) : dtypes) {
      const a = gemm(b, dt, 128, 2048, 2048);
      const c = quick ? NaN : gemm(b, dt, 128, 4096, 4096);
      const d = relaxed && (dt === 'q4_0' || dt === 'q4_k') ? gemm(b, dt, 128, 2048, 2048, true) : NaN;
      console.log(`${dt.padEnd(6)} ${a.toFixed(1).padStart(10)} ${c.toFixed(1).padStart(10)} ${d.toFixed(1).padStart(9)}`);
    }
  }
}

await main();
