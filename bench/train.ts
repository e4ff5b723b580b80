// Training step benchmark: ms/step and tokens/s of forward + backward + AdamW for Stories-shaped
// models on synthetic tokens, and where the time goes (forward matmul, backward GEMMs, attention, rest).
//
//   node dist/bench/train.js [--models stories260K,stories15M,stories110M] [--batch 8] [--seq 256]
//                            [--measure-seqs N] [--backend wasm|reference] [--threads N] [--out FILE]
//
// The trainer runs sequences one after another (the batch is a loop), so a step costs batch x the
// per-sequence time plus one optimizer update; for big shapes only `--measure-seqs` sequences are
// timed and the step time is extrapolated (stated in the output). --backend wasm (default) is the fast
// path: WebAssembly forward (its thread pool: --threads), wasm GEMMs and attention backward (one thread).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { TrainGraph } from '../src/train/autodiff.js';
import { jsGemm, zerosLike, type Arr, type GemmKernels } from '../src/train/gemm.js';
import { AdamW, clipGradNorm } from '../src/train/optim.js';
import { createFastTraining } from '../src/train/wasm-gemm.js';
import { BACKWARD } from '../src/train/autodiff.js';
import { initParams, presetConfig } from '../src/train/params.js';
import { Rng } from '../src/train/rng.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'stories260K,stories15M' },
    batch: { type: 'string', default: '8' },
    seq: { type: 'string', default: '256' },
    'measure-seqs': { type: 'string', default: '0' },
    out: { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    threads: { type: 'string', default: '1' },
  },
});
const threads = Number(values.threads);
const fast = values.backend === 'wasm' ? await createFastTraining({ threads }) : null;
// Time attention backward (the rule, whichever kernel runs it).
const attnAcc = { ms: 0 };
const attnRule = BACKWARD.attention!;
BACKWARD.attention = (...a) => {
  const t = performance.now();
  attnRule(...a);
  attnAcc.ms += performance.now() - t;
};

/** Wraps GEMMs to account their time. */
function timedGemm(base: GemmKernels, acc: Record<string, number>): GemmKernels {
  const wrap = (k: 'nt' | 'nn' | 'tn') => (M: number, N: number, K: number, A: Arr, B: Arr, C: Arr): void => {
    const t = performance.now();
    base[k](M, N, K, A, B, C);
    acc[k] = (acc[k] ?? 0) + performance.now() - t;
  };
  return { name: `timed-${base.name}`, nt: wrap('nt'), nn: wrap('nn'), tn: wrap('tn'), attentionBackward: base.attentionBackward?.bind(base) };
}

interface Result {
  model: string;
  parameters: number;
  batch: number;
  seq: number;
  threads: number;
  measuredSequences: number;
  extrapolated: boolean;
  /** Wall-clock (the machine may be shared) and process CPU time per step. */
  msPerStep: number;
  cpuMsPerStep: number;
  tokensPerS: number;
  breakdownMs: Record<string, number>;
}

const results: Result[] = [];
const B = Number(values.batch);
const T = Number(values.seq);
for (const name of values.models!.split(',')) {
  const config = presetConfig(name);
  config.max_position_embeddings = Math.max(config.max_position_embeddings, T);
  const params = initParams(config, 1);
  let nParams = 0;
  for (const p of params.values()) nParams += p.length;
  const acc: Record<string, number> = {};
  const tg = new TrainGraph(config, T, { gemm: timedGemm(fast?.gemm ?? jsGemm, acc), backends: fast?.backends, cacheWeights: true });
  const grads = new Map<string, Arr>();
  for (const [n, p] of params) grads.set(n, zerosLike(p, p.length));
  const opt = new AdamW({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, tg.params);
  const rng = new Rng(3);
  const measure = Number(values['measure-seqs']) || B;
  const seqs = Math.min(B, measure);
  const ids = Int32Array.from({ length: T }, () => rng.int(config.vocab_size));
  const targets = Int32Array.from({ length: T }, () => rng.int(config.vocab_size));
  // Warm-up on one sequence for small models (JIT).
  if (nParams < 2e6 || fast !== null) tg.accumulateGradients(params, ids, targets, 1 / B, grads);
  for (const k of Object.keys(acc)) delete acc[k];
  attnAcc.ms = 0;
  let fwdMs = 0;
  const t0 = performance.now();
  let fwdBwd = 0;
  const cpu0 = process.cpuUsage();
  for (let b = 0; b < seqs; b++) {
    const f = performance.now();
    tg.forward(params, ids, targets, true);
    fwdMs += performance.now() - f;
    const s = performance.now();
    tg.accumulateGradients(params, ids, targets, 1 / B, grads);
    fwdBwd += performance.now() - s;
  }
  const perSeq = fwdBwd / seqs;
  const cpu = process.cpuUsage(cpu0);
  const cpuPerSeq = (cpu.user + cpu.system) / 1000 / seqs - (fwdMs / seqs) * ((cpu.user + cpu.system) / 1000 / (fwdBwd + fwdMs));
  const to = performance.now();
  clipGradNorm(grads, 1);
  opt.step(params, grads, 1e-4);
  const optMs = performance.now() - to;
  const msPerStep = perSeq * B + optMs;
  void t0;
  const scale = B / seqs;
  const breakdown: Record<string, number> = {
    forward_retaining: fwdMs * scale,
    backward_gemm_dX: (acc['nn'] ?? 0) * scale,
    backward_gemm_dW: (acc['tn'] ?? 0) * scale,
    backward_attention: attnAcc.ms * scale,
    backward_rest: perSeq * B - fwdMs * scale - ((acc['nn'] ?? 0) + (acc['tn'] ?? 0) + attnAcc.ms) * scale,
    optimizer_and_clip: optMs,
  };
  const r: Result = {
    model: name, parameters: nParams, batch: B, seq: T, threads: fast === null ? 1 : threads, measuredSequences: seqs, extrapolated: seqs < B,
    msPerStep, cpuMsPerStep: cpuPerSeq * B + optMs, tokensPerS: (B * T * 1000) / msPerStep, breakdownMs: breakdown,
  };
  results.push(r);
  console.log(`${name}: ${(nParams / 1e6).toFixed(2)}M params, batch ${B}x${T}: ${msPerStep.toFixed(0)} ms/step (CPU ${r.cpuMsPerStep.toFixed(0)} ms), ${r.tokensPerS.toFixed(0)} tok/s` +
    `${r.extrapolated ? ` (extrapolated from ${seqs} sequence(s))` : ''}; ` + Object.entries(breakdown).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', '));
}
if (values.out !== undefined) {
  fs.mkdirSync(path.dirname(values.out), { recursive: true });
  fs.writeFileSync(values.out, JSON.stringify({
    description: `ristretto train step (${fast === null ? 'forward on the reference backend, backward with the JS GEMM kernels' : 'forward on the wasm backend, wasm GEMMs and attention backward'}, AdamW), synthetic tokens, ${threads} thread(s)`,
    node: process.version, date: new Date().toISOString(), pytorch_reference_stories15M_8x256_s_per_step: 3.4, results,
  }, null, 2) + '\n');
}
fast?.dispose();
