// Hybrid execution, the ANE engines' split: prefill runs the compiled bundle's programs (on the MIL
// interpreter, standing in for the ANE), decode runs on the CPU. The attention programs return each
// layer's K/V, which fill the CPU session's KV cache; the CPU then decodes from there.

import { referenceBackend } from '../backends/reference/index.js';
import { readBlobTensor } from '../compile/blob.js';
import type { LoadedBundle, ManifestProgram } from '../compile/bundle.js';
import { MASK_VALUE, ropeRows } from '../compile/lower-ane.js';
import { partitionGraph, type Partition } from '../compile/passes/partition.js';
import { buildGraph } from '../models/index.js';
import type { GenerationTarget } from './generate.js';
import type { Model } from './model.js';
import { runAnePrologue } from './ane-prologue.js';
import { InferenceSession } from './session.js';

export interface PrefillResult {
  /** Tokens run through the ANE programs (the first min(n, longest ANE prompt) of the prompt). */
  tokens: number;
  /** Chunks (1: the prompt fit one bucket; more: chunked prefill through the cache-input programs). */
  chunks: number;
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

  /** The longest prompt prefilled on the ANE programs (chunked prefill when the bundle has it). */
  get maxPrompt(): number {
    return this.loaded.manifest.chunked?.maxPrompt ?? this.maxBucket;
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
  private embed(ids: readonly number[], S: number, pos0 = 0): Float32Array {
    const part = this.partition(S);
    const padded = new Int32Array(S);
    padded.set(ids);
    // padding rows (never read by real rows: causal) keep in-range positions
    const positions = Int32Array.from({ length: S }, (_, i) => (i < ids.length ? pos0 + i : i));
    const params = this.model.parameters();
    return runAnePrologue(part, S, this.loaded.manifest.residualScale, (n) => params.get(n), (n) => (n === 'ids' ? padded : positions));
  }

  private head(): Float32Array {
    if (this.cpuHead === null) {
      const c = this.loaded.manifest.cpuClassifier!;
      this.cpuHead = readBlobTensor(this.loaded.bundle.blobs.get(c.weight)!, 64, c.vocab * c.dim, c.weight);
    }
    return this.cpuHead;
  }

  /**
   * Runs the prompt through the bundle's programs: up to the largest bucket in one pass (padded to the smallest
   * bucket that fits); longer prompts (with chunked-prefill programs) chunk by chunk at the largest bucket, the
   * first chunk on the ordinary programs, later ones on the chunked variants fed the K/V cache of the previous
   * chunks, the chunk mask and the chunk's RoPE rows. Tokens past maxPrompt are left to the caller (CPU).
   */
  prefill(ids: readonly number[], rows: 'all' | 'last' = 'all'): PrefillResult {
    const m = this.loaded.manifest;
    const B = this.maxBucket;
    const n = Math.min(ids.length, this.maxPrompt);
    const L = m.model.numLayers;
    const kvDim = m.model.kvDim;
    const V = m.model.vocab;
    if (n <= B) {
      const S = m.buckets.find((b) => b >= n)!;
      const progs = m.programs.filter((p) => p.bucket === S && p.chunk === undefined);
      const r = this.runChunk(progs, ids.slice(0, n), S, 0, rows === 'all' ? 0 : n - 1, {});
      return { tokens: n, chunks: 1, bucket: S, logits: r.logits, k: r.k, v: r.v, programs: progs.map((p) => p.name) };
    }
    const ch = m.chunked!;
    const C = ch.cache;
    const plain = m.programs.filter((p) => p.bucket === B && p.chunk === undefined);
    const chunkProgs = plain.map((p) => m.programs.find((q) => q.chunk !== undefined && q.group === p.group) ?? p);
    const kc = Array.from({ length: L }, () => new Float32Array(kvDim * C));
    const vc = Array.from({ length: L }, () => new Float32Array(kvDim * C));
    const k = Array.from({ length: L }, () => new Float32Array(n * kvDim));
    const v = Array.from({ length: L }, () => new Float32Array(n * kvDim));
    const logits = new Float32Array((rows === 'all' ? n : 1) * V);
    const used = new Set<string>();
    let chunks = 0;
    for (let off = 0; off < n; off += B) {
      const len = Math.min(B, n - off);
      const first = rows === 'all' ? 0 : off + len === n ? len - 1 : len; // 'last': only the final row
      const extra: Record<string, Float32Array> = {};
      let progs = plain;
      if (off > 0) {
        progs = chunkProgs;
        const mask = new Float32Array(B * (C + B));
        for (let i = 0; i < B; i++) {
          const row = i * (C + B);
          for (let j = off; j < C; j++) mask[row + j] = MASK_VALUE;
          for (let j = i + 1; j < B; j++) mask[row + C + j] = MASK_VALUE;
        }
        extra['chunk_mask'] = mask;
        if (ch.rope !== null) {
          const r = ropeRows(ch.rope, off, B);
          extra['rope_cos'] = r.cos;
          extra['rope_sin'] = r.sin;
        }
        for (let l = 0; l < L; l++) {
          extra[`k_cache_l${l}`] = kc[l]!;
          extra[`v_cache_l${l}`] = vc[l]!;
        }
      }
      const r = this.runChunk(progs, ids.slice(off, off + len), B, off, first, extra);
      for (const p of progs) used.add(p.name);
      for (let l = 0; l < L; l++) {
        k[l]!.set(r.k[l]!, off * kvDim);
        v[l]!.set(r.v[l]!, off * kvDim);
        // append to the ANE-layout cache [kvDim, C] (columns off..off+len-1), when a later chunk will read it
        if (off + B < n) {
          for (let t = 0; t < len; t++) for (let c = 0; c < kvDim; c++) {
            kc[l]![c * C + off + t] = r.k[l]![t * kvDim + c]!;
            vc[l]![c * C + off + t] = r.v[l]![t * kvDim + c]!;
          }
        }
      }
      if (rows === 'all') logits.set(r.logits, off * V);
      else if (off + len === n) logits.set(r.logits);
      chunks++;
    }
    return { tokens: n, chunks, bucket: B, logits, k, v, programs: [...used] };
  }

  /** One pass of `progs` over `ids` (padded to S) at positions pos0..; logits of rows first..len-1. */
  private runChunk(progs: ManifestProgram[], ids: readonly number[], S: number, pos0: number, first: number, extra: Record<string, Float32Array>): { logits: Float32Array; k: Float32Array[]; v: Float32Array[] } {
    const m = this.loaded.manifest;
    const n = ids.length;
    let x = this.embed(ids, S, pos0);
    const L = m.model.numLayers;
    const kvDim = m.model.kvDim;
    const k: Float32Array[] = new Array(L);
    const v: Float32Array[] = new Array(L);
    let logits: Float32Array | null = null;
    const V = m.model.vocab;
    const nr = Math.max(0, n - first);
    const take = (data: Float32Array | Int32Array, C: number): Float32Array => {
      const o = new Float32Array(n * C);
      for (let c = 0; c < C; c++) for (let t = 0; t < n; t++) o[t * C + c] = data[c * S + t]!;
      return o;
    };
    for (const p of progs) {
      const out = this.runProgram(p, x, extra);
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
          logits = nr > 0 ? cpuClassifier(this.head(), t.data as Float32Array, V, m.model.dim, S, first, n) : new Float32Array(0);
        }
      }
    }
    if (logits === null) throw new Error('bundle: no program produced logits or the final hidden state');
    for (let l = 0; l < L; l++) if (k[l] === undefined || v[l] === undefined) throw new Error(`bundle: no program returned K/V of layer ${l}`);
    return { logits, k, v };
  }

  private runProgram(p: ManifestProgram, x: Float32Array, extra: Record<string, Float32Array>): Record<string, { data: Float32Array | Int32Array }> {
    const interp = this.loaded.programs.get(p.name);
    if (interp === undefined) throw new Error(`bundle: program ${p.name} is not loaded`);
    const inputs: Record<string, Float32Array> = { x };
    for (const io of p.inputs) if (io.name !== 'x') inputs[io.name] = extra[io.name]!;
    return interp.run(inputs);
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
    const r = this.sim.prefill(ids, logits === 'all' || ids.length > this.sim.maxPrompt ? 'all' : 'last');
    this.lastPrefill = r;
    this.loadPrefix(r.tokens, r.k, r.v);
    if (r.tokens === ids.length) return r.logits;
    // Longer than the ANE prefill serves: the rest of the prompt on the CPU, attending to the ANE's K/V.
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
