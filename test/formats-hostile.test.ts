// Hostile files: every reader must either parse a file or throw a RistrettoError subclass — never a RangeError,
// TypeError, out-of-memory or hang. Files are generated in a temp dir: truncations of valid files at many lengths,
// seeded random byte flips, and hand-made headers with huge counts, bad offsets, bad types and so on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, RistrettoError, UnsupportedError } from '../src/errors.js';
import { openGGUF, writeGGUF } from '../src/formats/gguf.js';
import { openSafetensors, writeSafetensors } from '../src/formats/safetensors.js';
import { openLlama2c, readLlama2cTokenizer, writeLlama2c, type Llama2cConfig } from '../src/formats/llama2c.js';
import { readJsonFile } from '../src/formats/hf-config.js';
import type { HostTensor, TensorSource } from '../src/formats/tensor.js';
import { Bytes, modelFileOrSkip, prng, randomBytes, tempDir } from './helpers/models.js';

const tmp = tempDir();
const file = path.join(tmp, 'victim');

/** Opens `bytes` with `open`, reads every decodable tensor; returns 'ok' or the RistrettoError thrown. */
function attempt(bytes: Uint8Array, open: (p: string) => unknown, label: string): 'ok' | RistrettoError {
  fs.writeFileSync(file, bytes);
  try {
    const src = open(file) as Partial<TensorSource>;
    if (src && typeof src.list === 'function') {
      try {
        for (const t of src.list()) {
          try {
            src.read!(t.name);
          } catch (e) {
            if (!(e instanceof UnsupportedError)) throw e;
          }
        }
      } finally {
        src.close!();
      }
    }
    return 'ok';
  } catch (e) {
    if (e instanceof RistrettoError) return e;
    assert.fail(`${label}: threw a non-Ristretto error: ${(e as Error)?.stack ?? String(e)}`);
  }
}

/** Every strict prefix of `bytes` (all lengths when small, else `n` spread lengths) must be rejected with a FormatError. */
function truncations(bytes: Uint8Array, open: (p: string) => unknown, what: string, n = Infinity): number {
  const lengths = bytes.length <= n ? [...Array(bytes.length).keys()] : Array.from({ length: n }, (_, i) => Math.floor((i * bytes.length) / n));
  for (const len of lengths) {
    const r = attempt(bytes.subarray(0, len), open, `${what} truncated to ${len}`);
    assert.ok(r instanceof FormatError, `${what} truncated to ${len} bytes: expected a FormatError, got ${r === 'ok' ? 'a successful parse' : r.name}`);
  }
  return lengths.length;
}

/** `count` copies of `bytes` with 1-4 random bytes changed inside [lo, hi); returns how many were rejected. */
function flips(bytes: Uint8Array, open: (p: string) => unknown, what: string, seed: number, count: number, lo = 0, hi = bytes.length): number {
  const rand = prng(seed);
  let rejected = 0;
  for (let i = 0; i < count; i++) {
    const b = Uint8Array.from(bytes);
    const k = 1 + Math.floor(rand() * 4);
    for (let j = 0; j < k; j++) {
      const at = lo + Math.floor(rand() * (hi - lo));
      b[at] = rand() < 0.2 ? 0xff : Math.floor(rand() * 256);
    }
    if (attempt(b, open, `${what} flip #${i}`) !== 'ok') rejected++;
  }
  return rejected;
}

function mustThrow(bytes: Uint8Array, open: (p: string) => unknown, what: string, cls: new (...args: never[]) => RistrettoError = FormatError): void {
  const r = attempt(bytes, open, what);
  assert.ok(r instanceof cls, `${what}: expected ${cls.name}, got ${r === 'ok' ? 'a successful parse' : `${r.name}: ${r.message}`}`);
}

function tensors(): HostTensor[] {
  const r = prng(5);
  return [
    { name: 'a', dtype: 'f32', shape: [4, 4], data: randomBytes(64, r) },
    { name: 'b', dtype: 'q8_0', shape: [1, 32], data: randomBytes(34, r) },
    { name: 'c', dtype: 'f16', shape: [3], data: randomBytes(6, r) },
  ];
}

