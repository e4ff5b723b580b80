// The WebAssembly training kernels (GemmKernels nt/nn/tn and the attention backward) against the
// plain TypeScript kernels, on odd shapes (register-tile remainders, GQA, non-causal), float32 tolerances.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { BACKWARD } from '../src/train/autodiff.js';
import { jsGemm, type Arr } from '../src/train/gemm.js';
import { createFastTraining } from '../src/train/wasm-gemm.js';
import { prng } from './helpers/models.js';

const rnd = (r: () => number, n: number): Float32Array => Float32Array.from({ length: n }, () => r() - 0.5);
const maxDiff = (a: Arr, b: Arr): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

test('wasm GEMMs (nt, nn, tn) equal the TypeScript kernels on odd shapes', async () => {
  const fast = await createFastTraining({ threads: 1 });
  try {
    const r = prng(7);
    for (const [M, N, K] of [[5, 7, 9], [4, 8, 256], [13, 172, 31], [37, 19, 300], [64, 35, 600], [256, 96, 64]] as const) {
      for (const op of ['nt', 'nn', 'tn'] as const) {
        const A = rnd(r, M * K);
        const B = rnd(r, N * K);
        const C0 = rnd(r, M * N);
        const c1 = C0.slice();
        const c2 = C0.slice();
        jsGemm[op](M, N, K, A, B, c1);
        fast.gemm[op](M, N, K, A, B, c2);
        assert.ok(maxDiff(c1, c2) <= 1e-5 * Math.sqrt(K), `${op} ${M}x${N}x${K}: ${maxDiff(c1, c2)}`);
      }
    }
  } finally {
    fast.dispose();
  }
});

test('wasm attention backward equals the TypeScript rule (causal with GQA, non-causal, odd head size)', async () => {
  const fast = await createFastTraining({ threads: 1 });
  try {
    const r = prng(11);
    for (const [T, H, KVH, hd, causal] of [[9, 4, 2, 8, true], [16, 2, 2, 6, false], [33, 3, 1, 5, true]] as const) {
      const q = rnd(r, T * H * hd);
      const k = rnd(r, T * KVH * hd);
      const v = rnd(r, T * KVH * hd);
      const pos = Int32Array.from({ length: T }, (_, i) => i);
      const dy = rnd(r, T * H * hd);
      const node = { id: 0, op: 'attention', inputs: [], shape: [T, H * hd], type: 'f32', attrs: { nHeads: H, nKvHeads: KVH, headDim: hd, causal, scale: 1 / Math.sqrt(hd) } } as unknown as Parameters<NonNullable<typeof BACKWARD.attention>>[0];
      // The forward output the rule needs: computed with the reference formula in float64.
      const out = new Float32Array(T * H * hd);
      for (let t = 0; t < T; t++) {
        const last = causal ? t : T - 1;
        for (let h = 0; h < H; h++) {
          const ko = Math.floor(h / (H / KVH)) * hd;
          const s: number[] = [];
          for (let j = 0; j <= last; j++) {
            let d = 0;
            for (let i = 0; i < hd; i++) d += q[t * H * hd + h * hd + i]! * k[j * KVH * hd + ko + i]!;
            s.push(d / Math.sqrt(hd));
          }
          const m = Math.max(...s);
          const e = s.map((x) => Math.exp(x - m));
          const z = e.reduce((a, b) => a + b, 0);
          for (let i = 0; i < hd; i++) {
            let o = 0;
            for (let j = 0; j <= last; j++) o += (e[j]! / z) * v[j * KVH * hd + ko + i]!;
            out[t * H * hd + h * hd + i] = o;
          }
        }
      }
      const grads = (gemm: typeof jsGemm): Float32Array[] => {
        const gs = [rnd(prng(1), q.length), rnd(prng(2), k.length), rnd(prng(3), v.length)];
        BACKWARD.attention!(node, [q, k, v, pos], out, dy, (i) => gs[i] ?? null, gemm);
        return gs;
      };
      const a = grads(jsGemm);
      const b = grads(fast.gemm);
      for (let i = 0; i < 3; i++) assert.ok(maxDiff(a[i]!, b[i]!) <= 2e-6, `T${T} H${H}/${KVH} hd${hd} causal=${causal} grad ${i}: ${maxDiff(a[i]!, b[i]!)}`);
    }
  } finally {
    fast.dispose();
  }
});
