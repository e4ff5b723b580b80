// ANE compile of the encoders: hf/bert-tiny-random (post-norm LayerNorm, erf-GELU, token types, absolute positions)
// and hf/qwen3-encoder-tiny-random (bidirectional, QK-norm, RoPE, GQA) compile to bundles whose attention programs
// take the key-padding mask as an input (no causal mask constant) and whose output program returns the final
// hidden states. Every reference text embedded through the interpreted bundle (loadEmbeddingModel device 'ane-sim')
// agrees with the fp32 path (mean-pooled cosine >= 0.999; max abs error reported); int8/binary/ubinary are compared
// with the reference (counts reported: fp16 may flip int8 dims by one step); results are identical across buckets;
// the rational erf-GELU is measured against the tanh approximation; and `ristretto compile` + `audit` handle encoders.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend, Kernel } from '../src/backends/backend.js';
import { referenceBackend } from '../src/backends/reference/index.js';
import { asF32 } from '../src/backends/reference/weights.js';
import { auditBundle, formatAudit } from '../src/compile/audit.js';
import { compileBundle, loadBundle, readBundle, type Bundle } from '../src/compile/bundle.js';
import { GELU_ERF_RATIONAL, MASK_VALUE } from '../src/compile/lower-ane.js';
import { SPEC_OPS } from '../src/compile/mil/ast.js';
import { emitProgram } from '../src/compile/mil/emit.js';
import { parseMil } from '../src/compile/mil/parse.js';
import { compileCommand } from '../src/cli/compile.js';
import { AneEncoderSimulator } from '../src/runtime/ane-sim-encoder.js';
import { loadEmbeddingModel, type EmbeddingModel } from '../src/runtime/embed.js';
import { modelFileOrSkip, tempDir } from './helpers/models.js';
import { maxAbsDiff, readReference, sharedModel, type EmbedReference } from './util/embed-reference.js';

const SPECS = [
  { name: 'bert-tiny-random', model: 'hf/bert-tiny-random', ref: 'embed-bert-tiny.json' },
  { name: 'qwen3-encoder-tiny-random', model: 'hf/qwen3-encoder-tiny-random', ref: 'embed-qwen3-encoder-tiny.json' },
];
const BUCKETS = [16, 32, 64];

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return dot / Math.sqrt(na * nb);
}

function compile(m: EmbeddingModel, extra: { geluErf?: 'rational' | 'tanh' } = {}): Bundle {
  return compileBundle(
    { config: m.config, architecture: `${m.config.model_type} encoder`, parameter: (n) => m.parameter(n) },
    { buckets: BUCKETS, calibrationIds: m.tokenizer.encode('Once upon a time, there was a little girl named Lily.'), ...extra },
  );
}

interface QuantCounts { int8: number; int8Fragile: number; int8MaxStep: number; binary: number; ubinary: number; dims: number; texts: number }

function quantCounts(ref: EmbedReference, got: { int8: Int8Array; binary: Int8Array; ubinary: Uint8Array }[]): QuantCounts {
  const c: QuantCounts = { int8: 0, int8Fragile: 0, int8MaxStep: 0, binary: 0, ubinary: 0, dims: 0, texts: ref.cases.length };
  ref.cases.forEach((r, i) => {
    const g = got[i]!;
    for (let d = 0; d < r.int8.length; d++) {
      c.dims++;
      const step = Math.abs(g.int8[d]! - r.int8[d]!);
      c.int8MaxStep = Math.max(c.int8MaxStep, step);
      if (step === 0) c.int8++;
      else if (r.int8_fragile_dims.includes(d)) c.int8Fragile++;
      if (g.binary[d] === r.binary[d]) c.binary++;
    }
    if (Array.from(g.ubinary).every((v, k) => v === r.ubinary[k])) c.ubinary++;
  });
  return c;
}

