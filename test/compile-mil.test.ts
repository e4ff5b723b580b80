// ANE target, file formats and the MIL toolchain: weight blobs against hand-built golden bytes (from the
// spec text, not from the emitter), hex-float literals, emit -> parse -> emit identity, the interpreter on
// hand-written MIL in the spec's syntax, and errors with line and column.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildBlob, readBlobTensor } from '../src/compile/blob.js';
import { hexFloat, parseHexFloat } from '../src/compile/fp16.js';
import { MilError, SPEC_OPS } from '../src/compile/mil/ast.js';
import { emitProgram } from '../src/compile/mil/emit.js';
import { MilInterpreter } from '../src/compile/mil/interp.js';
import { parseMil } from '../src/compile/mil/parse.js';

/** The spec's table, byte by byte: file header, then [chunk header | fp16 payload] per tensor. */
function golden(tensors: number[][]): Uint8Array {
  const out: number[] = new Array(64).fill(0);
  out[0] = 1; // file header: byte 0 = 1
  out[4] = 2; // byte 4 = 2
  const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
  const f16bits: Record<number, number> = { 1: 0x3c00, [-2]: 0xc000, 0.5: 0x3800, 65504: 0x7bff, 2: 0x4000, 3: 0x4200, 0: 0 };
  for (const t of tensors) {
    const start = out.length;
    const payload = t.length * 2;
    const hdr = new Array(64).fill(0);
    hdr.splice(0, 4, 0xef, 0xbe, 0xad, 0xde); // 0xDEADBEEF little-endian
    hdr[4] = 1; // fp16
    hdr.splice(8, 4, ...u32(payload)); // payload bytes
    hdr.splice(16, 4, ...u32(start + 64)); // absolute data offset
    out.push(...hdr);
    for (const v of t) {
      const h = f16bits[v]!;
      out.push(h & 0xff, h >>> 8);
    }
  }
  return Uint8Array.from(out);
}

test('weight blob: one tensor is byte-exact against the spec layout (header, DEADBEEF chunk, data at 128)', () => {
  const b = buildBlob([{ values: Float32Array.from([1, -2, 0.5, 65504]) }]);
  const want = golden([[1, -2, 0.5, 65504]]);
  assert.equal(want.length, 136);
  assert.deepEqual([...b.bytes], [...want]);
  assert.deepEqual(b.offsets, [64]);
  // spot checks straight from the table
  assert.deepEqual([...b.bytes.subarray(64, 68)], [0xef, 0xbe, 0xad, 0xde]);
  assert.equal(b.bytes[68], 1);
  assert.equal(new DataView(b.bytes.buffer).getUint32(72, true), 8);
  assert.equal(new DataView(b.bytes.buffer).getUint32(80, true), 128);
  assert.deepEqual([...readBlobTensor(b.bytes, 64, 4)], [1, -2, 0.5, 65504]);
});

test('weight blob: several tensors repeat [chunk header | payload]; MIL offsets point at the chunk headers', () => {
  const b = buildBlob([{ values: Float32Array.from([1]) }, { values: Float32Array.from([2, 3]) }]);
  assert.deepEqual([...b.bytes], [...golden([[1], [2, 3]])]);
  assert.deepEqual(b.offsets, [64, 130]);
  assert.deepEqual([...readBlobTensor(b.bytes, 130, 2)], [2, 3]);
  // rounding to fp16 is round-to-nearest-even
  const r = buildBlob([{ values: Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11]) }]);
  assert.deepEqual([...readBlobTensor(r.bytes, 64, 2)], [1, 1 + 2 ** -9]);
});

test('weight blob reader rejects an offset that does not point at a chunk header, and size mismatches', () => {
  const b = buildBlob([{ values: new Float32Array(64).fill(1) }]).bytes;
  assert.throws(() => readBlobTensor(b, 128, 64), /no 0xDEADBEEF chunk header at offset 128/);
  assert.throws(() => readBlobTensor(b, 64, 3), /payload is 128 bytes/);
});

test('hex-float literals: exact, canonical, and parsed back', () => {
  assert.equal(hexFloat(1), '0x1p+0');
  assert.equal(hexFloat(-0.5), '-0x1p-1');
  assert.equal(hexFloat(-65504), '-0x1.ffcp+15');
  assert.equal(hexFloat(0), '0x0p+0');
  assert.equal(hexFloat(2 ** -24), '0x1p-24');
  assert.equal(parseHexFloat('0x1.4f8p-17'), (1 + 0x4f8 / 4096) * 2 ** -17);
  for (const v of [1, -3.25, 1e-5, 65504, 2 ** -24, 0.1]) assert.equal(parseHexFloat(hexFloat(v)), v);
});

