// HF checkpoints (config.json + safetensors): parameter names are the checkpoint's own names.

import * as path from 'node:path';
import { openSafetensorsDir } from '../../formats/safetensors.js';
import { readHfConfig } from '../../formats/hf-config.js';
import { UnsupportedError } from '../../errors.js';
import { llamaConfigFromHF } from '../llama.js';
import type { CheckpointPlan } from './types.js';

function idList(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

export function planHF(dir: string): CheckpointPlan {
  const { config: raw, generation } = readHfConfig(dir);
  const archs = Array.isArray(raw['architectures']) ? (raw['architectures'] as unknown[]) : [];
  const type = raw['model_type'];
  if (!(type === 'llama' || archs.includes('LlamaForCausalLM'))) {
    throw new UnsupportedError(`${path.join(dir, 'config.json')}: model_type ${JSON.stringify(type)} (${archs.join(', ') || 'no architectures'}) is not supported yet (supported: llama)`);
  }
  const source = openSafetensorsDir(dir);
  const config = llamaConfigFromHF(raw);
  // Checkpoints saved with tied embeddings may omit lm_head even when the flag is absent.
  if (!config.tie_word_embeddings && !source.has('lm_head.weight')) config.tie_word_embeddings = true;
  const tensorFor = new Map<string, string>();
  for (const t of source.list()) tensorFor.set(t.name, t.name);
  const gen = generation ?? {};
  const bos = (gen['bos_token_id'] ?? raw['bos_token_id']) as unknown;
  const eosIds = idList(gen['eos_token_id'] ?? raw['eos_token_id']);
  return {
    format: 'safetensors',
    architecture: 'llama',
    config,
    source,
    tensorFor,
    bosId: typeof bos === 'number' ? bos : null,
    eosIds,
  };
}
