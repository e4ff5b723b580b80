// Architecture registry: one file per architecture, each building a Graph from its typed config.

import type { Graph } from '../graph/graph.js';
import { buildLlamaGraph, llamaParams, type BuildOptions, type LlamaConfig } from './llama.js';

export type { BuildOptions } from './llama.js';
export type ModelConfig = LlamaConfig;

export interface ArchInfo {
  vocabSize: number;
  numLayers: number;
  kvDim: number;
  /** The context the model was trained with. */
  maxPositions: number;
  /** RoPE models can run past maxPositions (quality degrades; a warning is due); learned positions cannot. */
  extendableContext: boolean;
}

/** Default KV-cache length: the trained context, at least 2048 for RoPE models (some converters record a
 *  short context, e.g. llama.cpp's llama2c converter writes 128), at most 4096 (memory). */
export function defaultContextLength(c: ModelConfig): number {
  const info = archInfo(c);
  if (!info.extendableContext) return info.maxPositions;
  return Math.min(4096, Math.max(info.maxPositions, 2048));
}

export function buildGraph(c: ModelConfig, o: BuildOptions): Graph {
  switch (c.model_type) {
    case 'llama':
      return buildLlamaGraph(c, o);
  }
}

export function modelParams(c: ModelConfig): Map<string, number[]> {
  switch (c.model_type) {
    case 'llama':
      return llamaParams(c);
  }
}

export function archInfo(c: ModelConfig): ArchInfo {
  return {
    vocabSize: c.vocab_size,
    numLayers: c.num_hidden_layers,
    kvDim: c.num_key_value_heads * c.head_dim,
    maxPositions: c.max_position_embeddings,
    extendableContext: true,
  };
}
