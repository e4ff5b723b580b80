// The core acceptance test: stories260K in all three formats reproduces llama2.c run.c
// (greedy over each case's safe prefix, seeded top-p exactly, logits within 1e-4), on the reference
// backend (the oracle) and on the WebAssembly backend (the default; f32 accumulation, so its logits differ
// from run.c's in the last bits: the max difference is printed, and the seeded top-p ids still match).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../src/runtime/load-model.js';
import type { Model } from '../src/runtime/model.js';
import { modelsDir } from './helpers/models.js';

interface Case {
  prompt: string; steps: number; temperature: number; topp: number | null; seed: number | null;
  sampling: 'greedy' | 'topp'; prompt_ids: number[]; generated_ids: number[]; stopped_on_bos: boolean;
  safe_prefix_len?: number;
}

const dir = modelsDir();
const FORMATS: [string, string, string | undefined][] = [
  ['llama2c', 'llama2c/stories260K.bin', 'llama2c/tok512.bin'],
  ['gguf', 'gguf/stories260K.gguf', undefined],
  ['safetensors', 'hf/stories260K-hf', undefined],
];

function loadCases(): Case[] {
  return JSON.parse(fs.readFileSync(path.join(dir!, 'reference/llama2c-stories260K.json'), 'utf8')).cases;
}

for (const backend of ['reference', 'wasm'] as const)
for (const [label, modelRel, tokRel] of FORMATS) {
  test(`stories260K (${label}, ${backend}) reproduces run.c`, async (t) => {
    if (dir === null) return t.skip('shared/models not found: skipping the stories260K reference cases');
    const model: Model = await loadModel(path.join(dir, modelRel), { tokenizer: tokRel && path.join(dir, tokRel), backend });
    assert.equal(model.backendNames[0], backend);
    try {
      for (const c of loadCases()) {
        const name = `${c.sampling} "${c.prompt}" seed ${c.seed}`;
        const promptIds = model.tokenizer.encode(c.prompt);
        assert.deepEqual(promptIds, c.prompt_ids, `${name}: prompt ids`);
        const maxTokens = c.steps - promptIds.length + 1; // run.c's steps count positions
        const r = await model.generate(promptIds, {
          maxTokens,
          temperature: c.temperature,
          topP: c.topp ?? 1,
          seed: c.seed ?? 1,
          sampler: 'llama2c',
        });
        if (c.sampling === 'greedy') {
          const n = Math.min(c.safe_prefix_len!, c.generated_ids.length);
          assert.deepEqual(r.generatedIds.slice(0, n), c.generated_ids.slice(0, n), `${name}: first ${n} greedy ids`);
          if (c.stopped_on_bos && c.safe_prefix_len! > c.generated_ids.length) {
            assert.equal(r.generatedIds.length, c.generated_ids.length, `${name}: stops on BOS where run.c does`);
            assert.equal(r.finishReason, 'stop');
          }
        } else {
          assert.deepEqual(r.generatedIds, c.generated_ids, `${name}: seeded ids`);
        }
      }
    } finally {
      model.dispose();
    }
  });

  test(`stories260K (${label}, ${backend}) logits match run.c within 1e-4`, async (t) => {
    if (dir === null) return t.skip('shared/models not found: skipping the stories260K logits');
    const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference/llama2c-stories260K-logits.json'), 'utf8'));
    const model = await loadModel(path.join(dir, modelRel), { tokenizer: tokRel && path.join(dir, tokRel), backend });
    const V = model.config.vocab_size;
    // Full-sequence pass and token-by-token decode must both match.
    const all = model.logits(ref.input_ids);
    const s = model.createSession();
    let worst = 0;
    ref.input_ids.forEach((id: number, i: number) => {
      const step = s.forward([id]);
      const want: number[] = ref.logits[i];
      for (let v = 0; v < V; v++) {
        worst = Math.max(worst, Math.abs(all[i * V + v]! - want[v]!), Math.abs(step[v]! - want[v]!));
      }
    });
    if (backend === 'wasm') console.log(`# stories260K (${label}) wasm: max |logit - run.c| = ${worst.toExponential(2)}`);
    assert.ok(worst < 1e-4, `max |logit - run.c| = ${worst}`);
    model.dispose();
  });
}
