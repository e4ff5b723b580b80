// Building blocks shared by the architecture files: parameter lookup, the KV-cached attention
// core, RoPE attention with optional QK-norm and biases, and the SwiGLU MLP.

import type { Graph, Sym } from '../graph/graph.js';
import type { OpAttrs } from '../graph/ops.js';
import type { BuildOptions } from './llama.js';

export const NONE = {} as Record<string, never>;

/** One parameter node per use; `params` holds every name the architecture declares, with its shape. */
export function paramLookup(g: Graph, params: Map<string, number[]>): (name: string) => Sym {
  return (name) => {
    const shape = params.get(name);
    if (shape === undefined) throw new Error(`the architecture does not declare parameter "${name}"`);
    return g.add('param', [], { name, shape }, name);
  };
}

export function linear(g: Graph, x: Sym, w: Sym, b?: Sym): Sym {
  const y = g.add('matmul', [x, w], NONE);
  return b === undefined ? y : g.add('add', [y, b], NONE);
}

/** The standard inputs: `ids` [T] and absolute `positions` [T]. */
export function tokenInputs(g: Graph, T: number): { ids: Sym; pos: Sym } {
  return {
    ids: g.add('input', [], { name: 'ids', shape: [T], type: 'i32' }, 'ids'),
    pos: g.add('input', [], { name: 'positions', shape: [T], type: 'i32' }, 'positions'),
  };
}

export interface AttentionCore {
  layer: number;
  attn: OpAttrs['attention'];
  /** KV-cache rows, or null to attend within the call only. */
  cacheLen: number | null;
  /** Padded fixed-shape batches (no cache): attend with `attention_masked` under this key mask. */
  keyMask?: KeyMask;
}

/** The `key_mask` input of a padded batch ([rows] f32: 0 for real tokens, -Infinity for padding). */
export interface KeyMask {
  mask: Sym;
  batch: number;
}

/** Adds the `key_mask` input when the build asks for padded batches (`o.padded`). */
export function keyMaskInput(g: Graph, o: BuildOptions): KeyMask | undefined {
  if (o.padded === undefined) return undefined;
  if (o.cacheLen !== null) throw new Error('padded batches attend within the call only (cacheLen must be null)');
  return { mask: g.add('input', [], { name: 'key_mask', shape: [o.seqLen], type: 'f32' }, 'key_mask'), batch: o.padded.batch };
}


/** Writes k/v to the layer's cache (when there is one) and attends. */
export function attendWithCache(g: Graph, q: Sym, k: Sym, v: Sym, pos: Sym, o: AttentionCore): Sym {
  if (o.keyMask !== undefined) return g.add('attention_masked', [q, k, v, o.keyMask.mask], { ...o.attn, batch: o.keyMask.batch });
  if (o.cacheLen !== null) {
    const shape = [o.cacheLen, o.attn.nKvHeads * o.attn.headDim];
    const kc = g.add('state', [], { name: `cache.k.${o.layer}`, shape }, `cache.k.${o.layer}`);
    const vc = g.add('state', [], { name: `cache.v.${o.layer}`, shape }, `cache.v.${o.layer}`);
    k = g.add('kv_write', [kc, k, pos], NONE);
    v = g.add('kv_write', [vc, v, pos], NONE);
  }
  return g.add('attention', [q, k, v, pos], o.attn);
}

export interface RopeAttentionParams {
  q: Sym; k: Sym; v: Sym; o: Sym;
  qBias?: Sym; kBias?: Sym; vBias?: Sym; oBias?: Sym;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3). */
  qNorm?: Sym; kNorm?: Sym; normEps?: number;
}

/** o_proj(attention(rope(norm?(q)), rope(norm?(k)), v)) for Llama-style blocks. */
export function ropeAttention(g: Graph, h: Sym, pos: Sym, p: RopeAttentionParams, rope: OpAttrs['rope'], core: AttentionCore): Sym {
  let q = linear(g, h, p.q, p.qBias);
  let k = linear(g, h, p.k, p.kBias);
  const v = linear(g, h, p.v, p.vBias);
  if (p.qNorm !== undefined) q = g.add('rmsnorm', [q, p.qNorm], { eps: p.normEps! });
  if (p.kNorm !== undefined) k = g.add('rmsnorm', [k, p.kNorm], { eps: p.normEps! });
  q = g.add('rope', [q, pos], rope);
  k = g.add('rope', [k, pos], rope);
  return linear(g, attendWithCache(g, q, k, v, pos, core), p.o, p.oBias);
}

/** down(silu(gate(h)) * up(h)) */
export function swiglu(g: Graph, h: Sym, gate: Sym, up: Sym, down: Sym): Sym {
  const a = g.add('silu', [g.add('matmul', [h, gate], NONE)], NONE);
  return g.add('matmul', [g.add('mul', [a, g.add('matmul', [h, up], NONE)], NONE), down], NONE);
}

/** Final norm output -> logits for the last row (generation) or every row. */
export function lmHead(g: Graph, x: Sym, head: Sym, T: number, logits: 'all' | 'last'): void {
  if (logits === 'last' && T > 1) x = g.add('slice_rows', [x], { start: T - 1, count: 1 });
  g.output('logits', g.add('matmul', [x, head], NONE));
}

/** The Llama/Qwen3 feed-forward half of a block: x + down(silu(gate(h)) * up(h)), h = rmsnorm(x). */
export function swigluResidual(g: Graph, x: Sym, P: (name: string) => Sym, layer: string, eps: number): Sym {
  const h = g.add('rmsnorm', [x, P(`${layer}.post_attention_layernorm.weight`)], { eps });
  return g.add('add', [x, swiglu(g, h, P(`${layer}.mlp.gate_proj.weight`), P(`${layer}.mlp.up_proj.weight`), P(`${layer}.mlp.down_proj.weight`))], NONE);
}

/** Final RMSNorm and the (possibly tied) head of Llama-style models; with `output: 'hidden'` the normed
 *  hidden state is the output `hidden` and no head is read (encoders). */
export function rmsNormHead(g: Graph, x: Sym, P: (name: string) => Sym, c: { rms_norm_eps: number; tie_word_embeddings: boolean }, o: { seqLen: number; logits: 'all' | 'last'; output?: 'logits' | 'hidden' }): void {
  x = g.add('rmsnorm', [x, P('model.norm.weight')], { eps: c.rms_norm_eps });
  if (o.output === 'hidden') return g.output('hidden', x);
  lmHead(g, x, P(c.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'), o.seqLen, o.logits);
}
