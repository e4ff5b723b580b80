// GGUF checkpoints <-> model configs and parameter names (llama, qwen3, gpt2).
// Quirks, handled here once:
// - llama.cpp's Llama converters permute q/k rows to the interleaved-pair RoPE layout, so GGUF
//   Llama uses `rope_style: interleaved`; Qwen3 keeps NeoX order (llama.cpp's ROPE_TYPE_NEOX).
// - GPT-2's Conv1D weights are stored already transposed to [out, in] by the converter.
// - A missing `output.weight` means the head is tied to `token_embd.weight`.

import { openGGUF, type GGUFFile, type GGUFMetadataEntry, type GGUFValue } from '../../formats/gguf.js';
import { RistrettoError, UnsupportedError } from '../../errors.js';
import { readTensorAsF32 } from '../../formats/dtypes/index.js';
import { modelParams, type ModelConfig } from '../index.js';
import { validateLlamaConfig, type LlamaConfig } from '../llama.js';
import { validateQwen3Config, type Qwen3Config } from '../qwen3.js';
import { validateGPT2Config, type GPT2Config } from '../gpt2.js';
import type { CheckpointPlan } from './types.js';

export const GGUF_ARCHITECTURES = ['llama', 'qwen3', 'qwen2', 'gpt2'] as const;

// Per-layer parameter suffix -> GGUF `blk.N.` suffix.
const LLAMA_LAYER: [string, string][] = [
  ['input_layernorm.weight', 'attn_norm.weight'],
  ['self_attn.q_proj.weight', 'attn_q.weight'],
  ['self_attn.k_proj.weight', 'attn_k.weight'],
  ['self_attn.v_proj.weight', 'attn_v.weight'],
  ['self_attn.o_proj.weight', 'attn_output.weight'],
  ['post_attention_layernorm.weight', 'ffn_norm.weight'],
  ['mlp.gate_proj.weight', 'ffn_gate.weight'],
  ['mlp.up_proj.weight', 'ffn_up.weight'],
  ['mlp.down_proj.weight', 'ffn_down.weight'],
];
const QWEN3_EXTRA: [string, string][] = [
  ['self_attn.q_norm.weight', 'attn_q_norm.weight'],
  ['self_attn.k_norm.weight', 'attn_k_norm.weight'],
  ['self_attn.q_proj.bias', 'attn_q.bias'],
  ['self_attn.k_proj.bias', 'attn_k.bias'],
  ['self_attn.v_proj.bias', 'attn_v.bias'],
];
const GPT2_LAYER: [string, string][] = [
  ['ln_1.weight', 'attn_norm.weight'], ['ln_1.bias', 'attn_norm.bias'],
  ['attn.c_attn.weight', 'attn_qkv.weight'], ['attn.c_attn.bias', 'attn_qkv.bias'],
  ['attn.c_proj.weight', 'attn_output.weight'], ['attn.c_proj.bias', 'attn_output.bias'],
  ['ln_2.weight', 'ffn_norm.weight'], ['ln_2.bias', 'ffn_norm.bias'],
  ['mlp.c_fc.weight', 'ffn_up.weight'], ['mlp.c_fc.bias', 'ffn_up.bias'],
  ['mlp.c_proj.weight', 'ffn_down.weight'], ['mlp.c_proj.bias', 'ffn_down.bias'],
];

/** Model parameter name -> GGUF tensor name, for every parameter the config declares. */
export function ggufTensorNames(c: ModelConfig, params: Iterable<string>): Map<string, string> {
  const fixed = new Map<string, string>(
    c.model_type === 'gpt2'
      ? [
          ['transformer.wte.weight', 'token_embd.weight'], ['transformer.wpe.weight', 'position_embd.weight'],
          ['transformer.ln_f.weight', 'output_norm.weight'], ['transformer.ln_f.bias', 'output_norm.bias'],
          ['lm_head.weight', 'output.weight'],
        ]
      : [['model.embed_tokens.weight', 'token_embd.weight'], ['model.norm.weight', 'output_norm.weight'], ['lm_head.weight', 'output.weight']],
  );
  const layer = new Map(c.model_type === 'gpt2' ? GPT2_LAYER : c.model_type !== 'llama' ? [...LLAMA_LAYER, ...QWEN3_EXTRA] : LLAMA_LAYER);
  const layerRe = c.model_type === 'gpt2' ? /^transformer\.h\.(\d+)\.(.+)$/ : /^model\.layers\.(\d+)\.(.+)$/;
  const out = new Map<string, string>();
  for (const p of params) {
    const f = fixed.get(p);
    const m = layerRe.exec(p);
    const g = f ?? (m !== null && layer.has(m[2]!) ? `blk.${m[1]}.${layer.get(m[2]!)}` : undefined);
    if (g === undefined) throw new Error(`no GGUF name for parameter "${p}"`);
    out.set(p, g);
  }
  return out;
}

function reader(f: GGUFFile, arch: string) {
  const num = (key: string, dflt?: number): number => {
    const full = key.startsWith('tokenizer.') ? key : `${arch}.${key}`;
    const v = f.metadata.get(full);
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    if (v === undefined && dflt !== undefined) return dflt;
    throw new RistrettoError('CONFIG', `${f.path}: metadata "${full}" ${v === undefined ? 'is missing' : `must be a number, found ${JSON.stringify(String(v))}`}`);
  };
  return num;
}

function vocabSize(f: GGUFFile, arch: string): number {
  const v = f.metadata.get(`${arch}.vocab_size`);
  if (typeof v === 'number') return v;
  const tokens = f.metadata.get('tokenizer.ggml.tokens');
  if (Array.isArray(tokens)) return tokens.length;
  const embd = f.list().find((t) => t.name === 'token_embd.weight');
  if (embd !== undefined) return embd.shape[0]!;
  throw new RistrettoError('CONFIG', `${f.path}: cannot tell the vocabulary size (no ${arch}.vocab_size, tokenizer or token_embd.weight)`);
}

