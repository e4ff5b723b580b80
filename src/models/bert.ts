// BERT encoders (BertModel: MiniLM, bge, e5, ...): word + absolute position + token-type embeddings and a
// LayerNorm, then post-norm layers (attention -> add -> LayerNorm, GELU MLP -> add -> LayerNorm), bidirectional
// attention with a padding mask only. The output is the final hidden state; BERT has no LM head here.
// Config fields are HF `config.json` keys, parameter names HF BertModel names (no `bert.` prefix).

import { Graph, type Sym } from '../graph/graph.js';
import { RistrettoError, UnsupportedError } from '../errors.js';
import { configFields, requirePositiveInts } from './config.js';
import { NONE, attendWithCache, keyMaskInput, linear, paramLookup, tokenInputs } from './blocks.js';
import type { BuildOptions } from './llama.js';

export interface BertConfig {
  model_type: 'bert';
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  max_position_embeddings: number;
  type_vocab_size: number;
  layer_norm_eps: number;
  /** gelu: exact erf form; gelu_new / gelu_pytorch_tanh: tanh approximation. */
  hidden_act: 'gelu' | 'gelu_new';
  pad_token_id: number;
}

export function bertConfigFromHF(c: Record<string, unknown>): BertConfig {
  const { num } = configFields(c, 'BERT');
  const act = (c['hidden_act'] ?? 'gelu') as string;
  if (!['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'].includes(act)) {
    throw new UnsupportedError(`config.json: hidden_act ${JSON.stringify(act)} is not supported for BERT (supported: gelu, gelu_new, gelu_pytorch_tanh)`);
  }
  const pe = c['position_embedding_type'] ?? 'absolute';
  if (pe !== 'absolute') throw new UnsupportedError(`config.json: position_embedding_type ${JSON.stringify(pe)} is not supported for BERT (supported: absolute)`);
  const cfg: BertConfig = {
    model_type: 'bert',
    vocab_size: num('vocab_size'),
    hidden_size: num('hidden_size'),
    num_hidden_layers: num('num_hidden_layers'),
    num_attention_heads: num('num_attention_heads'),
    intermediate_size: num('intermediate_size'),
    max_position_embeddings: num('max_position_embeddings', 512),
    type_vocab_size: num('type_vocab_size', 2),
    layer_norm_eps: num('layer_norm_eps', 1e-12),
    hidden_act: act === 'gelu' ? 'gelu' : 'gelu_new',
    pad_token_id: num('pad_token_id', 0),
  };
  validateBertConfig(cfg);
  return cfg;
}

export function validateBertConfig(c: BertConfig): void {
  requirePositiveInts(c, ['vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'max_position_embeddings', 'type_vocab_size'], 'bert');
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new RistrettoError('CONFIG', `bert config: hidden_size ${c.hidden_size} is not a multiple of num_attention_heads ${c.num_attention_heads}`);
  }
}

/** The parameter names and shapes of a BertModel (without the optional pooler, see BERT_POOLER). */
export function bertParams(c: BertConfig): Map<string, number[]> {
  const D = c.hidden_size;
  const I = c.intermediate_size;
  const p = new Map<string, number[]>([
    ['embeddings.word_embeddings.weight', [c.vocab_size, D]],
    ['embeddings.position_embeddings.weight', [c.max_position_embeddings, D]],
    ['embeddings.token_type_embeddings.weight', [c.type_vocab_size, D]],
    ['embeddings.LayerNorm.weight', [D]],
    ['embeddings.LayerNorm.bias', [D]],
  ]);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const L = `encoder.layer.${l}`;
    for (const n of ['query', 'key', 'value']) {
      p.set(`${L}.attention.self.${n}.weight`, [D, D]);
      p.set(`${L}.attention.self.${n}.bias`, [D]);
    }
    p.set(`${L}.attention.output.dense.weight`, [D, D]);
    p.set(`${L}.attention.output.dense.bias`, [D]);
    p.set(`${L}.attention.output.LayerNorm.weight`, [D]);
    p.set(`${L}.attention.output.LayerNorm.bias`, [D]);
    p.set(`${L}.intermediate.dense.weight`, [I, D]);
    p.set(`${L}.intermediate.dense.bias`, [I]);
    p.set(`${L}.output.dense.weight`, [D, I]);
    p.set(`${L}.output.dense.bias`, [D]);
    p.set(`${L}.output.LayerNorm.weight`, [D]);
    p.set(`${L}.output.LayerNorm.bias`, [D]);
  }
  return p;
}

/** BertModel's optional pooler: tanh(dense(hidden[0])) (HF `pooler_output`). */
export const BERT_POOLER = { weight: 'pooler.dense.weight', bias: 'pooler.dense.bias' } as const;

/**
 * The encoder as a graph. Inputs: `ids`, `positions` (absolute, from 0) and `token_type_ids` [T] i32, plus
 * `key_mask` [T] f32 with `o.padded`. Output: `hidden` [T, hidden_size]. Attention is bidirectional.
 */
export function buildBertGraph(c: BertConfig, o: BuildOptions): Graph {
  if (o.output !== 'hidden') throw new UnsupportedError('BERT is an encoder without an LM head: build it with output "hidden" (see loadEmbeddingModel)');
  if (o.cacheLen !== null) throw new UnsupportedError('BERT encoders run without a KV cache (cacheLen must be null)');
  const g = new Graph();
  const P = paramLookup(g, bertParams(c));
  const { ids, pos } = tokenInputs(g, o.seqLen);
  const types = g.add('input', [], { name: 'token_type_ids', shape: [o.seqLen], type: 'i32' }, 'token_type_ids');
  const keyMask = keyMaskInput(g, o);
  const D = c.hidden_size;
  const hd = D / c.num_attention_heads;
  const attn = { nHeads: c.num_attention_heads, nKvHeads: c.num_attention_heads, headDim: hd, causal: false, scale: 1 / Math.sqrt(hd) };
  const eps = c.layer_norm_eps;
  const gelu = c.hidden_act === 'gelu' ? 'gelu_erf' : 'gelu_tanh';
  const ln = (x: Sym, name: string) => g.add('layernorm', [x, P(`${name}.weight`), P(`${name}.bias`)], { eps });
  const dense = (x: Sym, name: string) => linear(g, x, P(`${name}.weight`), P(`${name}.bias`));
  const E = 'embeddings';

  let x = g.add('embedding', [P(`${E}.word_embeddings.weight`), ids], NONE);
  x = g.add('add', [x, g.add('embedding', [P(`${E}.position_embeddings.weight`), pos], NONE)], NONE);
  x = g.add('add', [x, g.add('embedding', [P(`${E}.token_type_embeddings.weight`), types], NONE)], NONE);
  x = ln(x, `${E}.LayerNorm`);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const L = `encoder.layer.${l}`;
    const S = `${L}.attention.self`;
    const a = attendWithCache(g, dense(x, `${S}.query`), dense(x, `${S}.key`), dense(x, `${S}.value`), pos, { layer: l, attn, cacheLen: null, keyMask });
    x = ln(g.add('add', [dense(a, `${L}.attention.output.dense`), x], NONE), `${L}.attention.output.LayerNorm`);
    const f = g.add(gelu, [dense(x, `${L}.intermediate.dense`)], NONE);
    x = ln(g.add('add', [dense(f, `${L}.output.dense`), x], NONE), `${L}.output.LayerNorm`);
  }
  g.output('hidden', x);
  return g;
}
