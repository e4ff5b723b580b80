import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, RistrettoError, UnsupportedError } from '../src/errors.js';
import { openSafetensors, openSafetensorsDir, writeSafetensors } from '../src/formats/safetensors.js';
import type { HostTensor } from '../src/formats/tensor.js';
import { modelFileOrSkip, prng, randomBytes, tempDir } from './helpers/models.js';

const tmp = tempDir();

test('real HF safetensors: F32, BF16, F16 files list and read', (t) => {
  const dir = modelFileOrSkip(t, 'hf');
  if (!dir) return;
  const cases: [string, string, string, number[], number][] = [
    ['stories260K-hf', 'F32', 'model.embed_tokens.weight', [512, 64], 47],
    ['qwen3-tiny-random', 'BF16', 'model.layers.0.self_attn.q_proj.weight', [128, 64], 25],
    ['bert-tiny-random', 'F16', 'embeddings.word_embeddings.weight', [30522, 64], 39],
  ];
  for (const [name, typeName, tensor, shape, count] of cases) {
    const s = openSafetensors(path.join(dir, name, 'model.safetensors'));
    try {
      const infos = s.list();
      assert.equal(infos.length, count, name);
      assert.ok(infos.every((i) => i.typeName === typeName), name);
      assert.equal(s.metadata.format, 'pt');
      const info = infos.find((i) => i.name === tensor)!;
      assert.deepEqual(info.shape, shape);
      const x = s.read(tensor);
      assert.equal(x.data.byteOffset, 0);
      assert.equal(x.data.byteLength, shape[0]! * shape[1]! * (typeName === 'F32' ? 4 : 2));
      assert.ok(x.data.some((b) => b !== 0));
      assert.throws(() => s.read('lm_head.nope'), (e: unknown) => e instanceof RistrettoError && e.code === 'NOT_FOUND');
    } finally {
      s.close();
    }
  }
  const q = openSafetensorsDir(path.join(dir, 'qwen3-tiny-random'));
  assert.ok(q.has('lm_head.weight'));
  q.close();
});

function sample(): HostTensor[] {
  const r = prng(11);
  return [
    { name: 'w.f32', dtype: 'f32', shape: [4, 3], data: randomBytes(48, r) },
    { name: 'w.f16', dtype: 'f16', shape: [5], data: randomBytes(10, r) },
    { name: 'w.bf16', dtype: 'bf16', shape: [1, 2, 3], data: randomBytes(12, r) },
    { name: 'scalar', dtype: 'f32', shape: [], data: randomBytes(4, r) },
    { name: 'empty', dtype: 'f32', shape: [0, 7], data: new Uint8Array(0) },
  ];
}

test('writeSafetensors/openSafetensors round trip with metadata', () => {
  const p = path.join(tmp, 'rt.safetensors');
  const tensors = sample();
  writeSafetensors(p, tensors, { format: 'pt', note: 'ünïcode' });
  const n = Number(fs.readFileSync(p).readBigUInt64LE(0));
  assert.equal(n % 8, 0);
  const s = openSafetensors(p);
  assert.deepEqual(s.metadata, { format: 'pt', note: 'ünïcode' });
  assert.deepEqual(s.list().map((i) => i.name).sort(), tensors.map((x) => x.name).sort());
  for (const x of tensors) {
    const y = s.read(x.name);
    assert.deepEqual({ ...y, data: [...y.data] }, { ...x, data: [...x.data] });
  }
  s.close();
  assert.throws(() => writeSafetensors(p, [{ name: 'q', dtype: 'q8_0', shape: [32], data: new Uint8Array(34) }]), UnsupportedError);
});

test('non-decodable safetensors dtypes are listed; read() throws UnsupportedError', () => {
  const p = path.join(tmp, 'i64.safetensors');
  const header = JSON.stringify({
    ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] },
    f8: { dtype: 'F8_E4M3', shape: [4], data_offsets: [16, 20] },
    x: { dtype: 'F32', shape: [1], data_offsets: [20, 24] },
  });
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(p, Buffer.concat([len, Buffer.from(header), Buffer.alloc(24)]));
  const s = openSafetensors(p);
  const ids = s.list().find((i) => i.name === 'ids')!;
  assert.equal(ids.dtype, null);
  assert.equal(ids.typeName, 'I64');
  assert.throws(() => s.read('ids'), (e: unknown) => e instanceof UnsupportedError && e.message.includes('"ids"') && e.message.includes('I64'));
  assert.throws(() => s.read('f8'), UnsupportedError);
  assert.equal(s.read('x').data.byteLength, 4);
  s.close();
});

