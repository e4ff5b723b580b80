// Exporting a trained model: HF safetensors (config.json + model.safetensors, HF names, rotate-half
// q/k), GGUF (llama.cpp names, interleaved q/k for Llama, tokenizer metadata for SentencePiece and for
// byte-level BPE with a llama.cpp pre-tokenizer) and llama2.c `.bin` (legacy run.c format, interleaved q/k). Each loads in `generate`.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError, UnsupportedError } from '../errors.js';
import type { GGUFMetadataEntry } from '../formats/gguf.js';
import { writeLlama2c, type Llama2cConfig } from '../formats/llama2c.js';
import { readTensorAsF32 } from '../formats/dtypes/index.js';
import type { HostTensor } from '../formats/tensor.js';
import { permuteRopeRows, writeGGUFCheckpoint, writeHFCheckpoint } from '../models/checkpoints/write.js';
import type { ModelConfig } from '../models/index.js';
import { loadTokenizer } from '../tokenizers/load.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { ByteLevelBPETokenizer } from '../tokenizers/byte-level-bpe.js';
import { loadCheckpoint } from './checkpoint.js';
import type { Arr } from './gemm.js';
import { toHostTensors } from './params.js';
import type { TrainState } from './trainer.js';

export type ExportFormat = 'safetensors' | 'gguf' | 'llama2c';

export interface ExportResult {
  path: string;
  format: ExportFormat;
  /** Tokenizer files written next to the model, or a note when the user must pass --tokenizer. */
  tokenizer: string | null;
  note: string | null;
}

/** GGUF `tokenizer.ggml.*` metadata for a SentencePiece tokenizer (llama.cpp "llama" vocabulary) or a byte-level
 *  BPE whose pre-tokenizer llama.cpp names ("gpt2" vocabulary), else null. */
export function ggufTokenizerMetadata(tok: Tokenizer): GGUFMetadataEntry[] | null {
  if (tok instanceof ByteLevelBPETokenizer) return tok.toGGUFMetadata();
  if (tok.kind !== 'sentencepiece-bpe') return null;
  const cfg = (tok as unknown as { config?: { tokens?: readonly string[]; scores?: ArrayLike<number>; tokenTypes?: ArrayLike<number>; unkId?: number | null } }).config;
  if (cfg?.tokens === undefined || cfg.scores === undefined) return null;
  const V = cfg.tokens.length;
  const types: number[] = [];
  for (let i = 0; i < V; i++) {
    const t = cfg.tokens[i]!;
    if (cfg.tokenTypes !== undefined) types.push(cfg.tokenTypes[i]!);
    else if (/^<0x[0-9A-Fa-f]{2}>$/.test(t)) types.push(6);
    else if (i === cfg.unkId) types.push(2);
    else if (i === tok.bosId || tok.eosIds.includes(i)) types.push(3);
    else types.push(1);
  }
  const m: GGUFMetadataEntry[] = [
    ['tokenizer.ggml.model', 'string', 'llama'],
    ['tokenizer.ggml.tokens', { array: 'string' }, [...cfg.tokens]],
    ['tokenizer.ggml.scores', { array: 'float32' }, Array.from(cfg.scores)],
    ['tokenizer.ggml.token_type', { array: 'int32' }, types],
  ];
  if (tok.bosId !== null) m.push(['tokenizer.ggml.bos_token_id', 'uint32', tok.bosId]);
  if (tok.eosIds.length > 0) m.push(['tokenizer.ggml.eos_token_id', 'uint32', tok.eosIds[0]!]);
  if (cfg.unkId !== undefined && cfg.unkId !== null) m.push(['tokenizer.ggml.unknown_token_id', 'uint32', cfg.unkId]);
  return m;
}

const LLAMA2C_LAYER: [string, string][] = [
  ['input_layernorm.weight', 'attention_norm.weight'],
  ['self_attn.q_proj.weight', 'attention.wq.weight'],
  ['self_attn.k_proj.weight', 'attention.wk.weight'],
  ['self_attn.v_proj.weight', 'attention.wv.weight'],
  ['self_attn.o_proj.weight', 'attention.wo.weight'],
  ['post_attention_layernorm.weight', 'ffn_norm.weight'],
  ['mlp.gate_proj.weight', 'feed_forward.w1.weight'],
  ['mlp.down_proj.weight', 'feed_forward.w2.weight'],
  ['mlp.up_proj.weight', 'feed_forward.w3.weight'],
];

