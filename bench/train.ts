// Training step benchmark: ms/step and tokens/s of forward + backward + AdamW for Stories-shaped
// models on synthetic tokens, and where the time goes (forward, backward GEMMs, attention, cross-entropy, rest).
//
//   node dist/bench/train.js [--models stories15M,stories110M] [--batch 8] [--seq 256] [--threads 1,2]
//                            [--measure-seqs N] [--backend wasm|reference] [--out FILE]
//
// The trainer runs sequences one after another (the batch is a loop), so a step costs batch x the
// per-sequence time plus one optimizer update; with `--measure-seqs N` (< batch) only N sequences are
// timed and the step time is extrapolated (stated in the output). --backend wasm (default) is the fast
// path: WebAssembly forward and backward kernels on the backend's thread pool (one pool per --threads
// entry), parameters, gradients and activations resident in wasm memory. --out (default
// bench/results/train.json) keeps the file's `previous*` and `notes` keys (history written by hand).

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
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
    models: { type: 'string', default: 'stories15M,stories110M' },
    batch: { type: 'string', default: '8' },
    seq: { type: 'string', default: '256' },
    'measure-seqs': { type: 'string', default: '0' },
    out: { type: 'string', default: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results/train.json') },
    backend: { type: 'string', default: 'wasm' },
    threads: { type: 'string', default: '1,2' },
  },
});
const threadList = values.backend === 'wasm' ? values.threads!.split(',').map(Number) : [1];
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
  const ce = base.crossEntropyBackward?.bind(base);
  return {
    name: `timed-${base.name}`, nt: wrap('nt'), nn: wrap('nn'), tn: wrap('tn'), attentionBackward: base.attentionBackward?.bind(base),
    crossEntropyBackward: ce === undefined ? undefined : (x, tgt, s, g) => {
      const t = performance.now();
      const r = ce(x, tgt, s, g);
      acc['ce'] = (acc['ce'] ?? 0) + performance.now() - t;
      return r;
    },
    allocF32: base.allocF32?.bind(base), backwardBegin: base.backwardBegin?.bind(base), zeros: base.zeros?.bind(base), optim: base.optim, elementwise: base.elementwise,
  };
}

interface Result {
  model: string;
  parameters: number;
  batch: number;
  seq: number;
  threads: number;
  measured_sequences: number;
  extrapolated: boolean;
  /** Wall-clock (the machine may be shared) and process CPU time (all threads) per step. */
  wall_ms_per_step: number;
  cpu_ms_per_step: number;
  tokens_per_s_wall: number;
  ratio_vs_pytorch_3_4_s: number;
  wall_breakdown_ms: Record<string, number>;
  /** 1-minute load average before and after (2 vCPUs: above ~1 another process competed). */
  loadavg: [number, number];
  /** Jobs the pool ran on all threads, and whether it had fallen back to one thread (adaptive). */
  pool?: { jobs: number; parallelJobs: number; solo: boolean };
}

