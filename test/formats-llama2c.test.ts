import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, InvalidArgumentError, RistrettoError, UnsupportedError } from '../src/errors.js';
import { openGGUF } from '../src/formats/gguf.js';
import { llama2cTensorNames, openLlama2c, readLlama2cTokenizer, writeLlama2c, type Llama2cConfig } from '../src/formats/llama2c.js';
import { openSafetensors } from '../src/formats/safetensors.js';
import { Bytes, modelFileOrSkip, prng, tempDir } from './helpers/models.js';

const tmp = tempDir();

test('stories260K.bin: legacy header, config and tensor shapes', (t) => {
  const f = modelFileOrSkip(t, 'llama2c/stories260K.bin');
  if (!f) return;
  const m = openLlama2c(f);
  try {
    assert.deepEqual(m.config, { dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true, version: 0 });
    const infos = m.list();
    assert.equal(infos.length, 2 + 5 * 9);
    assert.ok(!m.has('output.weight'));
    const shape = (n: string): number[] | undefined => infos.find((i) => i.name === n)?.shape;
    assert.deepEqual(shape('tok_embeddings.weight'), [512, 64]);
    assert.deepEqual(shape('layers.0.attention.wq.weight'), [64, 64]);
    assert.deepEqual(shape('layers.4.attention.wk.weight'), [32, 64]);
    assert.deepEqual(shape('layers.2.attention.wv.weight'), [32, 64]);
    assert.deepEqual(shape('layers.1.feed_forward.w2.weight'), [64, 172]);
    assert.deepEqual(shape('layers.3.feed_forward.w3.weight'), [172, 64]);
    assert.deepEqual(shape('norm.weight'), [64]);
    assert.equal(infos.reduce((a, i) => a + i.byteLength, 0) + 28 + 2 * 512 * 4 * 4, fs.statSync(f).size);
    // RMSNorm weights of a trained model are not all ~0: a cheap check that offsets are right.
    const norm = m.read('norm.weight');
    const v = new Float32Array(norm.data.buffer, 0, 64);
    assert.ok(v.every((x) => x > 0.05 && x < 20), 'final norm weights look like RMSNorm gains');
  } finally {
    m.close();
  }
});

test('cross-check: stories260K .bin == .gguf == HF safetensors, byte for byte', (t) => {
  const bin = modelFileOrSkip(t, 'llama2c/stories260K.bin');
  const gg = bin && modelFileOrSkip(t, 'gguf/stories260K.gguf');
  const st = gg && modelFileOrSkip(t, 'hf/stories260K-hf/model.safetensors');
  if (!bin || !gg || !st) return;
  const m = openLlama2c(bin);
  const g = openGGUF(gg);
  const s = openSafetensors(st);
  try {
    const eq = (a: Uint8Array, b: Uint8Array, what: string): void => assert.ok(Buffer.from(a).equals(b), what);
    const emb = m.read('tok_embeddings.weight').data;
    eq(emb, g.read('token_embd.weight').data, 'token_embd');
    eq(emb, s.read('model.embed_tokens.weight').data, 'embed_tokens');
    eq(emb, g.read('output.weight').data, 'gguf output == shared classifier');
    eq(m.read('norm.weight').data, g.read('output_norm.weight').data, 'output_norm');
    eq(m.read('norm.weight').data, s.read('model.norm.weight').data, 'model.norm');
    const pairs: [string, string, string][] = [
      ['attention_norm.weight', 'attn_norm.weight', 'input_layernorm.weight'],
      ['ffn_norm.weight', 'ffn_norm.weight', 'post_attention_layernorm.weight'],
      ['attention.wv.weight', 'attn_v.weight', 'self_attn.v_proj.weight'],
      ['attention.wo.weight', 'attn_output.weight', 'self_attn.o_proj.weight'],
      ['feed_forward.w1.weight', 'ffn_gate.weight', 'mlp.gate_proj.weight'],
      ['feed_forward.w2.weight', 'ffn_down.weight', 'mlp.down_proj.weight'],
      ['feed_forward.w3.weight', 'ffn_up.weight', 'mlp.up_proj.weight'],
      ['attention.wq.weight', 'attn_q.weight', ''], // HF q/k are permuted to rotate-half layout
      ['attention.wk.weight', 'attn_k.weight', ''],
    ];
    for (let i = 0; i < 5; i++) {
      for (const [a, b, c] of pairs) {
        const x = m.read(`layers.${i}.${a}`).data;
        eq(x, g.read(`blk.${i}.${b}`).data, `layer ${i} ${a} vs gguf`);
        if (c) eq(x, s.read(`model.layers.${i}.${c}`).data, `layer ${i} ${a} vs hf`);
      }
    }
  } finally {
    m.close();
    g.close();
    s.close();
  }
});

