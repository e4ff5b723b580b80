// The packed SGEMM (assembly/sgemm.ts sgemm_chunk) and the threaded training kernels (cross-entropy,
// attention backward) against the plain TypeScript kernels: all three layouts, odd sizes (tile, micro-tile
// and k-block remainders), overwrite and accumulate, on 1 and 2 threads (adaptive off and small tiles, so
// the pool really splits the work); results must not depend on the thread count (bit-identical).

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createWasmBackend } from '../src/backends/wasm/index.js';
import { BACKWARD } from '../src/train/autodiff.js';
import { jsGemm, type Arr } from '../src/train/gemm.js';
import { logSumExp } from '../src/train/generic-forward.js';
import { AdamW, clipGradNorm, LOSS_SCALE_DEFAULTS, LossScaler } from '../src/train/optim.js';
import { wasmGemm } from '../src/train/wasm-gemm.js';
import { prng } from './helpers/models.js';

const rnd = (r: () => number, n: number): Float32Array => Float32Array.from({ length: n }, () => r() - 0.5);
/** max |a - b| / max(max |b|, 1e-30) */
const relErr = (a: Arr, b: Arr): number => {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / Math.max(m, 1e-30);
};
const LAYOUT = { nt: 0, nn: 1, tn: 2 } as const;

test('sgemm_chunk: NT, NN, TN on odd shapes, overwrite and accumulate, 1 and 2 threads, small and large tiles', async () => {
  const b1 = await createWasmBackend({ threads: 1, adaptive: false });
  const b2 = await createWasmBackend({ threads: 2, adaptive: false });
  try {
    const r = prng(5);
    const shapes: [number, number, number][] = [[1, 1, 1], [3, 7, 1], [1, 33, 7], [7, 3, 33], [33, 257, 7], [257, 33, 3], [5, 9, 257], [33, 17, 800], [64, 72, 385]];
    // [MT, NT, KC]: tiny tiles (many chunks, every remainder path) and the production maximum
    const tilings: [number, number, number][] = [[4, 8, 5], [8, 16, 64], [256, 256, 384]];
    for (const [M, N, K] of shapes) {
      for (const op of ['nt', 'nn', 'tn'] as const) {
        const A = rnd(r, M * K);
        const B = rnd(r, N * K);
        const C0 = rnd(r, M * N);
        for (const acc of [false, true]) {
          // jsGemm.nt overwrites, nn/tn add: the product alone, then C0 + product when accumulating
          const want = new Float32Array(M * N);
          jsGemm[op](M, N, K, A, B, want);
          if (acc) for (let i = 0; i < want.length; i++) want[i] = Math.fround(want[i]! + C0[i]!);
          for (const [MT, NT, KC] of tilings) {
            const results: Float32Array[] = [];
            for (const be of [b1, b2]) {
              const pa = be.alloc(M * K * 4);
              const pb = be.alloc(N * K * 4);
              const pc = be.alloc(M * N * 4);
              const stride = (MT + NT) * KC * 4 + 256;
              const sc = be.alloc(stride * be.threads);
              be.f32View(pa, M * K).set(A);
              be.f32View(pb, N * K).set(B);
              // overwrite: C starts as garbage that must not leak into the result
              be.f32View(pc, M * N).set(acc ? C0 : C0.map((x) => x * 1e6));
              const chunks = Math.ceil(M / MT) * Math.ceil(N / NT);
              be.runKernel('sgemm_chunk', [pa, pb, pc, M, N, K, LAYOUT[op], acc ? 1 : 0, MT, NT, KC, sc, stride], chunks, true, 1);
              results.push(be.f32View(pc, M * N).slice());
            }
            const what = `${op} ${M}x${N}x${K} acc=${acc} tiles ${MT}x${NT}x${KC}`;
            assert.ok(relErr(results[0]!, want) <= 1e-6 * Math.sqrt(K) + 1e-6, `${what}: error ${relErr(results[0]!, want)}`);
            assert.deepEqual(results[1], results[0], `${what}: 2 threads differ from 1`);
          }
        }
      }
    }
  } finally {
    b1.dispose();
    b2.dispose();
  }
});