const results: Result[] = [];
const B = Number(values.batch);
const T = Number(values.seq);
for (const threads of threadList) {
const fast = values.backend === 'wasm' ? await createFastTraining({ threads }) : null;
for (const name of values.models!.split(',')) {
  const load0 = os.loadavg()[0]!;
  const config = presetConfig(name);
  config.max_position_embeddings = Math.max(config.max_position_embeddings, T);
  const params = initParams(config, 1);
  // as the Trainer does: float32 parameters and gradients in the kernels' memory when they offer it
  const resident = fast?.gemm.allocF32?.bind(fast.gemm);
  if (resident !== undefined) {
    for (const [n, p] of params) {
      const r = resident(p.length);
      r.set(p);
      params.set(n, r);
    }
  }
  let nParams = 0;
  for (const p of params.values()) nParams += p.length;
  const acc: Record<string, number> = {};
  const tg = new TrainGraph(config, T, { gemm: timedGemm(fast?.gemm ?? jsGemm, acc), backends: fast?.backends, cacheWeights: true });
  const grads = new Map<string, Arr>();
  for (const [n, p] of params) grads.set(n, resident !== undefined ? resident(p.length) : zerosLike(p, p.length));
  const opt = new AdamW({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, tg.params, fast?.gemm.optim);
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
    tg.forward(params, ids, targets, true, true); // as accumulateGradients runs it (retained values as views)
    fwdMs += performance.now() - f;
    const s = performance.now();
    tg.accumulateGradients(params, ids, targets, 1 / B, grads);
    fwdBwd += performance.now() - s;
  }
  const perSeq = fwdBwd / seqs;
  const cpu = process.cpuUsage(cpu0);
  const cpuPerSeq = (cpu.user + cpu.system) / 1000 / seqs - (fwdMs / seqs) * ((cpu.user + cpu.system) / 1000 / (fwdBwd + fwdMs));
  // the first optimizer step allocates the moments: time the second
  clipGradNorm(grads, 1, fast?.gemm.optim);
  opt.step(params, grads, 1e-4);
  const to = performance.now();
  clipGradNorm(grads, 1, fast?.gemm.optim);
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
    backward_cross_entropy: (acc['ce'] ?? 0) * scale,
    backward_rest: perSeq * B - fwdMs * scale - ((acc['nn'] ?? 0) + (acc['tn'] ?? 0) + attnAcc.ms + (acc['ce'] ?? 0)) * scale,
    optimizer_and_clip: optMs,
  };
  const r: Result = {
    model: name, parameters: nParams, batch: B, seq: T, threads: fast === null ? 1 : threads, measured_sequences: seqs, extrapolated: seqs < B,
    wall_ms_per_step: Math.round(msPerStep), cpu_ms_per_step: Math.round(cpuPerSeq * B + optMs), tokens_per_s_wall: Math.round((B * T * 10000) / msPerStep) / 10,
    ratio_vs_pytorch_3_4_s: Math.round(msPerStep / 34) / 100,
    wall_breakdown_ms: Object.fromEntries(Object.entries(breakdown).map(([k, v]) => [k, Math.round(v)])),
    loadavg: [Math.round(load0 * 100) / 100, Math.round(os.loadavg()[0]! * 100) / 100],
  };
  const ps = (fast?.backends.find((b) => b.name === 'wasm') as { poolStats?: () => { jobs: number; parallelJobs: number; solo: boolean } } | undefined)?.poolStats?.();
  if (ps !== undefined) r.pool = { jobs: ps.jobs, parallelJobs: ps.parallelJobs, solo: ps.solo };
  results.push(r);
  console.log(`${name}, ${r.threads} thread(s): ${(nParams / 1e6).toFixed(2)}M params, batch ${B}x${T}: ${msPerStep.toFixed(0)} ms/step (CPU ${r.cpu_ms_per_step} ms), ${r.tokens_per_s_wall} tok/s` +
    `${r.extrapolated ? ` (extrapolated from ${seqs} sequence(s))` : ''}, load ${r.loadavg.join(' -> ')}; ` + Object.entries(breakdown).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', '));
}
fast?.dispose();
}
if (values.out !== '') {
  const out = values.out!;
  // keep the hand-written history of the file
  let kept: Record<string, unknown> = {};
  try {
    const old = JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, unknown>;
    kept = Object.fromEntries(Object.entries(old).filter(([k]) => k.startsWith('previous') || k === 'notes'));
  } catch {
    /* no previous file */
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({
    description: `ristretto train step, batch ${B} x ${T}, synthetic tokens: ${values.backend === 'wasm' ? 'forward and backward on the WebAssembly kernels (packed SGEMM for every product, fused cross-entropy, attention backward as GEMMs per head, elementwise rules, AdamW), threaded on the backend pool' : 'reference backend forward, TypeScript backward'}. Produced by \`node dist/bench/train.js --models ${values.models} --threads ${threadList.join(',')}${Number(values['measure-seqs']) > 0 ? ` --measure-seqs ${values['measure-seqs']}` : ''}\` (step = ${B} sequences + one optimizer update). The 2-vCPU machine is shared: see each result's loadavg.`,
    node: process.version, date: new Date().toISOString(), cpu: `${os.cpus()[0]?.model ?? 'cpu'} x ${os.availableParallelism()}`,
    pytorch_reference: { stories15M_batch8x256_s_per_step: 3.4, source: 'issue 7 target (PyTorch CPU fp32 on this machine kind, 1 or 2 threads)' },
    results, ...kept,
  }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}
