// Llama 3.1+ RoPE scaling in GGUF: llama.cpp's converter stores it as per-pair frequency divisors in a
// `rope_freqs.weight` tensor instead of metadata. A model with HF `rope_scaling` (llama3) written as GGUF
// carries that tensor, and the GGUF loads back with the same logits as the HF checkpoint.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../src/runtime/load-model.js';
import { writeGGUFCheckpoint, writeHFCheckpoint } from '../src/models/checkpoints/write.js';
import { llamaParams, type LlamaConfig } from '../src/models/llama.js';
import { openGGUF } from '../src/formats/gguf.js';
import { readTensorAsF32 } from '../src/formats/dtypes/index.js';
import { RistrettoError, UnsupportedError } from '../src/errors.js';
import { maxAbsDiff, randomWeights } from './util/random-weights.js';
import { tinySpmVocab } from './util/gguf-vocab.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ristretto-ropefreqs-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// head_dim 16 -> wavelengths 2*pi*10000^(i/8) = 6.3, 20, 63, ...: with original context 32 and low/high
// factors 1/4 the first pair is kept, the second interpolated, the rest divided by `factor`.
const config: LlamaConfig = {
  model_type: 'llama', vocab_size: 288, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, rms_norm_eps: 1e-5, rope_theta: 10000,
  rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 },
  max_position_embeddings: 128, tie_word_embeddings: false, rope_style: 'neox',
};

/** llama.cpp convert_hf_to_gguf.py's Llama 3 rope factors, written out independently of src/models/llama.ts. */
function llamaCppRopeFactors(c: LlamaConfig): number[] {
  const s = c.rope_scaling!;
  const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  const out: number[] = [];
  for (let i = 0; i < c.head_dim; i += 2) {
    const freq = 1 / Math.pow(c.rope_theta, i / c.head_dim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out.push(1);
    else if (wavelen > lowWavelen) out.push(s.factor);
    else {
      const smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      out.push(1 / ((1 - smooth) / s.factor + smooth));
    }
  }
  return out;
}

const ids = Array.from({ length: 48 }, (_, i) => (i * 37 + 5) % config.vocab_size);

test('GGUF rope_freqs.weight: written from HF rope_scaling as llama.cpp does, read back with the same logits', async () => {
  const weights = randomWeights(llamaParams(config), 5);
  const hf = path.join(tmp, 'hf');
  const gguf = path.join(tmp, 'scaled.gguf');
  writeGGUFCheckpoint(gguf, config, weights, { tokenizerMetadata: tinySpmVocab(config.vocab_size) });
  writeHFCheckpoint(hf, config, weights);

  const f = openGGUF(gguf);
  const stored = Array.from(readTensorAsF32(f.read('rope_freqs.weight')));
  f.close();
  const want = llamaCppRopeFactors(config);
  assert.equal(stored.length, want.length);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(stored[i]! - want[i]!) < 1e-5 * want[i]!, `factor ${i}: ${stored[i]} vs llama.cpp ${want[i]}`);
  assert.ok(stored.some((v) => v === 1) && stored.some((v) => v === 8) && stored.some((v) => v > 1 && v < 8), 'all three bands present');

  const a = await loadModel(hf, { tokenizer: gguf, backend: 'reference' });
  const b = await loadModel(gguf, { backend: 'reference' });
  assert.deepEqual(b.config.model_type === 'llama' && b.config.rope_freq_factors?.length, want.length);
  const la = a.logits(ids);
  const lb = b.logits(ids);
  const d = maxAbsDiff(la, lb);
  assert.ok(d < 1e-4, `HF rope_scaling vs GGUF rope_freqs: max |logit diff| = ${d}`);
  // and the scaling matters at these positions: the unscaled model differs
  const plain = path.join(tmp, 'plain.gguf');
  writeGGUFCheckpoint(plain, { ...config, rope_scaling: null }, weights, { tokenizerMetadata: tinySpmVocab(config.vocab_size) });
  const c = await loadModel(plain, { backend: 'reference' });
  assert.ok(maxAbsDiff(c.logits(ids), lb) > 1e-3, 'unscaled RoPE gives other logits');
  // a config read from rope_freqs cannot be written as config.json (HF describes scaling by parameters)
  assert.throws(() => writeHFCheckpoint(path.join(tmp, 'back'), b.config, new Map(b.parameters())), UnsupportedError);
  // GGUF -> GGUF keeps the factors
  const again = path.join(tmp, 'again.gguf');
  writeGGUFCheckpoint(again, b.config, new Map(b.parameters()), { tokenizerMetadata: tinySpmVocab(config.vocab_size) });
  const e = await loadModel(again, { backend: 'reference' });
  assert.ok(maxAbsDiff(e.logits(ids), lb) < 1e-6);
  for (const m of [a, b, c, e]) m.dispose();
});

test('GGUF rope_freqs.weight of the wrong length is refused, naming the file', async () => {
  const bad = path.join(tmp, 'bad.gguf');
  const weights = randomWeights(llamaParams({ ...config, rope_scaling: null }), 6);
  writeGGUFCheckpoint(bad, { ...config, rope_scaling: null, rope_freq_factors: [1, 2, 3] }, weights, { tokenizerMetadata: tinySpmVocab(config.vocab_size) });
  await assert.rejects(loadModel(bad, { backend: 'reference' }), (e: unknown) => e instanceof RistrettoError && e.message.includes(bad) && /rope_freqs\.weight has 3 values, expected head_dim\/2 = 8/.test(e.message));
});
