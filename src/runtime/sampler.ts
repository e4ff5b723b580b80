// Token samplers. The default pipeline is:
//   penalties -> (temperature 0: argmax) -> temperature -> top-k -> softmax -> min-p -> top-p -> draw.
// With only temperature and top-p set it is exactly llama2.c run.c's `sample()` (float32 steps,
// the (1-topp)/(n-1) cutoff pre-filter, sort by probability, the same xorshift64* coin), so seeded
// llama2.c outputs reproduce; `sampler: 'llama2c'` additionally refuses options run.c lacks.

import { InvalidArgumentError } from '../errors.js';
import { XorShiftRng, randomSeed } from './rng.js';

export interface SamplerOptions {
  /** 0 = greedy. Default 1.0 (run.c's default). */
  temperature?: number;
  /** Nucleus sampling mass in (0, 1]; 1 disables. Default 0.9 (run.c's default). */
  topP?: number;
  /** Keep the k most likely tokens; 0 disables. */
  topK?: number;
  /** Drop tokens whose probability is below minP x the top probability; 0 disables. */
  minP?: number;
  /** llama.cpp-style: logits of tokens seen in the last `penaltyWindow` tokens are divided (if > 0) or multiplied by it. 1 disables. */
  repetitionPenalty?: number;
  /** OpenAI-style penalties subtracted from the logits of seen tokens. */
  presencePenalty?: number;
  frequencyPenalty?: number;
  penaltyWindow?: number;
  /** RNG seed; random when absent. */
  seed?: number;
  /** `llama2c`: exactly run.c's sampler; options it lacks are rejected. */
  sampler?: 'default' | 'llama2c';
}

export const SAMPLER_DEFAULTS = { temperature: 1.0, topP: 0.9 } as const;

const f = Math.fround;

/** Index of the first maximum (run.c sample_argmax). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  let max = x[0]!;
  for (let i = 1; i < x.length; i++) {
    if (x[i]! > max) {
      max = x[i]!;
      best = i;
    }
  }
  return best;
}

/** argmax for a Float32Array (one element type: the hot loop of greedy decoding stays monomorphic). */
function argmaxF32(x: Float32Array): number {
  let best = 0;
  let max = x[0]!;
  for (let i = 1; i < x.length; i++) {
    const v = x[i]!;
    if (v > max) {
      max = v;
      best = i;
    }
  }
  return best;
}

/** In-place float32 softmax as run.c computes it. */
export function softmaxF32(x: Float32Array): void {
  let max = x[0]!;
  for (let i = 1; i < x.length; i++) if (x[i]! > max) max = x[i]!;
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    x[i] = Math.exp(f(x[i]! - max));
    sum = f(sum + x[i]!);
  }
  for (let i = 0; i < x.length; i++) x[i] = x[i]! / sum;
}

export class Sampler {
  readonly seed: number;
  private readonly rng: XorShiftRng;
  private readonly o: Required<Omit<SamplerOptions, 'seed' | 'sampler'>>;
  private probs: Float32Array = new Float32Array(0);
  private order: Int32Array = new Int32Array(0);
  /** Whether any penalty is on. */
  private readonly penalized: boolean;

  /** `fast.argmax`: the same result as argmax(), faster where the logits live (the session's: the wasm backend's
   *  SIMD argmax over logits still in its memory), for greedy decoding. */
  constructor(options: SamplerOptions = {}, private readonly fast: { argmax?: (x: Float32Array) => number } = {}) {
    this.o = {
      temperature: options.temperature ?? SAMPLER_DEFAULTS.temperature,
      topP: options.topP ?? SAMPLER_DEFAULTS.topP,
      topK: options.topK ?? 0,
      minP: options.minP ?? 0,
      repetitionPenalty: options.repetitionPenalty ?? 1,
      presencePenalty: options.presencePenalty ?? 0,
      frequencyPenalty: options.frequencyPenalty ?? 0,
      penaltyWindow: options.penaltyWindow ?? 64,
    };
    const o = this.o;
    const check = (ok: boolean, msg: string): void => {
      if (!ok) throw new InvalidArgumentError(msg);
    };
    check(Number.isFinite(o.temperature) && o.temperature >= 0, `temperature must be >= 0, got ${o.temperature}`);
    check(o.topP > 0 && o.topP <= 1, `top-p must be in (0, 1], got ${o.topP}`);
    check(Number.isInteger(o.topK) && o.topK >= 0, `top-k must be a non-negative integer, got ${o.topK}`);
    check(o.minP >= 0 && o.minP < 1, `min-p must be in [0, 1), got ${o.minP}`);
    check(o.repetitionPenalty > 0, `repetition penalty must be > 0, got ${o.repetitionPenalty}`);
    if (options.sampler === 'llama2c') {
      check(o.topK === 0 && o.minP === 0 && o.repetitionPenalty === 1 && o.presencePenalty === 0 && o.frequencyPenalty === 0,
        'the llama2c sampler supports only temperature, top-p and seed');
    }
    const seed = options.seed ?? randomSeed();
    check(Number.isInteger(seed) && seed > 0, `seed must be a positive integer, got ${seed}`);
    this.seed = seed;
    this.rng = new XorShiftRng(seed);
    this.penalized = !(o.repetitionPenalty === 1 && o.presencePenalty === 0 && o.frequencyPenalty === 0);
  }

