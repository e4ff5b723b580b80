// The placement plan: what runs where, and why.
// - Prefill: ANE programs at fixed sequence-length buckets (prompt padded to the smallest bucket that fits).
// - Decode: CPU (one token per step: the ~60-80 us dispatch of every program outweighs a token's work).
// - Classifier: ANE when vocab x dim <= 16M fp16 elements (fits the ~32 MB SRAM), else CPU fp16 tiled matvec + argmax.
// - Compile budget: programs x buckets <= 100 per process; the plan fuses more layers per program, then
//   drops buckets, and fails clearly when nothing fits.
// - Chunked prefill: prompts longer than the largest bucket B run through the ANE programs chunk by chunk (B tokens
//   a chunk, the last one padded). Every program that holds attention gets a second, chunked-prefill variant at B
//   (FFN and classifier programs are position-free and serve every chunk as they are) taking, per layer, the K/V
//   cache of the previous chunks as inputs [1, kvDim, 1, C] (C = cache length, a multiple of B), an fp16 mask input
//   [1, 1, B, C + B] (cache columns < offset and the causal triangle of the chunk: 0, the rest -10000) and the
//   chunk's RoPE cos/sin rows [1, 1, hd, B] as inputs, so one program serves every chunk offset. The first chunk
//   runs the ordinary (no-cache) programs. The extra programs count against the compile budget.
// - IOSurface rules on every input/output: spatial stride padded to 32, at least 49,152 bytes.
// - Encoders (BERT, bidirectional Qwen3): no classifier and no decode; the last program (`output`) returns the
//   final hidden states for pooling on the host, and attention programs take the key-padding mask as an input.

import { RistrettoError } from '../errors.js';

export const COMPILE_BUDGET = 100;
export const CLASSIFIER_ANE_LIMIT = 16 * 1024 * 1024;
export const SRAM_BYTES = 32 * 1024 * 1024;
export const IOSURFACE_MIN_BYTES = 49152;
export const SPATIAL_ALIGN = 32;
export const MAX_BUCKET = 4096;
export const DISPATCH_US = 70;

export interface PlanInput {
  architecture: string;
  numLayers: number;
  dim: number;
  vocab: number;
  buckets: number[];
  /** Compiles allowed per process (default 100). */
  budget?: number;
  /** 0: separate attention and FFN programs per layer; N >= 1: N whole layers per program; undefined: choose. */
  layersPerProgram?: number;
  /** Most layers the plan will fuse into one program before it drops buckets (default 4). */
  maxLayersPerProgram?: number;
  /** Override of the 16M-element classifier limit (tests force the CPU head on small models with it). */
  classifierLimit?: number;
  /** An encoder: no classifier (the output program returns the final hidden states), no decode, mask input. */
  encoder?: boolean;
  /** Encoder with post-norm blocks (BERT): recorded in the reasons. */
  postNorm?: boolean;
  /** Decoders: the longest prompt the ANE prefill serves. Longer than the largest bucket B: chunked-prefill
   *  programs at B with a K/V cache of C = roundUp(maxPrompt - B, B) columns (C + B <= 4096). Default: none. */
  maxPrompt?: number;
}

/** Chunked prefill: prompts longer than the largest bucket run chunk by chunk through cache-input programs. */
export interface ChunkPlan {
  /** Chunk length: the largest bucket. */
  bucket: number;
  /** Cache columns C of the K/V cache inputs (a multiple of the bucket). */
  cache: number;
  /** Longest prompt prefilled on the ANE (C + bucket); longer prompts finish on the CPU. */
  maxPrompt: number;
  /** Program groups with a chunked-prefill variant (the ones holding attention). */
  groups: string[];
  reason: string;
}

export interface ProgramGroup {
  /** Program name stem, e.g. l3_attn, l3_ffn, l0-1 (fused), classifier / final_norm. */
  name: string;
  kind: 'attention' | 'ffn' | 'layers' | 'classifier' | 'output';
  layers: number[];
  /** Kernel names it fuses (from the partition). */
  kernels: string[];
}

export interface Plan {
  architecture: string;
  buckets: number[];
  budget: number;
  layersPerProgram: number;
  groups: ProgramGroup[];
  programsPerBucket: number;
  totalPrograms: number;
  /** Chunked prefill programs (null: prompts longer than the largest bucket finish on the CPU). */
  chunked: ChunkPlan | null;
  prefill: { device: 'ane'; reason: string };
  /** Encoders: device 'none' (nothing is decoded). */
  decode: { device: 'cpu' | 'none'; reason: string };
  /** Encoders: device 'none' (no classifier; the output program returns the final hidden states). */
  classifier: { device: 'ane' | 'cpu' | 'none'; elements: number; limit: number; reason: string };
  /** Every decision, in order, in words. */
  reasons: string[];
}