const HAND = `program(1.3)
[buildInfo = dict<string, string>({{"coremlc-component-MIL", "3510.2.1"}, {"coremlc-version", "3505.4.1"}, {"coremltools-component-milinternal", ""}, {"coremltools-version", "9.0"}})]
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 2]> x) {
        tensor<int32, [2]> dl = const()[name = string("dl"), val = tensor<int32, [2]>([1, 1])];
        int32 gr = const()[name = string("gr"), val = int32(1)];
        tensor<int32, [4]> pd = const()[name = string("pd"), val = tensor<int32, [4]>([0, 0, 0, 0])];
        string pt = const()[name = string("pt"), val = string("valid")];
        tensor<int32, [2]> st = const()[name = string("st"), val = tensor<int32, [2]>([1, 1])];
        tensor<fp16, [2, 4, 1, 1]> Wq = const()[name = string("Wq"), val = tensor<fp16, [2, 4, 1, 1]>(BLOBFILE(path = string("@model_path/weights/wq.bin"), offset = uint64(64)))];
        tensor<fp16, [1, 2, 1, 2]> q = conv(dilations = dl, groups = gr, pad = pd, pad_type = pt, strides = st, weight = Wq, x = x)[name = string("q")];
        fp16 eps = const()[name = string("eps"), val = fp16(0x1.4f8p-17)];
        tensor<fp16, [1, 2, 1, 2]> sq = mul(x = q, y = q)[name = string("sq")];
        tensor<int32, [1]> ax = const()[name = string("ax"), val = tensor<int32, [1]>([1])];
        bool kd = const()[name = string("kd"), val = bool(true)];
        tensor<fp16, [1, 1, 1, 2]> ss = reduce_sum(axes = ax, keep_dims = kd, x = sq)[name = string("ss")];
        fp16 invd = const()[name = string("invd"), val = fp16(0x1p-1)];
        tensor<fp16, [1, 1, 1, 2]> ms = mul(x = ss, y = invd)[name = string("ms")];
        tensor<fp16, [1, 1, 1, 2]> me = add(x = ms, y = eps)[name = string("me")];
        fp16 nh = const()[name = string("nh"), val = fp16(-0x1p-1)];
        tensor<fp16, [1, 1, 1, 2]> rs = pow(x = me, y = nh)[name = string("rs")];
        tensor<fp16, [1, 2, 1, 2]> out = mul(x = q, y = rs)[name = string("out")];
        tensor<int32, [4]> pm = const()[name = string("pm"), val = tensor<int32, [4]>([0, 1, 3, 2])];
        tensor<fp16, [1, 2, 2, 1]> outT = transpose(perm = pm, x = out)[name = string("outT")];
        int32 cax = const()[name = string("cax"), val = int32(1)];
        bool il = const()[name = string("il"), val = bool(true)];
        tensor<fp16, [1, 4, 2, 1]> rep = concat(axis = cax, interleave = il, values = (outT, outT))[name = string("rep")];
    } -> (out, rep);
}
`;

test('hand-written MIL in the spec syntax parses, resolves BLOBFILE and runs (conv + RMSNorm + transpose + interleaved concat)', () => {
  // W = [[1, 0, 0, 0], [0, 2, 0, 0]]: q = (x0, 2 x1) per position
  const w = buildBlob([{ values: Float32Array.from([1, 0, 0, 0, 0, 2, 0, 0]) }]).bytes;
  const p = parseMil(HAND, 'hand.mil');
  assert.equal(p.functions[0]!.body.length, 23);
  const interp = new MilInterpreter(p, (path) => {
    assert.equal(path, '@model_path/weights/wq.bin');
    return w;
  }, 'hand.mil');
  // x [1, 4, 1, 2]: channel-major, position last
  const x = Float32Array.from([3, -1, 4, 1, 0, 0, 0, 0]);
  const out = interp.run({ x });
  const q = [[3, -1], [8, 2]]; // [channel][position]
  const expect: number[] = [];
  for (let c = 0; c < 2; c++) {
    for (let s = 0; s < 2; s++) {
      const ms = (q[0]![s]! ** 2 + q[1]![s]! ** 2) / 2;
      expect.push(q[c]![s]! / Math.sqrt(ms));
    }
  }
  const got = [...out.out!.data];
  got.forEach((g, i) => assert.ok(Math.abs(g - expect[i]!) < 2e-3 * Math.abs(expect[i]!) + 1e-3, `out[${i}] = ${g}, want ${expect[i]}`));
  // rep: heads repeated in place (h0, h0, h1, h1) after the [S, 1] transpose
  assert.deepEqual(out.rep!.shape, [1, 4, 2, 1]);
  const r = [...out.rep!.data];
  assert.deepEqual(r.slice(0, 2), r.slice(2, 4));
  assert.deepEqual(r.slice(4, 6), r.slice(6, 8));
  assert.deepEqual(r.slice(0, 2), got.slice(0, 2));
});

