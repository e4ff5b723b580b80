// Tokenizer throughput: encodes the whole corpus/war-and-peace.txt (3.2 MB) with the Llama 2 (llama2.c
// tokenizer.bin), GPT-2, Llama 3, Qwen3 and Gemma 3 tokenizers, each loaded through `loadTokenizer` as users do.
// Per tokenizer: load time, the first (cold) encode, then the median of --runs encodes (default 3) on the same
// instance (the byte-level BPE keeps a pre-token cache, so warm runs are what a long-lived process sees), tokens/s
// and MB/s, and whether decode(encode(text)) gives the text back. Writes bench/results/tokenizers.json and prints a
// markdown table.
//
//   npm run build && npm run bench:tokenizers [-- --runs 5 --only gpt2,gemma3 --out FILE]
//
// The models directory is $RISTRETTO_MODELS, else ../shared/models beside the repository.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadTokenizer } from '../src/tokenizers/load.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const TOKENIZERS: { name: string; rel: string; note: string }[] = [
  { name: 'llama2', rel: 'llama2c/tokenizer.bin', note: 'SentencePiece BPE (score merges, run.c semantics), 32000' },
  { name: 'gpt2', rel: 'tiny-gpt2', note: 'byte-level BPE, 50257' },
  { name: 'llama3', rel: 'tokenizers/llama3', note: 'byte-level BPE, 128256' },
  { name: 'qwen3', rel: 'tokenizers/qwen3', note: 'byte-level BPE + NFC, 151669' },
  { name: 'gemma3', rel: 'tokenizers/gemma3', note: 'SentencePiece-style BPE (rank merges, byte fallback), 262145' },
];

interface Result {
  name: string;
  path: string;
  kind: string;
  vocab_size: number;
  note: string;
  load_ms: number;
  tokens: number;
  first_run_ms: number;
  runs_ms: number[];
  median_ms: number;
  tokens_per_s: number;
  mb_per_s: number;
  roundtrip: boolean;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function main(): void {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { runs: { type: 'string' }, only: { type: 'string' }, out: { type: 'string' }, models: { type: 'string' } },
  });
  const runs = values.runs === undefined ? 3 : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a positive integer, got ${values.runs}`);
  const models = values.models ?? process.env.RISTRETTO_MODELS ?? path.resolve(repoRoot, '../shared/models');
  const corpus = path.join(models, 'corpus/war-and-peace.txt');
  if (!fs.existsSync(corpus)) {
    process.stderr.write(`bench/tokenizers: ${corpus} not found (set RISTRETTO_MODELS or --models DIR)\n`);
    process.exitCode = 1;
    return;
  }
  const only = values.only?.split(',').map((s) => s.trim());
  const text = fs.readFileSync(corpus, 'utf8');
  const bytes = Buffer.byteLength(text);
  const results: Result[] = [];
  const skipped: string[] = [];
  for (const spec of TOKENIZERS) {
    if (only !== undefined && !only.includes(spec.name)) continue;
    const p = path.join(models, spec.rel);
    if (!fs.existsSync(p)) {
      skipped.push(`${spec.name}: ${spec.rel} not found`);
      continue;
    }
    const t0 = performance.now();
    const { tokenizer } = loadTokenizer(p);
    const loadMs = performance.now() - t0;
    const time = (): [number, number[]] => {
      const s = performance.now();
      const ids = tokenizer.encode(text, { addSpecialTokens: false });
      return [performance.now() - s, ids];
    };
    const [firstMs, ids] = time();
    const runsMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const [ms, again] = time();
      if (again.length !== ids.length) throw new Error(`${spec.name}: run ${i + 1} gave ${again.length} tokens, the first ${ids.length}`);
      runsMs.push(ms);
    }
    const med = median(runsMs);
    const roundtrip = tokenizer.decode(ids, { skipSpecialTokens: false, cleanUpTokenizationSpaces: false } as { skipSpecialTokens: boolean }) === text;
    const r: Result = {
      name: spec.name,
      path: spec.rel,
      kind: tokenizer.kind,
      vocab_size: tokenizer.vocabSize,
      note: spec.note,
      load_ms: Math.round(loadMs),
      tokens: ids.length,
      first_run_ms: Math.round(firstMs),
      runs_ms: runsMs.map((x) => Math.round(x)),
      median_ms: Math.round(med),
      tokens_per_s: Math.round((ids.length / med) * 1000),
      mb_per_s: Number((bytes / 1e6 / (med / 1000)).toFixed(2)),
      roundtrip,
    };
    results.push(r);
    process.stderr.write(`${spec.name}: ${r.tokens} tokens, median ${r.median_ms} ms, ${r.tokens_per_s} tokens/s\n`);
  }
  const out = values.out ?? path.join(repoRoot, 'bench/results/tokenizers.json');
  const report = {
    benchmark: 'tokenizers: encode corpus/war-and-peace.txt (whole file, one encode call, no special tokens added)',
    date: new Date().toISOString(),
    machine: { node: process.version, platform: `${os.platform()} ${os.arch()}`, cpu: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length },
    corpus: { path: 'corpus/war-and-peace.txt', bytes, chars: text.length },
    runs,
    results,
    ...(skipped.length > 0 ? { skipped } : {}),
  };
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  const rows = [
    `| tokenizer | kind | vocab | load ms | tokens | first run ms | median ms (${runs} runs) | tokens/s | MB/s | round trip |`,
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
    ...results.map(
      (r) =>
        `| ${r.name} | ${r.kind} | ${r.vocab_size} | ${r.load_ms} | ${r.tokens} | ${r.first_run_ms} | ${r.median_ms} | ${r.tokens_per_s.toLocaleString('en-US')} | ${r.mb_per_s} | ${r.roundtrip ? 'yes' : 'NO'} |`,
    ),
  ];
  process.stdout.write(`war-and-peace.txt: ${bytes} bytes, ${text.length} chars; ${report.machine.cpu}, Node ${process.version}\n\n${rows.join('\n')}\n`);
  for (const s of skipped) process.stdout.write(`skipped ${s}\n`);
  process.stdout.write(`\nwritten to ${path.relative(process.cwd(), out) || out}\n`);
}

main();
