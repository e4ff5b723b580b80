// The generation API: streaming is the primitive and folds into generate(); AbortSignal, stop
// strings, max tokens, and the samplers (checked against what each one must guarantee).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadModel } from '../src/runtime/load-model.js';
import { Sampler, argmax, softmaxF32 } from '../src/runtime/sampler.js';
import { XorShiftRng } from '../src/runtime/rng.js';
import { AbortError, InvalidArgumentError } from '../src/errors.js';
import { modelsDir } from './helpers/models.js';

const dir = modelsDir();

test('xorshift64* matches llama2.c run.c random_u32 for seed 42 (computed by hand from its definition)', () => {
  // Independent computation of the first value with plain BigInt arithmetic.
  let s = 42n;
  const M = (1n << 64n) - 1n;
  s ^= s >> 12n;
  s = (s ^ (s << 25n)) & M;
  s ^= s >> 27n;
  const first = Number(((s * 0x2545f4914f6cdd1dn) & M) >> 32n);
  const rng = new XorShiftRng(42);
  assert.equal(rng.nextU32(), first);
  const f = rng.nextF32();
  assert.ok(f >= 0 && f < 1);
});

test('samplers: greedy, top-k, min-p, repetition penalty, seeded reproducibility', () => {
  const logits = Float32Array.from([1.0, 3.0, 2.9, -1.0, 0.5, 2.0]);
  assert.equal(new Sampler({ temperature: 0 }).sample(logits), 1);
  assert.equal(argmax(Float32Array.from([5, 7, 7])), 1, 'first maximum wins');
  // top-k = 1 is greedy at any temperature.
  const k1 = new Sampler({ temperature: 2, topK: 1, topP: 1, seed: 3 });
  for (let i = 0; i < 50; i++) assert.equal(k1.sample(logits), 1);
  // top-k = 2 only ever draws the two largest.
  const k2 = new Sampler({ temperature: 5, topK: 2, topP: 1, seed: 4 });
  for (let i = 0; i < 200; i++) assert.ok([1, 2].includes(k2.sample(logits)));
  // min-p: every draw has p >= minP * pmax.
  const p = Float32Array.from(logits);
  softmaxF32(p);
  const mp = new Sampler({ temperature: 1, minP: 0.5, topP: 1, seed: 5 });
  for (let i = 0; i < 200; i++) assert.ok(p[mp.sample(logits)]! >= 0.5 * p[1]!);
  // Repetition penalty: 3.0 / 1.6 < 2.9, so greedy moves to token 2 once token 1 was seen.
  assert.equal(new Sampler({ temperature: 0, repetitionPenalty: 1.6 }).sample(logits, [1]), 2);
  assert.equal(new Sampler({ temperature: 0, presencePenalty: 0.2 }).sample(logits, [1]), 2);
  // Same seed, same draws; the draw frequencies follow the softmax.
  const a = new Sampler({ temperature: 1, topP: 1, seed: 9 });
  const b = new Sampler({ temperature: 1, topP: 1, seed: 9 });
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < 4000; i++) {
    const x = a.sample(logits);
    assert.equal(x, b.sample(logits));
    counts[x]++;
  }
  for (let i = 0; i < logits.length; i++) assert.ok(Math.abs(counts[i] / 4000 - p[i]!) < 0.03, `token ${i}: ${counts[i] / 4000} vs ${p[i]}`);
  assert.throws(() => new Sampler({ topP: 0 }), InvalidArgumentError);
  assert.throws(() => new Sampler({ sampler: 'llama2c', topK: 5 }), /llama2c sampler supports only/);
});

test('stream folds into generate; stop strings; maxTokens; AbortSignal', async (t) => {
  if (dir === null) return t.skip('shared/models not found: skipping generation API tests');
  const model = await loadModel(path.join(dir, 'hf/stories260K-hf'));
  const prompt = 'Once upon a time';
  const full = await model.generate(prompt, { temperature: 0, maxTokens: 40 });
  assert.equal(full.generatedIds.length, 40);
  assert.equal(full.finishReason, 'length');

  let streamed = '';
  const ids: number[] = [];
  const it = model.stream(prompt, { temperature: 0, maxTokens: 40 });
  for (;;) {
    const r = await it.next();
    if (r.done) {
      assert.equal(r.value.text, full.text);
      break;
    }
    streamed += r.value.text;
    ids.push(r.value.token);
  }
  assert.equal(streamed, full.text);
  assert.deepEqual(ids, full.generatedIds);

  // A stop string ends generation before it; the streamed text never shows any of it.
  const at = full.text.indexOf('girl');
  assert.ok(at > 0);
  let shown = '';
  const stopped = await model.generate(prompt, { temperature: 0, maxTokens: 40, stop: ['girl'], onToken: (e) => (shown += e.text) });
  assert.equal(stopped.text, full.text.slice(0, at));
  assert.equal(shown, stopped.text);
  assert.equal(stopped.finishReason, 'stop');

  const ctl = new AbortController();
  let n = 0;
  await assert.rejects(
    model.generate(prompt, { temperature: 0, maxTokens: 40, signal: ctl.signal, onToken: () => ++n === 3 && ctl.abort() }),
    AbortError,
  );
  assert.equal(n, 3, 'no token after the abort');
  model.dispose();
  assert.throws(() => model.createSession(), /disposed/);
});