test('GGUF: truncations, random flips and hand-made hostile headers', () => {
  const t0 = Date.now();
  const good = path.join(tmp, 'good.gguf');
  writeGGUF(good, {
    metadata: [
      ['general.architecture', 'string', 'llama'], ['n', 'uint32', 7], ['big', 'uint64', 2n ** 60n], ['flag', 'bool', true],
      ['toks', { array: 'string' }, ['<s>', 'a', 'bc', 'déf']], ['scores', { array: 'float32' }, [0, -1, -2, -3]],
      ['nested', { array: { array: 'int8' } }, [[1], [2, 3]]],
    ],
    tensors: tensors(),
  });
  const base = fs.readFileSync(good);
  assert.equal(attempt(base, openGGUF, 'base'), 'ok');
  truncations(base, openGGUF, 'gguf');
  const rejected = flips(base, openGGUF, 'gguf', 1, 600, 0, base.length - 104);
  assert.ok(rejected > 100, `only ${rejected} of 600 header flips were rejected`);
  flips(base, openGGUF, 'gguf-data', 2, 50, base.length - 104); // flips in tensor data are harmless
  const real = modelFileOrSkip({ skip: () => {} }, 'gguf/llama-2-tiny-random.gguf');
  if (real) {
    const bytes = fs.readFileSync(real);
    truncations(bytes, openGGUF, 'llama-2-tiny-random.gguf', 40);
    flips(bytes.subarray(0, 4096), openGGUF, 'llama-2-tiny-random.gguf head', 3, 100, 0, 4096);
  }

  const hdr = (nTensors: bigint | number, nKv: bigint | number): Bytes => new Bytes().raw('GGUF').u32(3).u64(nTensors).u64(nKv);
  const kv = (b: Bytes, key: string, type: number): Bytes => b.gstr(key).u32(type);
  const tensor = (b: Bytes, name: string, ne: (number | bigint)[], type: number, offset: number | bigint): Bytes => {
    b.gstr(name).u32(ne.length);
    for (const d of ne) b.u64(d);
    return b.u32(type).u64(offset);
  };
  const finish = (b: Bytes, dataBytes = 0): Uint8Array => b.pad(32).raw(new Uint8Array(dataBytes)).build();
  const H = 2n ** 62n;
  const cases: [string, Uint8Array, (new (...args: never[]) => RistrettoError)?][] = [
    ['bad magic', new Bytes().raw('GGUX').u32(3).u64(0).u64(0).build()],
    ['version 0', new Bytes().raw('GGUF').u32(0).u64(0).u64(0).build()],
    ['version 1', new Bytes().raw('GGUF').u32(1).u64(0).u64(0).build(), UnsupportedError],
    ['big-endian', new Bytes().raw('GGUF').raw([0, 0, 0, 3]).u64(0).u64(0).build(), UnsupportedError],
    ['tensor_count 2^62', hdr(H, 0).build()],
    ['kv_count 2^64-1', hdr(0, 2n ** 64n - 1n).build()],
    ['key length 2^62', hdr(0, 1).u64(H).build()],
    ['key length 2^64-1', hdr(0, 1).u64(2n ** 64n - 1n).raw('k').build()],
    ['string value length past EOF', kv(hdr(0, 1), 'k', 8).u64(100).raw('short').build()],
    ['array of 2^62 strings', kv(hdr(0, 1), 'k', 9).u32(8).u64(H).build()],
    ['array of 2^40 u8', kv(hdr(0, 1), 'k', 9).u32(0).u64(2n ** 40n).raw(new Uint8Array(100)).build()],
    ['array element type 99', kv(hdr(0, 1), 'k', 9).u32(99).u64(1).u32(0).build()],
    ['value type 13', kv(hdr(0, 1), 'k', 13).u64(0).build()],
    ['bool 2', kv(hdr(0, 1), 'k', 7).u8(2).build()],
    ['invalid UTF-8 key', hdr(0, 1).gstr(Uint8Array.from([0xc3, 0x28])).u32(4).u32(1).build()],
    ['duplicate key', kv(kv(hdr(0, 2), 'k', 4).u32(1), 'k', 4).u32(2).build()],
    ['alignment 48', kv(hdr(0, 1), 'general.alignment', 4).u32(48).build()],
    ['alignment 0', kv(hdr(0, 1), 'general.alignment', 4).u32(0).build()],
    ['alignment as string', kv(hdr(0, 1), 'general.alignment', 8).gstr('32').build()],
    ['alignment as int32', kv(hdr(0, 1), 'general.alignment', 5).i32(64).build()],
    ['n_dims 5', finish(tensor(hdr(1, 0), 't', [1, 1, 1, 1, 1], 0, 0), 4)],
    ['n_dims 2^32-1', finish(hdr(1, 0).gstr('t').u32(0xffffffff).u64(1).u32(0).u64(0), 4)],
    ['dim 0', finish(tensor(hdr(1, 0), 't', [4, 0], 0, 0), 16)],
    ['dim 2^62', finish(tensor(hdr(1, 0), 't', [H], 0, 0), 16)],
    ['dims overflow 2^104', finish(tensor(hdr(1, 0), 't', [2 ** 26, 2 ** 26, 2 ** 26, 2 ** 26], 0, 0), 16)],
    ['q8_0 row not whole blocks', finish(tensor(hdr(1, 0), 't', [31], 8, 0), 64)],
    ['offset misaligned', finish(tensor(hdr(1, 0), 't', [4], 0, 4), 64)],
    ['offset past EOF', finish(tensor(hdr(1, 0), 't', [4], 0, 64), 64)],
    ['offset 2^63', finish(tensor(hdr(1, 0), 't', [4], 0, 2n ** 63n), 64)],
    ['data past EOF', finish(tensor(hdr(1, 0), 't', [32], 0, 0), 64)],
    ['overlapping tensors', finish(tensor(tensor(hdr(2, 0), 't', [16], 0, 0), 'u', [16], 0, 32), 128)],
    ['duplicate tensor', finish(tensor(tensor(hdr(2, 0), 't', [4], 0, 0), 't', [4], 0, 32), 64)],
    ['removed type 4', finish(tensor(hdr(1, 0), 't', [32], 4, 0), 64), UnsupportedError],
    ['unknown type 2^32-1', finish(tensor(hdr(1, 0), 't', [32], 0xffffffff, 0), 64), UnsupportedError],
  ];
  // Arrays nested 1000 deep (each level: u32 type 9 + u64 count 1).
  const deep = kv(hdr(0, 1), 'k', 9);
  for (let i = 0; i < 1000; i++) deep.u32(9).u64(1);
  cases.push(['arrays nested 1000 deep', deep.u32(0).u64(0).build()]);
  for (const [what, bytes, cls] of cases) mustThrow(bytes, openGGUF, `gguf: ${what}`, cls);
  // Sanity: the hand-made helpers do produce a valid file.
  assert.equal(attempt(finish(tensor(tensor(hdr(2, 0), 't', [16], 0, 0), 'u', [16], 0, 64), 128), openGGUF, 'ok'), 'ok');
  assert.ok(Date.now() - t0 < 8000, 'GGUF hostile cases took too long');
});

