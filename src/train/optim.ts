// AdamW (decoupled weight decay, torch.optim.AdamW semantics), the learning-rate schedule,
// global-norm clipping (torch.nn.utils.clip_grad_norm_ semantics) and loss scaling for fp16 compute.

import type { Arr } from './gemm.js';
import { zerosLike } from './gemm.js';

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay on 2-D tensors (matrices and embeddings). */
  weightDecay: number;
  /** Weight decay on 1-D tensors (norm weights, biases). Default 0. */
  weightDecay1d?: number;
}

export const ADAMW_DEFAULTS: AdamWOptions = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, weightDecay1d: 0 };

export class AdamW {
  /** Steps taken (the bias-correction counter t). */
  t = 0;
  readonly m = new Map<string, Arr>();
  readonly v = new Map<string, Arr>();

  constructor(readonly o: AdamWOptions, readonly shapes: ReadonlyMap<string, readonly number[]>) {}

  decayFor(name: string): number {
    const shape = this.shapes.get(name);
    return shape !== undefined && shape.length >= 2 ? this.o.weightDecay : (this.o.weightDecay1d ?? 0);
  }

  /**
   * One step with learning rate `lr` on every parameter:
   * p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
   */
  step(params: Map<string, Arr>, grads: ReadonlyMap<string, Arr>, lr: number): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps } = this.o;
    const bc1 = 1 - Math.pow(b1, this.t);
    const bc2s = Math.sqrt(1 - Math.pow(b2, this.t));
    const stepSize = lr / bc1;
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (g === undefined) throw new Error(`AdamW: no gradient for "${name}"`);
      let m = this.m.get(name);
      let v = this.v.get(name);
      if (m === undefined || v === undefined) {
        m = zerosLike(p, p.length);
        v = zerosLike(p, p.length);
        this.m.set(name, m);
        this.v.set(name, v);
      }
      const decay = 1 - lr * this.decayFor(name);
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        const mi = b1 * m[i]! + (1 - b1) * gi;
        const vi = b2 * v[i]! + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / bc2s + eps);
      }
    }
  }
}

/** sqrt(sum of squares) over every gradient (each name once: a tied weight counts once). */
export function globalNorm(grads: ReadonlyMap<string, Arr>): number {
  let ss = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
  return Math.sqrt(ss);
}

/** Scales every gradient by min(1, maxNorm / (norm + 1e-6)); returns the pre-clip norm and the coefficient. */
export function clipGradNorm(grads: ReadonlyMap<string, Arr>, maxNorm: number): { norm: number; coef: number } {
  const norm = globalNorm(grads);
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  if (coef < 1) scaleGrads(grads, coef);
  return { norm, coef };
}

export function scaleGrads(grads: ReadonlyMap<string, Arr>, s: number): void {
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] = g[i]! * s;
}

export interface ScheduleOptions {
  /** Peak learning rate. */
  lr: number;
  /** Linear warmup steps (from lr/warmup to lr). */
  warmupSteps: number;
  /** Total steps; the cosine decay reaches minLr here. */
  totalSteps: number;
  /** Floor of the cosine decay. */
  minLr: number;
  kind: 'cosine' | 'constant';
}

/** Learning rate of step `step` (1-based): linear warmup, then cosine decay to the floor. */
export function lrAt(step: number, s: ScheduleOptions): number {
  if (s.kind === 'constant') return s.lr;
  if (s.warmupSteps > 0 && step <= s.warmupSteps) return (s.lr * step) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const ratio = Math.min(1, Math.max(0, (step - s.warmupSteps) / span));
  return s.minLr + 0.5 * (1 + Math.cos(Math.PI * ratio)) * (s.lr - s.minLr);
}

export interface LossScaleOptions {
  /** none: scale 1; static: a fixed scale; dynamic: halve on overflow (the step is skipped), double after `growthInterval` good steps. */
  mode: 'none' | 'static' | 'dynamic';
  initScale: number;
  growthInterval: number;
  growthFactor: number;
  backoffFactor: number;
  /** Largest finite gradient magnitude the compute type holds (fp16: 65504); beyond counts as overflow. */
  maxFinite: number;
}

export const LOSS_SCALE_DEFAULTS: LossScaleOptions = {
  mode: 'none', initScale: 65536, growthInterval: 2000, growthFactor: 2, backoffFactor: 0.5, maxFinite: Infinity,
};

export interface LossScaleState {
  scale: number;
  goodSteps: number;
  skipped: number;
}

/** Loss scaling: the loss gradient is multiplied by `scale`; gradients are checked and unscaled before clipping. */
export class LossScaler {
  state: LossScaleState;

  constructor(readonly o: LossScaleOptions, state?: LossScaleState) {
    this.state = state ?? { scale: o.mode === 'none' ? 1 : o.initScale, goodSteps: 0, skipped: 0 };
  }

  get scale(): number {
    return this.state.scale;
  }

  /**
   * Checks the scaled gradients for overflow (non-finite or beyond maxFinite) and unscales them.
   * Returns false when the step must be skipped (the scale is then reduced in dynamic mode).
   */
  unscale(grads: ReadonlyMap<string, Arr>): boolean {
    const lim = this.o.maxFinite;
    let overflow = false;
    outer: for (const g of grads.values()) {
      for (let i = 0; i < g.length; i++) {
        const x = g[i]!;
        if (!(Math.abs(x) <= lim) || !Number.isFinite(x)) {
          overflow = true;
          break outer;
        }
      }
    }
    if (overflow) {
      this.state.skipped++;
      this.state.goodSteps = 0;
      if (this.o.mode === 'dynamic') this.state.scale = Math.max(1, this.state.scale * this.o.backoffFactor);
      return false;
    }
    if (this.state.scale !== 1) scaleGrads(grads, 1 / this.state.scale);
    if (this.o.mode === 'dynamic') {
      this.state.goodSteps++;
      if (this.state.goodSteps >= this.o.growthInterval) {
        this.state.scale *= this.o.growthFactor;
        this.state.goodSteps = 0;
      }
    }
    return true;
  }
}
