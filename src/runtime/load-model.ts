// loadModel(path): detect the checkpoint format, map it to a model config and parameters,
// read the weights (with progress events), load the tokenizer, and return a Model.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend } from '../backends/backend.js';
import { referenceBackend } from '../backends/reference/index.js';
import { RistrettoError, throwIfAborted } from '../errors.js';
import { transpose2d, type HostTensor } from '../formats/tensor.js';
import { planGGUF } from '../models/checkpoints/gguf.js';
import { planHF } from '../models/checkpoints/hf.js';
import { planLlama2c } from '../models/checkpoints/llama2c.js';
import { checkPlan, type CheckpointFormat, type CheckpointPlan } from '../models/checkpoints/types.js';
import { modelParams } from '../models/index.js';
import { loadTokenizerFor } from '../tokenizers/load.js';
import { Model } from './model.js';
import { createBackends, type BackendChoice } from './backends.js';

export type LoadProgress =
  | { type: 'open'; path: string; format: CheckpointFormat; architecture: string }
  | { type: 'tensor'; name: string; index: number; count: number; bytesLoaded: number; bytesTotal: number }
  | { type: 'tokenizer'; path: string; kind: string }
  | { type: 'ready'; ms: number; parameters: number; weightBytes: number };

export interface LoadOptions {
  /** A tokenizer file or folder, when it is not inside the checkpoint (llama2.c `.bin` models). */
  tokenizer?: string;
  onProgress?: (e: LoadProgress) => void;
  signal?: AbortSignal;
  /** Execution backends in priority order; the reference backend is always appended as the fallback.
   *  When given, `backend` and `threads` are ignored and the caller owns (disposes) these backends. */
  backends?: Backend[];
  /** 'auto' (default: the WebAssembly backend when it instantiates, else the reference with a notice),
   *  'wasm' or 'reference'. */
  backend?: BackendChoice;
  /** Threads of the wasm backend (default: os.availableParallelism()). */
  threads?: number;
  /** KV-cache length of the model's sessions. Default: the trained context (>= 2048 for RoPE models, <= 4096). */
  contextLength?: number;
}

/** Which reader a path needs, by content (magic bytes) rather than by name. */
export function detectFormat(p: string): CheckpointFormat {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new RistrettoError('NOT_FOUND', `${p}: no such file or folder`);
  }
  if (st.isDirectory()) {
    if (fs.existsSync(path.join(p, 'config.json'))) return 'safetensors';
    throw new RistrettoError('NOT_FOUND', `${p}: a model folder needs config.json and model.safetensors (HF layout)`);
  }
  const fd = fs.openSync(p, 'r');
  const head = Buffer.alloc(4);
  try {
    fs.readSync(fd, head, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.toString('latin1') === 'GGUF') return 'gguf';
  if (p.endsWith('.safetensors')) return 'safetensors';
  return 'llama2c';
}

export function planCheckpoint(p: string): CheckpointPlan {
  const format = detectFormat(p);
  if (format === 'gguf') return planGGUF(p);
  if (format === 'safetensors') return planHF(fs.statSync(p).isDirectory() ? p : path.dirname(p));
  return planLlama2c(p);
}

