// Hybrid execution, the ANE engines' split: prefill runs the compiled bundle's programs (on the MIL
// interpreter, standing in for the ANE), decode runs on the CPU. The attention programs return each
// layer's K/V, which fill the CPU session's KV cache; the CPU then decodes from there.

import { referenceBackend } from '../backends/reference/index.js';
import type { Dense, ExecContext, Value } from '../backends/backend.js';
import { readBlobTensor } from '../compile/blob.js';
import type { LoadedBundle, ManifestProgram } from '../compile/bundle.js';
import { roundF16InPlace } from '../compile/fp16.js';
import { partitionGraph, type Partition } from '../compile/passes/partition.js';
import type { Kernel } from '../backends/backend.js';
import { buildGraph } from '../models/index.js';
import type { GenerationTarget } from './generate.js';
import type { Model } from './model.js';
import { InferenceSession } from './session.js';

export interface PrefillResult {
  /** Tokens run through the ANE programs (the first min(n, largest bucket) of the prompt). */
  tokens: number;
  bucket: number;
  /** Logits [tokens * vocab] ('all') or [vocab] for the last token ('last'). */
  logits: Float32Array;
  /** Per layer, K and V rows [tokens * kvDim] (fp16 values). */
  k: Float32Array[];
  v: Float32Array[];
  programs: string[];
}

export class AneSimulator {
  private readonly parts = new Map<number, Partition>();
  private cpuHead: Float32Array | null = null;

  constructor(
    readonly loaded: LoadedBundle,
    private readonly model: Pick<Model, 'config' | 'parameters'>,
  ) {}

  get maxBucket(): number {
    const b = this.loaded.manifest.buckets;
    return b[b.length - 1]!;
  }

  private partition(S: number): Partition {
    let p = this.parts.get(S);
    if (p === undefined) {
      p = partitionGraph(buildGraph(this.model.config, { seqLen: S, cacheLen: null, logits: 'all' }));
      this.parts.set(S, p);
    }
    return p;
  }

  /** The prologue (embeddings) on the CPU in fp32, returned in the ANE layout [1, D, 1, S], scaled and rounded to fp16. */
  private embed(ids: readonly number[], S: number): Float32Array {
    const part = this.partition(S);
    const g = part.graph;
    const padded = new Int32Array(S);
    padded.set(ids);
    const positions = Int32Array.from({ length: S }, (_, i) => i);
    const params = this.model.parameters();
    const ctx: ExecContext = {
      weight: (n) => {
        const t = params.get(n);
        if (t === undefined) throw new Error(`weight "${n}" is missing`);
        return t;
      },
      state: () => {
        throw new Error('no state in the prologue');
      },
      input: (n) => (n === 'ids' ? padded : positions),
    };
    const vals = new Map<number, Value>();
    const need = new Set<number>(part.prologue);
    for (const id of part.prologue) for (const i of g.node(id).inputs) need.add(i);
    for (const id of [...need].sort((a, b) => a - b)) {
      const n = g.node(id);
      const k = referenceBackend.kernels[n.op] as Kernel | undefined;
      if (k === undefined) throw new Error(`no reference kernel for ${n.op}`);
      vals.set(id, k(n, n.inputs.map((i) => vals.get(i)!), ctx));
    }
    const x0 = (vals.get(part.residual0) as Dense).data as Float32Array;
    const D = g.node(part.residual0).shape[1]!;
    const a = this.loaded.manifest.residualScale;
    const out = new Float32Array(D * S);
    for (let s = 0; s < S; s++) for (let d = 0; d < D; d++) out[d * S + s] = x0[s * D + d]! * a;
    return roundF16InPlace(out);
  }

  private head(): Float32Array {
    if (this.cpuHead === null) {
      const c = this.loaded.manifest.cpuClassifier!;
      this.cpuHead = readBlobTensor(this.loaded.bundle.blobs.get(c.weight)!, 64, c.vocab * c.dim, c.weight);
    }
    return this.cpuHead;
  }