test('openSafetensorsDir: sharded index combines shards; escapes and mismatches are rejected', () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'shards-'));
  const [a, b, c] = sample();
  writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), [a!, b!]);
  writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), [c!]);
  const index = (wm: Record<string, string>): void =>
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 70 }, weight_map: wm }));
  const good = { 'w.f32': 'model-00001-of-00002.safetensors', 'w.f16': 'model-00001-of-00002.safetensors', 'w.bf16': 'model-00002-of-00002.safetensors' };
  index(good);
  const s = openSafetensorsDir(dir);
  assert.equal(s.shards.length, 2);
  assert.deepEqual(s.list().map((i) => i.name), Object.keys(good));
  assert.deepEqual(s.read('w.bf16').data, c!.data);
  assert.deepEqual(s.read('w.f32').data, a!.data);
  assert.throws(() => s.read('zzz'), (e: unknown) => e instanceof RistrettoError && e.code === 'NOT_FOUND');
  s.close();

  index({ ...good, 'w.f16': '../model-00001-of-00002.safetensors' });
  assert.throws(() => openSafetensorsDir(dir), (e: unknown) => e instanceof FormatError && /weight_map/.test(e.where));
  index({ ...good, 'w.f16': '/etc/passwd' });
  assert.throws(() => openSafetensorsDir(dir), FormatError);
  index({ ...good, 'w.bf16': 'model-00001-of-00002.safetensors' }); // not in that shard
  assert.throws(() => openSafetensorsDir(dir), (e: unknown) => e instanceof FormatError && e.where.includes('w.bf16'));
  index({ 'w.f32': good['w.f32'], 'w.bf16': good['w.bf16'] }); // shard 1 holds an unlisted tensor
  assert.throws(() => openSafetensorsDir(dir), (e: unknown) => e instanceof FormatError && e.where.includes('w.f16'));
  index({ ...good, extra: 'model-00003-of-00002.safetensors' }); // missing shard file
  assert.throws(() => openSafetensorsDir(dir), (e: unknown) => e instanceof RistrettoError && e.code === 'NOT_FOUND');
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{"weight_map": {');
  assert.throws(() => openSafetensorsDir(dir), FormatError);

  const empty = fs.mkdtempSync(path.join(tmp, 'empty-'));
  assert.throws(() => openSafetensorsDir(empty), (e: unknown) => e instanceof RistrettoError && e.code === 'NOT_FOUND' && e.message.includes(empty));
});

/** A safetensors file from a header object (or raw string) and a data area of `dataBytes` bytes. */
function stFile(header: unknown, dataBytes: number): Buffer {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, Buffer.alloc(dataBytes)]);
}

test('safetensors validation: each reference-reader check gives a FormatError naming the field', () => {
  const p = path.join(tmp, 'v.safetensors');
  const t = (dtype: string, shape: number[], offs: number[]): unknown => ({ dtype, shape, data_offsets: offs });
  const cases: [string, Buffer, RegExp][] = [
    ['gap between tensors', stFile({ a: t('F32', [1], [0, 4]), b: t('F32', [1], [8, 12]) }, 12), /data_offsets/],
    ['overlap', stFile({ a: t('F32', [2], [0, 8]), b: t('F32', [1], [4, 8]) }, 8), /data_offsets/],
    ['size mismatch', stFile({ a: t('F32', [3], [0, 8]) }, 8), /data_offsets/],
    ['not starting at 0', stFile({ a: t('F32', [1], [4, 8]) }, 8), /data_offsets/],
    ['data area shorter than file', stFile({ a: t('F32', [1], [0, 4]) }, 8), /data area/],
    ['data area past EOF', stFile({ a: t('F32', [4], [0, 16]) }, 8), /data area/],
    ['unknown dtype', stFile({ a: t('F33', [1], [0, 4]) }, 4), /dtype/],
    ['negative dim', stFile({ a: t('F32', [-1], [0, 4]) }, 4), /shape/],
    ['fractional dim', stFile({ a: t('F32', [1.5], [0, 4]) }, 4), /shape/],
    ['overflowing shape', stFile({ a: t('F32', [2 ** 52, 2 ** 52, 2 ** 52], [0, 4]) }, 4), /data_offsets/],
    ['metadata not strings', stFile({ __metadata__: { a: 1 } }, 0), /__metadata__/],
    ['extra field', stFile({ a: { ...(t('F32', [1], [0, 4]) as object), x: 1 } }, 4), /tensor "a"/],
    ['header not an object', stFile('[1,2]', 0), /header/],
    ['bad JSON', stFile('{"a": ', 0), /header/],
    ['sub-byte size', stFile({ a: t('F4', [3], [0, 1]) }, 1), /size/],
  ];
  for (const [what, bytes, where] of cases) {
    fs.writeFileSync(p, bytes);
    assert.throws(() => openSafetensors(p), (e: unknown) => e instanceof FormatError && e.file === p && where.test(e.where), what);
  }
  // Valid edge cases: empty header object, and a 4-bit type of even length.
  fs.writeFileSync(p, stFile({}, 0));
  assert.equal(openSafetensors(p).list().length, 0);
  fs.writeFileSync(p, stFile({ a: t('F4', [4], [0, 2]) }, 2));
  assert.equal(openSafetensors(p).list()[0]!.byteLength, 2);
});
