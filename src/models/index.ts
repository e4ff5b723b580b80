// Architecture registry: one file per architecture, each building a Graph from its typed config.

import type { Graph } from '../graph/graph.js';
import { buildGPT2Graph, gpt2Params, type GPT2Config } from './gpt2.js';
import { buildLlamaGraph, llamaParams, type BuildOptions, type LlamaConfig } from './llama.js';
import { buildQwen3Graph, qwen3Params, type Qwen3Config } from './qwen3.js';

export type { BuildOptions } from './llama.js';
export type ModelConfig = LlamaConfig | Qwen3Config | GPT2Config;

export interface ArchInfo {
  vocabSize: number;
  numLayers: number;
  kvDim: number;
  /** The context the model was trained with. */
  maxPositions: number;
  /** RoPE models can run past maxPositions (quality degrades; a warning is due); learned positions cannot. */
  extendableContext: boolean;
}

export function buildGraph(c: ModelConfig, o: BuildOptions): Graph {
  switch (c.model_type) {
    case 'llama':
      return buildLlamaGraph(c, o);
    case 'qwen3':
    case 'qwen2':
      return buildQwen3Graph(c, o);
    case 'gpt2':
      return buildGPT2Graph(c, o);
  }
}

export function modelParams(c: ModelConfig): Map<string, number[]> {
  switch (c.model_type) {
    case 'llama':
      return llamaParams(c);
    case 'qwen3':
    case 'qwen2':
      return qwen3Params(c);
    case 'gpt2':
      return gpt2Params(c);
  }
}

export function archInfo(c: ModelConfig): ArchInfo {
  if (c.model_type === 'gpt2') {
    return { vocabSize: c.vocab_size, numLayers: c.n_layer, kvDim: c.n_embd, maxPositions: c.n_positions, extendableContext: false };
  }
  return {
    vocabSize: c.vocab_size,
    numLayers: c.num_hidden_layers,
    kvDim: c.num_key_value_heads * c.head_dim,
    maxPositions: c.max_position_embeddings,
    extendableContext: true,
  };
}

/** Default KV-cache length: the trained context, at least 2048 for RoPE models (some converters record a
 *  short context, e.g. llama.cpp's llama2c converter writes 128), at most 4096 (memory). */
export function defaultContextLength(c: ModelConfig): number {
  const info = archInfo(c);
  if (!info.extendableContext) return info.maxPositions;
  return Math.min(4096, Math.max(info.maxPositions, 2048));
}
