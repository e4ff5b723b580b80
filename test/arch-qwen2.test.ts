// Qwen2 / Qwen2.5 (Qwen2ForCausalLM): a tiny random checkpoint against an independent float64 numpy forward pass
// (scripts/reference/qwen2_numpy.py -> test/fixtures/qwen2-tiny-reference.json), read from HF safetensors and from
// GGUF (arch qwen2) on both backends, and KV-cache decode equal to recompute.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { referenceBackend } from '../src/backends/reference/index.js';
import { loadModel } from '../src/runtime/load-model.js';
import { InferenceSession } from '../src/runtime/session.js';
import { writeGGUFCheckpoint } from '../src/models/checkpoints/write.js';
import { openGGUF, writeGGUF } from '../src/formats/gguf.js';
import { repoRoot } from './helpers/models.js';
import { tinySpmVocab } from './util/gguf-vocab.js';
import { maxAbsDiff } from './util/random-weights.js';
import { QWEN2_TINY, QWEN2_TINY_IDS, writeQwen2Tiny } from './util/qwen2-tiny.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ristretto-qwen2-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const ref = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test/fixtures/qwen2-tiny-reference.json'), 'utf8')) as { ids: number[]; logits: number[][] };

test('Qwen2: HF safetensors and GGUF give the numpy reference logits (reference and wasm backends)', async () => {
  assert.deepEqual(ref.ids, QWEN2_TINY_IDS);
  const hf = path.join(tmp, 'hf');
  writeQwen2Tiny(hf);
  const vocab = path.join(tmp, 'vocab.gguf');
  writeGGUF(vocab, { metadata: tinySpmVocab(QWEN2_TINY.vocab_size) }); // a tokenizer only
  const want = ref.logits.flat();
  const results: Record<string, number> = {};
  for (const backend of ['reference', 'wasm'] as const) {
    const m = await loadModel(hf, { tokenizer: vocab, backend, threads: 1 });
    assert.equal(m.info.architecture, 'qwen2');
    assert.ok(![...m.parameters().keys()].some((n) => n.includes('q_norm')), 'no QK-norm');
    const got = m.createSession().forward(QWEN2_TINY_IDS, 'all');
    results[`hf/${backend}`] = maxAbsDiff(got, want);
    // GGUF (llama.cpp arch "qwen2": llama names + q/k/v biases)
    if (backend === 'reference') {
      const gguf = path.join(tmp, 'qwen2.gguf');
      writeGGUFCheckpoint(gguf, m.config, new Map(m.parameters()), { tokenizerMetadata: tinySpmVocab(QWEN2_TINY.vocab_size) });
      const f = openGGUF(gguf);
      assert.equal(f.metadata.get('general.architecture'), 'qwen2');
      assert.ok(f.has('blk.0.attn_q.bias') && !f.has('blk.0.attn_q_norm.weight'));
      f.close();
      const g = await loadModel(gguf, { backend: 'reference' });
      assert.equal(g.config.model_type, 'qwen2');
      results['gguf/reference'] = maxAbsDiff(g.createSession().forward(QWEN2_TINY_IDS, 'all'), want);
      g.dispose();
    }
    m.dispose();
  }
  for (const [k, d] of Object.entries(results)) assert.ok(d < 1e-4, `${k}: max |logit - numpy| = ${d}`);
});

test('Qwen2: KV-cache decode equals full recompute', async () => {
  const hf = path.join(tmp, 'hf2');
  writeQwen2Tiny(hf);
  const vocab = path.join(tmp, 'vocab2.gguf');
  writeGGUF(vocab, { metadata: tinySpmVocab(QWEN2_TINY.vocab_size) });
  const m = await loadModel(hf, { tokenizer: vocab, backend: 'reference' });
  const w = new Map(m.parameters());
  const store = { get: (n: string) => w.get(n) };
  const all = new InferenceSession(QWEN2_TINY, store, [referenceBackend], 32).forward(QWEN2_TINY_IDS, 'all');
  const s = new InferenceSession(QWEN2_TINY, store, [referenceBackend], 32);
  const rows = [...s.forward(QWEN2_TINY_IDS.slice(0, 3), 'all')];
  for (const id of QWEN2_TINY_IDS.slice(3)) rows.push(...s.forward([id]));
  assert.ok(maxAbsDiff(all, rows) < 1e-5);
  m.dispose();
});
