// Llama family: llama2.c Stories, TinyLlama, SmolLM, Llama 2 / 3.x.
// Config fields are HF `config.json` keys; parameter names are HF checkpoint names, so an HF
// checkpoint loads with no rename table (other formats are mapped at load time, see checkpoints/).

import { RistrettoError } from '../errors.js';
import { Graph } from '../graph/graph.js';
import { configFields, requirePositiveInts, type ConfigFields } from './config.js';
import { NONE, keyMaskInput, paramLookup, rmsNormHead, ropeAttention, swigluResidual, tokenInputs } from './blocks.js';

export interface Llama3RopeScaling {
  rope_type: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

export interface LlamaConfig {
  model_type: 'llama';
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: Llama3RopeScaling | null;
  /** Per-pair RoPE frequency divisors (head_dim/2 entries) as GGUF stores them in `rope_freqs.weight`
   *  (llama.cpp writes Llama 3.1+ scaling this way): invFreq[i] = theta^(-2i/head_dim) / factors[i]. */
  rope_freq_factors?: number[];
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  /** Pair layout of q/k for RoPE: HF checkpoints use `neox` (rotate_half); llama2.c and GGUF keep `interleaved`. */
  rope_style: 'interleaved' | 'neox';
}

/** The config.json fields the Llama-family architectures share (Llama, Qwen3, Qwen2), with the family's
 *  defaults for head_dim (default: hidden/heads) and the trained context. */
export function llamaFamilyFromHF(
  c: Record<string, unknown>,
  f: ConfigFields,
  d: { headDim?: number; maxPositions: number },
): Omit<LlamaConfig, 'model_type' | 'tie_word_embeddings' | 'rope_style'> {
  const heads = f.num('num_attention_heads');
  const hidden = f.num('hidden_size');
  return {
    vocab_size: f.num('vocab_size'),
    hidden_size: hidden,
    intermediate_size: f.num('intermediate_size'),
    num_hidden_layers: f.num('num_hidden_layers'),
    num_attention_heads: heads,
    num_key_value_heads: f.num('num_key_value_heads', heads),
    head_dim: f.num('head_dim', d.headDim ?? hidden / heads),
    rms_norm_eps: f.num('rms_norm_eps', 1e-6),
    rope_theta: f.num('rope_theta', 10000),
    rope_scaling: ropeScalingFromHF(c['rope_scaling']),
    max_position_embeddings: f.num('max_position_embeddings', d.maxPositions),
  };
}

/** Reads an HF `config.json` object (LlamaForCausalLM); missing optional keys take HF's defaults. */
export function llamaConfigFromHF(c: Record<string, unknown>): LlamaConfig {
  const cfg: LlamaConfig = {
    model_type: 'llama',
    ...llamaFamilyFromHF(c, configFields(c, 'Llama'), { maxPositions: 2048 }),
    tie_word_embeddings: c['tie_word_embeddings'] === true,
    rope_style: 'neox',
  };
  validateLlamaConfig(cfg);
  return cfg;
}

/** HF `rope_scaling`: null / default, or Llama 3's frequency-band scaling. */
export function ropeScalingFromHF(v: unknown): Llama3RopeScaling | null {
  if (v === null || v === undefined) return null;
  const rs = v as Record<string, unknown>;
  const type = rs['rope_type'] ?? rs['type'];
  if (type === 'default') return null;
  if (type !== 'llama3') {
    throw new RistrettoError('CONFIG', `config.json: rope_scaling type ${JSON.stringify(type)} is not supported (supported: llama3)`);
  }
  return {
    rope_type: 'llama3',
    factor: Number(rs['factor']),
    low_freq_factor: Number(rs['low_freq_factor']),
    high_freq_factor: Number(rs['high_freq_factor']),
    original_max_position_embeddings: Number(rs['original_max_position_embeddings']),
  };
}

export function validateLlamaConfig(c: LlamaConfig): void {
  requirePositiveInts(c, ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'max_position_embeddings'], 'llama');
  if (c.num_attention_heads % c.num_key_value_heads !== 0) {
    throw new RistrettoError('CONFIG', `llama config: num_attention_heads ${c.num_attention_heads} is not a multiple of num_key_value_heads ${c.num_key_value_heads}`);
  }
  if (c.head_dim % 2 !== 0) throw new RistrettoError('CONFIG', `llama config: head_dim ${c.head_dim} must be even for RoPE`);
  validateRopeFreqFactors(c, 'llama');
}

/** Checks `rope_freq_factors` (when present): head_dim/2 finite positive values, not combined with rope_scaling. */
export function validateRopeFreqFactors(c: Pick<LlamaConfig, 'head_dim' | 'rope_scaling' | 'rope_freq_factors'>, arch: string): void {
  const ff = c.rope_freq_factors;
  if (ff === undefined) return;
  if (ff.length !== c.head_dim / 2) throw new RistrettoError('CONFIG', `${arch} config: rope frequency factors have ${ff.length} entries, expected head_dim/2 = ${c.head_dim / 2}`);
  const bad = ff.findIndex((v) => !(Number.isFinite(v) && v > 0));
  if (bad >= 0) throw new RistrettoError('CONFIG', `${arch} config: rope frequency factor ${bad} is ${ff[bad]} (must be finite and > 0)`);
  if (c.rope_scaling !== null) throw new RistrettoError('CONFIG', `${arch} config: rope frequency factors and rope_scaling are both set (use one)`);
}