for (const spec of SPECS) {
  test(`${spec.name}: compiles as an encoder (key_mask input, no causal mask, hidden-state output program)`, async (t) => {
    const dir = modelFileOrSkip(t, spec.model);
    if (!dir) return;
    const m = await sharedModel(dir);
    const b = compile(m);
    const man = b.manifest;
    assert.ok(man.encoder, 'encoder section in the manifest');
    assert.deepEqual(man.buckets, [32, 64], 'bucket 16 rounds up to the 32-wide spatial stride');
    assert.equal(man.plan.classifier.device, 'none');
    assert.equal(man.plan.decode.device, 'none');
    assert.equal(man.encoder.postNorm, m.config.model_type === 'bert');
    assert.equal(man.encoder.keyMask.drop, MASK_VALUE);
    const L = man.model.numLayers;
    assert.deepEqual(man.programs.filter((p) => p.bucket === 32).map((p) => p.group), [...Array.from({ length: L }, (_, l) => [`l${l}_attn`, `l${l}_ffn`]).flat(), 'output']);
    assert.ok(!b.blobs.has('weights/causal_mask_s32.bin') && ![...b.blobs.keys()].some((f) => /causal/.test(f)), 'no causal mask weight file');
    for (const p of man.programs) {
      const text = b.texts.get(p.file)!;
      assert.ok(!/causal/.test(text), `${p.file}: no causal mask constant`);
      const prog = parseMil(text, p.file);
      assert.equal(emitProgram(prog), text, `${p.file}: emit(parse(text)) == text`);
      const f = prog.functions[0]!;
      for (const s of f.body) {
        assert.ok(SPEC_OPS.includes(s.op), `${p.file}: ${s.op}`);
        // the only [1, 1, x, S] constants are RoPE tables (head_dim may equal S): no [1, 1, S, S] mask
        const val = s.attrs.find((x) => x.key === 'val')?.value;
        if (s.op === 'const' && s.type.shape?.join() === `1,1,${p.bucket},${p.bucket}`) assert.ok(val?.kind === 'blob' && /\/rope_/.test(val.path), `${p.file}: no [1, 1, S, S] mask constant (${s.name})`);
      }
      const hasAttn = f.body.some((s) => s.op === 'softmax');
      assert.equal(f.inputs.some((i) => i.name === 'key_mask' && i.type.shape!.join() === `1,1,1,${p.bucket}`), hasAttn, `${p.file}: key_mask input iff attention`);
      if (p.kind === 'output') assert.deepEqual(p.outputs.map((o) => [o.name, o.role, o.shape.join('x')]), [['hidden', 'hidden', `1x${man.model.dim}x1x${p.bucket}`]]);
      assert.ok(!p.outputs.some((o) => o.role === 'k' || o.role === 'v' || o.role === 'logits'), `${p.file}: no K/V or logits outputs`);
    }
    if (m.config.model_type === 'bert') {
      const ffn = b.texts.get('l0_ffn_s32.mil')!;
      assert.ok(/real_div/.test(ffn) && /sigmoid/.test(ffn) && !/tanh/.test(ffn), 'erf-GELU lowered as the rational sigmoid form');
    }
    t.diagnostic(`${spec.name}: ${man.programs.length} programs (${man.plan.programsPerBucket} per bucket), residual scale ${man.residualScale}; ${man.encoder.positions}`);
  });

  test(`${spec.name}: reference texts through the interpreted bundle (device ane-sim) match the fp32 path`, async (t) => {
    const dir = modelFileOrSkip(t, spec.model);
    const models = dir && path.dirname(path.dirname(dir));
    if (!dir || !models || !modelFileOrSkip(t, `reference/${spec.ref}`)) return;
    const ref = readReference(models, spec.ref);
    const cpu = await sharedModel(dir);
    const ane = await loadEmbeddingModel(dir, { onWarning: () => {}, device: 'ane-sim', buckets: BUCKETS });
    assert.deepEqual(ane.buckets, [32, 64]);
    const texts = ref.cases.map((c) => c.text);
    const [fa, fc, i8, bin, ub] = await Promise.all([
      ane.embed(texts), cpu.embed(texts), ane.embed(texts, { output: 'int8' }), ane.embed(texts, { output: 'binary' }), ane.embed(texts, { output: 'ubinary' }),
    ]);
    let worstCos = 1;
    let maxAbs = 0;
    let maxAbsRef = 0;
    ref.cases.forEach((c, i) => {
      worstCos = Math.min(worstCos, cosine(fa[i]!.embedding, fc[i]!.embedding));
      maxAbs = Math.max(maxAbs, maxAbsDiff(fa[i]!.embedding, fc[i]!.embedding));
      maxAbsRef = Math.max(maxAbsRef, maxAbsDiff(fa[i]!.embedding, c.mean_pooled));
      assert.equal(fa[i]!.tokens, c.n_tokens);
    });
    const q = quantCounts(ref, ref.cases.map((_, i) => ({ int8: i8[i]!.embedding, binary: bin[i]!.embedding, ubinary: ub[i]!.embedding })));
    t.diagnostic(
      `${spec.name} ane-sim vs fp32: worst mean-pooled cosine ${worstCos.toFixed(7)}, max abs error ${maxAbs.toExponential(3)} (vs the float64 reference ${maxAbsRef.toExponential(3)}); ` +
        `vs reference: int8 ${q.int8}/${q.dims} dims equal (${q.int8Fragile} of the others on fragile dims, max step ${q.int8MaxStep}), binary ${q.binary}/${q.dims}, ubinary ${q.ubinary}/${q.texts} texts exact`,
    );
    assert.ok(worstCos >= 0.999, `cosine ${worstCos}`);
    assert.ok(maxAbs < 5e-3, `max abs error ${maxAbs}`);
    // fp16 moves the pooled vector by ~1e-3: int8 (steps of 1/127 in tanh) may flip by one step, signs may not
    // (no reference dim is that close to 0).
    assert.ok(q.int8MaxStep <= 1, `int8 off by ${q.int8MaxStep}`);
    assert.ok(q.int8 >= 0.9 * q.dims, `int8 ${q.int8}/${q.dims}`);
    assert.equal(q.binary, q.dims);
    assert.equal(q.ubinary, q.texts);
  });

  test(`${spec.name}: the bundle's hidden states do not depend on the bucket or the batch`, async (t) => {
    const dir = modelFileOrSkip(t, spec.model);
    if (!dir) return;
    const m = await sharedModel(dir);
    const sim = new AneEncoderSimulator(loadBundle(compile(m)), m.config, (n) => m.parameter(n));
    const texts = ['Hello world!', 'A little bird sang a happy song to the sun.', 'One day, a little girl named Lily found a needle in her room.'];
    let worst = 0;
    for (const text of texts) {
      const ids = m.tokenize(text).ids;
      const h32 = sim.encode(ids, 32);
      const h64 = sim.encode(ids, 64);
      worst = Math.max(worst, maxAbsDiff(h32, h64));
    }
    const ane = await loadEmbeddingModel(dir, { onWarning: () => {}, device: 'ane-sim', buckets: [32, 64], batchSize: 3, fixedBatch: true });
    const alone = (await ane.embed(texts[0]!))[0]!.embedding;
    const batched = (await ane.embed(texts))[0]!.embedding;
    t.diagnostic(`${spec.name}: hidden states bucket 32 vs 64 max abs diff ${worst}; alone vs batch of 3: ${maxAbsDiff(alone, batched)}`);
    assert.equal(worst, 0);
    assert.equal(maxAbsDiff(alone, batched), 0);
  });
}