test('safetensors: truncations, random flips, hostile headers', () => {
  const good = path.join(tmp, 'good.safetensors');
  writeSafetensors(good, [tensors()[0]!, tensors()[2]!, { name: 'z', dtype: 'bf16', shape: [2, 2], data: new Uint8Array(8) }], { format: 'pt' });
  const base = fs.readFileSync(good);
  assert.equal(attempt(base, openSafetensors, 'base'), 'ok');
  truncations(base, openSafetensors, 'safetensors');
  const n = Number(base.readBigUInt64LE(0));
  const rejected = flips(base, openSafetensors, 'safetensors', 4, 600, 0, 8 + n);
  assert.ok(rejected > 300, `only ${rejected} of 600 header flips were rejected`);
  const real = modelFileOrSkip({ skip: () => {} }, 'hf/qwen3-tiny-random/model.safetensors');
  if (real) truncations(fs.readFileSync(real), openSafetensors, 'qwen3 safetensors', 40);

  const withLen = (len: bigint, rest: Uint8Array | string): Uint8Array => {
    const b = new Bytes().u64(len).raw(rest);
    return b.build();
  };
  const json = (s: string, data = 0): Uint8Array => new Bytes().u64(Buffer.byteLength(s)).raw(s).raw(new Uint8Array(data)).build();
  const cases: [string, Uint8Array][] = [
    ['empty file', new Uint8Array(0)],
    ['header length past EOF', withLen(100n, '{}')],
    ['header length > 100 MB', withLen(200_000_000n, '{}')],
    ['header length 2^64-1', withLen(2n ** 64n - 1n, '{}')],
    ['non-UTF-8 JSON', withLen(4n, Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d]))],
    ['JSON array', json('[]')],
    ['JSON string', json('"x"')],
    ['leading space', json(' {}')],
    ['truncated JSON', json('{"a":{"dtype":"F32"')],
    ['deeply nested JSON', json(`{"a":${'['.repeat(50000)}${']'.repeat(50000)}}`)],
    ['deeply nested broken JSON', json(`{"a":${'['.repeat(200000)}}`)],
    ['shape of 10^6 dims of 2', json(`{"a":{"dtype":"F32","shape":[${Array(1_000_000).fill(2).join(',')}],"data_offsets":[0,4]}}`, 4)],
    ['shape with huge dim', json('{"a":{"dtype":"F32","shape":[1e300],"data_offsets":[0,4]}}', 4)],
    ['offsets as strings', json('{"a":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}}', 4)],
    ['offsets of 3 numbers', json('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', 4)],
    ['offsets reversed', json('{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}', 4)],
    ['huge offsets', json('{"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551616]}}', 4)],
    ['dtype number', json('{"a":{"dtype":5,"shape":[1],"data_offsets":[0,4]}}', 4)],
    ['unknown dtype', json('{"a":{"dtype":"Q4_0","shape":[32],"data_offsets":[0,18]}}', 18)],
    ['tensor entry null', json('{"a":null}')],
    ['metadata array', json('{"__metadata__":["x"]}')],
    ['two tensors, same offsets', json('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4)],
  ];
  for (const [what, bytes] of cases) mustThrow(bytes, openSafetensors, `safetensors: ${what}`);
});

