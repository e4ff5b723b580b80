// Chunked prefill through the ANE programs: prompts longer than the largest bucket run chunk by chunk at that
// bucket; chunks after the first run the chunked-prefill variants of the attention programs, which take the K/V
// cache of the previous chunks [1, kvDim, 1, C], the mask chunk_mask [1, 1, B, C + B] and the chunk's RoPE rows
// rope_cos / rope_sin [1, 1, hd, B] as inputs (one program per group serves every offset). The logits through the
// interpreted bundle match the fp32 path at the last position and inside every chunk; ane-sim greedy ids continue
// the reference over its safe prefix from a prompt that spans several chunks; the budget counts the extra programs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { auditBundle, formatAudit } from '../src/compile/audit.js';
import { compileBundle, loadBundle, readBundle, writeBundle, type Bundle } from '../src/compile/bundle.js';
import { SPEC_OPS } from '../src/compile/mil/ast.js';
import { parseMil } from '../src/compile/mil/parse.js';
import { makePlan } from '../src/compile/plan.js';
import { referenceBackend } from '../src/backends/reference/index.js';
import type { HostTensor } from '../src/formats/tensor.js';
import { modelParams, type ModelConfig } from '../src/models/index.js';
import { AneSimulator, aneSimTarget } from '../src/runtime/ane-sim.js';
import { generate } from '../src/runtime/generate.js';
import { loadModel } from '../src/runtime/load-model.js';
import type { Model } from '../src/runtime/model.js';
import { InferenceSession } from '../src/runtime/session.js';
import { modelsDir, prng, repoRoot, tempDir } from './helpers/models.js';

const dir = modelsDir();

const LONG_TEXT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. ' +
  'One day, she saw a big red ball under a tree. She ran to get it, but a small dog took the ball and ran away. Lily laughed and ran after the dog.';

/** Worst cosine and max |diff| of `got` vs `ref` ([n x V]) at the given positions. */
function compareRows(ref: Float32Array, got: Float32Array, V: number, positions: number[]): { cos: number; abs: number; per: string[] } {
  let cos = 1;
  let abs = 0;
  const per: string[] = [];
  for (const p of positions) {
    let dot = 0, na = 0, nb = 0, mx = 0;
    for (let i = 0; i < V; i++) {
      const a = ref[p * V + i]!;
      const b = got[p * V + i]!;
      dot += a * b;
      na += a * a;
      nb += b * b;
      mx = Math.max(mx, Math.abs(a - b));
    }
    const c = dot / Math.sqrt(na * nb);
    cos = Math.min(cos, c);
    abs = Math.max(abs, mx);
    per.push(`${p}: ${c.toFixed(6)}/${mx.toExponential(2)}`);
  }
  return { cos, abs, per };
}

/** Positions inside each chunk of B (first, middle, last) and the last position. */
function probePositions(n: number, B: number): number[] {
  const ps = new Set<number>();
  for (let off = 0; off < n; off += B) for (const p of [off, off + Math.floor(B / 2), off + B - 1]) if (p < n) ps.add(p);
  ps.add(n - 1);
  return [...ps].sort((a, b) => a - b);
}

function checkChunkPrograms(b: Bundle, B: number): void {
  const ch = b.manifest.chunked!;
  assert.ok(ch !== undefined, 'the bundle has chunked-prefill programs');
  assert.equal(ch.bucket, B);
  assert.equal(ch.cache % B, 0);
  const cps = b.manifest.programs.filter((p) => p.chunk !== undefined);
  assert.equal(cps.length, ch.groups.length);
  assert.equal(b.manifest.plan.totalPrograms, b.manifest.programs.length);
  for (const p of cps) {
    const prog = parseMil(b.texts.get(p.file)!, p.file);
    for (const s of prog.functions[0]!.body) assert.ok(SPEC_OPS.includes(s.op), `${p.file}: ${s.op}`);
    const names = p.inputs.map((i) => i.name);
    assert.ok(names.includes('chunk_mask'), `${p.name}: mask input`);
    for (const l of p.layers) assert.ok(names.includes(`k_cache_l${l}`) && names.includes(`v_cache_l${l}`), `${p.name}: cache inputs of layer ${l}`);
    assert.deepEqual(p.inputs.find((i) => i.name === 'chunk_mask')!.shape, [1, 1, B, ch.cache + B]);
    for (const io of [...p.inputs, ...p.outputs]) assert.ok(io.surfaceBytes >= 49152 && io.spatialStride % 32 === 0, `${p.name} ${io.name}: IOSurface rules`);
    // no baked causal mask or position tables in a chunk program
    assert.ok(!p.weights.some((w) => /causal_mask|rope_/.test(w)), `${p.name}: no position-specific constants`);
  }
}

