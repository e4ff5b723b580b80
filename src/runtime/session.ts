// An inference session: one sequence's KV cache (allocated once, at creation) and its position.
// `forward` feeds tokens at the current position and returns logits.

import type { Backend, ExecContext } from '../backends/backend.js';
import { runGraphOutput } from '../backends/backend.js';
import { ContextLengthError, InvalidArgumentError } from '../errors.js';
import type { Graph } from '../graph/graph.js';
import type { HostTensor } from '../formats/tensor.js';
import { archInfo, buildGraph, defaultContextLength, type ModelConfig } from '../models/index.js';
import { argmax } from './sampler.js';

export interface WeightStore {
  /** The tensor of a weight; the same one for a name for as long as a session reads this store (a session keeps
   *  what it got from run to run). */
  get(name: string): HostTensor | undefined;
}

export class InferenceSession {
  readonly contextLength: number;
  private position = 0;
  private readonly states = new Map<string, Float32Array>();
  private readonly graphs = new Map<string, Graph>();
  /** The one-token decode graph (the hot path skips the map). */
  private decodeGraph: Graph | undefined;
  /** The tokens and positions of the current forward (read through the context). */
  private ids: Int32Array = new Int32Array(1);
  private positions: Int32Array = new Int32Array(1);
  /** One context for every run: the graphs' plans keep their param values between runs (stableWeights). */
  private readonly ctx: ExecContext;