test('writeLlama2c round trips: v1 and legacy, shared and unshared classifier', (t) => {
  const f = modelFileOrSkip(t, 'llama2c/stories260K.bin');
  if (!f) return;
  const src = openLlama2c(f);
  const rand = prng(3);
  const fakeOutput = new Float32Array(512 * 64).map(() => rand() - 0.5);
  for (const version of [0, 1] as const) {
    for (const sharedClassifier of [true, false]) {
      const cfg: Llama2cConfig = { ...src.config, version, sharedClassifier };
      const out = path.join(tmp, `rt-v${version}-${sharedClassifier}.bin`);
      writeLlama2c(out, cfg, (name) => (name === 'output.weight' ? fakeOutput : src.read(name)));
      if (version === 0 && sharedClassifier) assert.ok(fs.readFileSync(out).subarray(0, 28).equals(fs.readFileSync(f).subarray(0, 28)));
      const m = openLlama2c(out);
      assert.deepEqual(m.config, cfg);
      assert.deepEqual(m.list().map((i) => i.name).sort(), llama2cTensorNames(cfg).sort());
      for (const name of llama2cTensorNames(cfg)) {
        const want = name === 'output.weight' ? new Uint8Array(fakeOutput.buffer) : src.read(name).data;
        assert.ok(Buffer.from(m.read(name).data).equals(want), `${name} v${version} shared=${sharedClassifier}`);
      }
      m.close();
    }
  }
  src.close();
});

test('llama2.c legacy file without the freq_cis block is accepted; wrong sizes report exact numbers', (t) => {
  const f = modelFileOrSkip(t, 'llama2c/stories260K.bin');
  if (!f) return;
  const bytes = fs.readFileSync(f);
  const freq = 2 * 512 * 4 * 4;
  const p = path.join(tmp, 'nofreq.bin');
  fs.writeFileSync(p, bytes.subarray(0, bytes.length - freq));
  const m = openLlama2c(p);
  const o = openLlama2c(f);
  assert.ok(Buffer.from(m.read('norm.weight').data).equals(o.read('norm.weight').data));
  m.close();
  o.close();
  fs.writeFileSync(p, bytes.subarray(0, bytes.length - 4));
  assert.throws(
    () => openLlama2c(p),
    (e: unknown) => e instanceof FormatError && e.where === 'file size' && e.expected!.startsWith('1056540 bytes (or 1040156') && e.found === '1056536 bytes',
  );
});

test('llama2.c header validation and version 2', () => {
  const p = path.join(tmp, 'hdr.bin');
  const legacy = (h: number[]): Uint8Array => {
    const b = new Bytes();
    for (const x of h) b.i32(x);
    return b.raw(new Uint8Array(64)).build();
  };
  const cases: [number[], RegExp][] = [
    [[0, 4, 1, 1, 1, 4, 4], /dim/],
    [[8, 4, 1, 3, 1, 4, 4], /n_heads/],
    [[8, 4, 1, 4, 3, 4, 4], /n_kv_heads/],
    [[6, 4, 1, 2, 1, 4, 4], /head size/],
    [[8, -4, 1, 2, 1, 4, 4], /hiddenDim/],
    [[2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1, 1, 1, 2 ** 31 - 1, 2 ** 31 - 1], /head size|file size/],
    [[2 ** 30, 2 ** 30, 2 ** 30, 2 ** 20, 2 ** 20, -(2 ** 31), 2 ** 30], /vocabSize/],
    [[8, 4, 1, 2, 1, 4, 4], /file size/],
  ];
  for (const [h, where] of cases) {
    fs.writeFileSync(p, legacy(h));
    assert.throws(() => openLlama2c(p), (e: unknown) => e instanceof FormatError && where.test(`${e.where} ${e.expected}`), JSON.stringify(h));
  }
  fs.writeFileSync(p, new Bytes().u32(0x616b3432).i32(2).raw(new Uint8Array(248)).build());
  assert.throws(() => openLlama2c(p), (e: unknown) => e instanceof UnsupportedError && /version 2/.test(e.message) && /Q8_0/.test(e.message));
  fs.writeFileSync(p, new Bytes().u32(0x616b3432).i32(7).raw(new Uint8Array(248)).build());
  assert.throws(() => openLlama2c(p), (e: unknown) => e instanceof FormatError && e.where === 'header.version');
  const v1 = new Bytes().u32(0x616b3432).i32(1);
  for (const x of [8, 4, 1, 2, 1, 4, 4]) v1.i32(x);
  v1.u8(1).pad(256);
  const size = 4 * (8 + 8 + 8 + 32 + 64 + 32 + 32 + 64 + 32 + 32 + 32); // norms, emb, wq wk wv wo (kv_dim 4), w1 w2 w3
  const good = Buffer.concat([Buffer.from(v1.build()), Buffer.alloc(size)]);
  fs.writeFileSync(p, good);
  assert.equal(openLlama2c(p).config.version, 1);
  good[100] = 1;
  fs.writeFileSync(p, good);
  assert.throws(() => openLlama2c(p), (e: unknown) => e instanceof FormatError && e.where === 'header padding');
  good[100] = 0;
  good[36] = 2;
  fs.writeFileSync(p, good);
  assert.throws(() => openLlama2c(p), (e: unknown) => e instanceof FormatError && e.where === 'header.shared_classifier');
  assert.throws(() => openLlama2c(path.join(tmp, 'none.bin')), (e: unknown) => e instanceof RistrettoError && e.code === 'NOT_FOUND');
});

