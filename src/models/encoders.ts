// Encoder registry: the architectures that can produce sentence embeddings, each built as a graph whose output
// is the final hidden state. BERT is encoder-only; Llama/Qwen3 stacks run bidirectionally when their config says
// so (`is_causal: false`, pplx-embed) and causally otherwise (decoder embedders with last-token pooling).
// Kept apart from ModelConfig (the causal LMs that sessions and writers handle) so those switches stay closed.

import type { Graph } from '../graph/graph.js';
import { UnsupportedError } from '../errors.js';
import { bertConfigFromHF, bertParams, buildBertGraph, type BertConfig } from './bert.js';
import { configFromHF } from './checkpoints/hf.js';
import { buildGraph, modelParams } from './index.js';
import type { LlamaConfig } from './llama.js';
import type { Qwen3Config } from './qwen3.js';

export type EncoderConfig = BertConfig | LlamaConfig | Qwen3Config;

export interface EncoderInfo {
  hiddenSize: number;
  /** Learned (BERT) or trained (RoPE) positions: the longest input the encoder accepts. */
  maxPositions: number;
  /** Attention over the whole text (BERT, is_causal false) rather than causal. */
  bidirectional: boolean;
  /** The graph takes a `token_type_ids` input (BERT). */
  tokenTypes: boolean;
}

/** An encoder config from an HF config.json: BERT here, Llama/Qwen3 through configFromHF. */
export function encoderConfigFromHF(raw: Record<string, unknown>, file: string): EncoderConfig {
  const archs = Array.isArray(raw['architectures']) ? (raw['architectures'] as unknown[]).map(String) : [];
  if (raw['model_type'] === 'bert' || (raw['model_type'] === undefined && archs.some((a) => a.startsWith('Bert')))) return bertConfigFromHF(raw);
  const c = configFromHF(raw, file);
  if (c.model_type === 'gpt2') throw new UnsupportedError(`${file}: GPT-2 models cannot be used as embedding encoders (supported: bert, llama, qwen3)`);
  return c;
}

export function encoderInfo(c: EncoderConfig): EncoderInfo {
  if (c.model_type === 'bert') return { hiddenSize: c.hidden_size, maxPositions: c.max_position_embeddings, bidirectional: true, tokenTypes: true };
  return { hiddenSize: c.hidden_size, maxPositions: c.max_position_embeddings, bidirectional: c.model_type === 'qwen3' && !c.is_causal, tokenTypes: false };
}

/** The parameters an encoder reads (no LM head). */
export function encoderParams(c: EncoderConfig): Map<string, number[]> {
  if (c.model_type === 'bert') return bertParams(c);
  return modelParams({ ...c, tie_word_embeddings: true });
}

/**
 * The encoder over `batch` padded sequences of `bucket` rows each. Inputs: `ids`, `positions` [batch*bucket] i32,
 * `key_mask` [batch*bucket] f32 (0 real, -Infinity padding), and for BERT `token_type_ids`. Output: `hidden`.
 */
export function buildEncoderGraph(c: EncoderConfig, bucket: number, batch: number): Graph {
  const o = { seqLen: bucket * batch, cacheLen: null, logits: 'all' as const, output: 'hidden' as const, padded: { batch } };
  return c.model_type === 'bert' ? buildBertGraph(c, o) : buildGraph(c, o);
}
