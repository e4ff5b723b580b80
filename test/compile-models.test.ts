// ANE compile of the real models: stories260K (llama2.c), qwen3-tiny-random (HF, BF16, QK-norm, GQA) and
// tiny-gpt2 compile to bundles; the prefill logits through the interpreted bundle agree with the direct fp32
// path (cosine >= 0.999, max abs error reported), and `--device ane-sim` (prefill on the interpreted programs,
// decode on the CPU from the K/V they return) reproduces the reference greedy ids.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compileBundle, loadBundle, writeBundle } from '../src/compile/bundle.js';
import { SPEC_OPS } from '../src/compile/mil/ast.js';
import { emitProgram } from '../src/compile/mil/emit.js';
import { parseMil } from '../src/compile/mil/parse.js';
import { loadModel } from '../src/runtime/load-model.js';
import type { Model } from '../src/runtime/model.js';
import { generate } from '../src/runtime/generate.js';
import { argmax } from '../src/runtime/sampler.js';
import { AneSimSession, AneSimulator, aneSimTarget } from '../src/runtime/ane-sim.js';
import { modelsDir, repoRoot, tempDir } from './helpers/models.js';

const dir = modelsDir();

interface Spec {
  name: string;
  model: string;
  tokenizer?: string;
}
const SPECS: Spec[] = [
  { name: 'stories260K', model: 'llama2c/stories260K.bin', tokenizer: 'llama2c/tok512.bin' },
  { name: 'qwen3-tiny-random', model: 'hf/qwen3-tiny-random' },
  { name: 'tiny-gpt2', model: 'tiny-gpt2' },
];
const PROMPTS = ['Once upon a time', 'The cat said, "Hello!"', 'One day, a little bird flew over the big green hill and sang a happy song to the sun'];

async function compiled(m: Model, spec: Spec, extra = {}): Promise<{ sim: AneSimulator; out: string }> {
  const out = tempDir(`ristretto-ane-${spec.name}-`);
  const b = compileBundle({ config: m.config, architecture: m.info.architecture, parameter: (n) => m.parameters().get(n) }, { buckets: [32, 64], ...extra });
  writeBundle(b, out);
  return { sim: new AneSimulator(loadBundle(out), m), out };
}

for (const spec of SPECS) {
  test(`${spec.name}: compiles; interpreted bundle prefill logits match the fp32 path (cosine >= 0.999)`, async (t) => {
    if (dir === null) return t.skip('shared/models not found: skipping the ANE compile of real models');
    const m = await loadModel(path.join(dir, spec.model), { tokenizer: spec.tokenizer && path.join(dir, spec.tokenizer) });
    try {
      const { sim, out } = await compiled(m, spec);
      const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
      assert.equal(manifest.target, 'ane');
      for (const p of manifest.programs) {
        const text = fs.readFileSync(path.join(out, p.file), 'utf8');
        const prog = parseMil(text, p.file);
        assert.equal(emitProgram(prog), text, `${p.file}: emit(parse(text)) == text`);
        for (const s of prog.functions[0]!.body) assert.ok(SPEC_OPS.includes(s.op), `${p.file}: ${s.op}`);
        for (const w of p.weights) assert.ok(fs.existsSync(path.join(out, w)), `${w} written`);
      }
      let worstCos = 1;
      let worstAbs = 0;
      for (const prompt of PROMPTS) {
        const ids = m.tokenizer.encode(prompt);
        const ref = m.logits(ids);
        const got = sim.prefill(ids, 'all').logits;
        let dot = 0, na = 0, nb = 0, mx = 0;
        for (let i = 0; i < ref.length; i++) {
          dot += ref[i]! * got[i]!;
          na += ref[i]! ** 2;
          nb += got[i]! ** 2;
          mx = Math.max(mx, Math.abs(ref[i]! - got[i]!));
        }
        worstCos = Math.min(worstCos, dot / Math.sqrt(na * nb));
        worstAbs = Math.max(worstAbs, mx);
      }
      t.diagnostic(`${spec.name}: ${manifest.programs.length} programs, classifier on ${manifest.plan.classifier.device}, worst cosine ${worstCos.toFixed(7)}, max |logit diff| ${worstAbs.toExponential(3)}`);
      assert.ok(worstCos >= 0.999, `cosine ${worstCos}`);
    } finally {
      m.dispose();
    }
  });
}