  /** Runs the first min(n, largest bucket) prompt tokens through the bundle's programs. */
  prefill(ids: readonly number[], rows: 'all' | 'last' = 'all'): PrefillResult {
    const m = this.loaded.manifest;
    const n = Math.min(ids.length, this.maxBucket);
    const S = m.buckets.find((b) => b >= n)!;
    const progs = m.programs.filter((p) => p.bucket === S);
    let x = this.embed(ids.slice(0, n), S);
    const L = m.model.numLayers;
    const kvDim = m.model.kvDim;
    const k: Float32Array[] = new Array(L);
    const v: Float32Array[] = new Array(L);
    let logits: Float32Array | null = null;
    const V = m.model.vocab;
    const first = rows === 'all' ? 0 : n - 1;
    const nr = n - first;
    const take = (data: Float32Array | Int32Array, C: number): Float32Array => {
      const o = new Float32Array(n * C);
      for (let c = 0; c < C; c++) for (let t = 0; t < n; t++) o[t * C + c] = data[c * S + t]!;
      return o;
    };
    for (const p of progs) {
      const out = this.runProgram(p, x);
      for (const io of p.outputs) {
        const t = out[io.name]!;
        if (io.role === 'residual') x = t.data as Float32Array;
        else if (io.role === 'k') k[io.layer!] = take(t.data, kvDim);
        else if (io.role === 'v') v[io.layer!] = take(t.data, kvDim);
        else if (io.role === 'logits') {
          logits = new Float32Array(nr * V);
          const d = t.data as Float32Array;
          for (let c = 0; c < V; c++) for (let r = first; r < n; r++) logits[(r - first) * V + c] = d[c * S + r]!;
        } else if (io.role === 'hidden') {
          logits = cpuClassifier(this.head(), t.data as Float32Array, V, m.model.dim, S, first, n);
        }
      }
    }
    if (logits === null) throw new Error('bundle: no program produced logits or the final hidden state');
    for (let l = 0; l < L; l++) if (k[l] === undefined || v[l] === undefined) throw new Error(`bundle: no program returned K/V of layer ${l}`);
    return { tokens: n, bucket: S, logits, k, v, programs: progs.map((p) => p.name) };
  }

  private runProgram(p: ManifestProgram, x: Float32Array): Record<string, { data: Float32Array | Int32Array }> {
    const interp = this.loaded.programs.get(p.name);
    if (interp === undefined) throw new Error(`bundle: program ${p.name} is not loaded`);
    return interp.run({ x });
  }
}

/**
 * The CPU classifier: fp16 weights [V, D] (exact fp16 values), tiled over the vocabulary (256 rows a tile) so a
 * tile's rows stay in cache while every position is scored; fp32 accumulation. `h` is [1, D, 1, S] (ANE layout).
 */
export function cpuClassifier(w: Float32Array, h: Float32Array, V: number, D: number, S: number, first: number, n: number): Float32Array {
  const rows = n - first;
  const hx = new Float32Array(rows * D);
  for (let d = 0; d < D; d++) for (let t = first; t < n; t++) hx[(t - first) * D + d] = h[d * S + t]!;
  const out = new Float32Array(rows * V);
  const TILE = 256;
  for (let v0 = 0; v0 < V; v0 += TILE) {
    const v1 = Math.min(V, v0 + TILE);
    for (let t = 0; t < rows; t++) {
      const ho = t * D;
      for (let v = v0; v < v1; v++) {
        let acc = 0;
        const wo = v * D;
        for (let d = 0; d < D; d++) acc += w[wo + d]! * hx[ho + d]!;
        out[t * V + v] = acc;
      }
    }
  }
  return out;
}

/** Index of the largest value (the CPU classifier's argmax). */
export function argmaxF32(a: Float32Array, off = 0, n = a.length - off): number {
  let best = off;
  for (let i = off + 1; i < off + n; i++) if (a[i]! > a[best]!) best = i;
  return best - off;
}

/** A session whose first forward (the prompt) runs on the ANE programs; later tokens decode on the CPU. */
export class AneSimSession extends InferenceSession {
  lastPrefill: PrefillResult | null = null;

  constructor(
    private readonly sim: AneSimulator,
    model: Model,
    contextLength?: number,
  ) {
    const params = model.parameters();
    super(model.config, { get: (n) => params.get(n) }, [referenceBackend], contextLength ?? model.contextLength);
  }

  override forward(ids: readonly number[], logits: 'last' | 'all' = 'last'): Float32Array {
    if (this.pos !== 0 || ids.length === 0) return super.forward(ids, logits);
    const r = this.sim.prefill(ids, logits === 'all' || ids.length > this.sim.maxBucket ? 'all' : 'last');
    this.lastPrefill = r;
    this.loadPrefix(r.tokens, r.k, r.v);
    if (r.tokens === ids.length) return r.logits;
    // Longer than the largest bucket: the rest of the prompt on the CPU, attending to the ANE's K/V.
    const rest = super.forward(ids.slice(r.tokens), logits);
    if (logits === 'last') return rest;
    const all = new Float32Array(r.logits.length + rest.length);
    all.set(r.logits);
    all.set(rest, r.logits.length);
    return all;
  }
}

/** A generation target (for generate / generateStream) that prefills on the simulated ANE. */
export function aneSimTarget(model: Model, sim: AneSimulator): GenerationTarget {
  return { tokenizer: model.tokenizer, stopTokenIds: model.stopTokenIds, createSession: () => new AneSimSession(sim, model) };
}
