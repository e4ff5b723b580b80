// Qwen3: the Llama block plus per-head RMSNorm of q and k before RoPE (QK-norm), NeoX RoPE,
// GQA with head_dim independent of hidden/heads, optional q/k/v biases (Qwen2-style).
// `is_causal: false` turns it into the bidirectional encoder of pplx-embed.
// Qwen2 / Qwen2.5 (model_type 'qwen2') is the same block without QK-norm and with q/k/v biases always.

import { Graph } from '../graph/graph.js';
import { configFields, requirePositiveInts } from './config.js';
import { NONE, keyMaskInput, paramLookup, rmsNormHead, ropeAttention, swigluResidual, tokenInputs } from './blocks.js';
import { llamaFamilyFromHF, llamaInvFreq, llamaParams, validateRopeFreqFactors, type BuildOptions, type LlamaConfig } from './llama.js';
import { RistrettoError, UnsupportedError } from '../errors.js';

export interface Qwen3Config extends Omit<LlamaConfig, 'model_type'> {
  /** qwen2: no QK-norm (Qwen2, Qwen2.5 and models built on them). */
  model_type: 'qwen3' | 'qwen2';
  attention_bias: boolean;
  /** false: bidirectional attention (encoder use, no causal mask). */
  is_causal: boolean;
}

export function qwen3ConfigFromHF(c: Record<string, unknown>): Qwen3Config {
  const f = configFields(c, 'Qwen3');
  const { bool } = f;
  const cfg: Qwen3Config = {
    model_type: 'qwen3',
    ...llamaFamilyFromHF(c, f, { headDim: 128, maxPositions: 32768 }), // head_dim 128: HF Qwen3Config's default
    tie_word_embeddings: bool('tie_word_embeddings', false),
    rope_style: 'neox',
    attention_bias: bool('attention_bias', false),
    is_causal: bool('is_causal', true) && !bool('use_bidirectional_attention', false),
  };
  validateQwen3Config(cfg);
  return cfg;
}

/** Reads an HF Qwen2ForCausalLM config.json (Qwen2, Qwen2.5). Sliding-window attention is refused when enabled. */
export function qwen2ConfigFromHF(c: Record<string, unknown>): Qwen3Config {
  const f = configFields(c, 'Qwen2');
  const { bool } = f;
  if (bool('use_sliding_window', false)) throw new UnsupportedError('config.json: Qwen2 use_sliding_window is not supported');
  const base = llamaFamilyFromHF(c, f, { maxPositions: 32768 });
  const cfg: Qwen3Config = {
    model_type: 'qwen2',
    ...base,
    head_dim: base.hidden_size / base.num_attention_heads, // Qwen2Attention ignores a head_dim key
    tie_word_embeddings: bool('tie_word_embeddings', false),
    rope_style: 'neox',
    attention_bias: true, // Qwen2Attention: q/k/v projections always have biases, o_proj never
    is_causal: true,
  };
  validateQwen3Config(cfg);
  return cfg;
}

export function validateQwen3Config(c: Qwen3Config): void {
  requirePositiveInts(c, ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'max_position_embeddings'], 'qwen3');
  if (c.num_attention_heads % c.num_key_value_heads !== 0) {
    throw new RistrettoError('CONFIG', `qwen3 config: num_attention_heads ${c.num_attention_heads} is not a multiple of num_key_value_heads ${c.num_key_value_heads}`);
  }
  validateRopeFreqFactors(c, 'qwen3');
}

export function qwen3Params(c: Qwen3Config): Map<string, number[]> {
  const p = llamaParams({ ...c, model_type: 'llama' });
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const A = `model.layers.${l}.self_attn`;
    if (c.model_type === 'qwen3') {
      p.set(`${A}.q_norm.weight`, [c.head_dim]);
      p.set(`${A}.k_norm.weight`, [c.head_dim]);
    }
    if (c.attention_bias) {
      p.set(`${A}.q_proj.bias`, [c.num_attention_heads * c.head_dim]);
      p.set(`${A}.k_proj.bias`, [c.num_key_value_heads * c.head_dim]);
      p.set(`${A}.v_proj.bias`, [c.num_key_value_heads * c.head_dim]);
    }
  }
  return p;
}

export function buildQwen3Graph(c: Qwen3Config, o: BuildOptions): Graph {
  const g = new Graph();
  const P = paramLookup(g, qwen3Params(c));
  const { ids, pos } = tokenInputs(g, o.seqLen);
  const keyMask = keyMaskInput(g, o);
  const rope = { headDim: c.head_dim, theta: c.rope_theta, style: c.rope_style, invFreq: llamaInvFreq({ ...c, model_type: 'llama' }) };
  const attn = { nHeads: c.num_attention_heads, nKvHeads: c.num_key_value_heads, headDim: c.head_dim, causal: c.is_causal, scale: 1 / Math.sqrt(c.head_dim) };
  const bias = (A: string, n: string) => (c.attention_bias ? P(`${A}.${n}_proj.bias`) : undefined);

  let x = g.add('embedding', [P('model.embed_tokens.weight'), ids], NONE);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const L = `model.layers.${l}`;
    const A = `${L}.self_attn`;
    const h = g.add('rmsnorm', [x, P(`${L}.input_layernorm.weight`)], { eps: c.rms_norm_eps });
    const a = ropeAttention(g, h, pos, {
      q: P(`${A}.q_proj.weight`), k: P(`${A}.k_proj.weight`), v: P(`${A}.v_proj.weight`), o: P(`${A}.o_proj.weight`),
      qBias: bias(A, 'q'), kBias: bias(A, 'k'), vBias: bias(A, 'v'),
      ...(c.model_type === 'qwen3' ? { qNorm: P(`${A}.q_norm.weight`), kNorm: P(`${A}.k_norm.weight`) } : {}), normEps: c.rms_norm_eps,
    }, rope, { layer: l, attn, cacheLen: o.cacheLen, keyMask });
    x = swigluResidual(g, g.add('add', [x, a], NONE), P, L, c.rms_norm_eps);
  }
  rmsNormHead(g, x, P, c, o);
  return g;
}
