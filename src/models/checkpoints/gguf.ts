// GGUF checkpoints -> model configs. llama.cpp's converters store q/k of Llama models permuted
// to the interleaved-pair RoPE layout, so GGUF Llama uses `rope_style: interleaved`.

import { openGGUF, type GGUFFile, type GGUFValue } from '../../formats/gguf.js';
import { RistrettoError, UnsupportedError } from '../../errors.js';
import type { LlamaConfig } from '../llama.js';
import { validateLlamaConfig } from '../llama.js';
import type { CheckpointPlan } from './types.js';

function metaNum(f: GGUFFile, key: string, dflt?: number): number {
  const v = f.metadata.get(key);
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v === undefined && dflt !== undefined) return dflt;
  throw new RistrettoError('CONFIG', `${f.path}: metadata "${key}" ${v === undefined ? 'is missing' : `must be a number, found ${JSON.stringify(String(v))}`}`);
}

function metaVal(f: GGUFFile, key: string): GGUFValue | undefined {
  return f.metadata.get(key);
}

export function planGGUF(path: string): CheckpointPlan {
  const f = openGGUF(path);
  try {
    const arch = metaVal(f, 'general.architecture');
    if (arch !== 'llama') {
      throw new UnsupportedError(`${path}: GGUF architecture ${JSON.stringify(arch)} is not supported yet (supported: llama)`);
    }
    return planGGUFLlama(f);
  } catch (e) {
    f.close();
    throw e;
  }
}

function planGGUFLlama(f: GGUFFile): CheckpointPlan {
  const A = 'llama';
  const heads = metaNum(f, `${A}.attention.head_count`);
  const hidden = metaNum(f, `${A}.embedding_length`);
  const tokens = metaVal(f, 'tokenizer.ggml.tokens');
  const embd = f.list().find((t) => t.name === 'token_embd.weight');
  const vocab = metaNum(f, `${A}.vocab_size`, Array.isArray(tokens) ? tokens.length : embd?.shape[0]);
  const config: LlamaConfig = {
    model_type: 'llama',
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: metaNum(f, `${A}.feed_forward_length`),
    num_hidden_layers: metaNum(f, `${A}.block_count`),
    num_attention_heads: heads,
    num_key_value_heads: metaNum(f, `${A}.attention.head_count_kv`, heads),
    head_dim: metaNum(f, `${A}.attention.key_length`, metaNum(f, `${A}.rope.dimension_count`, hidden / heads)),
    rms_norm_eps: metaNum(f, `${A}.attention.layer_norm_rms_epsilon`, 1e-5),
    rope_theta: metaNum(f, `${A}.rope.freq_base`, 10000),
    rope_scaling: null,
    max_position_embeddings: metaNum(f, `${A}.context_length`),
    tie_word_embeddings: !f.has('output.weight'),
    rope_style: 'interleaved',
  };
  validateLlamaConfig(config);
  const t = new Map<string, string>([
    ['model.embed_tokens.weight', 'token_embd.weight'],
    ['model.norm.weight', 'output_norm.weight'],
  ]);
  if (!config.tie_word_embeddings) t.set('lm_head.weight', 'output.weight');
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const M = `model.layers.${l}`;
    const B = `blk.${l}`;
    t.set(`${M}.input_layernorm.weight`, `${B}.attn_norm.weight`);
    t.set(`${M}.self_attn.q_proj.weight`, `${B}.attn_q.weight`);
    t.set(`${M}.self_attn.k_proj.weight`, `${B}.attn_k.weight`);
    t.set(`${M}.self_attn.v_proj.weight`, `${B}.attn_v.weight`);
    t.set(`${M}.self_attn.o_proj.weight`, `${B}.attn_output.weight`);
    t.set(`${M}.post_attention_layernorm.weight`, `${B}.ffn_norm.weight`);
    t.set(`${M}.mlp.gate_proj.weight`, `${B}.ffn_gate.weight`);
    t.set(`${M}.mlp.up_proj.weight`, `${B}.ffn_up.weight`);
    t.set(`${M}.mlp.down_proj.weight`, `${B}.ffn_down.weight`);
  }
  const bos = metaVal(f, 'tokenizer.ggml.bos_token_id');
  const eos = metaVal(f, 'tokenizer.ggml.eos_token_id');
  return {
    format: 'gguf',
    architecture: A,
    config,
    source: f,
    tensorFor: t,
    bosId: typeof bos === 'number' ? bos : null,
    eosIds: typeof eos === 'number' ? [eos] : [],
  };
}
