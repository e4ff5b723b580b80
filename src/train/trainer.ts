// The training loop: sample windows, forward + backward per sequence (gradient accumulation over the
// batch and over micro-batches), loss-scale check, clip, AdamW with the warmup + cosine schedule;
// validation, samples, atomic checkpoints with everything a bit-identical resume needs, and events
// for the CLI (text lines, JSON lines, progress bar) and the SVG loss curve.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend } from '../backends/backend.js';
import { referenceBackend } from '../backends/reference/index.js';
import { InvalidArgumentError, RistrettoError } from '../errors.js';
import { modelParams, type ModelConfig } from '../models/index.js';
import { generate } from '../runtime/generate.js';
import { InferenceSession } from '../runtime/session.js';
import { loadTokenizer } from '../tokenizers/load.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { TrainGraph, type Precision } from './autodiff.js';
import { cleanTempFiles, listCheckpoints, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { TokenFile, WindowSampler, type SamplerState } from './data.js';
import { zerosLike, type Arr, type GemmKernels } from './gemm.js';
import { AdamW, clipGradNorm, globalNorm, LOSS_SCALE_DEFAULTS, LossScaler, lrAt, type LossScaleOptions, type LossScaleState } from './optim.js';
import { toHostTensors } from './params.js';
import { lossCurveSvg, type LossPoint } from './plot.js';

export interface TrainOptions {
  steps: number;
  /** Sequences per micro-batch. */
  batch: number;
  seqLen: number;
  /** Micro-batches accumulated per optimizer step. */
  accum: number;
  lr: number;
  minLr: number;
  warmup: number;
  schedule: 'cosine' | 'constant';
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global-norm clip threshold (0: off). */
  clip: number;
  lossScale: LossScaleOptions;
  seed: number;
  valFraction: number;
  /** Validation every N steps (0: only at the end). */
  evalEvery: number;
  evalBatches: number;
  sampleEvery: number;
  sampleTokens: number;
  ckptEvery: number;
  keep: number;
  precision: Precision;
}

export const TRAIN_DEFAULTS: Omit<TrainOptions, 'steps'> = {
  batch: 8, seqLen: 256, accum: 1, lr: 5e-4, minLr: 5e-5, warmup: 100, schedule: 'cosine', beta1: 0.9, beta2: 0.95, eps: 1e-8,
  weightDecay: 0.1, clip: 1.0, lossScale: LOSS_SCALE_DEFAULTS, seed: 1337, valFraction: 0.05, evalEvery: 100, evalBatches: 4,
  sampleEvery: 0, sampleTokens: 64, ckptEvery: 100, keep: 3, precision: 'f32',
};

export interface LogPoint {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
}

/** The JSON part of a checkpoint. */
export interface TrainState {
  config: ModelConfig;
  options: TrainOptions;
  adamT: number;
  sampler: SamplerState;
  scaler: LossScaleState;
  history: { train: LogPoint[]; val: LossPoint[] };
  elapsedMs: number;
  /** What the run started from: a preset/config name or a model path. */
  source: string;
  data: string;
  tokenizer: string | null;
}

export type TrainEvent =
  | { type: 'start'; step: number; steps: number; parameters: number; tokensPerStep: number; resumedFrom: string | null }
  | { type: 'step'; step: number; steps: number; loss: number; lr: number; gradNorm: number; clipCoef: number; lossScale: number; skipped: boolean; tokens: number; ms: number; tokPerS: number; etaS: number }
  | { type: 'eval'; step: number; valLoss: number }
  | { type: 'sample'; step: number; text: string }
  | { type: 'checkpoint'; step: number; file: string; plot: string }
  | { type: 'done'; step: number; valLoss: number | null; ms: number };

export interface TrainerInit {
  config: ModelConfig;
  params: Map<string, Arr>;
  options: TrainOptions;
  outDir: string;
  dataPath: string;
  tokenizerPath: string | null;
  source: string;
  backends?: readonly Backend[];
  gemm?: GemmKernels;
}

export class Trainer {
  readonly config: ModelConfig;
  readonly params: Map<string, Arr>;
  readonly options: TrainOptions;
  readonly outDir: string;
  step = 0;
  readonly history: { train: LogPoint[]; val: LossPoint[] } = { train: [], val: [] };
  private readonly graph: TrainGraph;
  private readonly grads = new Map<string, Arr>();
  private readonly opt: AdamW;
  private readonly scaler: LossScaler;
  private readonly data: TokenFile;
  private readonly sampler: WindowSampler;
  private readonly backends: readonly Backend[];
  private tokenizer: Tokenizer | null | undefined;
  private elapsedMs = 0;
  private resumedFrom: string | null = null;

  constructor(private readonly init: TrainerInit) {
    const o = init.options;
    this.config = init.config;
    this.params = init.params;
    this.options = o;
    this.outDir = init.outDir;
    if (this.config.model_type === 'gpt2') throw new InvalidArgumentError('training supports the Llama family and Qwen3 (GPT-2 is inference-only for now)');
    for (const [k, v] of Object.entries({ steps: o.steps, batch: o.batch, seq: o.seqLen, accum: o.accum })) {
      if (!Number.isInteger(v) || v <= 0) throw new InvalidArgumentError(`--${k} must be a positive integer, got ${v}`);
    }
    if (o.seqLen > this.config.max_position_embeddings) {
      throw new InvalidArgumentError(`--seq ${o.seqLen} exceeds the model's context of ${this.config.max_position_embeddings}`);
    }
    this.data = new TokenFile(init.dataPath);
    if (this.data.header.vocabSize > this.config.vocab_size) {
      throw new InvalidArgumentError(`${init.dataPath}: tokens come from a ${this.data.header.vocabSize}-token vocabulary, the model has ${this.config.vocab_size}`);
    }
    this.sampler = new WindowSampler(this.data, o.seqLen, o.valFraction, o.seed);
    this.backends = [...(init.backends ?? []), referenceBackend];
    this.graph = new TrainGraph(this.config, o.seqLen, { precision: o.precision, backends: init.backends, gemm: init.gemm, cacheWeights: true });
    // float32 parameters and gradients live in the kernels' memory when they offer it (no copies per product)
    const resident = o.precision === 'f32' ? init.gemm?.allocF32?.bind(init.gemm) : undefined;
    for (const [name, shape] of modelParams(this.config)) {
      let p = this.params.get(name);
      if (p === undefined) throw new InvalidArgumentError(`parameter "${name}" is missing`);
      if (p.length !== shape.reduce((a, b) => a * b, 1)) throw new InvalidArgumentError(`parameter "${name}" has ${p.length} values, expected [${shape}]`);
      if ((o.precision === 'f64') !== p instanceof Float64Array) throw new InvalidArgumentError(`parameter "${name}" does not match precision ${o.precision}`);
      let g: Arr | undefined;
      if (resident !== undefined) {
        try {
          const r = resident(p.length);
          g = resident(p.length);
          r.set(p);
          this.params.set(name, (p = r));
        } catch (e) {
          // the kernels' memory is full (wasm32: 4 GiB): this parameter stays in a JS array (copied per product)
          if (!(e instanceof RangeError)) throw e;
          g = undefined;
        }
      }
      this.grads.set(name, g ?? zerosLike(p, p.length));
    }
    this.opt = new AdamW({ beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, weightDecay1d: 0 }, modelParams(this.config), init.gemm?.optim);
    this.scaler = new LossScaler(o.lossScale, undefined, init.gemm?.optim);
  }

  get checkpointDir(): string {
    return path.join(this.outDir, 'checkpoints');
  }

  /** Restores a trainer from a checkpoint file (checksum verified first). `steps` may extend the run. */
  static resume(file: string, over: { steps?: number; outDir?: string; dataPath?: string; backends?: readonly Backend[]; gemm?: GemmKernels } = {}): Trainer {
    const c = loadCheckpoint<TrainState>(file);
    const s = c.state;
    const params = c.tensors.get('params');
    if (params === undefined) throw new RistrettoError('FORMAT', `${file}: the checkpoint holds no parameters`);
    // JSON has no Infinity: an unlimited fp16 range was stored as null.
    const lossScale = { ...s.options.lossScale, maxFinite: s.options.lossScale.maxFinite ?? Infinity };
    const t = new Trainer({
      config: s.config, params, options: { ...s.options, lossScale, steps: over.steps ?? s.options.steps },
      outDir: over.outDir ?? path.dirname(path.dirname(file)), dataPath: over.dataPath ?? s.data, tokenizerPath: s.tokenizer, source: s.source,
      backends: over.backends, gemm: over.gemm,
    });
    t.step = c.step;
    t.opt.t = s.adamT;
    for (const [n, a] of c.tensors.get('adam.m') ?? []) t.opt.m.set(n, a);
    for (const [n, a] of c.tensors.get('adam.v') ?? []) t.opt.v.set(n, a);
    t.sampler.setState(s.sampler);
    t.scaler.state = { ...s.scaler };
    t.history.train.push(...s.history.train);
    t.history.val.push(...s.history.val);
    t.elapsedMs = s.elapsedMs;
    t.resumedFrom = file;
    return t;
  }

  /** The newest checkpoint in `outDir/checkpoints`, or null. */
  static latestCheckpoint(outDir: string): string | null {
    const all = listCheckpoints(path.join(outDir, 'checkpoints'));
    return all.length === 0 ? null : all[all.length - 1]!.file;
  }

  private state(): TrainState {
    return {
      config: this.config, options: this.options, adamT: this.opt.t, sampler: this.sampler.getState(), scaler: { ...this.scaler.state },
      history: this.history, elapsedMs: this.elapsedMs, source: this.init.source, data: path.resolve(this.init.dataPath), tokenizer: this.init.tokenizerPath,
    };
  }

  /** Writes a checkpoint of the current step and the loss plot; returns the checkpoint path. */
  checkpoint(): { file: string; plot: string } {
    const file = saveCheckpoint(this.checkpointDir, {
      step: this.step,
      tensors: new Map([['params', this.params], ['adam.m', this.opt.m], ['adam.v', this.opt.v]]),
      state: this.state(),
    }, this.options.keep);
    return { file, plot: this.writePlot() };
  }

  writePlot(): string {
    const p = path.join(this.outDir, 'loss.svg');
    const tmp = `${p}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, lossCurveSvg(this.history.train, this.history.val, `${this.init.source}: loss`));
    fs.renameSync(tmp, p);
    return p;
  }

  lrAt(step: number): number {
    const o = this.options;
    return lrAt(step, { lr: o.lr, minLr: o.minLr, warmupSteps: o.warmup, totalSteps: o.steps, kind: o.schedule });
  }

  /** One optimizer step over batch x accum sampled windows. */
  trainStep(): Extract<TrainEvent, { type: 'step' }> {
    const o = this.options;
    const t0 = performance.now();
    for (const g of this.grads.values()) g.fill(0);
    const n = o.batch * o.accum;
    const seed = this.scaler.scale / n;
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const w = this.sampler.nextTrain();
      loss += this.graph.accumulateGradients(this.params, w.ids, w.targets, seed, this.grads) / n;
    }
    this.step++;
    const lr = this.lrAt(this.step);
    let gradNorm: number;
    let clipCoef = 1;
    const scale = this.scaler.scale;
    const ok = this.scaler.unscale(this.grads);
    if (!ok) {
      gradNorm = Infinity; // overflow: skip the update, the scale was reduced
    } else if (o.clip > 0) {
      ({ norm: gradNorm, coef: clipCoef } = clipGradNorm(this.grads, o.clip, this.init.gemm?.optim));
    } else {
      gradNorm = globalNorm(this.grads, this.init.gemm?.optim);
    }
    if (ok) this.opt.step(this.params, this.grads, lr);
    this.graph.weightsChanged();
    const ms = performance.now() - t0;
    this.elapsedMs += ms;
    this.history.train.push({ step: this.step, loss, lr, gradNorm: Number.isFinite(gradNorm) ? gradNorm : -1 });
    const tokens = n * o.seqLen;
    const perStep = this.elapsedMs / Math.max(1, this.history.train.length);
    return {
      type: 'step', step: this.step, steps: o.steps, loss, lr, gradNorm, clipCoef, lossScale: scale, skipped: !ok, tokens, ms,
      tokPerS: (tokens * 1000) / ms, etaS: ((o.steps - this.step) * perStep) / 1000,
    };
  }

  /** Mean loss over the fixed validation windows (null without a validation split). */
  validate(): number | null {
    const ws = this.sampler.validation(this.options.evalBatches * this.options.batch);
    if (ws.length === 0) return null;
    let s = 0;
    for (const w of ws) s += this.graph.loss(this.params, w.ids, w.targets);
    return s / ws.length;
  }

  /** A short sample from the current weights (seeded, temperature 0.8), or null without a tokenizer. */
  async sample(maxTokens = this.options.sampleTokens): Promise<string | null> {
    if (this.tokenizer === undefined) {
      try {
        this.tokenizer = this.init.tokenizerPath === null ? null : loadTokenizer(this.init.tokenizerPath, this.config.vocab_size).tokenizer;
      } catch {
        this.tokenizer = null;
      }
    }
    const tok = this.tokenizer;
    if (tok === null) return null;
    const weights = toHostTensors(this.config, this.params);
    const ctx = Math.min(this.options.seqLen, maxTokens + 8);
    const stop = [...tok.eosIds, ...(tok.bosId !== null ? [tok.bosId] : [])];
    const r = await generate(
      { tokenizer: tok, stopTokenIds: stop, createSession: () => new InferenceSession(this.config, { get: (n) => weights.get(n) }, this.backends, ctx) },
      tok.bosId !== null ? [tok.bosId] : 'Once',
      { maxTokens, temperature: 0.8, topP: 0.95, seed: 42 },
    );
    return r.text;
  }

  /** Runs to `options.steps`, emitting events; stops early (after a checkpoint) when `signal` fires. */
  async run(emit: (e: TrainEvent) => void, signal?: AbortSignal): Promise<void> {
    const o = this.options;
    fs.mkdirSync(this.outDir, { recursive: true });
    cleanTempFiles(this.checkpointDir);
    let params = 0;
    for (const p of this.params.values()) params += p.length;
    emit({ type: 'start', step: this.step, steps: o.steps, parameters: params, tokensPerStep: o.batch * o.accum * o.seqLen, resumedFrom: this.resumedFrom });
    const t0 = performance.now();
    let lastCkpt = this.step;
    while (this.step < o.steps) {
      const ev = this.trainStep();
      emit(ev);
      const s = this.step;
      if (!Number.isFinite(ev.loss)) throw new RistrettoError('INVALID_ARGUMENT', `step ${s}: the loss is ${ev.loss}; lower --lr or enable loss scaling checks`);
      if (o.evalEvery > 0 && s % o.evalEvery === 0 && s < o.steps) {
        const v = this.validate();
        if (v !== null) {
          this.history.val.push({ step: s, loss: v });
          emit({ type: 'eval', step: s, valLoss: v });
        }
      }
      if (o.sampleEvery > 0 && s % o.sampleEvery === 0) {
        const text = await this.sample();
        if (text !== null) emit({ type: 'sample', step: s, text });
      }
      if (o.ckptEvery > 0 && s % o.ckptEvery === 0 && s < o.steps) {
        emit({ type: 'checkpoint', step: s, ...this.checkpoint() });
        lastCkpt = s;
      }
      // Let signals and I/O through between steps.
      await new Promise((r) => setImmediate(r));
      if (signal?.aborted) break;
    }
    let valLoss: number | null = null;
    if (this.step >= o.steps) {
      valLoss = this.validate();
      if (valLoss !== null && this.history.val.at(-1)?.step !== this.step) {
        this.history.val.push({ step: this.step, loss: valLoss });
        emit({ type: 'eval', step: this.step, valLoss });
      }
    }
    if (lastCkpt !== this.step || listCheckpoints(this.checkpointDir).at(-1)?.step !== this.step) emit({ type: 'checkpoint', step: this.step, ...this.checkpoint() });
    emit({ type: 'done', step: this.step, valLoss, ms: performance.now() - t0 });
  }
}
