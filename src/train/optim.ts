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

/** Optional fast optimizer arithmetic (the wasm kernels): the same float64 operations in the same order as
 *  the loops here, so results are bit-identical; used for arrays the kernels can reach in place. */
export interface OptimKernels {
  /** Whether `a` can be passed to the kernels in place. */
  resident(a: Arr): boolean;
  /** A zeroed float32 array the kernels reach in place. */
  alloc(n: number): Float32Array;
  /** One AdamW update of p/m/v from g (see AdamW.step). */
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, b1: number, b2: number, eps: number, decay: number, stepSize: number, bc2s: number): void;
  /** acc + the sum of g[i]^2 in index order (float64). */
  sumSquares(g: Float32Array, acc: number): number;
  /** g[i] *= s (float64 product rounded to float32). */
  scale(g: Float32Array, s: number): void;
  /** max |g[i]|, NaN when any value is NaN. */
  absMax(g: Float32Array): number;
}

const fastF32 = (k: OptimKernels | undefined, ...a: Arr[]): k is OptimKernels => k !== undefined && a.every((x) => x instanceof Float32Array && k.resident(x));

export const ADAMW_DEFAULTS: AdamWOptions = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, weightDecay1d: 0 };

export class AdamW {
  /** Steps taken (the bias-correction counter t). */
  t = 0;
  readonly m = new Map<string, Arr>();
  readonly v = new Map<string, Arr>();

  constructor(readonly o: AdamWOptions, readonly shapes: ReadonlyMap<string, readonly number[]>, readonly kernels?: OptimKernels) {}

  /** Moves the moments of `name` into the kernels' memory (fresh, or restored from a checkpoint); false when
   *  that memory is full (the moments then stay in JS arrays and the TypeScript loop runs). */
  private movedIn(name: string, k: OptimKernels): boolean {
    const m = this.m.get(name)!;
    const v = this.v.get(name)!;
    const inK = (a: Arr): boolean => a instanceof Float32Array && k.resident(a);
    if (inK(m) && inK(v)) return true;
    try {
      const m2 = inK(m) ? m : copyTo(k.alloc(m.length), m);
      const v2 = inK(v) ? v : copyTo(k.alloc(v.length), v);
      this.m.set(name, m2);
      this.v.set(name, v2);
      return true;
    } catch (e) {
      if (e instanceof RangeError) return false;
      throw e;
    }
  }

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
      const k = this.kernels;
      if (fastF32(k, p, g) && this.movedIn(name, k)) {
        k.adamw(p as Float32Array, g as Float32Array, this.m.get(name) as Float32Array, this.v.get(name) as Float32Array, b1, b2, eps, decay, stepSize, bc2s);
        continue;
      }
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

function copyTo(dst: Float32Array, src: Arr): Float32Array {
  dst.set(src);
  return dst;
}

/** sqrt(sum of squares) over every gradient (each name once: a tied weight counts once). */
export function globalNorm(grads: ReadonlyMap<string, Arr>, kernels?: OptimKernels): number {
  let ss = 0;
  for (const g of grads.values()) {
    if (fastF32(kernels, g)) ss = kernels.sumSquares(g as Float32Array, ss);
    else for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
  }
  return Math.sqrt(ss);
}

/** Scales every gradient by min(1, maxNorm / (norm + 1e-6)); returns the pre-clip norm and the coefficient. */
export function clipGradNorm(grads: ReadonlyMap<string, Arr>, maxNorm: number, kernels?: OptimKernels): { norm: number; coef: number } {
  const norm = globalNorm(grads, kernels);
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  if (coef < 1) scaleGrads(grads, coef, kernels);
  return { norm, coef };
}

export function scaleGrads(grads: ReadonlyMap<string, Arr>, s: number, kernels?: OptimKernels): void {
  for (const g of grads.values()) {
    if (fastF32(kernels, g)) kernels.scale(g as Float32Array, s);
    else for (let i = 0; i < g.length; i++) g[i] = g[i]! * s;
  }
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

  constructor(readonly o: LossScaleOptions, state?: LossScaleState, readonly kernels?: OptimKernels) {
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
      if (fastF32(this.kernels, g)) {
        const m = this.kernels.absMax(g as Float32Array);
        if (!(m <= lim) || !Number.isFinite(m)) {
          overflow = true;
          break outer;
        }
        continue;
      }
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
    if (this.state.scale !== 1) scaleGrads(grads, 1 / this.state.scale, this.kernels);
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
