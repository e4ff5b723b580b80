// The wasm backend's decode step in steady state: after warm-up, hundreds of decode steps grow neither the
// wasm memory (weights, KV cache, activation arena are all allocated before) nor the JS heap (per-graph plans
// and cached views: the only per-step allocation left is the logits array returned to the caller, which the
// caller owns by contract, plus a few small objects per step). 1 and 2 threads; the pool's workers must not
// keep the process alive (this file ending is the check).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { referenceBackend } from '../src/backends/reference/index.js';
import { createWasmBackend } from '../src/backends/wasm/index.js';
import { quantize } from '../src/formats/dtypes/index.js';
import { llamaParams, validateLlamaConfig, type LlamaConfig } from '../src/models/llama.js';
import { InferenceSession } from '../src/runtime/session.js';
import { randomWeights } from './util/random-weights.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

for (const threads of [1, 2]) {
  test(`wasm decode (${threads} thread${threads > 1 ? 's' : ''}): wasm memory and JS heap stay flat over 400 steps`, async () => {
    const c: LlamaConfig = {
      model_type: 'llama', vocab_size: 512, hidden_size: 256, intermediate_size: 512, num_hidden_layers: 2,
      num_attention_heads: 8, num_key_value_heads: 4, head_dim: 32, rms_norm_eps: 1e-5, rope_theta: 10000,
      rope_scaling: null, max_position_embeddings: 512, tie_word_embeddings: true, rope_style: 'interleaved',
    };
    validateLlamaConfig(c);
    const w = randomWeights(llamaParams(c), 3);
    for (const [n, t] of w) {
      if (t.shape.length === 2) w.set(n, { ...t, dtype: 'q8_0', data: quantize('q8_0', new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4)) });
    }
    // small thresholds so the 2-thread run really dispatches to the worker
    const wasm = await createWasmBackend({ threads, minParallelBytes: 16 * 1024 });
    try {
      const backends = [wasm, referenceBackend];
      const s = new InferenceSession(c, { get: (n) => w.get(n) }, backends, 512);
      let logits = s.forward([1, 2, 3]);
      const step = (): void => {
        let best = 0;
        for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
        if (s.pos >= 500) s.rewind(3);
        logits = s.forward([best]);
      };
      for (let i = 0; i < 50; i++) step();
      const m0 = wasm.stats();
      gc();
      const h0 = process.memoryUsage().heapUsed;
      for (let i = 0; i < 400; i++) step();
      gc();
      const h1 = process.memoryUsage().heapUsed;
      const m1 = wasm.stats();
      assert.deepEqual(m1, m0, 'no wasm memory is allocated by decode steps');
      console.log(`# ${threads} thread(s): JS heap delta over 400 decode steps ${((h1 - h0) / 1024).toFixed(1)} KiB`);
      assert.ok(h1 - h0 < 512 * 1024, `JS heap grew by ${h1 - h0} bytes over 400 steps`);
    } finally {
      wasm.dispose();
    }
  });
}
