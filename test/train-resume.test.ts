// Kill/resume determinism and checkpoint integrity, through the real CLI:
// - runs killed with SIGKILL at random points and resumed with --resume end with weights and optimizer
//   state bit-identical to an uninterrupted run;
// - a truncated or corrupted newest checkpoint is rejected with a clear error naming the previous good
//   one, which is still on disk and resumes; export refuses the corrupted file too.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir, prng } from './helpers/models.js';
import { TokenFileWriter } from '../src/train/data.js';
import { CheckpointError, listCheckpoints, loadCheckpoint, verifyCheckpoint } from '../src/train/checkpoint.js';
import type { Arr } from '../src/train/gemm.js';

// The CLI compiled next to this test (dist/test -> dist/src).
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

function setup(): { dir: string; data: string; config: string } {
  const dir = tempDir('ristretto-resume-');
  const data = path.join(dir, 'data.bin');
  const w = new TokenFileWriter(data, 512, 1);
  const r = prng(11);
  // A learnable stream: runs of an arithmetic progression with noise.
  const ids: number[] = [];
  for (let i = 0; i < 20000; i++) ids.push(r() < 0.8 ? (i * 3) % 512 : Math.floor(r() * 512));
  w.addDocument(ids);
  w.finish();
  const config = path.join(dir, 'tiny.json');
  fs.writeFileSync(config, JSON.stringify({
    model_type: 'llama', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    max_position_embeddings: 64, rms_norm_eps: 1e-5, tie_word_embeddings: true,
  }));
  return { dir, data, config };
}

const STEPS = 80;
const args = (s: { data: string; config: string }, out: string): string[] => [
  CLI, 'train', '--config', s.config, '--data', s.data, '--steps', String(STEPS), '--batch', '2', '--seq', '16', '--lr', '3e-3',
  '--warmup', '5', '--seed', '5', '--eval-every', '10', '--eval-batches', '1', '--ckpt-every', '2', '--keep', '2', '--out', out, '--quiet',
];

function finalState(out: string): Map<string, Map<string, Arr>> {
  const last = listCheckpoints(path.join(out, 'checkpoints')).at(-1)!;
  assert.equal(last.step, STEPS);
  return loadCheckpoint(last.file).tensors;
}

test('killing a run at random points and resuming gives bit-identical weights and optimizer state', { timeout: 120000 }, async () => {
  const s = setup();
  const ref = path.join(s.dir, 'ref');
  const t0 = performance.now();
  const r0 = spawnSync(process.execPath, args(s, ref), { encoding: 'utf8' });
  const refMs = performance.now() - t0;
  assert.equal(r0.status, 0, r0.stderr);
  const want = finalState(ref);

  const out = path.join(s.dir, 'killed');
  const rand = prng(2024);
  let kills = 0;
  let runs = 0;
  const resumedAt: number[] = [];
  for (;;) {
    runs++;
    assert.ok(runs < 60, 'too many restarts');
    const have = listCheckpoints(path.join(out, 'checkpoints'));
    const resume = have.length > 0;
    if (resume) resumedAt.push(have.at(-1)!.step);
    const child = spawn(process.execPath, [...args(s, out), ...(resume ? ['--resume'] : [])], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // Kill at a random moment of the run (scaled to how long an uninterrupted run takes and to the
    // steps left), up to four times; then let it finish.
    const startStep = have.at(-1)?.step ?? 0;
    // Start-up (module load, wasm compile) is a fixed part of refMs, so later runs keep most of it.
    const left = Math.max(0.5, (STEPS - startStep) / STEPS);
    const delay = refMs * left * (0.35 + 0.5 * rand());
    const timer = kills < 4 ? setTimeout(() => child.kill('SIGKILL'), Math.floor(delay)) : null;
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    if (timer) clearTimeout(timer);
    if (code === 0) break;
    assert.equal(code, null, `the run failed instead of being killed: ${stderr}`);
    kills++;
  }
  assert.ok(kills >= 1, 'no run was killed');
  assert.ok(resumedAt.some((st) => st > 0 && st < STEPS), `no run resumed mid-training (resumed at ${resumedAt})`);
  const got = finalState(out);
  for (const [group, m] of want) {
    for (const [name, a] of m) {
      const b = got.get(group)!.get(name)!;
      assert.ok(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), `${group}/${name} differs after ${kills} kills`);
    }
  }
  // History (losses) is identical too.
  const ha = loadCheckpoint<{ history: unknown }>(listCheckpoints(path.join(ref, 'checkpoints')).at(-1)!.file).state.history;
  const hb = loadCheckpoint<{ history: unknown }>(listCheckpoints(path.join(out, 'checkpoints')).at(-1)!.file).state.history;
  assert.deepEqual(ha, hb);
  assert.ok(fs.existsSync(path.join(out, 'loss.svg')));
  console.log(`# ${kills} kills over ${runs} runs (resumed at steps ${resumedAt.join(', ')}); final weights, Adam moments and loss history identical`);
});

