// `npm run bench`: every benchmark section, each result in bench/results/<section>.json, and a summary in
// bench/results/README.md.
//
//   npm run build && npm run bench [-- --quick] [--sections models,tokenizers,...] [--threads 1,2]
//                                  [--models stories15M,stories110M,tinyllama-1.1B] [--types q8_0,q4_0,f16]
//
// Sections:
//   models      `ristretto bench --json` on the random-weight GGUFs of bench/models.ts (generated into
//               bench/models/ when missing; the 1.1B files take minutes, then stay cached), at 1 and 2 threads,
//               each in a fresh process; node-llama-cpp on the same file and threads when it is installed
//               (`npm install --save-dev node-llama-cpp@3`), with the ratios.
//   tokenizers, embed, serve, train, and any other bench/<name>.ts that compiles to dist/bench/<name>.js:
//               run as they are (skipped when absent). --quick runs models (small set) and tokenizers only.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { BENCH_MODELS, writeBenchModel } from './models.js';
import type { DType } from '../src/formats/tensor.js';
import type { BenchResult } from '../src/runtime/bench.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const repo = path.resolve(here, '../..');
const resultsDir = path.join(repo, 'bench/results');
const modelsDir = path.join(repo, 'bench/models');
const CLI = path.join(repo, 'dist/src/cli/main.js');
/** Files in dist/bench that are libraries or this runner, not sections. */
const NOT_SECTIONS = new Set(['run', 'models']);

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' }, sections: { type: 'string' }, threads: { type: 'string' },
    models: { type: 'string' }, types: { type: 'string' }, repeat: { type: 'string' },
  },
});
const quick = values.quick === true;

interface ModelRow extends Partial<BenchResult> {
  name: string;
  type: string;
  error?: string;
}

function log(s: string): void {
  process.stderr.write(`[bench] ${s}\n`);
}