test('llama2.c checkpoints and tokenizer.bin: truncations, flips, hostile headers', () => {
  const rand = prng(9);
  for (const version of [0, 1] as const) {
    for (const sharedClassifier of [true, false]) {
      const cfg: Llama2cConfig = { dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 10, seqLen: 4, sharedClassifier, version };
      const p = path.join(tmp, `tiny-v${version}.bin`);
      writeLlama2c(p, cfg, (_name, shape) => new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => rand()));
      const base = fs.readFileSync(p);
      assert.equal(attempt(base, openLlama2c, 'base'), 'ok');
      // Legacy files may lack the freq_cis block (2 * seqLen * headSize/2 floats): that one prefix is valid.
      const noFreq = version === 0 ? base.length - 2 * 4 * 2 * 4 : -1;
      const lengths = [...Array(base.length).keys()].filter((len) => len < 300 || len % 23 === 0 || Math.abs(len - noFreq) < 5);
      for (const len of lengths) {
        const r = attempt(base.subarray(0, len), openLlama2c, `llama2c v${version} truncated to ${len}`);
        assert.ok(len === noFreq ? r === 'ok' : r instanceof FormatError, `llama2c v${version} shared=${sharedClassifier} truncated to ${len}`);
      }
      flips(base, openLlama2c, `llama2c v${version}`, 10 + version, 300, 0, version === 1 ? 256 : 28);
    }
  }
  const legacy = (h: number[], bytes = 64): Uint8Array => {
    const b = new Bytes();
    for (const x of h) b.i32(x);
    return b.raw(new Uint8Array(bytes)).build();
  };
  const M = 2 ** 31 - 1;
  const cases: [string, Uint8Array, (new (...args: never[]) => RistrettoError)?][] = [
    ['all int32 max', legacy([M, M, M, M, M, M, M])],
    ['int32 min vocab', legacy([8, 8, 1, 2, 2, -(2 ** 31), 4])],
    ['negative dims', legacy([-8, 8, 1, 2, 2, 4, 4])],
    ['zero heads', legacy([8, 8, 1, 0, 0, 4, 4])],
    ['huge layers', legacy([2, 2, M, 1, 1, 2, 2])],
    ['v1 magic only', new Bytes().u32(0x616b3432).build()],
    ['v1 truncated header', new Bytes().u32(0x616b3432).i32(1).i32(8).build()],
    ['v2', new Bytes().u32(0x616b3432).i32(2).raw(new Uint8Array(300)).build(), UnsupportedError],
    ['v-1', new Bytes().u32(0x616b3432).i32(-1).raw(new Uint8Array(300)).build()],
    ['empty file', new Uint8Array(0)],
  ];
  for (const [what, bytes, cls] of cases) mustThrow(bytes, openLlama2c, `llama2c: ${what}`, cls);

  // tokenizer.bin
  const tok = new Bytes().i32(5);
  ['<unk>', 'a', 'bc', 'déf', ''].forEach((s, i) => tok.f32(-i).i32(Buffer.byteLength(s)).raw(s));
  const tb = tok.build();
  const open5 = (p: string): unknown => readLlama2cTokenizer(p, 5);
  assert.equal(attempt(tb, open5, 'tok base'), 'ok');
  truncations(tb, open5, 'tokenizer.bin (vocabSize 5)');
  for (let len = 0; len < tb.length; len++) attempt(tb.subarray(0, len), readLlama2cTokenizer, `tokenizer.bin to EOF, ${len} bytes`);
  flips(tb, open5, 'tokenizer.bin', 12, 300);
  flips(tb, readLlama2cTokenizer, 'tokenizer.bin to EOF', 13, 300);
  const tcases: [string, Uint8Array][] = [
    ['negative max_token_length', new Bytes().i32(-1).build()],
    ['len 2^31-1', new Bytes().i32(M).f32(0).i32(M).raw('abc').build()],
    ['len negative', new Bytes().i32(4).f32(0).i32(-4).raw('abcd').build()],
    ['partial token', new Bytes().i32(4).f32(0).i32(1).raw('a').f32(0).build()],
  ];
  for (const [what, bytes] of tcases) mustThrow(bytes, readLlama2cTokenizer, `tokenizer.bin: ${what}`);
});

test('JSON files: random mutations of a config.json parse or give a FormatError', () => {
  const text = Buffer.from(JSON.stringify({ architectures: ['LlamaForCausalLM'], hidden_size: 64, rope_scaling: null, eps: 1e-5, name: 'ünï' }));
  const rand = prng(21);
  let rejected = 0;
  for (let i = 0; i < 400; i++) {
    const b = Uint8Array.from(text);
    const k = 1 + Math.floor(rand() * 3);
    for (let j = 0; j < k; j++) b[Math.floor(rand() * b.length)] = rand() < 0.5 ? Math.floor(rand() * 256) : '{}[]",:0 \\'.charCodeAt(Math.floor(rand() * 11));
    if (attempt(b, readJsonFile, `json mutation ${i}`) !== 'ok') rejected++;
  }
  assert.ok(rejected > 200, `only ${rejected} of 400 mutations rejected`);
  for (let len = 0; len < text.length; len++) mustThrow(text.subarray(0, len), readJsonFile, `json truncated to ${len}`);
});
