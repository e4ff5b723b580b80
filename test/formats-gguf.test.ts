import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, RistrettoError, UnsupportedError } from '../src/errors.js';
import { openGGUF, writeGGUF, ggmlTypeName, type GGUFMetadataEntry } from '../src/formats/gguf.js';
import type { HostTensor } from '../src/formats/tensor.js';
import { Bytes, modelFileOrSkip, prng, randomBytes, tempDir } from './helpers/models.js';

const tmp = tempDir();

test('stories260K.gguf: v3 llama header, metadata and tensor table', (t) => {
  const f = modelFileOrSkip(t, 'gguf/stories260K.gguf');
  if (!f) return;
  const g = openGGUF(f);
  try {
    assert.equal(g.version, 3);
    assert.equal(g.alignment, 32);
    assert.equal(g.metadata.get('general.architecture'), 'llama');
    assert.equal(g.metadata.get('llama.embedding_length'), 64);
    assert.equal(g.metadata.get('llama.feed_forward_length'), 172);
    assert.equal(g.metadata.get('llama.block_count'), 5);
    assert.equal(g.metadata.get('llama.attention.head_count'), 8);
    assert.equal(g.metadata.get('llama.attention.head_count_kv'), 4);
    assert.equal(g.metadataTypes.get('llama.embedding_length'), 'uint32');
    const eps = g.metadata.get('llama.attention.layer_norm_rms_epsilon');
    assert.equal(eps, Math.fround(1e-5));
    const tokens = g.metadata.get('tokenizer.ggml.tokens');
    assert.ok(Array.isArray(tokens) && tokens.length === 512);
    assert.deepEqual(tokens.slice(0, 4), ['<unk>', '<s>', '</s>', '<0x00>']);
    assert.deepEqual(g.metadataTypes.get('tokenizer.ggml.tokens'), { array: 'string' });
    assert.equal(g.tensorInfos.length, 48);
    const byName = new Map(g.list().map((i) => [i.name, i]));
    assert.deepEqual(byName.get('token_embd.weight')?.shape, [512, 64]);
    assert.deepEqual(byName.get('blk.0.attn_k.weight')?.shape, [32, 64]);
    assert.deepEqual(byName.get('blk.4.ffn_gate.weight')?.shape, [172, 64]);
    assert.deepEqual(byName.get('blk.4.ffn_down.weight')?.shape, [64, 172]);
    assert.deepEqual(byName.get('output_norm.weight')?.shape, [64]);
    assert.ok(g.list().every((i) => i.dtype === 'f32' && i.typeName === 'F32'));
    for (const ti of g.tensorInfos) assert.equal(ti.offset % 32, 0);
    const last = g.tensorInfos.reduce((a, b) => (a.offset > b.offset ? a : b));
    assert.equal(g.dataOffset + last.offset + last.byteLength, fs.statSync(f).size);
    const emb = g.read('token_embd.weight');
    assert.equal(emb.data.byteOffset, 0);
    assert.equal(emb.data.byteLength, 512 * 64 * 4);
    const v = new Float32Array(emb.data.buffer, emb.data.byteOffset, 512 * 64);
    assert.ok(v.every(Number.isFinite));
    assert.ok(v.some((x) => x !== 0));
    assert.throws(() => g.read('nope'), (e: unknown) => e instanceof RistrettoError && e.code === 'NOT_FOUND');
  } finally {
    g.close();
  }
});

test('llama-2-tiny-random.gguf: F16 weights, F32 norms, 32000-token vocab', (t) => {
  const f = modelFileOrSkip(t, 'gguf/llama-2-tiny-random.gguf');
  if (!f) return;
  const g = openGGUF(f);
  try {
    assert.equal(g.version, 3);
    assert.equal(g.metadata.get('llama.embedding_length'), 8);
    const tokens = g.metadata.get('tokenizer.ggml.tokens') as string[];
    assert.equal(tokens.length, 32000);
    assert.equal((g.metadata.get('tokenizer.ggml.scores') as number[]).length, 32000);
    const infos = g.list();
    assert.equal(infos.filter((i) => i.dtype === 'f32').length, 3);
    assert.equal(infos.filter((i) => i.dtype === 'f16').length, infos.length - 3);
    const emb = infos.find((i) => i.name === 'token_embd.weight')!;
    assert.deepEqual(emb.shape, [32000, 8]);
    assert.equal(emb.byteLength, 32000 * 8 * 2);
    const x = g.read('token_embd.weight');
    assert.equal(x.dtype, 'f16');
    assert.equal(x.data.byteLength, 512000);
  } finally {
    g.close();
  }
});