  constructor(
    private readonly config: ModelConfig,
    private readonly weights: WeightStore,
    private readonly backends: readonly Backend[],
    contextLength?: number,
  ) {
    const info = archInfo(config);
    const n = contextLength ?? defaultContextLength(config);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`context length must be a positive integer, got ${n}`);
    if (n > info.maxPositions && !info.extendableContext) {
      throw new InvalidArgumentError(`context length ${n} exceeds the model's ${info.maxPositions} learned positions`);
    }
    this.contextLength = n;
    // Preallocate the whole KV cache now, so decoding never grows it (in the fast backend's memory when it
    // offers that: no second copy, nothing to copy in).
    const first = backends[0];
    const alloc = first?.allocState !== undefined ? (n: number) => first.allocState!(n) : (n: number) => new Float32Array(n);
    for (let l = 0; l < info.numLayers; l++) {
      this.states.set(`cache.k.${l}`, alloc(this.contextLength * info.kvDim));
      this.states.set(`cache.v.${l}`, alloc(this.contextLength * info.kvDim));
    }
    this.ctx = {
      stableWeights: true,
      weight: (name) => {
        const t = this.weights.get(name);
        if (t === undefined) throw new Error(`weight "${name}" is missing`);
        return t;
      },
      state: (name) => {
        const s = this.states.get(name);
        if (s === undefined) throw new Error(`state "${name}" was not allocated`);
        return s;
      },
      input: (name) => {
        if (name === 'ids') return this.ids;
        if (name === 'positions') return this.positions;
        throw new Error(`graph input "${name}" was not fed`);
      },
    };
  }

  /** Tokens already in the cache. */
  get pos(): number {
    return this.position;
  }

  /** Forget everything after the first `n` tokens (n = 0: start over). */
  rewind(n = 0): void {
    if (n < 0 || n > this.position) throw new InvalidArgumentError(`rewind(${n}): the session holds ${this.position} tokens`);
    this.position = n;
  }

  /**
   * Writes precomputed K/V rows for positions pos..pos+n-1 and advances the position, as if those tokens had
   * been fed (an ANE prefill handing its cache to the CPU decode). `k[l]` / `v[l]`: [n * kvDim] row-major per layer.
   */
  loadPrefix(n: number, k: readonly Float32Array[], v: readonly Float32Array[]): void {
    const info = archInfo(this.config);
    if (this.position + n > this.contextLength) throw new ContextLengthError(this.position + n, this.contextLength);
    if (k.length !== info.numLayers || v.length !== info.numLayers) throw new InvalidArgumentError(`loadPrefix: expected K/V for ${info.numLayers} layers`);
    for (let l = 0; l < info.numLayers; l++) {
      if (k[l]!.length !== n * info.kvDim || v[l]!.length !== n * info.kvDim) throw new InvalidArgumentError(`loadPrefix: layer ${l} needs ${n} x ${info.kvDim} values`);
      this.states.get(`cache.k.${l}`)!.set(k[l]!, this.position * info.kvDim);
      this.states.get(`cache.v.${l}`)!.set(v[l]!, this.position * info.kvDim);
    }
    this.position += n;
  }

  /**
   * Feeds `ids` at positions pos..pos+n-1 and returns logits: [vocab] for the last token, or
   * [n * vocab] for every token with `all`. The array is the caller's, unless `view`: then it may be a view of the
   * backend's memory, valid only until the next forward of any session on that backend (read it right away).
   */
  forward(ids: readonly number[], logits: 'last' | 'all' = 'last', view = false): Float32Array {
    const n = ids.length;
    if (n === 0) throw new InvalidArgumentError('forward: no tokens');
    if (this.position + n > this.contextLength) {
      throw new ContextLengthError(this.position + n, this.contextLength);
    }
    let g = n === 1 && logits === 'last' ? this.decodeGraph : undefined;
    if (g === undefined) {
      const key = `${n}:${logits}`;
      g = this.graphs.get(key);
      if (g === undefined) {
        g = buildGraph(this.config, { seqLen: n, cacheLen: this.contextLength, logits });
        this.graphs.set(key, g);
      }
      if (n === 1 && logits === 'last') this.decodeGraph = g;
    }
    // fresh arrays per run, except the one-token case (a run holds nothing of its inputs afterwards)
    if (this.ids.length !== n || n > 1) {
      this.ids = new Int32Array(n);
      this.positions = new Int32Array(n);
    }
    for (let i = 0; i < n; i++) {
      this.ids[i] = ids[i]!;
      this.positions[i] = this.position + i;
    }
    const out = runGraphOutput(g, this.backends, this.ctx, 'logits', view);
    this.position += n;
    return out.data as Float32Array;
  }

  /** Index of the first largest of `logits` (sampler.ts argmax, the same result), in the backend when the logits
   *  are a view of its memory (forward with `view`). */
  argmax(logits: Float32Array): number {
    const b = this.backends[0] as Partial<ArgmaxBackend> | undefined;
    if (b?.isResident !== undefined && b.argmax !== undefined && b.isResident(logits)) return b.argmax(logits);
    return argmax(logits);
  }
}

/** A backend that can find the argmax of logits in its own memory (the wasm backend: SIMD, no copy). */
interface ArgmaxBackend {
  isResident(a: ArrayBufferView): boolean;
  argmax(x: Float32Array): number;
}

/**
 * How many leading `ids` a cache holding `cached` can keep: their longest common prefix, less one when it
 * covers all of `ids` (at least one token must be fed to get logits).
 */
export function reusablePrefix(cached: readonly number[], ids: readonly number[]): number {
  let p = 0;
  while (p < cached.length && p < ids.length && cached[p] === ids[p]) p++;
  return p === ids.length ? p - 1 : p;
}

/** A view of `kv` whose first forward skips the `cached` ids already in the cache. */
export function prefixSession(kv: InferenceSession, cached: number): InferenceSession {
  let first = true;
  const view = {
    get contextLength() {
      return kv.contextLength;
    },
    get pos() {
      return kv.pos;
    },
    rewind: (n?: number) => kv.rewind(n),
    argmax: (logits: Float32Array) => kv.argmax(logits),
    forward(ids: readonly number[], logits: 'last' | 'all' = 'last', view = false): Float32Array {
      if (first) {
        first = false;
        return kv.forward(ids.slice(cached), logits, view);
      }
      return kv.forward(ids, logits, view);
    },
  };
  return view as unknown as InferenceSession;
}
