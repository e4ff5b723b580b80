// Token files (header, uint16/uint32, truncation detected), the reproducible window sampler and its
// checkpointable state, the validation split, and the optimizer pieces (schedule, clipping, loss scaling).

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir, modelFileOrSkip } from './helpers/models.js';
import { TokenFile, TokenFileWriter, WindowSampler, tokenizeFiles } from '../src/train/data.js';
import { clipGradNorm, LossScaler, LOSS_SCALE_DEFAULTS, lrAt } from '../src/train/optim.js';
import { loadTokenizer } from '../src/tokenizers/load.js';
import { RistrettoError } from '../src/errors.js';

function writeTokens(file: string, vocab: number, n: number): number[] {
  const w = new TokenFileWriter(file, vocab, 1);
  const ids = Array.from({ length: n }, (_, i) => (i * 7919) % vocab);
  w.addDocument(ids.slice(0, n / 2));
  w.addDocument(ids.slice(n / 2));
  w.finish();
  return ids;
}

test('token files: uint16 when the vocabulary fits, uint32 otherwise; positional reads; truncation detected', () => {
  const dir = tempDir();
  for (const vocab of [512, 65536, 70000]) {
    const f = path.join(dir, `t${vocab}.bin`);
    const ids = writeTokens(f, vocab, 1000);
    const tf = new TokenFile(f);
    assert.equal(tf.header.bytesPerToken, vocab <= 65536 ? 2 : 4);
    assert.equal(tf.header.tokens, 1000);
    assert.equal(tf.header.documents, 2);
    assert.equal(tf.header.bosId, 1);
    assert.deepEqual([...tf.read(123, 10)], ids.slice(123, 133));
    assert.equal(fs.statSync(f).size, 32 + 1000 * tf.header.bytesPerToken);
    tf.close();
    fs.truncateSync(f, fs.statSync(f).size - 3);
    assert.throws(() => new TokenFile(f), (e: unknown) => e instanceof RistrettoError && /truncated/.test(e.message));
  }
  const bad = path.join(dir, 'bad.bin');
  fs.writeFileSync(bad, 'not a token file at all, really not');
  assert.throws(() => new TokenFile(bad), /magic/);
});

test('window sampler: reproducible from the seed, resumable from its state, validation from the held-out tail', () => {
  const dir = tempDir();
  const f = path.join(dir, 'w.bin');
  writeTokens(f, 512, 5000);
  const tf = new TokenFile(f);
  const a = new WindowSampler(tf, 16, 0.1, 7);
  const b = new WindowSampler(tf, 16, 0.1, 7);
  const seqA = Array.from({ length: 20 }, () => [...a.nextTrain().ids]);
  const seqB = Array.from({ length: 10 }, () => [...b.nextTrain().ids]);
  const st = JSON.parse(JSON.stringify(b.getState()));
  const c = new WindowSampler(tf, 16, 0.1, 7);
  c.setState(st);
  for (let i = 10; i < 20; i++) seqB.push([...c.nextTrain().ids]);
  assert.deepEqual(seqA, seqB);
  const other = new WindowSampler(tf, 16, 0.1, 8);
  assert.notDeepEqual([...other.nextTrain().ids], seqA[0]);
  // Windows: targets are ids shifted by one.
  const w = a.nextTrain();
  assert.deepEqual([...w.targets.subarray(0, 15)], [...w.ids.subarray(1)]);
  // Validation windows are fixed and lie in the last 10%.
  const v1 = a.validation(4).map((x) => [...x.ids]);
  const v2 = a.validation(4).map((x) => [...x.ids]);
  assert.deepEqual(v1, v2);
  assert.equal(a.trainTokens, 4500);
  assert.throws(() => new WindowSampler(tf, 600, 0.1, 1), /validation split/);
  tf.close();
});

test('tokenize: documents split on <|endoftext|>, each starting with BOS', (t) => {
  const tokPath = modelFileOrSkip(t, 'llama2c/tok512.bin');
  if (!tokPath) return;
  const dir = tempDir();
  const txt = path.join(dir, 'a.txt');
  fs.writeFileSync(txt, 'Once upon a time.\n<|endoftext|>\nThe cat sat.\n<|endoftext|>\n');
  const out = path.join(dir, 'a.bin');
  const tok = loadTokenizer(tokPath).tokenizer;
  const h = tokenizeFiles(tok, [txt], out);
  assert.equal(h.documents, 2);
  const tf = new TokenFile(out);
  const all = [...tf.read(0, tf.length)];
  const want = [...tok.encode('Once upon a time.'), ...tok.encode('The cat sat.')];
  assert.deepEqual(all, want);
  assert.equal(all[0], 1);
  tf.close();
});

test('schedule: linear warmup, cosine decay to the floor; clipping and loss scaling', () => {
  const s = { lr: 1e-3, minLr: 1e-4, warmupSteps: 10, totalSteps: 110, kind: 'cosine' as const };
  assert.equal(lrAt(5, s), 5e-4);
  assert.equal(lrAt(10, s), 1e-3);
  assert.ok(Math.abs(lrAt(60, s) - 5.5e-4) < 1e-15);
  assert.ok(Math.abs(lrAt(110, s) - 1e-4) < 1e-15);
  assert.equal(lrAt(500, s), 1e-4);
  const g = new Map([['a', Float32Array.of(3, 4)]]);
  const { norm, coef } = clipGradNorm(g, 1);
  assert.equal(norm, 5);
  assert.ok(Math.abs(coef - 1 / (5 + 1e-6)) < 1e-15);
  // Dynamic scaling: overflow skips the step and halves the scale; growth after the interval.
  const sc = new LossScaler({ ...LOSS_SCALE_DEFAULTS, mode: 'dynamic', initScale: 1024, growthInterval: 2, maxFinite: 65504 });
  assert.equal(sc.unscale(new Map([['a', Float32Array.of(1, 70000)]])), false);
  assert.equal(sc.scale, 512);
  assert.equal(sc.unscale(new Map([['a', Float32Array.of(1, NaN)]])), false);
  assert.equal(sc.scale, 256);
  const ok = new Map([['a', Float32Array.of(256, 512)]]);
  assert.equal(sc.unscale(ok), true);
  assert.deepEqual([...ok.get('a')!], [1, 2]);
  assert.equal(sc.unscale(new Map([['a', Float32Array.of(1)]])), true);
  assert.equal(sc.scale, 512);
  assert.equal(sc.state.skipped, 2);
  const st = new LossScaler({ ...LOSS_SCALE_DEFAULTS, mode: 'static', initScale: 128 });
  assert.equal(st.unscale(new Map([['a', Float32Array.of(Infinity)]])), false);
  assert.equal(st.scale, 128);
});