test('llama2.c tokenizer.bin: tok512.bin and the Llama 2 tokenizer.bin', (t) => {
  const dir = modelFileOrSkip(t, 'llama2c');
  if (!dir) return;
  const tok = readLlama2cTokenizer(path.join(dir, 'tok512.bin'), 512);
  assert.equal(tok.maxTokenLength, 7);
  assert.equal(tok.pieces.length, 512);
  assert.equal(tok.scores.length, 512);
  // llama2.c's tokenizer.py writes BOS/EOS as "\n<s>\n" / "\n</s>\n" and replaces "▁" by " ".
  assert.deepEqual(tok.vocab.slice(0, 4), ['<unk>', '\n<s>\n', '\n</s>\n', '<0x00>']);
  assert.ok(tok.pieces.every((p) => p.length >= 1 && p.length <= 7));
  assert.equal(Math.max(...tok.pieces.map((p) => p.length)), tok.maxTokenLength);
  assert.deepEqual(readLlama2cTokenizer(path.join(dir, 'tok512.bin')).vocab, tok.vocab);
  const big = readLlama2cTokenizer(path.join(dir, 'tokenizer.bin'));
  assert.equal(big.pieces.length, 32000);
  assert.equal(big.maxTokenLength, 27);
  assert.equal(big.vocab[259], '  ');
  assert.ok(big.scores.some((s) => s < 0));
  assert.throws(() => readLlama2cTokenizer(path.join(dir, 'tok512.bin'), 511), (e: unknown) => e instanceof FormatError && e.where === 'end of file');
  assert.throws(() => readLlama2cTokenizer(path.join(dir, 'tok512.bin'), 513), FormatError);
});

test('tokenizer.bin bounds: len beyond max_token_length or negative is a FormatError', () => {
  const p = path.join(tmp, 'tok.bin');
  const file = (maxLen: number, toks: [number, number, string][]): Uint8Array => {
    const b = new Bytes().i32(maxLen);
    for (const [score, len, s] of toks) b.f32(score).i32(len).raw(s);
    return b.build();
  };
  fs.writeFileSync(p, file(3, [[0, 1, 'a'], [-1, 3, 'abc'], [0, 0, '']]));
  const tk = readLlama2cTokenizer(p);
  assert.deepEqual(tk.vocab, ['a', 'abc', '']);
  assert.deepEqual([...tk.scores], [0, -1, 0]);
  fs.writeFileSync(p, file(2, [[0, 3, 'abc']]));
  assert.throws(() => readLlama2cTokenizer(p), (e: unknown) => e instanceof FormatError && e.where === 'token 0 len');
  fs.writeFileSync(p, file(2, [[0, -1, '']]));
  assert.throws(() => readLlama2cTokenizer(p), (e: unknown) => e instanceof FormatError && e.where === 'token 0 len');
  fs.writeFileSync(p, file(3, [[0, 3, 'ab']]));
  assert.throws(() => readLlama2cTokenizer(p), (e: unknown) => e instanceof FormatError && e.where === 'token 0 bytes');
  assert.throws(() => readLlama2cTokenizer(p, 2 ** 40), FormatError);
  // Checks the reader took over from the tokenizer-side reader it replaced.
  const where = (w: string) => (e: unknown) => e instanceof FormatError && e.where === w;
  fs.writeFileSync(p, file(0, [[0, 0, '']]));
  assert.throws(() => readLlama2cTokenizer(p), where('max_token_length'));
  fs.writeFileSync(p, new Bytes().i32(1).f32(NaN).i32(1).raw('a').build());
  assert.throws(() => readLlama2cTokenizer(p), where('token 0 score'));
  fs.writeFileSync(p, new Bytes().i32(2).f32(0).i32(1).raw('a').f32(0).i32(1).raw([0xff]).build());
  assert.throws(() => readLlama2cTokenizer(p), where('token 1 bytes'));
  fs.writeFileSync(p, new Bytes().i32(2).build());
  assert.throws(() => readLlama2cTokenizer(p), where('tokens'));
  fs.writeFileSync(p, file(2, [[0, 2, 'ab']]));
  assert.throws(() => readLlama2cTokenizer(p, 0), InvalidArgumentError);
});
