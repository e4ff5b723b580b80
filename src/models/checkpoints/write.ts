// Writing a model (config + parameters) as a checkpoint file: GGUF (optionally quantized) or an
// HF folder (config.json + model.safetensors). The inverse of the plans in gguf.ts / hf.ts:
// parameter names, the RoPE q/k layout and GPT-2's Conv1D transpose are handled here.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeGGUF, type GGUFMetadataEntry } from '../../formats/gguf.js';
import { writeSafetensors } from '../../formats/safetensors.js';
import { DTYPE_LAYOUT, transpose2d, type DType, type HostTensor } from '../../formats/tensor.js';
import { quantize, readTensorAsF32 } from '../../formats/dtypes/index.js';
import { modelParams, type ModelConfig } from '../index.js';
import { ggufMetadataFor, ggufTensorNames } from './gguf.js';
import { ropeFreqFactors } from '../llama.js';
import { UnsupportedError } from '../../errors.js';

export interface GGUFExportOptions {
  /** Type for 2-D weight matrices (norms, biases and 1-D tensors stay f32). Default f32.
   *  A matrix whose rows do not split into whole blocks of the type is written as f16 instead. */
  weightType?: DType;
  /** Tokenizer metadata (`tokenizer.ggml.*`) to embed. */
  tokenizerMetadata?: GGUFMetadataEntry[];
  name?: string;
}

/**
 * Permutes q/k rows of each head between HF's rotate-half layout (pairs i, i+hd/2) and the
 * interleaved layout (pairs 2i, 2i+1) that llama.cpp's GGUF Llama and llama2.c use.
 */
export function permuteRopeRows(t: HostTensor, headDim: number, toInterleaved: boolean): HostTensor {
  const f = readTensorAsF32(t);
  const [rows, cols] = t.shape as [number, number];
  const half = headDim / 2;
  const out = new Float32Array(f.length);
  for (let r = 0; r < rows; r++) {
    const h = Math.floor(r / headDim);
    const j = r % headDim;
    // neox index j = s*half + i  <->  interleaved index 2i + s
    const s = toInterleaved ? Math.floor(j / half) : j % 2;
    const i = toInterleaved ? j % half : Math.floor(j / 2);
    const dst = h * headDim + (toInterleaved ? 2 * i + s : s * half + i);
    out.set(f.subarray(r * cols, (r + 1) * cols), dst * cols);
  }
  return { name: t.name, dtype: 'f32', shape: [rows, cols], data: new Uint8Array(out.buffer) };
}

function asType(t: HostTensor, name: string, type: DType): HostTensor {
  if (t.dtype === type) return { ...t, name };
  const f = readTensorAsF32(t);
  return { name, dtype: type, shape: [...t.shape], data: quantize(type, f) };
}

export function writeGGUFCheckpoint(file: string, c: ModelConfig, weights: Map<string, HostTensor>, o: GGUFExportOptions = {}): void {
  const params = modelParams(c);
  const names = ggufTensorNames(c, params.keys());
  const wt = o.weightType ?? 'f32';
  const tensors: HostTensor[] = [];
  for (const p of params.keys()) {
    let t = weights.get(p);
    if (t === undefined) throw new Error(`writeGGUFCheckpoint: parameter "${p}" is missing`);
    // GGUF Llama keeps q/k in the interleaved RoPE layout (llama.cpp's converter permutes HF weights).
    if (c.model_type === 'llama' && c.rope_style === 'neox' && /\.(q_proj|k_proj)\.weight$/.test(p)) {
      t = permuteRopeRows(t, c.head_dim, true);
    }
    const isMatrix = t.shape.length === 2;
    let type: DType = isMatrix ? wt : 'f32';
    if (isMatrix && t.shape[1]! % DTYPE_LAYOUT[type].blockElems !== 0) type = 'f16';
    tensors.push(asType(t, names.get(p)!, type));
  }
  if (c.model_type !== 'gpt2') {
    // Llama 3 rope_scaling has no GGUF metadata: llama.cpp reads it as per-pair divisors in rope_freqs.weight
    const ff = ropeFreqFactors({ ...c, model_type: 'llama' });
    if (ff !== null) tensors.push({ name: 'rope_freqs.weight', dtype: 'f32', shape: [ff.length], data: new Uint8Array(Float32Array.from(ff).buffer) });
  }
  const metadata = [...ggufMetadataFor(c, o.name), ...(o.tokenizerMetadata ?? [])];
  writeGGUF(file, { metadata, tensors });
}

/** HF `config.json` keys for a config (the inverse of configFromHF). */
export function hfConfigJson(c: ModelConfig): Record<string, unknown> {
  if (c.model_type === 'gpt2') {
    const { model_type, ...rest } = c;
    return { architectures: ['GPT2LMHeadModel'], model_type, ...rest };
  }
  if (c.rope_freq_factors !== undefined) {
    throw new UnsupportedError('config.json cannot express RoPE frequency factors read from a GGUF rope_freqs.weight (HF configs describe Llama 3 scaling by its parameters); export to GGUF instead');
  }
  const { rope_style: _layout, ...rest } = c;
  const cls = c.model_type === 'qwen3' ? 'Qwen3ForCausalLM' : c.model_type === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM';
  return { architectures: [cls], ...rest, torch_dtype: 'float32' };
}

/** Writes `dir/config.json` + `dir/model.safetensors` with HF names and layouts. */
export function writeHFCheckpoint(dir: string, c: ModelConfig, weights: Map<string, HostTensor>, dtype: 'f32' | 'f16' | 'bf16' = 'f32'): void {
  fs.mkdirSync(dir, { recursive: true });
  const tensors: HostTensor[] = [];
  for (const p of modelParams(c).keys()) {
    let t = weights.get(p);
    if (t === undefined) throw new Error(`writeHFCheckpoint: parameter "${p}" is missing`);
    if (c.model_type !== 'gpt2' && c.rope_style === 'interleaved' && /\.(q_proj|k_proj)\.weight$/.test(p)) {
      t = permuteRopeRows(t, c.head_dim, false); // HF checkpoints hold rotate-half order
    }
    if (c.model_type === 'gpt2' && /\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/.test(p)) t = transpose2d(t); // Conv1D [in, out]
    tensors.push(asType(t, p, dtype));
  }
  const config = hfConfigJson(c);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
}
