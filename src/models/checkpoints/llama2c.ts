// llama2.c `.bin` checkpoints -> Llama. run.c hard-codes RMSNorm eps 1e-5 and RoPE base 10000,
// and its q/k rows are in the interleaved-pair RoPE layout.

import { openLlama2c } from '../../formats/llama2c.js';
import type { LlamaConfig } from '../llama.js';
import { validateLlamaConfig } from '../llama.js';
import type { CheckpointPlan } from './types.js';

export function planLlama2c(path: string): CheckpointPlan {
  const src = openLlama2c(path);
  const h = src.config;
  const config: LlamaConfig = {
    model_type: 'llama',
    vocab_size: h.vocabSize,
    hidden_size: h.dim,
    intermediate_size: h.hiddenDim,
    num_hidden_layers: h.nLayers,
    num_attention_heads: h.nHeads,
    num_key_value_heads: h.nKvHeads,
    head_dim: h.dim / h.nHeads,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    max_position_embeddings: h.seqLen,
    tie_word_embeddings: h.sharedClassifier,
    rope_style: 'interleaved',
  };
  validateLlamaConfig(config);
  const t = new Map<string, string>([
    ['model.embed_tokens.weight', 'tok_embeddings.weight'],
    ['model.norm.weight', 'norm.weight'],
  ]);
  if (!h.sharedClassifier) t.set('lm_head.weight', 'output.weight');
  for (let l = 0; l < h.nLayers; l++) {
    const M = `model.layers.${l}`;
    const S = `layers.${l}`;
    t.set(`${M}.input_layernorm.weight`, `${S}.attention_norm.weight`);
    t.set(`${M}.self_attn.q_proj.weight`, `${S}.attention.wq.weight`);
    t.set(`${M}.self_attn.k_proj.weight`, `${S}.attention.wk.weight`);
    t.set(`${M}.self_attn.v_proj.weight`, `${S}.attention.wv.weight`);
    t.set(`${M}.self_attn.o_proj.weight`, `${S}.attention.wo.weight`);
    t.set(`${M}.post_attention_layernorm.weight`, `${S}.ffn_norm.weight`);
    t.set(`${M}.mlp.gate_proj.weight`, `${S}.feed_forward.w1.weight`);
    t.set(`${M}.mlp.down_proj.weight`, `${S}.feed_forward.w2.weight`);
    t.set(`${M}.mlp.up_proj.weight`, `${S}.feed_forward.w3.weight`);
  }
  // run.c: BOS = 1, EOS = 2 (SentencePiece ids); generation stops when BOS is sampled.
  return { format: 'llama2c', architecture: 'llama', config, source: src, tensorFor: t, transposed: new Set(), bosId: 1, eosIds: [2] };
}