test('sgemm_chunk packed-A reuse (job ids): new contents under the same addresses are repacked', async () => {
  const be = await createWasmBackend({ threads: 2, adaptive: false });
  try {
    const r = prng(3);
    const [M, N, K] = [37, 70, 29];
    const [MT, NT, KC] = [8, 16, 64];
    const stride = (MT + NT) * KC * 4 + 256;
    const sc = be.alloc(stride * 2);
    new Uint8Array(be.memory.buffer, sc, stride * 2).fill(0);
    const pa = be.alloc(M * K * 4);
    const pb = be.alloc(N * K * 4);
    const pc = be.alloc(M * N * 4);
    const chunks = Math.ceil(M / MT) * Math.ceil(N / NT);
    let job = 0;
    for (const op of ['nt', 'nn', 'tn'] as const) {
      for (let rep = 0; rep < 3; rep++) {
        const A = rnd(r, M * K);
        const B = rnd(r, N * K);
        be.f32View(pa, M * K).set(A);
        be.f32View(pb, N * K).set(B);
        const want = new Float32Array(M * N);
        jsGemm[op](M, N, K, A, B, want);
        be.runKernel('sgemm_chunk', [pa, pb, pc, M, N, K, LAYOUT[op], 0 + ++job * 2, MT, NT, KC, sc, stride], chunks, true, 1);
        const got = be.f32View(pc, M * N).slice();
        assert.ok(relErr(got, want) <= 1e-5, `${op} rep ${rep}: ${relErr(got, want)}`);
      }
    }
  } finally {
    be.dispose();
  }
});

test('wasm GemmKernels on 2 threads: nt/nn/tn with JS and resident operands equal the TypeScript kernels', async () => {
  const be = await createWasmBackend({ threads: 2, adaptive: false });
  try {
    const g = wasmGemm(be);
    const r = prng(9);
    for (const [M, N, K] of [[256, 288, 288], [37, 300, 257], [130, 72, 1000]] as const) {
      for (const op of ['nt', 'nn', 'tn'] as const) {
        const A = rnd(r, M * K);
        const B = rnd(r, N * K);
        const C0 = rnd(r, M * N);
        const want = C0.slice();
        jsGemm[op](M, N, K, A, B, want);
        // JS arrays
        const c1 = C0.slice();
        g[op](M, N, K, A, B, c1);
        // resident arrays (used in place)
        const ra = g.allocF32!(M * K);
        const rb = g.allocF32!(N * K);
        const rc = g.allocF32!(M * N);
        ra.set(A);
        rb.set(B);
        rc.set(C0);
        g[op](M, N, K, ra, rb, rc);
        if (op === 'nt') {
          // nt overwrites
          want.fill(0);
          jsGemm.nt(M, N, K, A, B, want);
        }
        assert.ok(relErr(c1, want) <= 1e-6 * Math.sqrt(K), `${op} ${M}x${N}x${K}: ${relErr(c1, want)}`);
        assert.deepEqual(rc, c1, `${op} ${M}x${N}x${K}: resident operands give another result`);
      }
    }
  } finally {
    be.dispose();
  }
});

test('fused cross-entropy (wasm forward backend + backward) equals the reference loss and the TypeScript rule', async () => {
  for (const threads of [1, 2]) {
    const be = await createWasmBackend({ threads, adaptive: false });
    try {
      const g = wasmGemm(be);
      const r = prng(13 + threads);
      for (const [T, V] of [[1, 5], [7, 33], [37, 1001], [16, 32000]] as const) {
        const x = Float32Array.from({ length: T * V }, () => (r() - 0.5) * 8);
        const tgt = Int32Array.from({ length: T }, (_, t) => (t % 5 === 3 ? -1 : Math.floor(r() * V)));
        const node = { id: 0, op: 'cross_entropy', inputs: [], shape: [1], type: 'f32', attrs: {} } as never;
        const lv = g.lossBackend.kernels.cross_entropy!(node, [{ kind: 'dense', shape: [T, V], data: x }, { kind: 'dense', shape: [T], data: tgt }], null as never);
        let sum = 0;
        let cnt = 0;
        for (let t = 0; t < T; t++) {
          if (tgt[t]! < 0) continue;
          sum += logSumExp(x, t * V, V) - x[t * V + tgt[t]!]!;
          cnt++;
        }
        const loss = (lv as { data: Float32Array }).data[0]!;
        assert.ok(Math.abs(loss - sum / cnt) <= 2e-6 * Math.abs(sum / cnt), `T${T} V${V}: loss ${loss} vs ${sum / cnt}`);
        const dy = Float32Array.of(0.75);
        const want = rnd(prng(1), T * V);
        const got = want.slice();
        BACKWARD.cross_entropy!(node, [x, tgt], lv as never, dy, () => want, jsGemm);
        BACKWARD.cross_entropy!(node, [x, tgt], lv as never, dy, () => got, g);
        assert.ok(relErr(got, want) <= 1e-5, `T${T} V${V} (${threads} threads): dlogits error ${relErr(got, want)}`);
        // without a preceding forward on these logits (the kernel recomputes the row statistics)
        const got2 = rnd(prng(1), T * V);
        BACKWARD.cross_entropy!(node, [x.slice(), tgt], lv as never, dy, () => got2, g);
        assert.deepEqual(got2, got);
      }
    } finally {
      be.dispose();
    }
  }
});