  /** Picks the next token from `logits` (not modified); `history` = tokens so far (for penalties). */
  sample(logits: Float32Array, history: readonly number[] = []): number {
    const o = this.o;
    // greedy without penalties: the logits as they are (no copy)
    if (o.temperature === 0 && !this.penalized) return this.fast.argmax !== undefined ? this.fast.argmax(logits) : argmaxF32(logits);
    const n = logits.length;
    if (this.probs.length !== n) {
      this.probs = new Float32Array(n);
      this.order = new Int32Array(n);
    }
    const p = this.probs;
    p.set(logits);
    this.applyPenalties(p, history);
    if (o.temperature === 0) return argmax(p);
    const temp = f(o.temperature); // run.c keeps temperature and top-p as float32
    for (let i = 0; i < n; i++) p[i] = p[i]! / temp;
    if (o.topK > 0 && o.topK < n) keepTopK(p, o.topK);
    softmaxF32(p);
    let truncated = o.topK > 0 && o.topK < n;
    if (o.minP > 0) {
      const cut = f(o.minP * p[argmax(p)]!);
      for (let i = 0; i < n; i++) if (p[i]! < cut) p[i] = 0;
      truncated = true;
    }
    const coin = this.rng.nextF32();
    if (o.topP >= 1) return sampleMult(p, coin, truncated);
    return this.sampleTopP(p, o.topP, coin);
  }

  private applyPenalties(p: Float32Array, history: readonly number[]): void {
    const o = this.o;
    if (o.repetitionPenalty === 1 && o.presencePenalty === 0 && o.frequencyPenalty === 0) return;
    const counts = new Map<number, number>();
    for (let i = Math.max(0, history.length - o.penaltyWindow); i < history.length; i++) {
      const t = history[i]!;
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    for (const [t, c] of counts) {
      if (t < 0 || t >= p.length) continue;
      let v = p[t]!;
      if (o.repetitionPenalty !== 1) v = v > 0 ? v / o.repetitionPenalty : v * o.repetitionPenalty;
      v -= o.presencePenalty + o.frequencyPenalty * c;
      p[t] = v;
    }
  }

  // run.c sample_topp: pre-filter by (1-topp)/(n-1), sort descending, cut where the cumulative
  // probability first exceeds topp, draw within the kept mass.
  private sampleTopP(p: Float32Array, toppIn: number, coin: number): number {
    const n = p.length;
    const topp = f(toppIn);
    const cutoff = f(f(1 - topp) / (n - 1));
    const idx = this.order;
    let n0 = 0;
    for (let i = 0; i < n; i++) if (p[i]! >= cutoff) idx[n0++] = i;
    const kept = Array.from(idx.subarray(0, n0));
    kept.sort((a, b) => p[b]! - p[a]! || a - b);
    let cum = 0;
    let last = n0 - 1;
    for (let i = 0; i < n0; i++) {
      cum = f(cum + p[kept[i]!]!);
      if (cum > topp) {
        last = i;
        break;
      }
    }
    const r = f(coin * cum);
    let cdf = 0;
    for (let i = 0; i <= last; i++) {
      cdf = f(cdf + p[kept[i]!]!);
      if (r < cdf) return kept[i]!;
    }
    return kept[last]!;
  }
}

/** run.c sample_mult; when earlier steps zeroed tokens the coin is scaled to the kept mass. */
function sampleMult(p: Float32Array, coin: number, truncated: boolean): number {
  let r = coin;
  if (truncated) {
    let total = 0;
    for (let i = 0; i < p.length; i++) total = f(total + p[i]!);
    r = f(coin * total);
  }
  let cdf = 0;
  for (let i = 0; i < p.length; i++) {
    cdf = f(cdf + p[i]!);
    if (r < cdf) return i;
  }
  return p.length - 1;
}

function keepTopK(x: Float32Array, k: number): void {
  const sorted = Float32Array.from(x).sort();
  const kth = sorted[x.length - k]!;
  // Ties at the threshold are kept (they are equally likely).
  for (let i = 0; i < x.length; i++) if (x[i]! < kth) x[i] = -Infinity;
}
