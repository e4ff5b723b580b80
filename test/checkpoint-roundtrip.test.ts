// Checkpoints written by us load back with the same logits through every reader, and GGUF
// files we quantize give logits close to F32 (error per type reported).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../src/runtime/load-model.js';
import { writeGGUFCheckpoint, writeHFCheckpoint } from '../src/models/checkpoints/write.js';
import { llamaParams, type LlamaConfig } from '../src/models/llama.js';
import type { DType } from '../src/formats/tensor.js';
import { modelsDir } from './helpers/models.js';
import { maxAbsDiff, randomWeights } from './util/random-weights.js';
import { tinySpmVocab } from './util/gguf-vocab.js';

const dir = modelsDir();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ristretto-ckpt-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

for (const [label, rel, ids] of [
  ['Qwen3 (BF16 safetensors)', 'hf/qwen3-tiny-random', [1, 403, 407, 261, 378, 432, 17]],
  ['GPT-2 (Conv1D, tied)', 'tiny-gpt2', [7454, 2402, 257, 640, 11]],
  ['Llama stories260K-hf (rotate-half q/k)', 'hf/stories260K-hf', [1, 403, 407, 261, 378]],
] as const) {
  test(`${label}: written as GGUF and as safetensors, both give the original logits`, async (t) => {
    if (dir === null) return t.skip('shared/models not found: skipping checkpoint round trips of the shared models');
    const src = path.join(dir, rel);
    const model = await loadModel(src, { backend: 'reference' });
    const want = model.logits([...ids]);
    const weights = new Map(model.parameters());
    const gguf = path.join(tmp, `${path.basename(rel)}.gguf`);
    const hf = path.join(tmp, `${path.basename(rel)}-hf`);
    writeGGUFCheckpoint(gguf, model.config, weights);
    writeHFCheckpoint(hf, model.config, weights);
    fs.copyFileSync(path.join(src, 'tokenizer.json'), path.join(hf, 'tokenizer.json'));
    for (const p of [gguf, hf]) {
      const m = await loadModel(p, { tokenizer: path.join(src, 'tokenizer.json'), backend: 'reference' });
      const d = maxAbsDiff(m.logits([...ids]), want);
      assert.ok(d < 1e-5, `${p}: max |logit diff| = ${d}`);
      m.dispose();
    }
    model.dispose();
  });
}

test('GGUF quantized to Q8_0 / Q6_K / Q4_K / Q4_0 / F16: logits close to F32, error per type', async () => {
  // K-quants need rows that are multiples of 256.
  const c: LlamaConfig = {
    model_type: 'llama', vocab_size: 320, hidden_size: 256, intermediate_size: 512, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 64, rms_norm_eps: 1e-5, rope_theta: 10000,
    rope_scaling: null, max_position_embeddings: 64, tie_word_embeddings: false, rope_style: 'interleaved',
  };
  const weights = randomWeights(llamaParams(c), 11);
  const ids = [1, 40, 77, 300, 12, 5, 260, 99];
  const errors: Record<string, number> = {};
  let ref: Float32Array | undefined;
  // Normalized error: ||q - f32|| / ||f32||; bounds are ~2x what these types measure here.
  const bounds: Record<string, number> = { f32: 0, f16: 1e-3, q8_0: 0.02, q6_k: 0.06, q4_k: 0.25, q4_0: 0.3 };
  for (const type of ['f32', 'f16', 'q8_0', 'q6_k', 'q4_k', 'q4_0'] as DType[]) {
    const file = path.join(tmp, `rand-${type}.gguf`);
    writeGGUFCheckpoint(file, c, weights, { weightType: type, tokenizerMetadata: tinySpmVocab(c.vocab_size) });
    const m = await loadModel(file, { backend: 'reference' });
    if (type !== 'f32') assert.equal(m.info.dtypes[type], 2 + 7 * c.num_hidden_layers, `${type}: every matrix stored as ${type}`);
    const l = m.logits(ids);
    if (type === 'f32') ref = l;
    let num = 0;
    let den = 0;
    for (let i = 0; i < l.length; i++) {
      num += (l[i]! - ref![i]!) ** 2;
      den += ref![i]! ** 2;
    }
    errors[type] = Math.sqrt(num / den);
    m.dispose();
  }
  console.log(`# GGUF logits normalized error vs F32: ${Object.entries(errors).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
  for (const [type, e] of Object.entries(errors)) assert.ok(e <= bounds[type]!, `${type}: normalized logit error ${e} > ${bounds[type]}`);
  assert.ok(errors['q8_0']! < errors['q4_0']!, 'more bits, less error');
});
