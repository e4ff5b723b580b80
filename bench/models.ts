// Random-weight GGUF models of real shapes for benchmarks (speed does not depend on the values).
// `node dist/bench/models.js [--out DIR] [--only NAME,...] [--types f16,q8_0,q4_0]` writes
// DIR/<name>-<type>.gguf (default DIR: bench/models, git-ignored) and skips files that exist.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { quantize } from '../src/formats/dtypes/index.js';
import type { GGUFMetadataEntry } from '../src/formats/gguf.js';
import type { DType, HostTensor } from '../src/formats/tensor.js';
import { modelParams, type ModelConfig } from '../src/models/index.js';
import { writeGGUFCheckpoint } from '../src/models/checkpoints/write.js';

const llama = (o: { dim: number; layers: number; heads: number; kv: number; hidden: number; vocab: number; ctx: number }): ModelConfig => ({
  model_type: 'llama', vocab_size: o.vocab, hidden_size: o.dim, intermediate_size: o.hidden, num_hidden_layers: o.layers,
  num_attention_heads: o.heads, num_key_value_heads: o.kv, head_dim: o.dim / o.heads, rms_norm_eps: 1e-5, rope_theta: 10000,
  rope_scaling: null, max_position_embeddings: o.ctx, tie_word_embeddings: false, rope_style: 'interleaved',
});

export const BENCH_MODELS: Record<string, ModelConfig> = {
  stories15M: { ...llama({ dim: 288, layers: 6, heads: 6, kv: 6, hidden: 768, vocab: 32000, ctx: 256 }), tie_word_embeddings: true },
  stories110M: { ...llama({ dim: 768, layers: 12, heads: 12, kv: 12, hidden: 2048, vocab: 32000, ctx: 1024 }), tie_word_embeddings: true },
  'tinyllama-1.1B': llama({ dim: 2048, layers: 22, heads: 32, kv: 4, hidden: 5632, vocab: 32000, ctx: 2048 }),
  'qwen3-0.6B': {
    model_type: 'qwen3', vocab_size: 151936, hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 28,
    num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128, rms_norm_eps: 1e-6, rope_theta: 1e6, rope_scaling: null,
    max_position_embeddings: 40960, tie_word_embeddings: true, rope_style: 'neox', attention_bias: false, is_causal: true,
  },
};

/** A synthetic SentencePiece vocabulary (specials, 256 byte tokens, then "▁" + letters). */
export function syntheticVocab(size: number): GGUFMetadataEntry[] {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  for (let i = 0; tokens.length < size; i++) {
    tokens.push(`▁${i.toString(36)}`);
    types.push(1);
  }
  return [
    ['tokenizer.ggml.model', 'string', 'llama'],
    ['tokenizer.ggml.tokens', { array: 'string' }, tokens],
    ['tokenizer.ggml.scores', { array: 'float32' }, tokens.map((_, i) => -i)],
    ['tokenizer.ggml.token_type', { array: 'int32' }, types],
    ['tokenizer.ggml.bos_token_id', 'uint32', 1],
    ['tokenizer.ggml.eos_token_id', 'uint32', 2],
  ];
}

function randomTensor(name: string, shape: number[], type: DType, seed: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const f = new Float32Array(n);
  let s = seed >>> 0 || 1;
  const scale = shape.length === 1 ? 0 : 1 / Math.sqrt(shape[shape.length - 1]!);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    f[i] = shape.length === 1 ? 1 : ((s >>> 0) / 2 ** 32 - 0.5) * 3.4 * scale;
  }
  const t = shape.length === 2 ? type : 'f32';
  return { name, dtype: t, shape, data: t === 'f32' ? new Uint8Array(f.buffer) : quantize(t, f) };
}

export function writeBenchModel(file: string, c: ModelConfig, type: DType): void {
  const weights = new Map<string, HostTensor>();
  let seed = 1;
  for (const [name, shape] of modelParams(c)) weights.set(name, randomTensor(name, shape, type, seed++ * 2654435761));
  writeGGUFCheckpoint(file, c, weights, { weightType: type, tokenizerMetadata: syntheticVocab(c.vocab_size), name: path.basename(file, '.gguf') });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string' }, only: { type: 'string' }, types: { type: 'string' } } });
  const out = values.out ?? path.join(process.cwd(), 'bench/models');
  fs.mkdirSync(out, { recursive: true });
  const names = values.only?.split(',') ?? Object.keys(BENCH_MODELS);
  const types = (values.types?.split(',') ?? ['f16', 'q8_0', 'q4_0']) as DType[];
  for (const name of names) {
    const c = BENCH_MODELS[name];
    if (c === undefined) throw new Error(`unknown bench model ${name} (known: ${Object.keys(BENCH_MODELS).join(', ')})`);
    for (const type of types) {
      const file = path.join(out, `${name}-${type}.gguf`);
      if (fs.existsSync(file)) continue;
      const t0 = performance.now();
      writeBenchModel(file, c, type);
      console.error(`wrote ${file} (${(fs.statSync(file).size / 2 ** 20).toFixed(0)} MiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) await main();
