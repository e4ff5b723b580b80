// Export in three formats (HF safetensors, GGUF, llama2.c .bin), each loaded back with loadModel (what
// `generate` uses) and giving the same logits; a rotate-half (HF) model must be permuted to the
// interleaved layout for GGUF and llama2.c. Then a short from-scratch run on real text through the
// Trainer: validation loss falls, and the exported model generates.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { modelFileOrSkip, tempDir } from './helpers/models.js';
import { loadModel } from '../src/runtime/load-model.js';
import { exportModel, exportCheckpoint } from '../src/train/export.js';
import { loadParams, initParams, presetConfig } from '../src/train/params.js';
import { tokenizeFiles } from '../src/train/data.js';
import { loadTokenizer } from '../src/tokenizers/load.js';
import { Trainer, TRAIN_DEFAULTS } from '../src/train/trainer.js';
import { listCheckpoints } from '../src/train/checkpoint.js';

const IDS = [1, 403, 407, 261, 378, 383, 286, 261, 376, 268];

async function logitsOf(model: string, tokenizer?: string): Promise<Float32Array> {
  const m = await loadModel(model, { tokenizer });
  try {
    return m.logits(IDS);
  } finally {
    m.dispose();
  }
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

test('export: an HF (rotate-half) model and a llama2.c (interleaved) model round-trip through all three formats with the same logits', async (t) => {
  const hf = modelFileOrSkip(t, 'hf/stories260K-hf');
  const bin = modelFileOrSkip(t, 'llama2c/stories260K.bin');
  const tok = modelFileOrSkip(t, 'llama2c/tok512.bin');
  if (!hf || !bin || !tok) return;
  const dir = tempDir();
  for (const [src, tokenizer] of [[hf, path.join(hf, 'tokenizer.json')], [bin, tok]] as const) {
    const want = await logitsOf(src, src === bin ? tok : undefined);
    const { config, params } = loadParams(src);
    const tag = path.basename(src);
    const st = exportModel('safetensors', path.join(dir, `${tag}-hf`), config, params, tokenizer);
    const gg = exportModel('gguf', path.join(dir, `${tag}.gguf`), config, params, tokenizer);
    const l2 = exportModel('llama2c', path.join(dir, `${tag}-l2c`, 'model.bin'), config, params, tokenizer);
    // HF export carries tokenizer.json only when trained with one; GGUF embeds SentencePiece vocabularies.
    const dSt = maxDiff(want, await logitsOf(st.path, st.tokenizer === null ? tok : undefined));
    const dGg = maxDiff(want, await logitsOf(gg.path, gg.tokenizer === null ? tok : undefined));
    const dL2 = maxDiff(want, await logitsOf(l2.path, l2.tokenizer === null ? tok : undefined));
    console.log(`# ${tag} (${config.model_type === 'llama' ? config.rope_style : ''}): max |logit diff| safetensors ${dSt}, gguf ${dGg}, llama2c ${dL2}`);
    for (const d of [dSt, dGg, dL2]) assert.ok(d < 1e-4, `logits differ by ${d}`);
    if (src === bin) assert.ok(gg.tokenizer !== null, 'the GGUF export embeds the SentencePiece (score) tokenizer');
  }
});

test('a short from-scratch run on real text: validation loss falls; checkpoints export and generate', async (t) => {
  const corpus = modelFileOrSkip(t, 'corpus/tinystories-lowercase-4MB.txt');
  const tokPath = modelFileOrSkip(t, 'llama2c/tok512.bin');
  if (!corpus || !tokPath) return;
  const dir = tempDir();
  // A 200 kB slice keeps tokenization quick.
  const text = fs.readFileSync(corpus, 'utf8').slice(0, 200000);
  const txt = path.join(dir, 'stories.txt');
  fs.writeFileSync(txt, text);
  const data = path.join(dir, 'stories.bin');
  tokenizeFiles(loadTokenizer(tokPath).tokenizer, [txt], data);
  const config = { ...presetConfig('stories260K'), hidden_size: 48, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 12 };
  const out = path.join(dir, 'run');
  const trainer = new Trainer({
    config, params: initParams(config, 1), outDir: out, dataPath: data, tokenizerPath: tokPath, source: 'test',
    options: { ...TRAIN_DEFAULTS, steps: 60, batch: 4, seqLen: 32, lr: 1e-2, minLr: 1e-3, warmup: 5, evalEvery: 20, evalBatches: 2, ckptEvery: 30, sampleEvery: 60, sampleTokens: 16 },
  });
  const events: string[] = [];
  const vals: number[] = [];
  let sample = '';
  await trainer.run((e) => {
    events.push(e.type);
    if (e.type === 'eval') vals.push(e.valLoss);
    if (e.type === 'sample') sample = e.text;
  });
  const v0 = (() => {
    const fresh = new Trainer({ config, params: initParams(config, 1), outDir: path.join(dir, 'fresh'), dataPath: data, tokenizerPath: tokPath, source: 'test', options: { ...trainer.options } });
    return fresh.validate()!;
  })();
  console.log(`# validation loss: initial ${v0.toFixed(3)} -> ${vals.map((v) => v.toFixed(3)).join(' -> ')}; sample ${JSON.stringify(sample)}`);
  assert.ok(vals.length >= 3);
  assert.ok(vals.at(-1)! < v0 - 1.0, `validation loss did not fall enough: ${v0} -> ${vals.at(-1)}`);
  assert.ok(vals.at(-1)! < vals[0]!, 'validation loss falls during training');
  assert.ok(events.includes('sample') && sample.length > 0);
  const svg = fs.readFileSync(path.join(out, 'loss.svg'), 'utf8');
  assert.match(svg, /^<svg/);
  assert.match(svg, /validation/);
  const ck = listCheckpoints(path.join(out, 'checkpoints')).at(-1)!;
  assert.equal(ck.step, 60);
  const gg = exportCheckpoint(ck.file, 'gguf', path.join(dir, 'm.gguf'));
  const m = await loadModel(gg.path);
  const r = await m.generate('', { maxTokens: 12, temperature: 0 });
  assert.ok(r.generatedIds.length > 0);
  m.dispose();
});
