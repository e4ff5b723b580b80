// HF checkpoints (config.json + safetensors, single or sharded): parameter names are the
// checkpoint's own names. Quirks handled here: GPT-2 files saved from GPT2Model lack the
// `transformer.` prefix, GPT-2's Conv1D weights are [in, out], and a tied head may be absent.

import * as path from 'node:path';
import { openSafetensorsDir } from '../../formats/safetensors.js';
import { readHfConfig } from '../../formats/hf-config.js';
import { UnsupportedError } from '../../errors.js';
import { modelParams, type ModelConfig } from '../index.js';
import { llamaConfigFromHF } from '../llama.js';
import { qwen2ConfigFromHF, qwen3ConfigFromHF } from '../qwen3.js';
import { gpt2ConfigFromHF } from '../gpt2.js';
import type { CheckpointPlan } from './types.js';

const ARCHITECTURES: Record<string, (c: Record<string, unknown>) => ModelConfig> = {
  llama: llamaConfigFromHF,
  mistral: llamaConfigFromHF,
  qwen3: qwen3ConfigFromHF,
  qwen2: qwen2ConfigFromHF,
  gpt2: gpt2ConfigFromHF,
};
const CLASS_TO_TYPE: Record<string, string> = {
  LlamaForCausalLM: 'llama', MistralForCausalLM: 'llama', Qwen3ForCausalLM: 'qwen3', Qwen3Model: 'qwen3', Qwen2ForCausalLM: 'qwen2', Qwen2Model: 'qwen2',
  GPT2LMHeadModel: 'gpt2', GPT2Model: 'gpt2',
};
const CONV1D = /\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;

/** The BOS id and EOS ids a checkpoint declares (generation_config.json first, then config.json). */
export function declaredSpecialIds(raw: Record<string, unknown>, generation: Record<string, unknown> | null): { bosId: number | null; eosIds: number[] } {
  const gen = generation ?? {};
  const bos = gen['bos_token_id'] ?? raw['bos_token_id'];
  return { bosId: typeof bos === 'number' ? bos : null, eosIds: idList(gen['eos_token_id'] ?? raw['eos_token_id']) };
}

function idList(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

export function configFromHF(raw: Record<string, unknown>, file: string): ModelConfig {
  const archs = Array.isArray(raw['architectures']) ? (raw['architectures'] as unknown[]).map(String) : [];
  const type = typeof raw['model_type'] === 'string' ? (raw['model_type'] as string) : archs.map((a) => CLASS_TO_TYPE[a]).find(Boolean);
  const make = type === undefined ? undefined : ARCHITECTURES[type];
  if (make === undefined) {
    throw new UnsupportedError(`${file}: model_type ${JSON.stringify(type)} (${archs.join(', ') || 'no architectures'}) is not supported (supported: ${Object.keys(ARCHITECTURES).join(', ')})`);
  }
  return make(raw);
}

export function planHF(dir: string): CheckpointPlan {
  const { config: raw, generation } = readHfConfig(dir);
  const config = configFromHF(raw, path.join(dir, 'config.json'));
  const source = openSafetensorsDir(dir);
  // Checkpoints saved with tied embeddings may omit lm_head even when the flag says untied.
  if (!config.tie_word_embeddings && !source.has('lm_head.weight')) config.tie_word_embeddings = true;
  const tensorFor = new Map<string, string>();
  const transposed = new Set<string>();
  for (const p of modelParams(config).keys()) {
    const bare = p.replace(/^transformer\./, '');
    tensorFor.set(p, config.model_type === 'gpt2' && !source.has(p) && source.has(bare) ? bare : p);
    if (config.model_type === 'gpt2' && CONV1D.test(p)) transposed.add(p);
  }
  return {
    format: 'safetensors',
    architecture: config.model_type,
    config,
    source,
    tensorFor,
    transposed,
    ...declaredSpecialIds(raw, generation),
  };
}