test('a corrupted or truncated checkpoint is rejected with a clear error; the previous good one remains and resumes', { timeout: 60000 }, () => {
  const s = setup();
  const out = path.join(s.dir, 'run');
  const a = args(s, out).map((x) => (x === String(STEPS) ? '10' : x));
  const r0 = spawnSync(process.execPath, a, { encoding: 'utf8' });
  assert.equal(r0.status, 0, r0.stderr);
  const cks = listCheckpoints(path.join(out, 'checkpoints'));
  assert.deepEqual(cks.map((c) => c.step), [8, 10]); // --keep 2
  const [prev, last] = [cks[0]!, cks[1]!];

  // Flip one byte in the middle of the newest checkpoint.
  const buf = fs.readFileSync(last.file);
  buf[Math.floor(buf.length / 2)] ^= 0x40;
  fs.writeFileSync(last.file, buf);
  assert.throws(() => verifyCheckpoint(last.file), (e: unknown) => e instanceof CheckpointError && /corrupted \(SHA-256 checksum mismatch\)/.test(e.message));
  const r1 = spawnSync(process.execPath, [...a.map((x) => (x === '10' ? '12' : x)), '--resume'], { encoding: 'utf8' });
  assert.equal(r1.status, 1);
  assert.match(r1.stderr, /corrupted \(SHA-256 checksum mismatch\); the checkpoint was not loaded/);
  assert.ok(r1.stderr.includes(`previous good checkpoint is ${prev.file}`), r1.stderr);
  assert.ok(fs.existsSync(prev.file));
  verifyCheckpoint(prev.file);
  const ex = spawnSync(process.execPath, [CLI, 'export', '--checkpoint', last.file, '--format', 'gguf', '--out', path.join(s.dir, 'x.gguf')], { encoding: 'utf8' });
  assert.equal(ex.status, 1);
  assert.match(ex.stderr, /checksum mismatch/);

  // Truncation.
  fs.writeFileSync(last.file, buf.subarray(0, buf.length - 100));
  assert.throws(() => verifyCheckpoint(last.file), /truncated or incomplete/);
  fs.writeFileSync(last.file, buf.subarray(0, 10));
  assert.throws(() => verifyCheckpoint(last.file), /truncated/);

  // The previous good checkpoint resumes.
  const r2 = spawnSync(process.execPath, [...a.map((x) => (x === '10' ? '12' : x)), '--resume-from', prev.file], { encoding: 'utf8' });
  assert.equal(r2.status, 0, r2.stderr);
  assert.equal(listCheckpoints(path.join(out, 'checkpoints')).at(-1)!.step, 12);
});

test('loss scaling: a static power-of-two scale changes nothing; dynamic scaling skips overflowing steps and backs off', async () => {
  const { Trainer, TRAIN_DEFAULTS } = await import('../src/train/trainer.js');
  const { initParams, resolveConfig } = await import('../src/train/params.js');
  const { LOSS_SCALE_DEFAULTS } = await import('../src/train/optim.js');
  const s = setup();
  const config = resolveConfig(s.config, 512);
  const run = async (lossScale: typeof LOSS_SCALE_DEFAULTS, tag: string) => {
    const t = new Trainer({
      config, params: initParams(config, 3), outDir: path.join(s.dir, tag), dataPath: s.data, tokenizerPath: null, source: tag,
      options: { ...TRAIN_DEFAULTS, steps: 16, batch: 2, seqLen: 16, lr: 3e-3, warmup: 0, evalEvery: 0, ckptEvery: 0, lossScale },
    });
    const steps: { skipped: boolean; lossScale: number }[] = [];
    await t.run((e) => e.type === 'step' && steps.push(e));
    return { params: t.params, steps };
  };
  const plain = await run(LOSS_SCALE_DEFAULTS, 'plain');
  const scaled = await run({ ...LOSS_SCALE_DEFAULTS, mode: 'static', initScale: 1024 }, 'static');
  for (const [n, a] of plain.params) assert.deepEqual([...scaled.params.get(n)!], [...a], `${n} differs under a static scale`);
  // Start far above fp16 range: the first steps overflow (|g| > 65504), are skipped, and the scale halves each time.
  const dyn = await run({ ...LOSS_SCALE_DEFAULTS, mode: 'dynamic', initScale: 2 ** 24, maxFinite: 65504 }, 'dynamic');
  const skipped = dyn.steps.filter((x) => x.skipped).length;
  assert.ok(skipped >= 1 && skipped < 12, `skipped ${skipped} of 16 steps`);
  console.log(`# dynamic loss scale: ${skipped} overflowing steps skipped, scale 2^24 -> 2^${Math.log2(dyn.steps.at(-1)!.lossScale)}`);
  for (let i = 1; i < dyn.steps.length; i++) {
    if (dyn.steps[i - 1]!.skipped) assert.equal(dyn.steps[i]!.lossScale, dyn.steps[i - 1]!.lossScale / 2);
  }
  assert.ok(!dyn.steps.at(-1)!.skipped);
});