export function roundUp(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}

/** IOSurface of a [1, C, 1, S] fp16 tensor: spatial stride padded to 32, at least 49,152 bytes. */
export function ioSurface(shape: readonly number[]): { stride: number; bytes: number; surfaceBytes: number; padded: boolean; note: string } {
  const S = shape[shape.length - 1]!;
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const stride = roundUp(S, SPATIAL_ALIGN);
  const bytes = rows * stride * 2;
  const surfaceBytes = Math.max(bytes, IOSURFACE_MIN_BYTES);
  const notes: string[] = [];
  if (stride !== S) notes.push(`spatial ${S} padded to ${stride}`);
  if (bytes < IOSURFACE_MIN_BYTES) notes.push(`${bytes} B raised to the ${IOSURFACE_MIN_BYTES} B minimum (smaller surfaces fail with status 0x1d)`);
  return { stride, bytes, surfaceBytes, padded: notes.length > 0, note: notes.join('; ') || 'fits as is' };
}

function groupsFor(L: number, f: number, cpuClassifier: boolean, encoder = false): ProgramGroup[] {
  const gs: ProgramGroup[] = [];
  if (f === 0) {
    for (let l = 0; l < L; l++) {
      gs.push({ name: `l${l}_attn`, kind: 'attention', layers: [l], kernels: [`l${l}_attn`] });
      gs.push({ name: `l${l}_ffn`, kind: 'ffn', layers: [l], kernels: [`l${l}_ffn`] });
    }
  } else {
    for (let l = 0; l < L; l += f) {
      const ls = Array.from({ length: Math.min(f, L - l) }, (_, i) => l + i);
      gs.push({ name: ls.length === 1 ? `l${l}` : `l${l}-${ls[ls.length - 1]}`, kind: 'layers', layers: ls, kernels: ls.flatMap((x) => [`l${x}_attn`, `l${x}_ffn`]) });
    }
  }
  if (encoder) gs.push({ name: 'output', kind: 'output', layers: [], kernels: ['output'] });
  else gs.push({ name: cpuClassifier ? 'final_norm' : 'classifier', kind: 'classifier', layers: [], kernels: ['classifier'] });
  return gs;
}