test('erf-GELU: the rational form keeps BERT int8/binary exact in fp32 where the tanh form does not; both through the bundle', async (t) => {
  const spec = SPECS[0]!;
  const dir = modelFileOrSkip(t, spec.model);
  const models = dir && path.dirname(path.dirname(dir));
  if (!dir || !models || !modelFileOrSkip(t, `reference/${spec.ref}`)) return;
  const ref = readReference(models, spec.ref);
  const texts = ref.cases.map((c) => c.text);
  const R = GELU_ERF_RATIONAL;
  const geluKernel = (f: (x: number) => number): Kernel<'gelu_erf'> => (node, [xv]) => ({ kind: 'dense', shape: [...node.shape], data: Float32Array.from(asF32(xv!), f) });
  const forms: [string, (x: number) => number][] = [
    ['tanh', (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))],
    ['rational', (x) => x / (1 + Math.exp((-x * (R.a + R.b * x * x)) / (1 + R.c * x * x)))],
  ];
  const lines: string[] = [];
  const counts: Record<string, QuantCounts> = {};
  for (const [name, f] of forms) {
    const backend: Backend = { name: `gelu-${name}`, kernels: { gelu_erf: geluKernel(f) } };
    const m = await loadEmbeddingModel(dir, { onWarning: () => {}, backends: [backend] });
    const [fl, i8, bin, ub] = await Promise.all([m.embed(texts), m.embed(texts, { output: 'int8' }), m.embed(texts, { output: 'binary' }), m.embed(texts, { output: 'ubinary' })]);
    let err = 0;
    ref.cases.forEach((c, i) => (err = Math.max(err, maxAbsDiff(fl[i]!.embedding, c.mean_pooled))));
    const q = (counts[name] = quantCounts(ref, ref.cases.map((_, i) => ({ int8: i8[i]!.embedding, binary: bin[i]!.embedding, ubinary: ub[i]!.embedding }))));
    lines.push(`fp32 with ${name} GELU: mean-pooled max abs error ${err.toExponential(3)}, int8 ${q.int8}/${q.dims}, binary ${q.binary}/${q.dims}, ubinary ${q.ubinary}/${q.texts}`);
  }
  let gmax = 0;
  for (let x = -8; x <= 8; x += 1 / 1024) gmax = Math.max(gmax, Math.abs(forms[1]![1](x) - forms[0]![1](x)));
  const cpu = await sharedModel(dir);
  for (const geluErf of ['rational', 'tanh'] as const) {
    const ane = await loadEmbeddingModel(dir, { onWarning: () => {}, device: 'ane-sim', aneBundle: compile(cpu, { geluErf }) });
    const [fl, i8, bin, ub] = await Promise.all([ane.embed(texts), ane.embed(texts, { output: 'int8' }), ane.embed(texts, { output: 'binary' }), ane.embed(texts, { output: 'ubinary' })]);
    let err = 0;
    ref.cases.forEach((c, i) => (err = Math.max(err, maxAbsDiff(fl[i]!.embedding, c.mean_pooled))));
    const q = quantCounts(ref, ref.cases.map((_, i) => ({ int8: i8[i]!.embedding, binary: bin[i]!.embedding, ubinary: ub[i]!.embedding })));
    lines.push(`bundle (fp16) with the ${geluErf} lowering: mean-pooled max abs error ${err.toExponential(3)}, int8 ${q.int8}/${q.dims}, binary ${q.binary}/${q.dims}, ubinary ${q.ubinary}/${q.texts}`);
  }
  t.diagnostic(`rational vs tanh GELU differ by up to ${gmax.toExponential(3)}; ${lines.join('; ')}`);
  assert.equal(counts['rational']!.int8, counts['rational']!.dims, 'the rational erf-GELU keeps int8 exact in fp32');
  assert.equal(counts['rational']!.binary, counts['rational']!.dims);
});

