// Planning an HF encoder checkpoint (config.json + safetensors) for embeddings. Besides the canonical names it
// accepts the prefixes models are often saved with: `bert.` (BertFor* heads) and bare Llama/Qwen3 names without
// `model.` (checkpoints saved from Qwen3Model / LlamaModel). Optional extras (BERT's pooler) are mapped when present.

import * as path from 'node:path';
import { openSafetensorsDir } from '../../formats/safetensors.js';
import { readHfConfig } from '../../formats/hf-config.js';
import { BERT_POOLER } from '../bert.js';
import { encoderConfigFromHF, encoderParams, type EncoderConfig } from '../encoders.js';
import { declaredSpecialIds } from './hf.js';
import type { CheckpointPlan } from './types.js';

export interface EncoderPlan extends Omit<CheckpointPlan, 'config'> {
  config: EncoderConfig;
  /** Optional parameters present in the file (BERT's pooler), with their shapes. */
  extras: Map<string, number[]>;
}

export function planHFEncoder(dir: string): EncoderPlan {
  const { config: raw, generation } = readHfConfig(dir);
  const config = encoderConfigFromHF(raw, path.join(dir, 'config.json'));
  const source = openSafetensorsDir(dir);
  const resolve = (p: string): string => {
    const alternatives = config.model_type === 'bert' ? [p, `bert.${p}`] : [p, p.replace(/^model\./, '')];
    return alternatives.find((n) => source.has(n)) ?? p;
  };
  const tensorFor = new Map<string, string>();
  for (const p of encoderParams(config).keys()) tensorFor.set(p, resolve(p));
  const extras = new Map<string, number[]>();
  if (config.model_type === 'bert') {
    const D = config.hidden_size;
    const pooler: [string, number[]][] = [[BERT_POOLER.weight, [D, D]], [BERT_POOLER.bias, [D]]];
    if (pooler.every(([p]) => source.has(resolve(p)))) {
      for (const [p, shape] of pooler) {
        tensorFor.set(p, resolve(p));
        extras.set(p, shape);
      }
    }
  }
  return {
    format: 'safetensors',
    architecture: config.model_type,
    config,
    source,
    tensorFor,
    transposed: new Set(),
    extras,
    ...declaredSpecialIds(raw, generation),
  };
}