export function makePlan(p: PlanInput): Plan {
  const budget = p.budget ?? COMPILE_BUDGET;
  const reasons: string[] = [];
  const L = p.numLayers;
  // Buckets: multiples of the 32-wide spatial stride, at most 4096, ascending.
  let buckets = [...new Set(p.buckets.map((b) => {
    if (!Number.isInteger(b) || b <= 0) throw new RistrettoError('INVALID_ARGUMENT', `bucket ${b} is not a positive integer`);
    const r = roundUp(b, SPATIAL_ALIGN);
    if (r !== b) reasons.push(`bucket ${b} rounded up to ${r}: the ANE pads the spatial axis to 32`);
    return r;
  }))].sort((a, b) => a - b);
  if (buckets.length === 0) throw new RistrettoError('INVALID_ARGUMENT', 'no sequence-length buckets given');
  const tooBig = buckets.filter((b) => b > MAX_BUCKET);
  if (tooBig.length > 0) {
    reasons.push(`bucket(s) ${tooBig.join(', ')} dropped: attention beyond ${MAX_BUCKET} positions failed at run time on the ANE`);
    buckets = buckets.filter((b) => b <= MAX_BUCKET);
    if (buckets.length === 0) throw new RistrettoError('INVALID_ARGUMENT', `every bucket exceeds ${MAX_BUCKET}`);
  }

  const elements = p.vocab * p.dim;
  const limit = p.classifierLimit ?? CLASSIFIER_ANE_LIMIT;
  const lim = limit === CLASSIFIER_ANE_LIMIT ? '16M' : `${(limit / 1e6).toFixed(2)}M (overridden)`;
  const enc = p.encoder === true;
  const cpuCls = !enc && elements > limit;
  const classifier = enc
    ? { device: 'none' as const, elements: 0, limit, reason: `an encoder has no LM head; the last program (output) applies the final ${p.postNorm ? 'LayerNorm' : 'norm'} and returns the final hidden states [1, ${p.dim}, 1, S] fp16, pooled (mean / CLS / last token), normalised and quantized on the host` }
    : cpuCls
    ? { device: 'cpu' as const, elements, limit, reason: `vocab x dim = ${p.vocab} x ${p.dim} = ${(elements / 1e6).toFixed(1)}M fp16 elements > ${lim} (${limit}): the head would spill the ~32 MB SRAM (~30% slower; crashed for a 32K-vocab model), so it runs on the CPU as an fp16 tiled matvec + argmax; the final norm stays on the ANE (final_norm program)` }
    : { device: 'ane' as const, elements, limit, reason: `vocab x dim = ${p.vocab} x ${p.dim} = ${(elements / 1e6).toFixed(2)}M fp16 elements <= ${lim} (${limit}): the head fits the ~32 MB SRAM and runs on the ANE as a fused norm + conv program` };
  if (enc) {
    reasons.push(`encoder: no classifier: ${classifier.reason}`);
    reasons.push(`encoder: bidirectional attention, so no causal mask constant; every attention program takes the key-padding mask as a second input key_mask [1, 1, 1, S] fp16 (0 for the text's tokens, -10000 for padding), added to the scores [1, H, S, S] (broadcast over heads and queries) before the softmax: pad keys get exactly zero weight, so a text gives the same result in every bucket`);
    if (p.postNorm) reasons.push('encoder: post-norm blocks (LayerNorm after each residual add): programs read the un-normalised sum and start with its LayerNorm (the first one with the embedding LayerNorm); the output program is the last LayerNorm');
  } else reasons.push(`classifier on the ${classifier.device.toUpperCase()}: ${classifier.reason}`);

  // Chunked prefill: cache length for a given largest bucket (0: no chunk programs).
  const cacheFor = (B: number): number => {
    if (enc || p.maxPrompt === undefined || p.maxPrompt <= B) return 0;
    return Math.min(roundUp(p.maxPrompt - B, B), Math.floor((MAX_BUCKET - B) / B) * B);
  };
  const attnGroups = (f: number): number => groupsFor(L, f, cpuCls, enc).filter((g) => g.kind === 'attention' || g.kind === 'layers').length;
  const countB = (f: number, bs: number[]): number => bs.length * groupsFor(L, f, cpuCls, enc).length + (cacheFor(bs[bs.length - 1]!) > 0 ? attnGroups(f) : 0);
  const count = (f: number, nb: number): number => countB(f, nb === buckets.length ? buckets : buckets.slice(0, nb));
  const desc = (f: number, bs: number[]): string => `${bs.length} x ${groupsFor(L, f, cpuCls, enc).length}${cacheFor(bs[bs.length - 1]!) > 0 ? ` + ${attnGroups(f)} chunked-prefill` : ''}`;
  const maxF = Math.max(1, Math.min(L, p.maxLayersPerProgram ?? 4));
  let f: number;
  if (p.layersPerProgram !== undefined) {
    if (!Number.isInteger(p.layersPerProgram) || p.layersPerProgram < 0) throw new RistrettoError('INVALID_ARGUMENT', `layers per program must be 0 (split) or a positive integer, got ${p.layersPerProgram}`);
    f = Math.min(p.layersPerProgram, L);
    reasons.push(f === 0 ? 'fusion requested: separate attention and FFN programs per layer' : `fusion requested: ${f} layer(s) (attention + FFN) per program`);
  } else {
    f = 0;
    const split = count(0, buckets.length);
    if (split <= budget) {
      reasons.push(`one attention and one FFN program per layer: ${desc(0, buckets)} programs = ${split} compiles <= budget ${budget}`);
    } else {
      let chosen = -1;
      for (let t = 1; t <= maxF; t++) {
        if (count(t, buckets.length) <= budget) {
          chosen = t;
          break;
        }
      }
      if (chosen > 0) {
        f = chosen;
        reasons.push(`split attention/FFN programs need ${desc(0, buckets)} = ${split} compiles > budget ${budget}; fusing ${f} layer(s) (attention + FFN) per program: ${desc(f, buckets)} = ${count(f, buckets.length)} <= ${budget}`);
      } else {
        f = maxF;
        reasons.push(`even ${maxF} layers per program need ${count(maxF, buckets.length)} compiles > budget ${budget} with ${buckets.length} buckets; fusing ${maxF} layers per program (the most the plan fuses: a whole layer per program already hit the compiler's capacity in one report)`);
      }
    }
  }
  // Fewer buckets when fusion alone does not fit: keep the smallest (short prompts) and the largest (long ones).
  while (count(f, buckets.length) > budget && buckets.length > 1) {
    const drop = buckets.length > 2 ? buckets[buckets.length - 2]! : buckets[buckets.length - 1]!;
    const before = desc(f, buckets);
    buckets = buckets.filter((b) => b !== drop);
    reasons.push(`dropped bucket ${drop}: ${before} programs exceed the budget of ${budget}; prompts it served pad to the next bucket`);
  }
  const total = count(f, buckets.length);
  if (total > budget) {
    throw new RistrettoError('INVALID_ARGUMENT', `compile budget exceeded: ${L} layers need ${total} programs for one bucket (${f || 'split'} layer(s) per program) but the budget is ${budget} compiles per process; raise --budget, pass --fuse with more layers per program, or restart the process between groups of programs`);
  }
  const groups = groupsFor(L, f, cpuCls, enc);
  const Bmax = buckets[buckets.length - 1]!;
  const C = cacheFor(Bmax);
  let chunked: ChunkPlan | null = null;
  if (C > 0) {
    const cg = groups.filter((g) => g.kind === 'attention' || g.kind === 'layers').map((g) => g.name);
    chunked = {
      bucket: Bmax, cache: C, maxPrompt: C + Bmax, groups: cg,
      reason: `chunked prefill: prompts longer than ${Bmax} run through the ANE in chunks of ${Bmax} tokens (the last one padded), up to ${C + Bmax} tokens; the first chunk runs the ordinary programs, later chunks run ${cg.length} chunked-prefill program(s) at bucket ${Bmax} (the ones holding attention; FFN and classifier programs are position-free and are reused) that take per layer the K/V cache of the previous chunks [1, kvDim, 1, ${C}] fp16 (columns 0..offset-1 valid, the rest zero), an explicit mask input chunk_mask [1, 1, ${Bmax}, ${C + Bmax}] fp16 (0 keep / -10000 drop: cache columns < offset, and the causal triangle over the chunk's own ${Bmax} columns), and the chunk's RoPE rows rope_cos / rope_sin [1, 1, hd, ${Bmax}] fp16 for positions offset..offset+${Bmax - 1} (baked position tables cannot serve every offset, and slicing a table by a runtime offset needs a dynamic slice_by_size begin that the spec's kernels never use); they return the chunk's new K/V [1, kvDim, 1, ${Bmax}], which the host appends to its cache. One program per group serves every chunk offset: no per-offset recompiles; ${cg.length} extra compiles`,
    };
    reasons.push(chunked.reason);
  } else if (!enc) {
    reasons.push(p.maxPrompt === undefined ? `no chunked prefill: prompts longer than ${Bmax} tokens finish on the CPU` : `no chunked prefill: the longest prompt (${p.maxPrompt}) fits the largest bucket ${Bmax}`);
  }
  reasons.push(`compile budget: ${total} / ${budget} programs (${groups.length} per bucket x ${buckets.length} bucket(s)${chunked ? ` + ${chunked.groups.length} chunked-prefill` : ''})`);
  return {
    architecture: p.architecture,
    buckets,
    budget,
    layersPerProgram: f,
    groups,
    programsPerBucket: groups.length,
    totalPrograms: total,
    chunked,
    prefill: enc
      ? {
        device: 'ane',
        reason: `the encoder runs the ${groups.length} programs per bucket on the ANE at fixed lengths ${buckets.join(', ')}: a text is padded (right) to the smallest bucket that fits, one text per dispatch sequence; the key_mask input keeps pad keys out of every real token's attention and pad rows are never pooled; RoPE positions (when the model has them) are 0..n-1 on the text's tokens, which is cumsum(mask) - 1 for right padding; texts longer than ${buckets[buckets.length - 1]} tokens are truncated (or rejected) by the host`,
      }
      : {
      device: 'ane',
      reason: `prefill runs the ${groups.length} programs per bucket on the ANE at fixed lengths ${buckets.join(', ')}: the prompt is padded to the smallest bucket that fits (the causal mask keeps padding out of real positions); ${chunked ? `prompts longer than ${Bmax} run chunk by chunk (${Bmax} tokens a chunk) through the chunked-prefill programs with K/V cache, mask and RoPE inputs, up to ${chunked.maxPrompt} tokens; anything past that finishes on the CPU` : `prompts longer than ${Bmax} run their first ${Bmax} tokens on the ANE and the rest on the CPU (no chunked-prefill programs in this plan)`}`,
    },
    decode: enc
      ? { device: 'none', reason: 'no decode: an encoder makes one pass over the text' }
      : {
      device: 'cpu',
      reason: `decode runs on the CPU: one token per step costs ${groups.length} dispatches x ~${DISPATCH_US} us = ~${((groups.length * DISPATCH_US) / 1000).toFixed(1)} ms of fixed overhead on the ANE, more than a single token's work; the ANE prefill hands its K/V to the CPU session's cache`,
    },
    classifier,
    reasons,
  };
}
