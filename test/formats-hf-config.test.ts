import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, RistrettoError } from '../src/errors.js';
import { jsonErrorPosition, readHfConfig, readJsonFile } from '../src/formats/hf-config.js';
import { modelFileOrSkip, tempDir } from './helpers/models.js';

const tmp = tempDir();

test('readHfConfig on the shared HF directories', (t) => {
  const dir = modelFileOrSkip(t, 'hf/stories260K-hf');
  if (!dir) return;
  const { config, generation } = readHfConfig(dir);
  assert.equal(config.hidden_size, 64);
  assert.equal(config.tie_word_embeddings, true);
  assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
  assert.ok(generation !== null && generation.bos_token_id === 1);
  const bert = readHfConfig(path.join(dir, '..', 'bert-tiny-random'));
  assert.equal(bert.generation, null);
});

test('missing config.json is NOT_FOUND naming the path; bad JSON is a FormatError with position', () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'cfg-'));
  assert.throws(() => readHfConfig(dir), (e: unknown) => e instanceof RistrettoError && e.code === 'NOT_FOUND' && e.message.includes(path.join(dir, 'config.json')));
  fs.writeFileSync(path.join(dir, 'config.json'), '{\n  "a": 1,\n  "b": tru\n}');
  assert.throws(
    () => readHfConfig(dir),
    (e: unknown) => e instanceof FormatError && e.file === path.join(dir, 'config.json') && /position 19 \(line 3, column 8\)/.test(e.found ?? ''),
  );
  fs.writeFileSync(path.join(dir, 'config.json'), '[1]');
  assert.throws(() => readHfConfig(dir), (e: unknown) => e instanceof FormatError && /object/.test(e.expected ?? ''));
  fs.writeFileSync(path.join(dir, 'config.json'), '\ufeff{"model_type": "llama"}');
  fs.writeFileSync(path.join(dir, 'generation_config.json'), '{"x": 1,}');
  assert.throws(() => readHfConfig(dir), (e: unknown) => e instanceof FormatError && e.file.endsWith('generation_config.json'));
  fs.rmSync(path.join(dir, 'generation_config.json'));
  assert.deepEqual(readHfConfig(dir), { config: { model_type: 'llama' }, generation: null });
  fs.writeFileSync(path.join(dir, 'bad-utf8.json'), Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]));
  assert.throws(() => readJsonFile(path.join(dir, 'bad-utf8.json')), (e: unknown) => e instanceof FormatError && /UTF-8/.test(e.expected ?? ''));
});

test('jsonErrorPosition agrees with JSON.parse on valid and invalid text', () => {
  const valid = ['{}', '[]', '{"a":[1,-2.5e3,{"b":null}],"c":"\\u00e9\\n"}', ' 1 ', '"s"', '[[[[]]]]', '[true,false]'];
  for (const s of valid) assert.equal(jsonErrorPosition(s), -1, s);
  const invalid: [string, number][] = [['{', 1], ['{"a" 1}', 5], ['[1,]', 3], ['[1 2]', 3], ['{"a":1}x', 7], ['01', 1], ['"\\x"', 2], ['', 0], ['{"a":1,}', 7]];
  for (const [s, pos] of invalid) {
    assert.throws(() => JSON.parse(s));
    assert.equal(jsonErrorPosition(s), pos, s);
  }
  const deep = '['.repeat(100000) + ']'.repeat(99999);
  assert.equal(jsonErrorPosition(deep), deep.length);
});