/** Writes a legacy (run.c) llama2.c checkpoint; q/k rows are permuted to the interleaved layout when needed. */
export function writeLlama2cModel(file: string, c: ModelConfig, weights: Map<string, HostTensor>): void {
  if (c.model_type !== 'llama') throw new UnsupportedError(`llama2.c .bin holds Llama models only (this is ${c.model_type})`);
  if (c.head_dim * c.num_attention_heads !== c.hidden_size) throw new UnsupportedError('llama2.c .bin needs head_dim = hidden_size / heads');
  if (c.rope_theta !== 10000 || c.rope_scaling !== null || c.rope_freq_factors !== undefined) throw new UnsupportedError(`llama2.c .bin fixes RoPE theta at 10000 without scaling (model: ${c.rope_theta})`);
  if (Math.abs(c.rms_norm_eps - 1e-5) > 1e-12) throw new UnsupportedError(`llama2.c .bin fixes RMSNorm eps at 1e-5 (model: ${c.rms_norm_eps})`);
  const lc: Llama2cConfig = {
    dim: c.hidden_size, hiddenDim: c.intermediate_size, nLayers: c.num_hidden_layers, nHeads: c.num_attention_heads, nKvHeads: c.num_key_value_heads,
    vocabSize: c.vocab_size, seqLen: c.max_position_embeddings, sharedClassifier: c.tie_word_embeddings, version: 0,
  };
  const byFile = new Map<string, string>([['tok_embeddings.weight', 'model.embed_tokens.weight'], ['norm.weight', 'model.norm.weight'], ['output.weight', 'lm_head.weight']]);
  for (let l = 0; l < c.num_hidden_layers; l++) for (const [hf, lc2] of LLAMA2C_LAYER) byFile.set(`layers.${l}.${lc2}`, `model.layers.${l}.${hf}`);
  writeLlama2c(file, lc, (name) => {
    const p = byFile.get(name);
    let t = p === undefined ? undefined : weights.get(p);
    if (t === undefined) throw new InvalidArgumentError(`llama2.c export: no parameter for "${name}"`);
    if (c.rope_style === 'neox' && /\.(q_proj|k_proj)\.weight$/.test(p!)) t = permuteRopeRows(t, c.head_dim, true);
    return readTensorAsF32(t);
  });
}

/** Exports parameters in one of the three formats. `tokenizerPath` is copied/embedded when the format can hold it. */
export function exportModel(format: ExportFormat, out: string, config: ModelConfig, params: ReadonlyMap<string, Arr>, tokenizerPath: string | null): ExportResult {
  const weights = toHostTensors(config, params);
  let tok: Tokenizer | null = null;
  if (tokenizerPath !== null && fs.existsSync(tokenizerPath)) {
    try {
      tok = loadTokenizer(tokenizerPath, config.vocab_size).tokenizer;
    } catch {
      tok = null;
    }
  }
  const passTok = tokenizerPath === null ? 'pass --tokenizer to generate' : `pass --tokenizer ${tokenizerPath} to generate`;
  if (format === 'safetensors') {
    writeHFCheckpoint(out, config, weights);
    const cfgPath = path.join(out, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
    if (tok !== null) {
      if (tok.bosId !== null) cfg['bos_token_id'] = tok.bosId;
      if (tok.eosIds.length > 0) cfg['eos_token_id'] = tok.eosIds[0];
      fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2) + '\n');
    }
    if (tokenizerPath !== null && tokenizerPath.endsWith('.json') && fs.existsSync(tokenizerPath)) {
      fs.rmSync(path.join(out, 'tokenizer.json'), { force: true });
      fs.copyFileSync(tokenizerPath, path.join(out, 'tokenizer.json'));
      const tc = path.join(path.dirname(tokenizerPath), 'tokenizer_config.json');
      if (fs.existsSync(tc)) {
        fs.rmSync(path.join(out, 'tokenizer_config.json'), { force: true });
        fs.copyFileSync(tc, path.join(out, 'tokenizer_config.json'));
      }
      return { path: out, format, tokenizer: path.join(out, 'tokenizer.json'), note: null };
    }
    return { path: out, format, tokenizer: null, note: `the HF folder needs a tokenizer.json; ${passTok}` };
  }
  if (format === 'gguf') {
    const md = tok === null ? null : ggufTokenizerMetadata(tok);
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
    writeGGUFCheckpoint(out, config, weights, { tokenizerMetadata: md ?? undefined, name: 'ristretto train' });
    return { path: out, format, tokenizer: md === null ? null : out, note: md === null ? `no tokenizer embedded; ${passTok}` : null };
  }
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeLlama2cModel(out, config, weights);
  // generate finds tok{vocab}.bin beside a .bin model.
  if (tokenizerPath !== null && tokenizerPath.endsWith('.bin') && fs.existsSync(tokenizerPath)) {
    const dst = path.join(path.dirname(path.resolve(out)), `tok${config.vocab_size}.bin`);
    if (path.resolve(tokenizerPath) !== dst) {
      fs.rmSync(dst, { force: true });
      fs.copyFileSync(tokenizerPath, dst);
      fs.chmodSync(dst, 0o644);
    }
    return { path: out, format, tokenizer: dst, note: null };
  }
  return { path: out, format, tokenizer: null, note: passTok };
}

/** Exports the parameters of a training checkpoint (checksum verified first). */
export function exportCheckpoint(checkpoint: string, format: ExportFormat, out: string, tokenizer?: string): ExportResult {
  const c = loadCheckpoint<TrainState>(checkpoint);
  const params = c.tensors.get('params');
  if (params === undefined) throw new InvalidArgumentError(`${checkpoint}: no parameters in this checkpoint`);
  return exportModel(format, out, c.state.config, params, tokenizer ?? c.state.tokenizer);
}