test('threaded attention backward equals the single-thread result and the TypeScript rule', async () => {
  const b1 = await createWasmBackend({ threads: 1, adaptive: false });
  const b2 = await createWasmBackend({ threads: 2, adaptive: false });
  try {
    const g1 = wasmGemm(b1);
    const g2 = wasmGemm(b2);
    const r = prng(21);
    for (const [T, H, KVH, hd, causal] of [[19, 6, 6, 8, true], [40, 4, 2, 12, true], [9, 3, 3, 5, false]] as const) {
      const q = rnd(r, T * H * hd);
      const k = rnd(r, T * KVH * hd);
      const v = rnd(r, T * KVH * hd);
      const out = rnd(r, T * H * hd);
      const dy = rnd(r, T * H * hd);
      const pos = Int32Array.from({ length: T }, (_, i) => i);
      const node = { id: 0, op: 'attention', inputs: [], shape: [T, H * hd], type: 'f32', attrs: { nHeads: H, nKvHeads: KVH, headDim: hd, causal, scale: 1 / Math.sqrt(hd) } } as never;
      const run = (gemm: typeof jsGemm): Float32Array[] => {
        const gs = [rnd(prng(1), q.length), rnd(prng(2), k.length), rnd(prng(3), v.length)];
        BACKWARD.attention!(node, [q, k, v, pos], out, dy, (i) => gs[i] ?? null, gemm);
        return gs;
      };
      const want = run(jsGemm);
      const a = run(g1);
      const b = run(g2);
      for (let i = 0; i < 3; i++) {
        assert.ok(relErr(a[i]!, want[i]!) <= 1e-5, `T${T} H${H}/${KVH} grad ${i}: ${relErr(a[i]!, want[i]!)}`);
        assert.deepEqual(b[i], a[i], `T${T} H${H}/${KVH} grad ${i}: 2 threads differ from 1`);
      }
    }
  } finally {
    b1.dispose();
    b2.dispose();
  }
});