/** The weights of every parameter in `params`, read once per tensor (tied parameters share one), as stored. */
export async function readPlanWeights(
  plan: Omit<CheckpointPlan, 'config'>,
  params: Map<string, number[]>,
  onProgress?: (e: LoadProgress) => void,
  signal?: AbortSignal,
  /** Called on each tensor as it is read (e.g. to move it into wasm memory); the result is kept instead. */
  place?: (t: HostTensor) => HostTensor,
): Promise<{ weights: Map<string, HostTensor>; parameters: number; weightBytes: number; dtypes: Record<string, number> }> {
  const infos = new Map(plan.source.list().map((t) => [t.name, t]));
  const needed = [...new Set(params.keys())].map((p) => plan.tensorFor.get(p)!);
  const bytesTotal = needed.reduce((a, n) => a + infos.get(n)!.byteLength, 0);
  const byTensor = new Map<string, HostTensor>();
  const weights = new Map<string, HostTensor>();
  const dtypes: Record<string, number> = {};
  let bytesLoaded = 0;
  let parameters = 0;
  for (const [param, shape] of params) {
    const name = plan.tensorFor.get(param)!;
    let t = byTensor.get(name);
    if (t === undefined) {
      throwIfAborted(signal);
      t = plan.source.read(name);
      if (plan.transposed.has(param)) t = transpose2d(t);
      if (place !== undefined) t = place(t);
      byTensor.set(name, t);
      bytesLoaded += t.data.byteLength;
      parameters += shape.reduce((a, b) => a * b, 1);
      dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
      onProgress?.({ type: 'tensor', name, index: byTensor.size - 1, count: needed.length, bytesLoaded, bytesTotal });
      // Yield now and then so a progress bar can draw and an abort can land.
      if (byTensor.size % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    weights.set(param, t);
  }
  return { weights, parameters, weightBytes: bytesLoaded, dtypes };
}

export async function loadModel(modelPath: string, options: LoadOptions = {}): Promise<Model> {
  const t0 = performance.now();
  const { onProgress, signal } = options;
  throwIfAborted(signal);
  const plan = planCheckpoint(modelPath);
  let owned: Awaited<ReturnType<typeof createBackends>> | undefined;
  try {
    onProgress?.({ type: 'open', path: modelPath, format: plan.format, architecture: plan.architecture });
    const params = modelParams(plan.config);
    checkPlan(plan, params);

    if (options.backends === undefined) {
      const infos = new Map(plan.source.list().map((t) => [t.name, t.byteLength]));
      const names = new Set([...params.keys()].map((p) => plan.tensorFor.get(p)!));
      const weightBytes = [...names].reduce((a, n) => a + (infos.get(n) ?? 0), 0);
      owned = await createBackends({ backend: options.backend, threads: options.threads, weightBytes });
    }
    // Each tensor goes into wasm memory as it is read, so the weights are never held twice.
    const { weights, parameters, weightBytes: bytesLoaded, dtypes } = await readPlanWeights(plan, params, onProgress, signal, owned?.wasm ? owned.place : undefined);

    const tok = loadTokenizerFor(modelPath, plan, options.tokenizer);
    onProgress?.({ type: 'tokenizer', path: tok.path, kind: tok.tokenizer.kind });
    if (tok.tokenizer.vocabSize > plan.config.vocab_size) {
      throw new RistrettoError('CONFIG', `${tok.path}: the tokenizer has ${tok.tokenizer.vocabSize} tokens but the model ${modelPath} only ${plan.config.vocab_size}; pass the model's own tokenizer with --tokenizer`);
    }
    const stop = new Set<number>(plan.eosIds.length > 0 ? plan.eosIds : tok.tokenizer.eosIds);
    // llama2.c-style models separate documents with BOS and run.c stops when BOS is sampled;
    // we do the same for every SentencePiece Llama (no real model samples BOS mid-text).
    const bos = plan.bosId ?? tok.tokenizer.bosId;
    if (plan.architecture === 'llama' && tok.tokenizer.kind === 'sentencepiece-bpe' && bos !== null) stop.add(bos);

    const weightBytes = bytesLoaded;
    const model = new Model(
      { path: modelPath, format: plan.format, architecture: plan.architecture, parameters, weightBytes, dtypes },
      plan.config,
      tok.tokenizer,
      weights,
      owned?.list ?? [...(options.backends ?? []), referenceBackend],
      [...stop],
      options.contextLength,
      owned?.dispose,
    );
    onProgress?.({ type: 'ready', ms: performance.now() - t0, parameters, weightBytes });
    owned = undefined; // the model owns them now
    return model;
  } catch (e) {
    owned?.dispose();
    throw e;
  } finally {
    plan.source.close();
  }
}
