// The placement plan: what runs where, and why.
// - Prefill: ANE programs at fixed sequence-length buckets (prompt padded to the smallest bucket that fits).
// - Decode: CPU (one token per step: the ~60-80 us dispatch of every program outweighs a token's work).
// - Classifier: ANE when vocab x dim <= 16M fp16 elements (fits the ~32 MB SRAM), else CPU fp16 tiled matvec + argmax.
// - Compile budget: programs x buckets <= 100 per process; the plan fuses more layers per program, then
//   drops buckets, and fails clearly when nothing fits.
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

  const count = (f: number, nb: number): number => nb * groupsFor(L, f, cpuCls, enc).length;
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
      reasons.push(`one attention and one FFN program per layer: ${buckets.length} bucket(s) x ${groupsFor(L, 0, cpuCls, enc).length} programs = ${split} compiles <= budget ${budget}`);
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
        reasons.push(`split attention/FFN programs need ${buckets.length} x ${groupsFor(L, 0, cpuCls, enc).length} = ${split} compiles > budget ${budget}; fusing ${f} layer(s) (attention + FFN) per program: ${buckets.length} x ${groupsFor(L, f, cpuCls, enc).length} = ${count(f, buckets.length)} <= ${budget}`);
      } else {
        f = maxF;
        reasons.push(`even ${maxF} layers per program need ${count(maxF, buckets.length)} compiles > budget ${budget} with ${buckets.length} buckets; fusing ${maxF} layers per program (the most the plan fuses: a whole layer per program already hit the compiler's capacity in one report)`);
      }
    }
  }
  // Fewer buckets when fusion alone does not fit: keep the smallest (short prompts) and the largest (long ones).
  while (count(f, buckets.length) > budget && buckets.length > 1) {
    const drop = buckets.length > 2 ? buckets[buckets.length - 2]! : buckets[buckets.length - 1]!;
    buckets = buckets.filter((b) => b !== drop);
    reasons.push(`dropped bucket ${drop}: ${buckets.length + 1} buckets x ${groupsFor(L, f, cpuCls, enc).length} programs exceed the budget of ${budget}; prompts it served pad to the next bucket`);
  }
  const total = count(f, buckets.length);
  if (total > budget) {
    throw new RistrettoError('INVALID_ARGUMENT', `compile budget exceeded: ${L} layers need ${total} programs for one bucket (${f || 'split'} layer(s) per program) but the budget is ${budget} compiles per process; raise --budget, pass --fuse with more layers per program, or restart the process between groups of programs`);
  }
  const groups = groupsFor(L, f, cpuCls, enc);
  reasons.push(`compile budget: ${total} / ${budget} programs (${groups.length} per bucket x ${buckets.length} bucket(s))`);
  return {
    architecture: p.architecture,
    buckets,
    budget,
    layersPerProgram: f,
    groups,
    programsPerBucket: groups.length,
    totalPrograms: total,
    prefill: enc
      ? {
        device: 'ane',
        reason: `the encoder runs the ${groups.length} programs per bucket on the ANE at fixed lengths ${buckets.join(', ')}: a text is padded (right) to the smallest bucket that fits, one text per dispatch sequence; the key_mask input keeps pad keys out of every real token's attention and pad rows are never pooled; RoPE positions (when the model has them) are 0..n-1 on the text's tokens, which is cumsum(mask) - 1 for right padding; texts longer than ${buckets[buckets.length - 1]} tokens are truncated (or rejected) by the host`,
      }
      : {
      device: 'ane',
      reason: `prefill runs the ${groups.length} programs per bucket on the ANE at fixed lengths ${buckets.join(', ')}: the prompt is padded to the smallest bucket that fits (the causal mask keeps padding out of real positions); prompts longer than ${buckets[buckets.length - 1]} run their first ${buckets[buckets.length - 1]} tokens on the ANE and the rest on the CPU (chunks past the first would need past-KV inputs)`,
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