test('emit(parse(text)) is a fixed point; the hand-written program re-emits in canonical form', () => {
  const once = emitProgram(parseMil(HAND));
  assert.equal(emitProgram(parseMil(once)), once);
  assert.ok(once.includes('fp16(0x1.4f8p-17)'), 'parsed literals keep their value');
  assert.ok(once.startsWith('program(1.3)\n[buildInfo = dict<string, string>({{"coremlc-component-MIL", "3510.2.1"}'));
  assert.ok(once.includes('    func main<ios18>(tensor<fp16, [1, 4, 1, 2]> x) {\n'));
  assert.ok(once.trimEnd().endsWith('    } -> (out, rep);\n}'));
});

test('fp16 storage semantics: results round to fp16 (2048 + 1 = 2048) and overflow is recorded with its line', () => {
  const src = `program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 2, 1, 1]> x) {
        fp16 one = const()[name = string("one"), val = fp16(0x1p+0)];
        tensor<fp16, [1, 2, 1, 1]> y = add(x = x, y = one)[name = string("y")];
        tensor<fp16, [1, 2, 1, 1]> z = mul(x = y, y = y)[name = string("z")];
    } -> (y, z);
}
`;
  const interp = new MilInterpreter(parseMil(src), () => new Uint8Array(0));
  const r = interp.run({ x: Float32Array.from([2048, 300]) });
  assert.deepEqual([...r.y!.data], [2048, 301]);
  assert.deepEqual([...r.z!.data], [Infinity, Infinity]); // 2048^2 and 301^2 exceed 65504
  const rec = interp.overflow.get('z');
  assert.ok(rec !== undefined && rec.count === 2 && rec.line === 6, JSON.stringify(rec));
});

test('malformed programs and unknown ops fail with line and column', () => {
  const base = (stmt: string) => `program(1.3)\n{\n    func main<ios18>(tensor<fp16, [1, 2, 1, 1]> x) {\n        ${stmt}\n    } -> (y);\n}\n`;
  const cases: [string, RegExp][] = [
    [base('tensor<fp16, [1, 2, 1, 1]> y = gelu(x = x)[name = string("y")];'), /:4:9: unknown op "gelu"/],
    [base('tensor<fp16, [1, 2, 1, 1]> y = relu(x = nope)[name = string("y")];'), /:4:9: relu: argument x refers to "nope"/],
    [base('tensor<fp16, [1, 2, 1, 1]> y = sigmoid(x = x)[name = string("y")]'), /:5:5: expected ";"/],
    [base('tensor<fp17, [1, 2]> y = sigmoid(x = x);'), /:4:16: unknown dtype "fp17"/],
    [base('tensor<fp16, [1, 3, 1, 1]> y = sigmoid(x = x)[name = string("y")];'), /:4:9: declared shape \[1, 3, 1, 1\] but sigmoid produces \[1, 2, 1, 1\]/],
    [base('tensor<int32, [3]> y = const()[name = string("y"), val = tensor<int32, [3]>([1, 2])];'), /:4:66: tensor literal of shape \[3\] needs 3 values, has 2/],
    ['program(1.3)\n{\n', /:3:1: unexpected end of input/],
    [base('tensor<fp16, [1, 2, 1, 1]> y = sigmoid(x = x)[name = string("y)];'), /:4:69: unterminated string/],
  ];
  for (const [src, re] of cases) {
    assert.throws(() => {
      const p = parseMil(src, 'bad.mil');
      new MilInterpreter(p, () => new Uint8Array(0), 'bad.mil').run({ x: Float32Array.from([1, 2]) });
    }, (e: unknown) => e instanceof MilError && re.test(e.message), `expected ${re}`);
  }
});

test('the spec op list is what the interpreter knows, minus nothing', () => {
  const src = SPEC_OPS.filter((o) => o !== 'const');
  for (const op of src) {
    const p = parseMil(`program(1.3)\n{\n    func main<ios18>(tensor<fp16, [1]> x) {\n        tensor<fp16, [1]> y = ${op}(x = x)[name = string("y")];\n    } -> (y);\n}\n`);
    // construction checks the op is known (running may fail on missing arguments, which is fine)
    assert.doesNotThrow(() => new MilInterpreter(p, () => new Uint8Array(0)), op);
  }
});
