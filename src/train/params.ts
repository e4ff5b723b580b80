// Trainable parameters: model presets (llama2.c Stories shapes), seeded initialisation, loading a
// checkpoint's weights as plain float arrays, and converting back to HostTensors for writers.

import * as fs from 'node:fs';
import { InvalidArgumentError, RistrettoError } from '../errors.js';
import { readTensorAsF32 } from '../formats/dtypes/index.js';
import { readJsonFile } from '../formats/hf-config.js';
import type { HostTensor } from '../formats/tensor.js';
import { configFromHF } from '../models/checkpoints/hf.js';
import { checkPlan } from '../models/checkpoints/types.js';
import { modelParams, type ModelConfig } from '../models/index.js';
import { validateLlamaConfig, type LlamaConfig } from '../models/llama.js';
import { planCheckpoint } from '../runtime/load-model.js';
import type { Arr } from './gemm.js';
import { Rng } from './rng.js';

/** llama2.c Stories shapes (karpathy/tinyllamas), tied classifier, interleaved RoPE as llama2.c trains them. */
export function presetConfig(name: string, vocabSize?: number): LlamaConfig {
  const base = (dim: number, hidden: number, layers: number, heads: number, kv: number, vocab: number, seq: number): LlamaConfig => ({
    model_type: 'llama',
    vocab_size: vocabSize ?? vocab,
    hidden_size: dim,
    intermediate_size: hidden,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kv,
    head_dim: dim / heads,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    max_position_embeddings: seq,
    tie_word_embeddings: true,
    rope_style: 'interleaved',
  });
  switch (name) {
    case 'stories260K':
      return base(64, 172, 5, 8, 4, 512, 512);
    case 'stories15M':
      return base(288, 768, 6, 6, 6, 32000, 256);
    case 'stories42M':
      return base(512, 1376, 8, 8, 8, 32000, 1024);
    case 'stories110M':
      return base(768, 2048, 12, 12, 12, 32000, 1024);
  }
  throw new InvalidArgumentError(`unknown model preset "${name}" (known: stories260K, stories15M, stories42M, stories110M, or a CONFIG.json)`);
}

export const PRESETS = ['stories260K', 'stories15M', 'stories42M', 'stories110M'] as const;

/** A preset name or a config JSON file (HF config.json keys, or our own LlamaConfig keys). */
export function resolveConfig(spec: string, vocabSize?: number): ModelConfig {
  if ((PRESETS as readonly string[]).includes(spec)) return presetConfig(spec, vocabSize);
  if (!fs.existsSync(spec)) throw new InvalidArgumentError(`--config: "${spec}" is neither a preset (${PRESETS.join(', ')}) nor a file`);
  const raw = readJsonFile(spec) as Record<string, unknown>;
  if (vocabSize !== undefined && raw['vocab_size'] === undefined) raw['vocab_size'] = vocabSize;
  const c = configFromHF(raw, spec);
  if (c.model_type !== 'gpt2') {
    // Our own keys: a config written by `ristretto train` keeps its RoPE layout.
    if (raw['rope_style'] === 'interleaved' || raw['rope_style'] === 'neox') c.rope_style = raw['rope_style'];
    else c.rope_style = 'interleaved';
    if (c.model_type === 'llama') validateLlamaConfig(c);
  }
  return c;
}

/**
 * Seeded initialisation as llama2.c model.py: N(0, 0.02) for matrices and embeddings, N(0, 0.02/sqrt(2L))
 * for the residual projections (o_proj, down_proj), ones for norm weights, zeros for biases.
 */
export function initParams(config: ModelConfig, seed: number, precision: 'f32' | 'f64' = 'f32'): Map<string, Arr> {
  const rng = new Rng(seed);
  const layers = config.model_type === 'gpt2' ? config.n_layer : config.num_hidden_layers;
  const out = new Map<string, Arr>();
  for (const [name, shape] of modelParams(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const a = precision === 'f64' ? new Float64Array(n) : new Float32Array(n);
    if (shape.length === 1) {
      if (/bias$/.test(name)) a.fill(0);
      else a.fill(1);
    } else {
      const std = /(o_proj|down_proj|c_proj)\.weight$/.test(name) ? 0.02 / Math.sqrt(2 * layers) : 0.02;
      for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
    }
    out.set(name, a);
  }
  return out;
}

export interface LoadedParams {
  config: ModelConfig;
  params: Map<string, Arr>;
  format: string;
}

/** Reads a checkpoint (llama2.c .bin, GGUF, HF folder) into float arrays keyed by model parameter name. */
export function loadParams(modelPath: string, precision: 'f32' | 'f64' = 'f32'): LoadedParams {
  const plan = planCheckpoint(modelPath);
  try {
    const names = modelParams(plan.config);
    checkPlan(plan, names);
    const params = new Map<string, Arr>();
    for (const [param, shape] of names) {
      let t = plan.source.read(plan.tensorFor.get(param)!);
      let f = readTensorAsF32(t);
      if (plan.transposed.has(param)) {
        const [R, C] = [shape[1]!, shape[0]!];
        const o = new Float32Array(f.length);
        for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) o[c * R + r] = f[r * C + c]!;
        f = o;
      }
      t = undefined as unknown as HostTensor;
      params.set(param, precision === 'f64' ? Float64Array.from(f) : Float32Array.from(f));
    }
    return { config: plan.config, params, format: plan.format };
  } catch (e) {
    if (e instanceof RistrettoError) throw e;
    throw new RistrettoError('FORMAT', `${modelPath}: cannot load weights for training: ${(e as Error).message}`, { cause: e });
  } finally {
    plan.source.close();
  }
}

/** Parameters as f32 HostTensors (for the checkpoint writers). */
export function toHostTensors(config: ModelConfig, params: ReadonlyMap<string, Arr>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of modelParams(config)) {
    const p = params.get(name);
    if (p === undefined) throw new Error(`parameter "${name}" is missing`);
    const f = p instanceof Float32Array ? p : Float32Array.from(p);
    out.set(name, { name, dtype: 'f32', shape: [...shape], data: new Uint8Array(f.buffer, f.byteOffset, f.byteLength) });
  }
  return out;
}

export function countParams(params: ReadonlyMap<string, Arr>): number {
  let n = 0;
  for (const p of params.values()) n += p.length;
  return n;
}
