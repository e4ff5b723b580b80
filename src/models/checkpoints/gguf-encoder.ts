// GGUF encoder checkpoints for embeddings: BERT as llama.cpp's convert_hf_to_gguf.py writes it (architecture
// "bert"). Names (llama.cpp's LLM_ARCH_BERT table) map onto the HF BertModel parameters the graph reads:
//   token_embd / position_embd / token_types / token_embd_norm  -> embeddings.{word,position,token_type}_embeddings, LayerNorm
//   blk.N.attn_q|attn_k|attn_v / attn_output / attn_output_norm  -> attention.self.{query,key,value}, attention.output.{dense,LayerNorm}
//   blk.N.ffn_up / ffn_down / layer_output_norm                  -> intermediate.dense, output.dense, output.LayerNorm
// The converter drops BERT's pooler; `bert.pooling_type` (llama.cpp's enum: 1 mean, 2 cls, 3 last) says how to pool.

import { openGGUF, type GGUFFile, type GGUFMetadataEntry } from '../../formats/gguf.js';
import { RistrettoError, UnsupportedError } from '../../errors.js';
import { bertParams, validateBertConfig, type BertConfig } from '../bert.js';
import type { EncoderPlan } from './hf-encoder.js';

export type GGUFPooling = 'mean' | 'cls' | 'last';
const POOLING_TYPES: Record<number, GGUFPooling> = { 1: 'mean', 2: 'cls', 3: 'last' };

/** HF BertModel parameter name -> llama.cpp GGUF tensor name. */
export function bertGGUFNames(c: BertConfig): Map<string, string> {
  const out = new Map<string, string>();
  const E = 'embeddings';
  out.set(`${E}.word_embeddings.weight`, 'token_embd.weight');
  out.set(`${E}.position_embeddings.weight`, 'position_embd.weight');
  out.set(`${E}.token_type_embeddings.weight`, 'token_types.weight');
  out.set(`${E}.LayerNorm.weight`, 'token_embd_norm.weight');
  out.set(`${E}.LayerNorm.bias`, 'token_embd_norm.bias');
  const parts: [string, string][] = [
    ['attention.self.query', 'attn_q'], ['attention.self.key', 'attn_k'], ['attention.self.value', 'attn_v'],
    ['attention.output.dense', 'attn_output'], ['attention.output.LayerNorm', 'attn_output_norm'],
    ['intermediate.dense', 'ffn_up'], ['output.dense', 'ffn_down'], ['output.LayerNorm', 'layer_output_norm'],
  ];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    for (const [hf, gg] of parts) for (const s of ['weight', 'bias']) out.set(`encoder.layer.${l}.${hf}.${s}`, `blk.${l}.${gg}.${s}`);
  }
  for (const p of bertParams(c).keys()) if (!out.has(p)) throw new Error(`bertGGUFNames: no GGUF name for ${p}`);
  return out;
}

function bertConfigFromGGUF(f: GGUFFile): { config: BertConfig; pooling: GGUFPooling | undefined } {
  const num = (key: string, dflt?: number): number => {
    const v = f.metadata.get(`bert.${key}`);
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    if (v === undefined && dflt !== undefined) return dflt;
    throw new RistrettoError('CONFIG', `${f.path}: metadata "bert.${key}" ${v === undefined ? 'is missing' : 'must be a number'}`);
  };
  const shapeOf = (name: string): readonly number[] => {
    const t = f.list().find((x) => x.name === name);
    if (t === undefined) throw new RistrettoError('CONFIG', `${f.path}: tensor ${name} is missing`);
    return t.shape;
  };
  if (f.metadata.get('bert.attention.causal') === true) throw new UnsupportedError(`${f.path}: bert.attention.causal is true; only bidirectional BERT encoders are supported`);
  const pad = f.metadata.get('tokenizer.ggml.padding_token_id');
  const config: BertConfig = {
    model_type: 'bert',
    vocab_size: shapeOf('token_embd.weight')[0]!,
    hidden_size: num('embedding_length'),
    num_hidden_layers: num('block_count'),
    num_attention_heads: num('attention.head_count'),
    intermediate_size: num('feed_forward_length'),
    max_position_embeddings: num('context_length'),
    type_vocab_size: f.has('token_types.weight') ? shapeOf('token_types.weight')[0]! : 2,
    layer_norm_eps: num('attention.layer_norm_epsilon', 1e-12),
    hidden_act: 'gelu', // llama.cpp's BERT graph uses the erf GELU
    pad_token_id: typeof pad === 'number' ? pad : 0,
  };
  validateBertConfig(config);
  const pt = f.metadata.get('bert.pooling_type');
  let pooling: GGUFPooling | undefined;
  if (typeof pt === 'number' && pt !== 0) {
    pooling = POOLING_TYPES[pt];
    if (pooling === undefined) throw new UnsupportedError(`${f.path}: bert.pooling_type ${pt} is not supported (supported: 1 mean, 2 cls, 3 last)`);
  }
  return { config, pooling };
}

/** Plans a GGUF embedding model (BERT). `pooling` is the file's bert.pooling_type, when it has one. */
export function planGGUFEncoder(file: string): EncoderPlan & { pooling: GGUFPooling | undefined } {
  const f = openGGUF(file);
  try {
    const arch = f.metadata.get('general.architecture');
    if (arch !== 'bert') {
      throw new UnsupportedError(`${file}: GGUF architecture ${JSON.stringify(arch)} is not supported for embeddings (supported: bert; Llama/Qwen3 encoders load from HF folders)`);
    }
    const { config, pooling } = bertConfigFromGGUF(f);
    const cls = f.metadata.get('tokenizer.ggml.cls_token_id');
    const sep = f.metadata.get('tokenizer.ggml.seperator_token_id');
    return {
      format: 'gguf',
      architecture: 'bert',
      config,
      source: f,
      tensorFor: bertGGUFNames(config),
      transposed: new Set(),
      extras: new Map(),
      bosId: typeof cls === 'number' ? cls : null,
      eosIds: typeof sep === 'number' ? [sep] : [],
      pooling,
    };
  } catch (e) {
    f.close();
    throw e;
  }
}

/** GGUF metadata for a BERT encoder (the inverse of bertConfigFromGGUF). */
export function bertGGUFMetadata(c: BertConfig, pooling: GGUFPooling | undefined, name = 'ristretto export'): GGUFMetadataEntry[] {
  const m: GGUFMetadataEntry[] = [['general.architecture', 'string', 'bert'], ['general.name', 'string', name]];
  const u32 = (k: string, v: number) => m.push([`bert.${k}`, 'uint32', v]);
  u32('context_length', c.max_position_embeddings);
  u32('embedding_length', c.hidden_size);
  u32('feed_forward_length', c.intermediate_size);
  u32('attention.head_count', c.num_attention_heads);
  u32('block_count', c.num_hidden_layers);
  m.push(['bert.attention.layer_norm_epsilon', 'float32', c.layer_norm_eps]);
  m.push(['bert.attention.causal', 'bool', false]);
  if (pooling !== undefined) u32('pooling_type', Number(Object.entries(POOLING_TYPES).find(([, v]) => v === pooling)![0]));
  return m;
}
