// HF-format checkpoints (Llama, Qwen3 with QK-norm + GQA + BF16, GPT-2 with Conv1D + tied head)
// against reference/hf-models.json (an independent float32 PyTorch implementation), on the reference
// backend and on the WebAssembly backend (same greedy ids, logits within the same 1e-4).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../src/runtime/load-model.js';
import { argmax } from '../src/runtime/sampler.js';
import { modelsDir } from './helpers/models.js';

const dir = modelsDir();
const MODEL_DIRS: Record<string, string> = {
  'qwen3-tiny-random': 'hf/qwen3-tiny-random',
  'stories260K-hf': 'hf/stories260K-hf',
  'tiny-gpt2': 'tiny-gpt2',
};

interface Case {
  model: string; prompt: string; input_ids: number[]; max_new_tokens: number; generated_ids: number[];
  prompt_logits?: number[][]; prompt_logits_first_row_first_16?: number[]; prompt_logits_last_row_first_16?: number[];
}

for (const backend of ['reference', 'wasm'] as const)
for (const name of Object.keys(MODEL_DIRS)) {
  test(`${name} (${backend}): tokenizer, greedy ids and prompt logits match the PyTorch reference`, async (t) => {
    if (dir === null) return t.skip('shared/models not found: skipping reference/hf-models.json');
    const cases: Case[] = JSON.parse(fs.readFileSync(path.join(dir, 'reference/hf-models.json'), 'utf8')).cases.filter((c: Case) => c.model === name);
    assert.ok(cases.length > 0);
    const model = await loadModel(path.join(dir, MODEL_DIRS[name]!), { backend });
    assert.equal(model.backendNames[0], backend);
    const V = model.config.vocab_size;
    let worst = 0;
    for (const c of cases) {
      assert.deepEqual(model.tokenizer.encode(c.prompt), c.input_ids, `${name} "${c.prompt}": input ids`);
      // Greedy decode with the KV cache, step by step, for the reference's length.
      const s = model.createSession();
      let logits = s.forward(c.input_ids);
      const got: number[] = [];
      for (let i = 0; i < c.generated_ids.length; i++) {
        const next = argmax(logits);
        got.push(next);
        if (i + 1 < c.generated_ids.length) logits = s.forward([next]);
      }
      assert.deepEqual(got, c.generated_ids, `${name} "${c.prompt}": greedy ids`);
      // Prompt logits from a full (no-cache) pass.
      const all = model.logits(c.input_ids);
      const rows: [number, number[]][] = [];
      c.prompt_logits?.forEach((r, i) => rows.push([i * V, r]));
      if (c.prompt_logits_first_row_first_16) rows.push([0, c.prompt_logits_first_row_first_16]);
      if (c.prompt_logits_last_row_first_16) rows.push([(c.input_ids.length - 1) * V, c.prompt_logits_last_row_first_16]);
      for (const [off, want] of rows) want.forEach((w, v) => (worst = Math.max(worst, Math.abs(all[off + v]! - w))));
    }
    if (backend === 'wasm') console.log(`# ${name} wasm: max |logit - reference| = ${worst.toExponential(2)}`);
    assert.ok(worst < 1e-4, `${name}: max |logit - reference| = ${worst}`);
    model.dispose();
  });
}


for (const backend of ['reference', 'wasm'] as const)
test(`llama-2-tiny-random.gguf (F16 weights, 32k vocab, ${backend}) loads and generates; decode equals recompute`, async (t) => {
  if (dir === null) return t.skip('shared/models not found: skipping llama-2-tiny-random.gguf');
  const model = await loadModel(path.join(dir, 'gguf/llama-2-tiny-random.gguf'), { backend });
  assert.equal(model.info.dtypes['f16'], 9);
  const r = await model.generate('Hello world', { temperature: 0, maxTokens: 8 });
  assert.deepEqual(r.promptIds, [1, 15043, 3186]); // Llama 2 SentencePiece ids (reference/tokenizer-cases.json)
  assert.equal(r.generatedIds.length, 8);
  // Greedy through the KV cache equals argmax of a full recompute at every step.
  const ids = [...r.promptIds, ...r.generatedIds];
  const all = model.logits(ids);
  const V = model.config.vocab_size;
  r.generatedIds.forEach((id, i) => assert.equal(argmax(all.subarray((r.promptIds.length - 1 + i) * V, (r.promptIds.length + i) * V)), id));
  model.dispose();
});