for (const spec of [
  { name: 'stories260K', model: 'llama2c/stories260K.bin', tokenizer: 'llama2c/tok512.bin' },
  { name: 'qwen3-tiny-random', model: 'hf/qwen3-tiny-random' },
]) {
  test(`${spec.name}: a 70+ token prompt prefills in 3 chunks of 32 through the ANE programs; logits match fp32 in every chunk`, async (t) => {
    if (dir === null) return t.skip('shared/models not found');
    const m = await loadModel(path.join(dir, spec.model), { tokenizer: spec.tokenizer && path.join(dir, spec.tokenizer) });
    try {
      const b = compileBundle({ config: m.config, architecture: m.info.architecture, parameter: (n) => m.parameters().get(n) }, { buckets: [32] });
      checkChunkPrograms(b, 32);
      const sim = new AneSimulator(loadBundle(b), m);
      const ids = m.tokenizer.encode(LONG_TEXT).slice(0, 80);
      assert.ok(ids.length > 64 && ids.length <= 96, `prompt of ${ids.length} tokens spans 3 chunks`);
      const ref = m.logits(ids);
      const V = ref.length / ids.length;
      const r = sim.prefill(ids, 'all');
      assert.equal(r.tokens, ids.length);
      assert.equal(r.chunks, 3);
      assert.ok(r.programs.some((p) => p.endsWith('_chunk')), 'chunk programs ran');
      const c = compareRows(ref, r.logits, V, probePositions(ids.length, 32));
      t.diagnostic(`${spec.name}: ${b.manifest.programs.length} programs (${b.manifest.chunked!.groups.length} chunked, cache ${b.manifest.chunked!.cache}), ${ids.length} tokens, worst cosine ${c.cos.toFixed(7)}, max |logit diff| ${c.abs.toExponential(3)} [${c.per.join(', ')}]`);
      assert.ok(c.cos >= 0.999, `cosine ${c.cos}`);
      // 'last' rows: the final row of the final chunk
      const last = sim.prefill(ids, 'last');
      assert.equal(last.logits.length, V);
      assert.deepEqual(Array.from(last.logits), Array.from(r.logits.subarray((ids.length - 1) * V)));
    } finally {
      m.dispose();
    }
  });
}

test('stories260K: ane-sim greedy ids from a 3-chunk prompt continue run.c over the safe prefix', async (t) => {
  if (dir === null) return t.skip('shared/models not found');
  const m = await loadModel(path.join(dir, 'llama2c/stories260K.bin'), { tokenizer: path.join(dir, 'llama2c/tok512.bin') });
  try {
    const b = compileBundle({ config: m.config, architecture: m.info.architecture, parameter: (n) => m.parameters().get(n) }, { buckets: [32] });
    const sim = new AneSimulator(loadBundle(b), m);
    const cases = JSON.parse(fs.readFileSync(path.join(dir, 'reference/llama2c-stories260K.json'), 'utf8')).cases
      .filter((c: { sampling: string; safe_prefix_len?: number }) => c.sampling === 'greedy' && (c.safe_prefix_len ?? 0) > 100);
    assert.ok(cases.length > 0);
    for (const c of cases) {
      const n = Math.min(c.safe_prefix_len, c.generated_ids.length);
      const k = 70; // prompt = run.c's prompt + its first 70 greedy ids: > 64 tokens, 3 chunks of 32
      const prompt = [...c.prompt_ids, ...c.generated_ids.slice(0, k)];
      const r = await generate(aneSimTarget(m, sim), prompt, { maxTokens: n - k, temperature: 0 });
      assert.deepEqual(r.generatedIds.slice(0, n - k), c.generated_ids.slice(k, n), `"${c.prompt}" + ${k} ids`);
      t.diagnostic(`"${c.prompt}": prompt ${prompt.length} tokens (3 chunks), ${n - k}/${n - k} safe-prefix ids match`);
    }
  } finally {
    m.dispose();
  }
});

test('qwen3-tiny-random: ane-sim greedy ids from a 2-chunk prompt continue the PyTorch reference', async (t) => {
  if (dir === null) return t.skip('shared/models not found');
  const m = await loadModel(path.join(dir, 'hf/qwen3-tiny-random'));
  try {
    const b = compileBundle({ config: m.config, architecture: m.info.architecture, parameter: (n) => m.parameters().get(n) }, { buckets: [32] });
    const sim = new AneSimulator(loadBundle(b), m);
    const cases = JSON.parse(fs.readFileSync(path.join(dir, 'reference/hf-models.json'), 'utf8')).cases.filter((x: { model: string }) => x.model === 'qwen3-tiny-random');
    for (const c of cases) {
      const k = 40 - c.input_ids.length; // the reference holds <= 61 positions: a 40-token prompt is 2 chunks of 32
      const prompt = [...c.input_ids, ...c.generated_ids.slice(0, k)];
      const r = await generate(aneSimTarget(m, sim), prompt, { maxTokens: c.generated_ids.length - k, temperature: 0 });
      assert.deepEqual(r.generatedIds, c.generated_ids.slice(k), `"${c.prompt}" + ${k} ids`);
      t.diagnostic(`"${c.prompt}": prompt ${prompt.length} tokens (2 chunks), ${r.generatedIds.length}/${c.generated_ids.length - k} greedy ids match`);
    }
  } finally {
    m.dispose();
  }
});

