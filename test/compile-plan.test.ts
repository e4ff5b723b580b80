// ANE placement plan: classifier placement by vocab x dim against 16M, the 100-compile budget with a
// 22-layer model and 4 buckets (the plan fuses layers, then drops buckets, or fails clearly), IOSurface
// rules, and `audit` explaining every choice.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { auditBundle, formatAudit } from '../src/compile/audit.js';
import { compileBundle, readBundle, writeBundle } from '../src/compile/bundle.js';
import { CLASSIFIER_ANE_LIMIT, ioSurface, makePlan } from '../src/compile/plan.js';
import type { HostTensor } from '../src/formats/tensor.js';
import { modelParams, type ModelConfig } from '../src/models/index.js';
import { prng, repoRoot, tempDir } from './helpers/models.js';

test('classifier: GPT-2 (50257 x 768 = 38.6M) goes to the CPU; stories260K and 16M exactly stay on the ANE', () => {
  const gpt2 = makePlan({ architecture: 'gpt2', numLayers: 12, dim: 768, vocab: 50257, buckets: [32, 64, 128] });
  assert.equal(gpt2.classifier.device, 'cpu');
  assert.match(gpt2.classifier.reason, /50257 x 768 = 38\.6M .*> 16M.*CPU as an fp16 tiled matvec \+ argmax/);
  assert.equal(gpt2.groups[gpt2.groups.length - 1]!.name, 'final_norm');
  const stories = makePlan({ architecture: 'llama', numLayers: 5, dim: 64, vocab: 512, buckets: [32] });
  assert.equal(stories.classifier.device, 'ane');
  assert.match(stories.classifier.reason, /<= 16M/);
  assert.equal(makePlan({ architecture: 'x', numLayers: 1, dim: 1024, vocab: CLASSIFIER_ANE_LIMIT / 1024, buckets: [32] }).classifier.device, 'ane');
  assert.equal(makePlan({ architecture: 'x', numLayers: 1, dim: 1024, vocab: CLASSIFIER_ANE_LIMIT / 1024 + 1, buckets: [32] }).classifier.device, 'cpu');
  // a 32K-vocab Llama (TinyLlama: 32000 x 2048) is over too
  assert.equal(makePlan({ architecture: 'llama', numLayers: 22, dim: 2048, vocab: 32000, buckets: [32] }).classifier.device, 'cpu');
});

test('compile budget: a 22-layer model with 4 buckets fits 100 compiles by fusing each layer into one program', () => {
  const p = makePlan({ architecture: 'llama', numLayers: 22, dim: 2048, vocab: 32000, buckets: [32, 64, 128, 256] });
  assert.deepEqual(p.buckets, [32, 64, 128, 256]);
  assert.equal(p.layersPerProgram, 1);
  assert.equal(p.programsPerBucket, 23);
  assert.equal(p.totalPrograms, 92);
  assert.ok(p.totalPrograms <= p.budget);
  assert.ok(p.reasons.some((r) => /4 x 45 = 180 compiles > budget 100; fusing 1 layer\(s\) \(attention \+ FFN\) per program: 4 x 23 = 92 <= 100/.test(r)), p.reasons.join('\n'));
  // a small model keeps split attention / FFN programs
  const small = makePlan({ architecture: 'llama', numLayers: 5, dim: 64, vocab: 512, buckets: [32, 64, 128, 256] });
  assert.equal(small.layersPerProgram, 0);
  assert.equal(small.totalPrograms, 44);
});

test('compile budget: the plan fuses more layers, then drops buckets, then fails clearly', () => {
  const deep = makePlan({ architecture: 'llama', numLayers: 120, dim: 64, vocab: 512, buckets: [32, 64, 128, 256] });
  assert.equal(deep.layersPerProgram, 4);
  assert.equal(deep.totalPrograms, 93); // 3 buckets x (30 + 1)
  assert.ok(deep.reasons.some((r) => /dropped bucket/.test(r)), deep.reasons.join('\n'));
  assert.ok(deep.buckets.includes(32) && deep.buckets.includes(256), 'keeps the smallest and the largest bucket');
  assert.throws(() => makePlan({ architecture: 'llama', numLayers: 22, dim: 64, vocab: 512, buckets: [32], budget: 5, layersPerProgram: 1 }),
    /compile budget exceeded: 22 layers need 23 programs for one bucket .* budget is 5/);
  const odd = makePlan({ architecture: 'llama', numLayers: 2, dim: 64, vocab: 512, buckets: [20, 5000] });
  assert.deepEqual(odd.buckets, [32]);
  assert.ok(odd.reasons.some((r) => /bucket 20 rounded up to 32/.test(r)));
  assert.ok(odd.reasons.some((r) => /5024 dropped/.test(r)));
});

