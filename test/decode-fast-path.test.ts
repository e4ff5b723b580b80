// The decode fast path: the wasm backend's SIMD argmax has exactly the semantics of sampler.ts argmax (ties, -0/+0,
// NaN, every tail length); logits handed out as views of wasm memory equal the copies; param values kept between
// runs of a stable context, and asked again from a context without that promise; greedy generation through the
// session's argmax equals plain argmax over copied logits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { referenceBackend } from '../src/backends/reference/index.js';
import { createWasmBackend } from '../src/backends/wasm/index.js';
import { runGraph, type ExecContext } from '../src/backends/backend.js';
import { Graph } from '../src/graph/graph.js';
import type { HostTensor } from '../src/formats/tensor.js';
import { llamaParams, validateLlamaConfig, type LlamaConfig } from '../src/models/llama.js';
import { InferenceSession } from '../src/runtime/session.js';
import { argmax } from '../src/runtime/sampler.js';
import { generate } from '../src/runtime/generate.js';
import type { Tokenizer } from '../src/tokenizers/tokenizer.js';
import { randomWeights } from './util/random-weights.js';

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('wasm argmax equals sampler argmax: ties, signed zeros, infinities, NaN, every tail', async () => {
  const wasm = await createWasmBackend({ threads: 1 });
  try {
    const rand = prng(7);
    const cases: Float32Array[] = [
      Float32Array.from([1, 3, 3, 2]),
      Float32Array.from([-Infinity, -Infinity]),
      Float32Array.from([-0, 0]),
      Float32Array.from([0, -0]),
      Float32Array.from([-1, -0, 0, -0]),
      Float32Array.from([NaN, 1, 2]),
      Float32Array.from([1, NaN, 2, 0]),
      Float32Array.from([NaN, NaN]),
      Float32Array.from([Infinity, 1, Infinity]),
      Float32Array.from([5]),
    ];
    for (let n = 1; n <= 70; n++) {
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) x[i] = Math.floor(rand() * 5) - 2; // many ties
      cases.push(x);
      const y = Float32Array.from(x);
      y[Math.floor(rand() * n)] = NaN;
      cases.push(y);
    }
    for (const n of [512, 32000]) {
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) x[i] = rand() * 20 - 10;
      cases.push(x);
    }
    for (const x of cases) {
      const want = argmax(x);
      assert.equal(wasm.argmax(x), want, `copied in: [${Array.from(x.subarray(0, 8)).join(', ')}${x.length > 8 ? ', ...' : ''}]`);
      const v = wasm.f32View(wasm.alloc(x.byteLength), x.length);
      v.set(x);
      assert.equal(wasm.argmax(v), want, 'resident');
    }
  } finally {
    wasm.dispose();
  }
});

test('params are kept between runs of a stableWeights context only', () => {
  const g = new Graph();
  const x = g.add('input', [], { name: 'x', shape: [1, 2], type: 'f32' }, 'x');
  const w = g.add('param', [], { name: 'w', shape: [1, 2] }, 'w');
  g.output('o', g.add('add', [x, w], {}));
  let asked = 0;
  let wt: HostTensor = { name: 'w', dtype: 'f32', shape: [1, 2], data: new Uint8Array(Float32Array.from([1, 2]).buffer) };
  const backends = [referenceBackend];
  const ctx = (stable: boolean): ExecContext => ({
    stableWeights: stable,
    weight: () => (asked++, wt),
    state: () => new Float32Array(0),
    input: () => Float32Array.from([10, 20]),
  });
  const stable = ctx(true);
  for (let i = 0; i < 3; i++) assert.deepEqual(Array.from(runGraph(g, backends, stable).get('o')!.data), [11, 22]);
  assert.equal(asked, 1, 'one lookup for three runs of the same stable context');
  const plain = ctx(false);
  wt = { name: 'w', dtype: 'f32', shape: [1, 2], data: new Uint8Array(Float32Array.from([3, 4]).buffer) };
  for (let i = 0; i < 2; i++) assert.deepEqual(Array.from(runGraph(g, backends, plain).get('o')!.data), [13, 24]);
  assert.equal(asked, 3, 'asked on every run without the promise');
});

test('decode with logits as views of wasm memory: same logits, same greedy tokens as copies', async () => {
  const c: LlamaConfig = {
    model_type: 'llama', vocab_size: 96, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, rms_norm_eps: 1e-5, rope_theta: 10000,
    rope_scaling: null, max_position_embeddings: 64, tie_word_embeddings: true, rope_style: 'interleaved',
  };
  validateLlamaConfig(c);
  const w = randomWeights(llamaParams(c), 5);
  const wasm = await createWasmBackend({ threads: 1 });
  try {
    const backends = [wasm, referenceBackend];
    const a = new InferenceSession(c, { get: (n) => w.get(n) }, backends, 64);
    const b = new InferenceSession(c, { get: (n) => w.get(n) }, backends, 64);
    let la = a.forward([1, 2, 3]);
    let lb = b.forward([1, 2, 3], 'last', true);
    assert.ok(wasm.isResident(lb) && !wasm.isResident(la));
    assert.deepEqual(Array.from(lb), Array.from(la));
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = argmax(la);
      assert.equal(b.argmax(lb), t, `step ${i}`);
      ids.push(t);
      la = a.forward([t]);
      lb = b.forward([t], 'last', true);
      assert.deepEqual(Array.from(lb), Array.from(la), `logits at step ${i}`);
    }
    // generate() (view logits, the session's argmax) yields the same greedy tokens
    const tokenizer = {
      encode: () => [1, 2, 3],
      isSpecial: () => false,
      tokenBytes: (id: number) => new TextEncoder().encode(`<${id}>`),
      idToToken: (id: number) => `<${id}>`,
    } as unknown as Tokenizer;
    const r = await generate({ tokenizer, stopTokenIds: [], createSession: () => new InferenceSession(c, { get: (n) => w.get(n) }, backends, 64) }, [1, 2, 3], { temperature: 0, maxTokens: 21 });
    assert.deepEqual(r.generatedIds, ids.concat(argmax(la)));
    assert.equal(r.text, r.generatedIds.map((t) => `<${t}>`).join(''));
  } finally {
    wasm.dispose();
  }
});