function randomWeights(cfg: ModelConfig, seed: number): Map<string, HostTensor> {
  const r = prng(seed);
  const w = new Map<string, HostTensor>();
  for (const [name, shape] of modelParams(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = Float32Array.from({ length: n }, () => (shape.length === 1 ? 1 + (r() - 0.5) / 4 : (r() - 0.5) / 2));
    w.set(name, { name, dtype: 'f32', shape, data: new Uint8Array(v.buffer) });
  }
  return w;
}

for (const style of ['neox', 'interleaved'] as const) {
  test(`random-weight GQA Llama (${style} RoPE, 8 heads / 2 KV heads): chunked prefill of 90 tokens matches fp32; greedy ids match the CPU`, (t) => {
    const cfg: ModelConfig = {
      model_type: 'llama', vocab_size: 96, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 8,
      num_key_value_heads: 2, head_dim: 8, rms_norm_eps: 1e-5, rope_theta: 10000, rope_scaling: null, max_position_embeddings: 256,
      tie_word_embeddings: false, rope_style: style,
    };
    const w = randomWeights(cfg, style === 'neox' ? 5 : 6);
    const b = compileBundle({ config: cfg, architecture: 'llama', parameter: (n) => w.get(n) }, { buckets: [32] });
    checkChunkPrograms(b, 32);
    assert.equal(b.manifest.chunked!.cache, 224); // roundUp(256 - 32, 32)
    const model = { config: cfg, parameters: () => w } as unknown as Model;
    const sim = new AneSimulator(loadBundle(b), model);
    const r = prng(9);
    const ids = Array.from({ length: 90 }, () => Math.floor(r() * cfg.vocab_size));
    const cpu = new InferenceSession(cfg, { get: (n) => w.get(n) }, [referenceBackend], 256);
    const ref = cpu.forward(ids, 'all');
    const got = sim.prefill(ids, 'all');
    assert.equal(got.chunks, 3);
    const c = compareRows(ref, got.logits, cfg.vocab_size, probePositions(ids.length, 32));
    assert.ok(c.cos >= 0.999, `cosine ${c.cos} [${c.per.join(', ')}]`);
    t.diagnostic(`${style}: ${b.manifest.programs.length} programs, worst cosine ${c.cos.toFixed(7)}, max |logit diff| ${c.abs.toExponential(3)} [${c.per.join(', ')}]`);
    // the K/V handed to the CPU cache: decode from it gives the CPU's greedy ids
    const argmax = (a: Float32Array, off: number, n: number): number => {
      let best = 0;
      for (let i = 1; i < n; i++) if (a[off + i]! > a[off + best]!) best = i;
      return best;
    };
    let sa = argmax(got.logits, (ids.length - 1) * cfg.vocab_size, cfg.vocab_size);
    let sc = argmax(ref, (ids.length - 1) * cfg.vocab_size, cfg.vocab_size);
    const ane = new InferenceSession(cfg, { get: (n) => w.get(n) }, [referenceBackend], 256);
    ane.loadPrefix(got.tokens, got.k, got.v);
    const ga = [sa];
    const gc = [sc];
    for (let i = 0; i < 8; i++) {
      sa = argmax(ane.forward([sa]), 0, cfg.vocab_size);
      sc = argmax(cpu.forward([sc]), 0, cfg.vocab_size);
      ga.push(sa);
      gc.push(sc);
    }
    assert.deepEqual(ga, gc);
  });
}

test('compile budget: chunked-prefill programs count; 22 layers x 4 buckets fuse 2 layers per program (59 programs)', () => {
  // without chunked prefill (no maxPrompt) the plan is unchanged: 92 programs, 1 layer per program
  const base = makePlan({ architecture: 'llama', numLayers: 22, dim: 2048, vocab: 32000, buckets: [32, 64, 128, 256] });
  assert.equal(base.totalPrograms, 92);
  assert.equal(base.chunked, null);
  const p = makePlan({ architecture: 'llama', numLayers: 22, dim: 2048, vocab: 32000, buckets: [32, 64, 128, 256], maxPrompt: 2048 });
  assert.deepEqual(p.buckets, [32, 64, 128, 256]);
  assert.equal(p.layersPerProgram, 2);
  assert.equal(p.programsPerBucket, 12);
  assert.equal(p.totalPrograms, 4 * 12 + 11);
  assert.equal(p.chunked!.cache, 1792);
  assert.equal(p.chunked!.groups.length, 11);
  assert.ok(p.reasons.some((r) => /4 x 45 \+ 22 chunked-prefill = 202 compiles > budget 100; fusing 2 layer\(s\) .*: 4 x 12 \+ 11 chunked-prefill = 59 <= 100/.test(r)), p.reasons.join('\n'));
  // a small model keeps split programs: 4 x 11 + 5 attention chunk programs
  const small = makePlan({ architecture: 'llama', numLayers: 5, dim: 64, vocab: 512, buckets: [32, 64, 128, 256], maxPrompt: 512 });
  assert.equal(small.layersPerProgram, 0);
  assert.equal(small.totalPrograms, 49);
  // the cache never makes attention wider than 4096 columns
  assert.equal(makePlan({ architecture: 'llama', numLayers: 2, dim: 64, vocab: 512, buckets: [512], maxPrompt: 100000 }).chunked!.cache, 3584);
  // a prompt limit inside the largest bucket needs no chunk programs
  assert.equal(makePlan({ architecture: 'llama', numLayers: 2, dim: 64, vocab: 512, buckets: [32, 64], maxPrompt: 64 }).chunked, null);
});

test('a 22-layer model compiles with 4 buckets and chunked prefill inside the budget; audit explains the chunk programs', () => {
  const cfg: ModelConfig = {
    model_type: 'llama', vocab_size: 64, hidden_size: 64, intermediate_size: 64, num_hidden_layers: 22, num_attention_heads: 4,
    num_key_value_heads: 2, head_dim: 16, rms_norm_eps: 1e-5, rope_theta: 10000, rope_scaling: null, max_position_embeddings: 512,
    tie_word_embeddings: true, rope_style: 'neox',
  };
  const w = randomWeights(cfg, 11);
  const b = compileBundle({ config: cfg, architecture: 'llama', parameter: (n) => w.get(n) }, { buckets: [32, 64, 128, 256], classifierLimit: 1 });
  assert.equal(b.manifest.programs.length, 59);
  assert.equal(b.manifest.plan.layersPerProgram, 2);
  checkChunkPrograms(b, 256);
  const out = tempDir('ristretto-ane-chunk-');
  writeBundle(b, out);
  const report = auditBundle(readBundle(out));
  const text = formatAudit(report);
  assert.match(text, /compile budget: 59 \/ 100 programs/);
  assert.match(text, /chunked prefill:/);
  assert.match(text, /mask: program input chunk_mask \[1, 1, 256, 512\] fp16, 0 keep \/ -10000 drop/);
  assert.match(text, /K\/V cache \(cache length 256\)/);
  assert.match(text, /RoPE: RoPE rows as inputs rope_cos \/ rope_sin \[1, 1, 16, 256\]/);
  assert.match(text, /\[59\/100\] l20-21_s256_chunk \(layers, layer 20,21, bucket 256\) -> ANE/);
  assert.match(text, /inputs: x \[1, 64, 1, 256\], rope_cos \[1, 1, 16, 256\], rope_sin \[1, 1, 16, 256\], k_cache_l20 \[1, 32, 1, 256\]/);
  const cli = execFileSync(process.execPath, [path.join(repoRoot, 'dist/src/cli/main.js'), 'audit', out], { encoding: 'utf8' });
  assert.equal(cli, text);
});

test('CLI: generate --device ane-sim --buckets 32 on a 4-chunk prompt gives the CPU greedy ids', (t) => {
  if (dir === null) return t.skip('shared/models not found');
  const cli = path.join(repoRoot, 'dist/src/cli/main.js');
  const args = ['generate', '--model', path.join(dir, 'llama2c/stories260K.bin'), '--tokenizer', path.join(dir, 'llama2c/tok512.bin'),
    '--prompt', LONG_TEXT, '--temperature', '0', '--max-tokens', '24', '--output', 'json', '--quiet', '--backend', 'reference'];
  const cpu = JSON.parse(execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8' }));
  const ane = JSON.parse(execFileSync(process.execPath, [cli, ...args, '--device', 'ane-sim', '--buckets', '32'], { encoding: 'utf8' }));
  assert.ok(cpu.prompt_ids.length > 64);
  assert.deepEqual(ane.generated_ids, cpu.generated_ids);
  t.diagnostic(`prompt ${cpu.prompt_ids.length} tokens: ${ane.generated_ids.length} greedy ids match`);
});