test('vocab-only GGUFs: tokenizer arrays of 32000 / 50257 / 30522 strings, no tensors', (t) => {
  const dir = modelFileOrSkip(t, 'gguf/vocab');
  if (!dir) return;
  const cases: [string, number][] = [['ggml-vocab-llama-spm.gguf', 32000], ['ggml-vocab-gpt-2.gguf', 50257], ['ggml-vocab-bert-bge.gguf', 30522]];
  for (const [name, n] of cases) {
    const g = openGGUF(path.join(dir, name));
    const tokens = g.metadata.get('tokenizer.ggml.tokens');
    assert.ok(Array.isArray(tokens) && tokens.length === n && tokens.every((s) => typeof s === 'string'), name);
    assert.equal(g.tensorInfos.length, 0);
    assert.equal((g.metadata.get('tokenizer.ggml.token_type') as number[]).length, n);
    g.close();
  }
  const gpt2 = openGGUF(path.join(dir, 'ggml-vocab-gpt-2.gguf'));
  const merges = gpt2.metadata.get('tokenizer.ggml.merges') as string[];
  assert.equal(merges.length, 50000);
  assert.equal(merges[0], 'Ġ t');
  assert.equal(gpt2.metadata.get('tokenizer.ggml.bos_token_id'), 50256);
  gpt2.close();
});

test('writeGGUF: re-writing stories260K.gguf reproduces the file byte for byte', (t) => {
  const f = modelFileOrSkip(t, 'gguf/stories260K.gguf');
  if (!f) return;
  const g = openGGUF(f);
  const out = path.join(tmp, 'rewrite.gguf');
  writeGGUF(out, {
    metadata: [...g.metadata].map(([k, v]): GGUFMetadataEntry => [k, g.metadataTypes.get(k)!, v]),
    tensors: g.tensorInfos.map((i) => g.read(i.name)),
  });
  g.close();
  assert.ok(Buffer.from(fs.readFileSync(out)).equals(fs.readFileSync(f)));
});

function sampleTensors(): HostTensor[] {
  const r = prng(7);
  return [
    { name: 'a.f32', dtype: 'f32', shape: [3, 5], data: randomBytes(60, r) },
    { name: 'b.f16', dtype: 'f16', shape: [7], data: randomBytes(14, r) },
    { name: 'c.bf16', dtype: 'bf16', shape: [2, 1, 3], data: randomBytes(12, r) },
    { name: 'd.q8_0', dtype: 'q8_0', shape: [2, 64], data: randomBytes(4 * 34, r) },
    { name: 'e.q4_0', dtype: 'q4_0', shape: [32], data: randomBytes(18, r) },
    { name: 'f.q4_k', dtype: 'q4_k', shape: [1, 256], data: randomBytes(144, r) },
    { name: 'g.q6_k', dtype: 'q6_k', shape: [2, 256], data: randomBytes(420, r) },
    { name: 'h.scalar', dtype: 'f32', shape: [], data: randomBytes(4, r) },
    { name: 'i.4d', dtype: 'f32', shape: [2, 2, 2, 2], data: randomBytes(64, r) },
  ];
}

test('writeGGUF/openGGUF round trip: all 13 value types, nested arrays, every dtype, alignment 64', () => {
  const metadata: GGUFMetadataEntry[] = [
    ['u8', 'uint8', 255], ['i8', 'int8', -128], ['u16', 'uint16', 65535], ['i16', 'int16', -32768],
    ['u32', 'uint32', 0xffffffff], ['i32', 'int32', -0x80000000], ['f32', 'float32', Math.fround(0.1)],
    ['bool', 'bool', true], ['str', 'string', 'héllo ▁wörld 🙂'],
    ['u64.small', 'uint64', 12345], ['u64.big', 'uint64', 0xffffffffffffffffn], ['i64.neg', 'int64', -(2n ** 63n)],
    ['i64.small', 'int64', -5], ['f64', 'float64', Math.PI],
    ['arr.str', { array: 'string' }, ['a', '', 'ç']], ['arr.f32', { array: 'float32' }, [1.5, -2]],
    ['arr.empty', { array: 'int32' }, []], ['arr.bool', { array: 'bool' }, [true, false]],
    ['arr.nested', { array: { array: 'uint16' } }, [[1, 2], [], [3]]],
    ['arr.nested3', { array: { array: { array: 'string' } } }, [[['x']], [['y', 'z'], []]]],
  ];
  const tensors = sampleTensors();
  const out = path.join(tmp, 'roundtrip.gguf');
  writeGGUF(out, { metadata, tensors, alignment: 64 });
  const g = openGGUF(out);
  try {
    assert.equal(g.version, 3);
    assert.equal(g.alignment, 64);
    assert.equal(g.dataOffset % 64, 0);
    for (const [k, type, v] of metadata) {
      assert.deepEqual(g.metadata.get(k), v, k);
      assert.deepEqual(g.metadataTypes.get(k), type, k);
    }
    assert.equal(typeof g.metadata.get('u64.small'), 'number');
    assert.equal(typeof g.metadata.get('u64.big'), 'bigint');
    for (const ti of g.tensorInfos) assert.equal(ti.offset % 64, 0);
    assert.deepEqual(g.list().map((i) => i.name), tensors.map((x) => x.name));
    for (const x of tensors) {
      const y = g.read(x.name);
      assert.equal(y.dtype, x.dtype);
      assert.deepEqual(y.shape, x.shape);
      assert.deepEqual(y.data, x.data);
      assert.equal(y.data.byteOffset, 0);
    }
    const q = g.tensorInfos.find((i) => i.name === 'd.q8_0')!;
    assert.equal(q.ggmlType, 8);
    assert.equal(q.typeName, 'Q8_0');
  } finally {
    g.close();
  }
});