test('ristretto compile --target ane + audit on encoder folders', async (t) => {
  for (const spec of SPECS) {
    const dir = modelFileOrSkip(t, spec.model);
    if (!dir) return;
    const out = tempDir(`ristretto-ane-${spec.name}-`);
    await compileCommand(['--model', dir, '--target', 'ane', '--buckets', '16,32,64', '--out', out, '--quiet']);
    const b = readBundle(out);
    assert.ok(b.manifest.encoder);
    assert.deepEqual(b.manifest.buckets, [32, 64]);
    assert.ok(fs.existsSync(path.join(out, 'output_s64.mil')));
    const text = formatAudit(auditBundle(b));
    assert.match(text, /encoder: no classifier/);
    assert.match(text, /key-padding mask: program input key_mask \[1, 1, 1, S\] fp16, 0 keep \/ -10000 drop/);
    assert.match(text, /no decode/);
    assert.match(text, /output_s32 \(output, bucket 32\)/);
    assert.ok(!/causal mask constant \[/.test(text));
    // the written bundle drives loadEmbeddingModel
    const m = await loadEmbeddingModel(dir, { onWarning: () => {}, device: 'ane-sim', aneBundle: out });
    const cpu = await sharedModel(dir);
    const [a] = await m.embed('Hello world!');
    const [c] = await cpu.embed('Hello world!');
    assert.ok(cosine(a!.embedding, c!.embedding) >= 0.999);
    t.diagnostic(`${spec.name}: ${b.manifest.programs.length} programs written to a bundle, audit explains the encoder plan`);
  }
});