function benchModels(): ModelRow[] {
  const names = values.models?.split(',') ?? (quick ? ['stories15M', 'stories110M'] : ['stories15M', 'stories110M', 'tinyllama-1.1B']);
  const types = (values.types?.split(',') ?? (quick ? ['q8_0', 'q4_0'] : ['q8_0', 'q4_0', 'f16'])) as DType[];
  const threads = (values.threads?.split(',') ?? ['1', String(Math.min(2, os.availableParallelism()))]).map(Number).filter((t, i, a) => a.indexOf(t) === i);
  const rows: ModelRow[] = [];
  fs.mkdirSync(modelsDir, { recursive: true });
  for (const name of names) {
    const c = BENCH_MODELS[name];
    if (c === undefined) throw new Error(`unknown model ${name} (known: ${Object.keys(BENCH_MODELS).join(', ')})`);
    for (const type of types) {
      const file = path.join(modelsDir, `${name}-${type}.gguf`);
      if (!fs.existsSync(file)) {
        log(`generating ${path.relative(repo, file)} ...`);
        const t0 = performance.now();
        writeBenchModel(file, c, type);
        log(`  done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      }
      for (const t of threads) {
        log(`${name} ${type} threads=${t}`);
        const args = [CLI, 'bench', '--model', file, '--threads', String(t), '--json'];
        if (quick) args.push('--pp', '128', '--tg', '32');
        else args.push('--pp', '128,512', '--tg', '128');
        if (values.repeat) args.push('--repeat', values.repeat);
        const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 30 * 60_000 });
        if (r.status !== 0) {
          rows.push({ name, type, threads: t, error: (r.stderr || `exit ${r.status}`).trim().split('\n').slice(-3).join(' ') });
          log(`  failed: ${rows[rows.length - 1]!.error}`);
          continue;
        }
        const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as BenchResult;
        rows.push({ name, type, ...j });
        const lc = j.llama_cpp ? `; node-llama-cpp pp ${j.llama_cpp.pp_tok_s.toFixed(0)} tg ${j.llama_cpp.tg_tok_s.toFixed(1)}` : '';
        log(`  pp ${j.pp_tok_s.toFixed(0)} tg ${j.tg_tok_s.toFixed(1)} tok/s, roofline ${(100 * j.roofline_fraction).toFixed(0)}%${lc}`);
      }
    }
  }
  return rows;
}

const f1 = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const f2 = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '-' : `${x.toFixed(2)}x`);

function modelsTable(rows: ModelRow[]): string {
  const lines = [
    '| model | type | threads | pp128 | pp512 | tg | load s | peak RSS MiB | roofline tok/s | of roofline | llama.cpp pp128 | llama.cpp tg | pp128 ratio | tg ratio |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    if (r.error) {
      lines.push(`| ${r.name} | ${r.type} | ${r.threads} | error: ${r.error.replace(/\|/g, '/')} |`);
      continue;
    }
    lines.push(`| ${r.name} | ${r.type} | ${r.threads} | ${f1(r.pp?.['pp128'])} | ${f1(r.pp?.['pp512'])} | ${f1(r.tg_tok_s)} | ${r.load_s?.toFixed(2)} | ${f1(r.peak_rss_mb)} | ` +
      `${f1(r.roofline_tok_s)} | ${r.roofline_fraction === undefined ? '-' : `${(100 * r.roofline_fraction).toFixed(0)}%`} | ` +
      `${f1(r.llama_cpp?.pp['pp128'])} | ${f1(r.llama_cpp?.tg_tok_s)} | ${f2(r.ratio_vs_llama_cpp?.pp['pp128'])} | ${f2(r.ratio_vs_llama_cpp?.tg)} |`);
  }
  // best of the thread counts, each side at its own best (the issue's comparison)
  const best = new Map<string, { ours: ModelRow; lc?: ModelRow }>();
  for (const r of rows) {
    if (r.error) continue;
    const k = `${r.name} ${r.type}`;
    const b = best.get(k);
    if (b === undefined) best.set(k, { ours: r, lc: r.llama_cpp ? r : undefined });
    else {
      if ((r.tg_tok_s ?? 0) > (b.ours.tg_tok_s ?? 0)) b.ours = r;
      if (r.llama_cpp && (!b.lc || r.llama_cpp.tg_tok_s > b.lc.llama_cpp!.tg_tok_s)) b.lc = r;
    }
  }
  if ([...best.values()].some((b) => b.lc)) {
    lines.push('', 'Decode, each side at its best thread count:', '', '| model | ristretto tg (threads) | node-llama-cpp tg (threads) | ratio |', '|---|---|---|---|');
    for (const [k, b] of best) {
      if (!b.lc) continue;
      lines.push(`| ${k} | ${f1(b.ours.tg_tok_s)} (${b.ours.threads}) | ${f1(b.lc.llama_cpp!.tg_tok_s)} (${b.lc.llama_cpp!.threads}) | ${f2(b.ours.tg_tok_s! / b.lc.llama_cpp!.tg_tok_s)} |`);
    }
  }
  return lines.join('\n');
}

function runSection(name: string): { ok: boolean; seconds: number; note: string } {
  const file = path.join(here, `${name}.js`);
  const args = [file];
  if (name === 'tokenizers' && quick) args.push('--runs', '1');
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'], timeout: 60 * 60_000 });
  const seconds = (performance.now() - t0) / 1000;
  return { ok: r.status === 0, seconds, note: r.status === 0 ? '' : `exit ${r.status ?? r.signal}` };
}

async function main(): Promise<void> {
  fs.mkdirSync(resultsDir, { recursive: true });
  const available = fs.readdirSync(here).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).filter((n) => !NOT_SECTIONS.has(n)).sort();
  const wanted = values.sections?.split(',') ?? (quick ? ['models', 'tokenizers'] : ['models', ...available]);
  const summary: string[] = [
    '# Benchmark results',
    '',
    `Written by \`npm run bench${quick ? ' -- --quick' : ''}\` on ${new Date().toISOString()}: node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x ${os.availableParallelism()}, ` +
      `load average before ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}. Each section's JSON is beside this file.`,
    '',
  ];
  for (const s of wanted) {
    if (s === 'models') {
      const rows = benchModels();
      const out = { node: process.version, date: new Date().toISOString(), quick, loadavg: os.loadavg(), results: rows };
      fs.writeFileSync(path.join(resultsDir, 'models.json'), JSON.stringify(out, null, 2) + '\n');
      summary.push('## Models (random-weight GGUFs of real shapes, tok/s)', '', modelsTable(rows), '');
      continue;
    }
    if (!available.includes(s)) {
      log(`section ${s}: dist/bench/${s}.js not found, skipped`);
      summary.push(`## ${s}`, '', 'skipped (not present)', '');
      continue;
    }
    log(`section ${s}`);
    const r = runSection(s);
    summary.push(`## ${s}`, '', r.ok ? `done in ${r.seconds.toFixed(0)} s: see [${s}.json](${s}.json)` : `failed (${r.note}) after ${r.seconds.toFixed(0)} s`, '');
  }
  // results written by longer recipes outside `npm run bench` (kept between runs)
  const other = fs.readdirSync(resultsDir).filter((f) => f.endsWith('.md') && f !== 'README.md');
  if (other.length > 0) summary.push('## Other results here', '', ...other.map((f) => `- [${f}](${f})`), '');
  fs.writeFileSync(path.join(resultsDir, 'README.md'), summary.join('\n'));
  process.stdout.write(summary.join('\n') + '\n');
}

await main();