test('writeGGUF rejects values that do not fit their type', () => {
  const out = path.join(tmp, 'bad.gguf');
  assert.throws(() => writeGGUF(out, { metadata: [['x', 'uint8', 256]] }), RistrettoError);
  assert.throws(() => writeGGUF(out, { metadata: [['x', 'string', 5]] }), RistrettoError);
  assert.throws(() => writeGGUF(out, { metadata: [['x', { array: 'int8' }, [1, 'a']]] }), RistrettoError);
  assert.throws(() => writeGGUF(out, { alignment: 48 }), RistrettoError);
  assert.throws(() => writeGGUF(out, { tensors: [{ name: 'x', dtype: 'f32', shape: [2], data: new Uint8Array(4) }] }), RistrettoError);
});

/** A GGUF with one tensor of ggml type `type` and `ne`, data zero-filled to `dataBytes`. */
function oneTensorGGUF(type: number, ne: number[], dataBytes: number): Uint8Array {
  const b = new Bytes().raw('GGUF').u32(3).u64(1).u64(0);
  b.gstr('t').u32(ne.length);
  for (const d of ne) b.u64(d);
  b.u32(type).u64(0).pad(32);
  b.raw(new Uint8Array(dataBytes));
  return b.build();
}

test('non-decodable ggml types: listed with their name, read() throws UnsupportedError', () => {
  const cases: [number, string, number[], number][] = [
    [28, 'F64', [3], 24], [39, 'MXFP4', [32], 17], [35, 'TQ2_0', [256], 66], [23, 'IQ4_XS', [256], 136],
  ];
  for (const [type, name, ne, bytes] of cases) {
    const p = path.join(tmp, `type${type}.gguf`);
    fs.writeFileSync(p, oneTensorGGUF(type, ne, bytes));
    const g = openGGUF(p);
    const [info] = g.list();
    assert.equal(info!.dtype, null);
    assert.equal(info!.typeName, name);
    assert.equal(info!.byteLength, bytes);
    assert.deepEqual(info!.shape, [...ne].reverse());
    assert.throws(() => g.read('t'), (e: unknown) => e instanceof UnsupportedError && /"t"/.test(e.message) && e.message.includes(name));
    g.close();
  }
  assert.equal(ggmlTypeName(23), 'IQ4_XS');
  // Q4_1/Q5_x/Q2_K/Q3_K/Q5_K are read and kept as Q8_0 (dtypes.test.ts checks the values against gguf-py)
  for (const [type, name, ne, bytes] of [[13, 'Q5_K', [256, 2], 2 * 176], [3, 'Q4_1', [64], 40]] as const) {
    const p = path.join(tmp, `type${type}.gguf`);
    fs.writeFileSync(p, oneTensorGGUF(type, [...ne], bytes));
    const g = openGGUF(p);
    const [info] = g.list();
    const n = ne.reduce((a: number, b: number) => a * b, 1);
    assert.deepEqual([info!.dtype, info!.typeName, info!.byteLength], ['q8_0', name, (n / 32) * 34]);
    const t = g.read('t');
    assert.deepEqual([t.dtype, t.data.byteLength], ['q8_0', (n / 32) * 34]);
    g.close();
  }
  // Types whose size cannot be computed are rejected at open time.
  for (const type of [4, 5, 40, 1000]) {
    const p = path.join(tmp, `type${type}.gguf`);
    fs.writeFileSync(p, oneTensorGGUF(type, [32], 64));
    assert.throws(() => openGGUF(p), (e: unknown) => e instanceof UnsupportedError && e.message.includes(`ggml type ${type}`));
  }
});

test('GGUF v1 and big-endian files are rejected clearly; v2 is accepted', () => {
  const p = path.join(tmp, 'ver.gguf');
  fs.writeFileSync(p, new Bytes().raw('GGUF').u32(1).u32(0).u32(0).build());
  assert.throws(() => openGGUF(p), (e: unknown) => e instanceof UnsupportedError && /version 1/.test(e.message));
  fs.writeFileSync(p, new Bytes().raw('GGUF').raw([0, 0, 0, 3]).raw(new Uint8Array(16)).build());
  assert.throws(() => openGGUF(p), (e: unknown) => e instanceof UnsupportedError && /big-endian/.test(e.message));
  fs.writeFileSync(p, new Bytes().raw('GGUF').u32(2).u64(0).u64(1).gstr('k').u32(8).gstr('v').build());
  const g = openGGUF(p);
  assert.equal(g.version, 2);
  assert.equal(g.metadata.get('k'), 'v');
  g.close();
  fs.writeFileSync(p, new Bytes().raw('GGML').u32(3).u64(0).u64(0).build());
  assert.throws(() => openGGUF(p), (e: unknown) => e instanceof FormatError && e.where === 'magic' && e.file === p);
  assert.throws(() => openGGUF(path.join(tmp, 'missing.gguf')), (e: unknown) => e instanceof RistrettoError && e.code === 'NOT_FOUND');
});