test('stories260K: ane-sim generation gives run.c greedy ids over the safe prefix (and stops on BOS where run.c does)', async (t) => {
  if (dir === null) return t.skip('shared/models not found: skipping the stories260K reference cases');
  const m = await loadModel(path.join(dir, 'llama2c/stories260K.bin'), { tokenizer: path.join(dir, 'llama2c/tok512.bin') });
  try {
    const { sim } = await compiled(m, SPECS[0]!);
    const cases = JSON.parse(fs.readFileSync(path.join(dir, 'reference/llama2c-stories260K.json'), 'utf8')).cases.filter((c: { sampling: string }) => c.sampling === 'greedy');
    for (const c of cases) {
      const r = await generate(aneSimTarget(m, sim), c.prompt_ids, { maxTokens: c.steps - c.prompt_ids.length + 1, temperature: 0 });
      const n = Math.min(c.safe_prefix_len, c.generated_ids.length);
      assert.deepEqual(r.generatedIds.slice(0, n), c.generated_ids.slice(0, n), `"${c.prompt}": first ${n} greedy ids`);
      if (c.stopped_on_bos && c.safe_prefix_len > c.generated_ids.length) assert.equal(r.finishReason, 'stop');
      t.diagnostic(`"${c.prompt}": ${n}/${n} safe-prefix ids match (${r.generatedIds.length} generated)`);
    }
  } finally {
    m.dispose();
  }
});

test('qwen3-tiny-random and tiny-gpt2: ane-sim greedy ids equal the PyTorch reference', async (t) => {
  if (dir === null) return t.skip('shared/models not found: skipping reference/hf-models.json');
  const all = JSON.parse(fs.readFileSync(path.join(dir, 'reference/hf-models.json'), 'utf8')).cases;
  for (const spec of SPECS.slice(1)) {
    const m = await loadModel(path.join(dir, spec.model));
    try {
      // the CPU classifier path too: force it with a lowered limit on GPT-2
      const { sim } = await compiled(m, spec, spec.name === 'tiny-gpt2' ? { classifierLimit: 1 } : {});
      for (const c of all.filter((x: { model: string }) => x.model === spec.name)) {
        const s = new AneSimSession(sim, m);
        let logits = s.forward(c.input_ids);
        assert.ok(s.lastPrefill !== null && s.lastPrefill.tokens === c.input_ids.length, 'the prompt ran on the ANE programs');
        const got: number[] = [];
        for (let i = 0; i < c.generated_ids.length; i++) {
          got.push(argmax(logits));
          if (i + 1 < c.generated_ids.length) logits = s.forward([got[i]!]);
        }
        assert.deepEqual(got, c.generated_ids, `${spec.name} "${c.prompt}"`);
        t.diagnostic(`${spec.name} "${c.prompt}": ${got.length}/${c.generated_ids.length} greedy ids match (min top-2 margin ${c.min_top2_margin})`);
      }
    } finally {
      m.dispose();
    }
  }
});

test('CLI: compile --target ane writes a bundle; generate --device ane-sim --bundle matches run.c; audit explains it', async (t) => {
  if (dir === null) return t.skip('shared/models not found: skipping the CLI round trip');
  const out = tempDir('ristretto-ane-cli-');
  const cli = path.join(repoRoot, 'dist/src/cli/main.js');
  const model = path.join(dir, 'llama2c/stories260K.bin');
  const tok = path.join(dir, 'llama2c/tok512.bin');
  execFileSync(process.execPath, [cli, 'compile', '--model', model, '--tokenizer', tok, '--target', 'ane', '--buckets', '32,64,128', '--out', out, '--quiet']);
  const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  assert.deepEqual(manifest.buckets, [32, 64, 128]);
  assert.equal(manifest.programs.length, 38); // 3 buckets x 11 + 5 chunked-prefill attention programs at 128
  assert.ok(fs.readdirSync(path.join(out, 'weights')).length > 0);
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'reference/llama2c-stories260K.json'), 'utf8')).cases.find((x: { sampling: string; prompt: string }) => x.sampling === 'greedy' && x.prompt === 'Once upon a time');
  const res = JSON.parse(execFileSync(process.execPath, [cli, 'generate', '--model', model, '--tokenizer', tok, '--device', 'ane-sim', '--bundle', out,
    '--prompt', c.prompt, '--temperature', '0', '--max-tokens', '60', '--output', 'json', '--quiet'], { encoding: 'utf8' }));
  assert.deepEqual(res.generated_ids, c.generated_ids.slice(0, 60));
  const audit = execFileSync(process.execPath, [cli, 'audit', out], { encoding: 'utf8' });
  assert.match(audit, /\[1\/100\] l0_attn_s32 \(attention, layer 0, bucket 32\) -> ANE/);
  assert.match(audit, /classifier on the ANE: vocab x dim = 512 x 64/);
  assert.match(audit, /decode runs on the CPU/);
  assert.match(audit, /chunked prefill:\n  - chunks of 128 tokens .* prompts up to 512 tokens/);
  assert.match(audit, /\[38\/100\] l4_attn_s128_chunk \(attention, layer 4, bucket 128\) -> ANE/);
});
