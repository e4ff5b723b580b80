// Server load benchmark (loopback only, bounded): starts `ristretto serve` as a child process on 127.0.0.1 with
// stories260K and a ChatML template, warms it up, then runs `--requests` streaming chat requests (default 2,000)
// from `--clients` concurrent clients (default 16), a quarter of them disconnecting right after their first token,
// within `--time-limit` seconds (default 600). Reports requests/s, time to first token p50/p99, every unexpected
// failure (must be zero), the server's RSS after warm-up and at the end, and that every slot is free; then stops
// the server with SIGTERM (graceful shutdown) and checks it exits.
// `npm run bench:serve [-- --requests N --clients N --parallel N --max-tokens N --out FILE]`
// writes bench/results/serve.json.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { runLoadTest } from '../src/server/loadtest.js';
import { CHATML_TEMPLATE } from '../src/runtime/template.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const models = process.env.RISTRETTO_MODELS ?? path.resolve(repo, '../shared/models');

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    clients: { type: 'string', default: '16' },
    parallel: { type: 'string', default: '4' },
    'max-tokens': { type: 'string', default: '24' },
    warmup: { type: 'string', default: '200' },
    'time-limit': { type: 'string', default: '600' },
    out: { type: 'string', default: path.join(repo, 'bench/results/serve.json') },
  },
});
const N = Number(values.requests);
const clients = Number(values.clients);
const parallel = Number(values.parallel);
const maxTokens = Number(values['max-tokens']);
const warmupN = Number(values.warmup);
const timeLimitMs = Number(values['time-limit']) * 1000;

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** The child's CPU time (user + system) in seconds, from /proc (Linux; clock ticks of 100 Hz). */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

async function health(base: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${base}/health`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function main(): Promise<void> {
  const modelPath = path.join(models, 'llama2c/stories260K.bin');
  if (!fs.existsSync(modelPath)) throw new Error(`${modelPath} not found (set RISTRETTO_MODELS)`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ristretto-bench-serve-'));
  const tpl = path.join(tmp, 'chatml.jinja');
  fs.writeFileSync(tpl, CHATML_TEMPLATE);
  const child = spawn(process.execPath, [path.join(repo, 'dist/src/cli/main.js'), 'serve', '--model', modelPath, '--tokenizer', path.join(models, 'llama2c/tok512.bin'),
    '--chat-template', tpl, '--host', '127.0.0.1', '--port', '0', '--parallel', String(parallel), '--queue', String(clients * 2), '--ctx', '256', '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const port = await new Promise<number>((resolve, reject) => {
    const to = setTimeout(() => reject(new Error(`server did not start:\n${stderr}`)), 30_000);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => {
      stderr += c;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(to);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited (${code}):\n${stderr}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  const loadingStatus = (await health(base)).status;
  for (let i = 0; i < 300 && (await health(base)).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));

  const warm = await runLoadTest({ baseUrl: base, clients, requests: warmupN, maxTokens, timeLimitMs: 120_000 });
  await new Promise((r) => setTimeout(r, 500));
  const rssWarm = rssKiB(child.pid!);
  process.stderr.write(`warm-up: ${warm.requests} requests, RSS ${(rssWarm / 1024).toFixed(1)} MiB\n`);

  const cpu0 = cpuSeconds(child.pid!);
  const r = await runLoadTest({ baseUrl: base, clients, requests: N, maxTokens, disconnectFraction: 0.25, timeLimitMs });
  const serverCpu = cpuSeconds(child.pid!) - cpu0;
  await new Promise((res) => setTimeout(res, 500));
  const rssEnd = rssKiB(child.pid!);
  const h = await health(base);

  const t0 = performance.now();
  child.kill('SIGTERM');
  const exitCode = await new Promise<number | null>((resolve) => {
    const to = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(null);
    }, 15_000);
    child.on('exit', (code) => {
      clearTimeout(to);
      resolve(code);
    });
  });
  const shutdownMs = performance.now() - t0;
  fs.rmSync(tmp, { recursive: true, force: true });

  const result = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, platform: `${os.platform()} ${os.arch()}` },
    setup: { model: 'llama2c/stories260K.bin (reference backend)', template: 'ChatML', parallel, queue: clients * 2, ctx: 256, clients, max_tokens: maxTokens, disconnect_fraction: 0.25, address: '127.0.0.1' },
    requests: r.requests,
    completed: r.completed,
    disconnected_mid_stream: r.disconnected,
    unexpected_failures: r.failures.length,
    failures: r.failures.slice(0, 50),
    duration_s: +(r.durationMs / 1000).toFixed(2),
    requests_per_s: +r.requestsPerS.toFixed(2),
    completion_tokens: r.completionTokens,
    ttft_ms: { p50: +r.ttftMs.p50.toFixed(1), p90: +r.ttftMs.p90.toFixed(1), p99: +r.ttftMs.p99.toFixed(1), max: +r.ttftMs.max.toFixed(1) },
    server_cpu_s: +serverCpu.toFixed(1),
    server_cpu_utilisation: +(serverCpu / (r.durationMs / 1000)).toFixed(2),
    rss_mib: { after_warmup: +(rssWarm / 1024).toFixed(1), at_end: +(rssEnd / 1024).toFixed(1), growth: +((rssEnd - rssWarm) / 1024).toFixed(1) },
    health_while_loading: loadingStatus,
    slots_at_end: h.body,
    all_slots_free: h.status === 200 && h.body.slots_processing === 0 && h.body.queued === 0,
    timed_out: r.timedOut,
    shutdown: { signal: 'SIGTERM', exit_code: exitCode, ms: +shutdownMs.toFixed(0) },
  };
  fs.mkdirSync(path.dirname(values.out!), { recursive: true });
  fs.writeFileSync(values.out!, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  const ok = r.failures.length === 0 && result.all_slots_free && exitCode === 0 && r.requests >= N && !r.timedOut;
  if (!ok) process.exitCode = 1;
}

await main();
