// GPT-2: learned position embeddings, pre-LayerNorm with biases, tanh-GELU, biases on every
// projection, a fused c_attn projection split into q/k/v, head tied to wte.
// HF stores Conv1D weights as [in, out]; the loader transposes them to [out, in] (checkpoints/hf.ts).

import { Graph } from '../graph/graph.js';
import { RistrettoError } from '../errors.js';
import { configFields, requirePositiveInts } from './config.js';
import { NONE, attendWithCache, lmHead, linear, paramLookup, tokenInputs } from './blocks.js';
import type { BuildOptions } from './llama.js';

export interface GPT2Config {
  model_type: 'gpt2';
  vocab_size: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  /** MLP width (HF: null means 4 x n_embd). */
  n_inner: number;
  n_positions: number;
  layer_norm_epsilon: number;
  /** gelu_new / gelu_pytorch_tanh: tanh approximation; gelu: exact erf form. */
  activation_function: 'gelu_new' | 'gelu';
  tie_word_embeddings: boolean;
}

export function gpt2ConfigFromHF(c: Record<string, unknown>): GPT2Config {
  const { num, numOf, bool } = configFields(c, 'GPT-2');
  const D = numOf(['n_embd', 'hidden_size']);
  const act = (c['activation_function'] ?? 'gelu_new') as string;
  if (!['gelu_new', 'gelu_pytorch_tanh', 'gelu', 'gelu_fast'].includes(act)) {
    throw new RistrettoError('CONFIG', `config.json: activation_function ${JSON.stringify(act)} is not supported for GPT-2`);
  }
  const cfg: GPT2Config = {
    model_type: 'gpt2',
    vocab_size: num('vocab_size'),
    n_embd: D,
    n_layer: numOf(['n_layer', 'num_hidden_layers']),
    n_head: numOf(['n_head', 'num_attention_heads']),
    n_inner: num('n_inner', 4 * D),
    n_positions: numOf(['n_positions', 'max_position_embeddings'], 1024),
    layer_norm_epsilon: num('layer_norm_epsilon', 1e-5),
    activation_function: act === 'gelu' ? 'gelu' : 'gelu_new',
    tie_word_embeddings: bool('tie_word_embeddings', true),
  };
  validateGPT2Config(cfg);
  return cfg;
}

export function validateGPT2Config(c: GPT2Config): void {
  requirePositiveInts(c, ['vocab_size', 'n_embd', 'n_layer', 'n_head', 'n_inner', 'n_positions'], 'gpt2');
  if (c.n_embd % c.n_head !== 0) throw new RistrettoError('CONFIG', `gpt2 config: n_embd ${c.n_embd} is not a multiple of n_head ${c.n_head}`);
}

export function gpt2Params(c: GPT2Config): Map<string, number[]> {
  const D = c.n_embd;
  const p = new Map<string, number[]>([
    ['transformer.wte.weight', [c.vocab_size, D]],
    ['transformer.wpe.weight', [c.n_positions, D]],
  ]);
  for (let l = 0; l < c.n_layer; l++) {
    const H = `transformer.h.${l}`;
    for (const ln of ['ln_1', 'ln_2']) {
      p.set(`${H}.${ln}.weight`, [D]);
      p.set(`${H}.${ln}.bias`, [D]);
    }
    p.set(`${H}.attn.c_attn.weight`, [3 * D, D]);
    p.set(`${H}.attn.c_attn.bias`, [3 * D]);
    p.set(`${H}.attn.c_proj.weight`, [D, D]);
    p.set(`${H}.attn.c_proj.bias`, [D]);
    p.set(`${H}.mlp.c_fc.weight`, [c.n_inner, D]);
    p.set(`${H}.mlp.c_fc.bias`, [c.n_inner]);
    p.set(`${H}.mlp.c_proj.weight`, [D, c.n_inner]);
    p.set(`${H}.mlp.c_proj.bias`, [D]);
  }
  p.set('transformer.ln_f.weight', [D]);
  p.set('transformer.ln_f.bias', [D]);
  if (!c.tie_word_embeddings) p.set('lm_head.weight', [c.vocab_size, D]);
  return p;
}

export function buildGPT2Graph(c: GPT2Config, o: BuildOptions): Graph {
  const g = new Graph();
  const P = paramLookup(g, gpt2Params(c));
  const { ids, pos } = tokenInputs(g, o.seqLen);
  const D = c.n_embd;
  const hd = D / c.n_head;
  const attn = { nHeads: c.n_head, nKvHeads: c.n_head, headDim: hd, causal: true, scale: 1 / Math.sqrt(hd) };
  const eps = c.layer_norm_epsilon;
  const gelu = c.activation_function === 'gelu' ? 'gelu_erf' : 'gelu_tanh';
  const ln = (x: ReturnType<typeof P>, name: string) => g.add('layernorm', [x, P(`${name}.weight`), P(`${name}.bias`)], { eps });

  let x = g.add('add', [g.add('embedding', [P('transformer.wte.weight'), ids], NONE), g.add('embedding', [P('transformer.wpe.weight'), pos], NONE)], NONE);
  for (let l = 0; l < c.n_layer; l++) {
    const H = `transformer.h.${l}`;
    const qkv = linear(g, ln(x, `${H}.ln_1`), P(`${H}.attn.c_attn.weight`), P(`${H}.attn.c_attn.bias`));
    const q = g.add('slice_cols', [qkv], { start: 0, count: D });
    const k = g.add('slice_cols', [qkv], { start: D, count: D });
    const v = g.add('slice_cols', [qkv], { start: 2 * D, count: D });
    const a = attendWithCache(g, q, k, v, pos, { layer: l, attn, cacheLen: o.cacheLen });
    x = g.add('add', [x, linear(g, a, P(`${H}.attn.c_proj.weight`), P(`${H}.attn.c_proj.bias`))], NONE);
    const f = g.add(gelu, [linear(g, ln(x, `${H}.ln_2`), P(`${H}.mlp.c_fc.weight`), P(`${H}.mlp.c_fc.bias`))], NONE);
    x = g.add('add', [x, linear(g, f, P(`${H}.mlp.c_proj.weight`), P(`${H}.mlp.c_proj.bias`))], NONE);
  }
  x = ln(x, 'transformer.ln_f');
  lmHead(g, x, P(c.tie_word_embeddings ? 'transformer.wte.weight' : 'lm_head.weight'), o.seqLen, o.logits);
  return g;
}