test('wasm optimizer kernels (AdamW, gradient norm, clip scaling) are bit-identical to the TypeScript loops', async () => {
  const be = await createWasmBackend({ threads: 2, adaptive: false });
  try {
    const k = wasmGemm(be).optim!;
    const shapes = new Map<string, number[]>([['w', [300, 700]], ['b', [301]]]);
    const make = (resident: boolean): Map<string, Float32Array> => {
      const r = prng(17);
      const m = new Map<string, Float32Array>();
      for (const [n, sh] of shapes) {
        const len = sh.reduce((a, b) => a * b, 1);
        const a = resident ? k.alloc(len) : new Float32Array(len);
        for (let i = 0; i < len; i++) a[i] = r() - 0.5;
        m.set(n, a);
      }
      return m;
    };
    const pj = make(false);
    const gj = make(false);
    const pw = make(true);
    const gw = make(true);
    const oj = new AdamW({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, shapes);
    const ow = new AdamW({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, shapes, k);
    for (let step = 0; step < 3; step++) {
      const a = clipGradNorm(gj, 0.5);
      const b = clipGradNorm(gw, 0.5, k);
      assert.equal(b.norm, a.norm);
      oj.step(pj, gj, 1e-3);
      ow.step(pw, gw, 1e-3);
    }
    // loss scaling: unscale (overflow check + scaling) takes the same decisions and values
    for (const poison of [0, NaN, Infinity, 70000]) {
      const sj = new LossScaler({ ...LOSS_SCALE_DEFAULTS, mode: 'dynamic', initScale: 1024, maxFinite: 65504 });
      const sw = new LossScaler({ ...LOSS_SCALE_DEFAULTS, mode: 'dynamic', initScale: 1024, maxFinite: 65504 }, undefined, k);
      const gj2 = new Map([...gj].map(([n, a]) => [n, a.slice()]));
      const gw2 = new Map([...gw].map(([n, a]) => {
        const c = k.alloc(a.length);
        c.set(a);
        return [n, c];
      }));
      if (poison !== 0) {
        gj2.get('w')![12345] = poison;
        gw2.get('w')![12345] = poison;
      }
      assert.equal(sw.unscale(gw2), sj.unscale(gj2), `unscale with ${poison}`);
      for (const n of shapes.keys()) assert.deepEqual(gw2.get(n), gj2.get(n), `unscaled ${n} with ${poison}`);
    }
    for (const n of shapes.keys()) {
      assert.deepEqual(pw.get(n), pj.get(n), `params ${n}`);
      assert.deepEqual(ow.m.get(n), oj.m.get(n), `m ${n}`);
      assert.deepEqual(ow.v.get(n), oj.v.get(n), `v ${n}`);
      assert.deepEqual(gw.get(n), gj.get(n), `clipped grads ${n}`);
    }
  } finally {
    be.dispose();
  }
});

test('wasm elementwise backward kernels (silu, add/mul accumulate, rmsnorm) equal the TypeScript rules, 1 and 2 threads', async () => {
  for (const threads of [1, 2]) {
    const be = await createWasmBackend({ threads, adaptive: false });
    try {
      const g = wasmGemm(be);
      const r = prng(31 + threads);
      const res = (a: Float32Array): Float32Array => {
        const x = g.allocF32!(a.length);
        x.set(a);
        return x;
      };
      for (const [rows, G] of [[1, 3], [7, 33], [256, 288], [300, 768]] as const) {
        const n = rows * G;
        const x = rnd(r, n).map((v) => v * 6);
        const dy = rnd(r, n);
        const w = rnd(r, G);
        const g0 = rnd(r, n);
        const gw0 = rnd(r, G);
        const node = (op: string, attrs: object = {}): never => ({ id: 0, op, inputs: [], shape: [rows, G], type: 'f32', attrs }) as never;
        const check = (what: string, a: Arr, b: Arr): void => assert.ok(relErr(a, b) <= 2e-6, `${what} ${rows}x${G} (${threads} threads): ${relErr(a, b)}`);
        // silu
        let want = g0.slice();
        BACKWARD.silu!(node('silu'), [x], x, dy, () => want, jsGemm);
        let got = res(g0);
        BACKWARD.silu!(node('silu'), [res(x)], x, res(dy), () => got, g);
        check('silu', got, want);
        // mul (both inputs) and add
        const b = rnd(r, n);
        const wa = g0.slice();
        const wb = gw0.length === n ? gw0.slice() : rnd(prng(3), n);
        const ga = res(wa);
        const gb = res(wb);
        BACKWARD.mul!(node('mul'), [x, b], x, dy, (i) => (i === 0 ? wa : wb), jsGemm);
        BACKWARD.mul!(node('mul'), [res(x), res(b)], x, res(dy), (i) => (i === 0 ? ga : gb), g);
        check('mul a', ga, wa);
        check('mul b', gb, wb);
        want = g0.slice();
        got = res(g0);
        BACKWARD.add!(node('add'), [x, b], x, dy, () => want, jsGemm);
        BACKWARD.add!(node('add'), [res(x), res(b)], x, res(dy), () => got, g);
        check('add', got, want);
        // rmsnorm
        const wx = g0.slice();
        const ww = gw0.slice();
        const gx = res(g0);
        const gw = res(gw0);
        BACKWARD.rmsnorm!(node('rmsnorm', { eps: 1e-5 }), [x, w], x, dy, (i) => (i === 0 ? wx : ww), jsGemm);
        BACKWARD.rmsnorm!(node('rmsnorm', { eps: 1e-5 }), [res(x), res(w)], x, res(dy), (i) => (i === 0 ? gx : gw), g);
        check('rmsnorm dx', gx, wx);
        check('rmsnorm dw', gw, ww);
      }
    } finally {
      be.dispose();
    }
  }
});
