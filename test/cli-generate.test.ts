// The CLI as users run it: `ristretto generate --output json` reproduces run.c's ids, `--output text`
// streams only the continuation, errors go to stderr with a non-zero exit code.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { modelsDir, repoRoot } from './helpers/models.js';

const CLI = path.join(repoRoot, 'dist/src/cli/main.js');
const dir = modelsDir();

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('generate --output json reproduces run.c (greedy and seeded top-p) for the .bin, .gguf and HF forms', (t) => {
  if (dir === null) return t.skip('shared/models not found: skipping CLI reference runs');
  const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference/llama2c-stories260K.json'), 'utf8'));
  const greedy = ref.cases.find((c: { sampling: string; prompt: string }) => c.sampling === 'greedy' && c.prompt === 'Once upon a time');
  const seeded = ref.cases.find((c: { sampling: string; prompt: string }) => c.sampling === 'topp' && c.prompt === 'Once upon a time');
  const models = [
    ['--model', path.join(dir, 'llama2c/stories260K.bin'), '--tokenizer', path.join(dir, 'llama2c/tok512.bin')],
    ['--model', path.join(dir, 'gguf/stories260K.gguf')],
    ['--model', path.join(dir, 'hf/stories260K-hf')],
  ];
  for (const m of models) {
    const g = run(['generate', ...m, '--backend', 'reference', '--prompt', greedy.prompt, '--temperature', '0', '--max-tokens', String(greedy.generated_ids.length), '--output', 'json']);
    assert.equal(g.code, 0, g.stderr);
    const out = JSON.parse(g.stdout);
    assert.deepEqual(out.prompt_ids, greedy.prompt_ids);
    assert.deepEqual(out.generated_ids.slice(0, greedy.safe_prefix_len), greedy.generated_ids.slice(0, greedy.safe_prefix_len));
    assert.equal(typeof out.text, 'string');
    // --steps uses run.c's counting (positions incl. the prompt) and --sampler llama2c its sampler.
    const s = run(['generate', ...m, '--backend', 'reference', '--prompt', seeded.prompt, '--temperature', '1', '--top-p', '0.9', '--seed', String(seeded.seed), '--steps', String(seeded.steps), '--sampler', 'llama2c', '--output', 'json', '--quiet']);
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual(JSON.parse(s.stdout).generated_ids, seeded.generated_ids);
    assert.equal(s.stderr, '', '--quiet prints nothing on stderr');
  }
});

test('generate on the default (wasm) backend, 1 and 2 threads, reproduces run.c greedy ids; the process exits', (t) => {
  if (dir === null) return t.skip('shared/models not found: skipping CLI reference runs');
  const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference/llama2c-stories260K.json'), 'utf8'));
  const greedy = ref.cases.find((c: { sampling: string; prompt: string }) => c.sampling === 'greedy' && c.prompt === 'Once upon a time');
  for (const extra of [[], ['--backend', 'wasm', '--threads', '1'], ['--backend', 'wasm', '--threads', '2']]) {
    const g = run(['generate', '--model', path.join(dir, 'gguf/stories260K.gguf'), ...extra, '--prompt', greedy.prompt, '--temperature', '0', '--max-tokens', String(greedy.generated_ids.length), '--output', 'json', '--quiet']);
    assert.equal(g.code, 0, g.stderr);
    assert.deepEqual(JSON.parse(g.stdout).generated_ids.slice(0, greedy.safe_prefix_len), greedy.generated_ids.slice(0, greedy.safe_prefix_len), `${extra.join(' ')}: greedy ids`);
  }
  const bad = run(['generate', '--model', path.join(dir, 'gguf/stories260K.gguf'), '--backend', 'gpu']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--backend: expected one of auto, wasm, reference/);
});

test('generate --output text writes only the continuation to stdout; diagnostics go to stderr', (t) => {
  if (dir === null) return t.skip('shared/models not found: skipping CLI text output');
  const r = run(['generate', '--model', path.join(dir, 'hf/stories260K-hf'), '--prompt', 'Once upon a time', '--temperature', '0', '--max-tokens', '12']);
  assert.equal(r.code, 0, r.stderr);
  // Greedy continuation of "Once upon a time" starts with ", there was a little girl" (run.c's text).
  assert.match(r.stdout, /^, there was a little girl/);
  assert.doesNotMatch(r.stdout, /Once upon a time/);
  assert.match(r.stderr, /\[ristretto\] .*tok\/s/);
});

test('CLI errors: usage errors exit 2, bad files exit 1, each with a message naming the problem', () => {
  // Without --model, generate uses the bundled default model (models/default/).
  const noModel = run(['generate', '--prompt', 'once upon a time', '--temperature', '0', '--max-tokens', '8']);
  assert.equal(noModel.code, 0, noModel.stderr);
  assert.ok(noModel.stdout.trim().length > 0);
  const badFlag = run(['generate', '--model', 'x', '--temperature', 'hot']);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /--temperature: expected a number, got "hot"/);
  const unknown = run(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ristretto-cli-'));
  const junk = path.join(tmp, 'junk.gguf');
  fs.writeFileSync(junk, Buffer.concat([Buffer.from('GGUF'), Buffer.from([3, 0, 0, 0, 255, 255])]));
  const bad = run(['generate', '--model', junk]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /junk\.gguf/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'a format error is reported without a stack trace');
  const missing = run(['inspect', path.join(tmp, 'nope.bin')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.bin: no such file/);
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('inspect prints format, architecture, config, counts, dtypes and memory', (t) => {
  if (dir === null) return t.skip('shared/models not found: skipping inspect');
  const r = run(['inspect', path.join(dir, 'gguf/llama-2-tiny-random.gguf'), '--json', '--ctx', '100']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.format, 'gguf');
  assert.equal(j.architecture, 'llama');
  assert.equal(j.tensors, 12);
  assert.deepEqual(j.dtypes, { F16: 9, F32: 3 });
  assert.equal(j.config.vocab_size, 32000);
  // 1 layer x (k + v) x 100 positions x kv width 8 x 4 bytes
  assert.equal(j.memory.kv_cache_bytes, 2 * 1 * 100 * 8 * 4);
});