/** `rope_freqs.weight` as numbers (head_dim/2 f32 divisors of the RoPE frequencies). */
function ropeFreqFactorsOf(f: GGUFFile, headDim: number): number[] {
  const t = f.read('rope_freqs.weight');
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (n !== headDim / 2) throw new RistrettoError('CONFIG', `${f.path}: rope_freqs.weight has ${n} values, expected head_dim/2 = ${headDim / 2}`);
  return Array.from(readTensorAsF32(t));
}

export function configFromGGUF(f: GGUFFile): ModelConfig {
  const arch = f.metadata.get('general.architecture');
  const num = reader(f, String(arch));
  const tied = !f.has('output.weight');
  if (arch === 'gpt2') {
    const c: GPT2Config = {
      model_type: 'gpt2',
      vocab_size: vocabSize(f, arch),
      n_embd: num('embedding_length'),
      n_layer: num('block_count'),
      n_head: num('attention.head_count'),
      n_inner: num('feed_forward_length'),
      n_positions: num('context_length'),
      layer_norm_epsilon: num('attention.layer_norm_epsilon', 1e-5),
      activation_function: 'gelu_new',
      tie_word_embeddings: tied,
    };
    validateGPT2Config(c);
    return c;
  }
  if (arch === 'llama' || arch === 'qwen3' || arch === 'qwen2') {
    const heads = num('attention.head_count');
    const hidden = num('embedding_length');
    const base = {
      vocab_size: vocabSize(f, arch),
      hidden_size: hidden,
      intermediate_size: num('feed_forward_length'),
      num_hidden_layers: num('block_count'),
      num_attention_heads: heads,
      num_key_value_heads: num('attention.head_count_kv', heads),
      head_dim: num('attention.key_length', num('rope.dimension_count', hidden / heads)),
      rms_norm_eps: num('attention.layer_norm_rms_epsilon', 1e-5),
      rope_theta: num('rope.freq_base', 10000),
      rope_scaling: null,
      max_position_embeddings: num('context_length'),
      tie_word_embeddings: tied,
    };
    // llama.cpp stores Llama 3.1+ RoPE scaling as per-pair frequency divisors, not as metadata
    const ropeFreqs = f.has('rope_freqs.weight') ? { rope_freq_factors: ropeFreqFactorsOf(f, base.head_dim) } : {};
    if (arch === 'qwen3' || arch === 'qwen2') {
      // both keep HF's rotate-half q/k layout in GGUF (llama.cpp uses NeoX RoPE for them)
      const c: Qwen3Config = { ...base, ...ropeFreqs, model_type: arch, rope_style: 'neox', attention_bias: f.has('blk.0.attn_q.bias'), is_causal: true };
      validateQwen3Config(c);
      return c;
    }
    const c: LlamaConfig = { ...base, ...ropeFreqs, model_type: 'llama', rope_style: 'interleaved' };
    validateLlamaConfig(c);
    return c;
  }
  throw new UnsupportedError(`${f.path}: GGUF architecture ${JSON.stringify(arch)} is not supported (supported: ${GGUF_ARCHITECTURES.join(', ')})`);
}

export function planGGUF(path: string): CheckpointPlan {
  const f = openGGUF(path);
  try {
    const config = configFromGGUF(f);
    const bos = f.metadata.get('tokenizer.ggml.bos_token_id');
    const eos = f.metadata.get('tokenizer.ggml.eos_token_id');
    return {
      format: 'gguf',
      architecture: config.model_type,
      config,
      source: f,
      tensorFor: ggufTensorNames(config, modelParams(config).keys()),
      transposed: new Set(),
      bosId: typeof bos === 'number' ? bos : null,
      eosIds: typeof eos === 'number' ? [eos] : [],
    };
  } catch (e) {
    f.close();
    throw e;
  }
}

/** GGUF metadata describing `c` (the architecture block; tokenizer metadata is added by the caller). */
export function ggufMetadataFor(c: ModelConfig, name = 'ristretto export'): GGUFMetadataEntry[] {
  const m: GGUFMetadataEntry[] = [['general.architecture', 'string', c.model_type], ['general.name', 'string', name]];
  const A = c.model_type;
  const u32 = (k: string, v: number) => m.push([`${A}.${k}`, 'uint32', v]);
  const f32 = (k: string, v: number) => m.push([`${A}.${k}`, 'float32', v]);
  if (c.model_type === 'gpt2') {
    u32('context_length', c.n_positions);
    u32('embedding_length', c.n_embd);
    u32('feed_forward_length', c.n_inner);
    u32('block_count', c.n_layer);
    u32('attention.head_count', c.n_head);
    f32('attention.layer_norm_epsilon', c.layer_norm_epsilon);
    return m;
  }
  u32('context_length', c.max_position_embeddings);
  u32('embedding_length', c.hidden_size);
  u32('feed_forward_length', c.intermediate_size);
  u32('block_count', c.num_hidden_layers);
  u32('attention.head_count', c.num_attention_heads);
  u32('attention.head_count_kv', c.num_key_value_heads);
  u32('attention.key_length', c.head_dim);
  u32('attention.value_length', c.head_dim);
  u32('rope.dimension_count', c.head_dim);
  f32('attention.layer_norm_rms_epsilon', c.rms_norm_eps);
  f32('rope.freq_base', c.rope_theta);
  u32('vocab_size', c.vocab_size);
  return m;
}

export type { GGUFValue };