test('IOSurface rules: spatial stride padded to 32 and at least 49,152 bytes', () => {
  assert.deepEqual(ioSurface([1, 64, 1, 32]), { stride: 32, bytes: 4096, surfaceBytes: 49152, padded: true, note: '4096 B raised to the 49152 B minimum (smaller surfaces fail with status 0x1d)' });
  assert.equal(ioSurface([1, 768, 1, 40]).stride, 64);
  assert.equal(ioSurface([1, 768, 1, 64]).surfaceBytes, 768 * 64 * 2);
});

function randomModel(cfg: ModelConfig): Map<string, HostTensor> {
  const r = prng(11);
  const m = new Map<string, HostTensor>();
  for (const [name, shape] of modelParams(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = Float32Array.from({ length: n }, () => (shape.length === 1 ? 1 : (r() - 0.5) / 4));
    m.set(name, { name, dtype: 'f32', shape, data: new Uint8Array(v.buffer) });
  }
  return m;
}

test('a 22-layer model compiles with 4 buckets inside the budget, and audit explains each choice', () => {
  const cfg: ModelConfig = {
    model_type: 'llama', vocab_size: 64, hidden_size: 64, intermediate_size: 64, num_hidden_layers: 22, num_attention_heads: 4,
    num_key_value_heads: 2, head_dim: 16, rms_norm_eps: 1e-5, rope_theta: 10000, rope_scaling: null, max_position_embeddings: 512,
    tie_word_embeddings: true, rope_style: 'neox',
  };
  const w = randomModel(cfg);
  const b = compileBundle({ config: cfg, architecture: 'llama', parameter: (n) => w.get(n) }, { buckets: [32, 64, 128, 256], classifierLimit: 1, context: 0 }); // no chunked prefill (test/compile-chunked: 59 with it)
  assert.equal(b.manifest.programs.length, 92);
  assert.equal(b.manifest.plan.classifier.device, 'cpu');
  assert.ok(b.manifest.programs.every((p) => p.inputs.concat(p.outputs).every((io) => io.surfaceBytes >= 49152 && io.spatialStride % 32 === 0)));
  const dir = tempDir('ristretto-ane-');
  writeBundle(b, dir);
  const report = auditBundle(readBundle(dir));
  assert.equal(report.programs.length, 92);
  const l0 = report.programs.find((p) => p.name === 'l0_s32')!;
  assert.equal(l0.ops.conv, 7);
  assert.equal(l0.ops.softmax, 1);
  assert.ok(l0.flops > 2 * 32 * 64 * 64 * 7 && l0.weightBytes === 2 * (64 * 64 * 2 + 32 * 64 * 2 + 64 * 64 * 3 + 128) + 2 * 2 * 16 * 32 + 32 * 32 * 2);
  assert.ok(l0.sramFit);
  const text = formatAudit(report);
  assert.match(text, /compile budget: 92 \/ 100 programs/);
  assert.match(text, /fusing 1 layer\(s\) \(attention \+ FFN\) per program: 4 x 23 = 92 <= 100/);
  assert.match(text, /\[92\/100\] final_norm_s256 \(classifier, bucket 256\) -> ANE/);
  assert.match(text, /why: final norm only: vocab x dim = 64 x 64/);
  assert.match(text, /decode runs on the CPU: one token per step costs 23 dispatches/);
  assert.match(text, /ops: const \d+, mul \d+/);
  assert.match(text, /FLOPs [\d.]+[KMG], weights [\d.]+[KM]?B, working set [\d.]+[KM]B: fits the ~32 MB SRAM/);
  // the CLI prints the same
  const cli = execFileSync(process.execPath, [path.join(repoRoot, 'dist/src/cli/main.js'), 'audit', dir], { encoding: 'utf8' });
  assert.equal(cli, text);
});