/** The divisors GGUF stores in `rope_freqs.weight` for a config: 1 without scaling, else base / scaled frequency
 *  (what llama.cpp's converter writes for Llama 3 rope_scaling); null when RoPE is unscaled. */
export function ropeFreqFactors(c: LlamaConfig): number[] | null {
  if (c.rope_freq_factors !== undefined) return c.rope_freq_factors;
  if (c.rope_scaling === null) return null;
  const scaled = llamaInvFreq(c);
  return llamaInvFreq({ ...c, rope_scaling: null }).map((f, i) => f / scaled[i]!);
}

/** RoPE inverse frequencies, with Llama 3 scaling applied when configured. */
export function llamaInvFreq(c: LlamaConfig): number[] {
  const half = c.head_dim / 2;
  const inv = Array.from({ length: half }, (_, i) => Math.pow(c.rope_theta, (-2 * i) / c.head_dim));
  if (c.rope_freq_factors !== undefined) return inv.map((f, i) => f / c.rope_freq_factors![i]!);
  const s = c.rope_scaling;
  if (s === null) return inv;
  // Llama 3: long wavelengths are divided by `factor`, short ones kept, the band between interpolated.
  const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

export interface BuildOptions {
  /** Sequence rows in this call. */
  seqLen: number;
  /** Attend over a persistent KV cache of this many rows (decode); null: attend within the call only. */
  cacheLen: number | null;
  /** Return logits for every row, or only the last (generation). */
  logits: 'all' | 'last';
  /** What the graph returns: `logits` (default), or the final hidden state as output `hidden` [T, D] (encoders,
   *  embeddings; no LM head is read). */
  output?: 'logits' | 'hidden';
  /** Padded fixed-shape batches (encoders, with cacheLen null): the seqLen rows are `batch` sequences of
   *  seqLen/batch rows each, an input `key_mask` [seqLen] f32 (0 real, -Infinity padding) masks padding keys,
   *  and attention is `attention_masked`. */
  padded?: { batch: number };
}

/** The parameter names and shapes a Llama checkpoint must provide. */
export function llamaParams(c: LlamaConfig): Map<string, number[]> {
  const p = new Map<string, number[]>();
  const D = c.hidden_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  p.set('model.embed_tokens.weight', [c.vocab_size, D]);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const L = `model.layers.${l}`;
    p.set(`${L}.input_layernorm.weight`, [D]);
    p.set(`${L}.self_attn.q_proj.weight`, [q, D]);
    p.set(`${L}.self_attn.k_proj.weight`, [kv, D]);
    p.set(`${L}.self_attn.v_proj.weight`, [kv, D]);
    p.set(`${L}.self_attn.o_proj.weight`, [D, q]);
    p.set(`${L}.post_attention_layernorm.weight`, [D]);
    p.set(`${L}.mlp.gate_proj.weight`, [c.intermediate_size, D]);
    p.set(`${L}.mlp.up_proj.weight`, [c.intermediate_size, D]);
    p.set(`${L}.mlp.down_proj.weight`, [D, c.intermediate_size]);
  }
  p.set('model.norm.weight', [D]);
  if (!c.tie_word_embeddings) p.set('lm_head.weight', [c.vocab_size, D]);
  return p;
}

/**
 * The forward pass as a graph. Inputs: `ids` [T] i32, `positions` [T] i32 (absolute positions).
 * Output: `logits` [T or 1, vocab]. With a cache, keys/values are written to the states
 * `cache.k.{l}` / `cache.v.{l}` ([cacheLen, kvDim]) and attention reads them.
 */
export function buildLlamaGraph(c: LlamaConfig, o: BuildOptions): Graph {
  const g = new Graph();
  const P = paramLookup(g, llamaParams(c));
  const { ids, pos } = tokenInputs(g, o.seqLen);
  const keyMask = keyMaskInput(g, o);
  const rope = { headDim: c.head_dim, theta: c.rope_theta, style: c.rope_style, invFreq: llamaInvFreq(c) };
  const attn = { nHeads: c.num_attention_heads, nKvHeads: c.num_key_value_heads, headDim: c.head_dim, causal: true, scale: 1 / Math.sqrt(c.head_dim) };

  let x = g.add('embedding', [P('model.embed_tokens.weight'), ids], NONE);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const L = `model.layers.${l}`;
    const A = `${L}.self_attn`;
    const h = g.add('rmsnorm', [x, P(`${L}.input_layernorm.weight`)], { eps: c.rms_norm_eps });
    const a = ropeAttention(g, h, pos, {
      q: P(`${A}.q_proj.weight`), k: P(`${A}.k_proj.weight`), v: P(`${A}.v_proj.weight`), o: P(`${A}.o_proj.weight`),
    }, rope, { layer: l, attn, cacheLen: o.cacheLen, keyMask });
    x = swigluResidual(g, g.add('add', [x, a], NONE), P, L, c.rms_norm_eps);
  }
  rmsNormHead(g, x, P, c, o);
  return g;
}
