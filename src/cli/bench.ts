// `ristretto bench`: prompt processing and decode speed of one model, as a table or one JSON object.

import { parseArgs } from 'node:util';
import { benchModel } from '../runtime/bench.js';
import { InvalidArgumentError } from '../errors.js';
import { num, oneOf, required, str } from './args.js';
import { BACKEND_CHOICES } from '../runtime/backends.js';

export const BENCH_HELP = `Usage: ristretto bench --model PATH [--threads N] [--backend auto|wasm|reference] [--pp 128,512] [--tg 128] [--repeat N] [--json]

Times prompt processing (ppN: N prompt tokens in one prefill) and decode (tgN: N tokens one at a
time), and reports load time, peak RSS, and the decode roofline: the weight bytes a decode step
reads divided by this machine's measured memory bandwidth.
  --json   print one JSON object: pp_tok_s, tg_tok_s, load_s, peak_rss_mb, threads, and the rest
  --threads N         wasm backend threads (default: the machine's)
  --backend NAME      auto (default) | wasm | reference
  --no-llama-cpp      skip node-llama-cpp (otherwise run on the same GGUF and threads when installed, with ratios)
`;

export async function benchCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, tokenizer: { type: 'string' }, threads: { type: 'string' }, pp: { type: 'string' },
      tg: { type: 'string' }, repeat: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      backend: { type: 'string' }, 'no-llama-cpp': { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(BENCH_HELP);
    return;
  }
  const pp = (str(values, 'pp') ?? '128,512').split(',').map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`--pp: expected positive integers separated by commas, got "${x}"`);
    return n;
  });
  const threads = num(values, 'threads', { int: true, min: 1 });
  const r = await benchModel(required(values, 'model', 'bench'), {
    tokenizer: str(values, 'tokenizer'),
    promptLengths: pp,
    decodeTokens: num(values, 'tg', { int: true, min: 1 }),
    repeat: num(values, 'repeat', { int: true, min: 1 }),
    threads,
    backend: oneOf(values, 'backend', BACKEND_CHOICES, 'auto'),
    llamaCpp: values['no-llama-cpp'] !== true,
    onStage: values.json ? undefined : (s) => process.stderr.write(`[ristretto] bench ${s}...\n`),
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  const rows = [
    ['model', r.model],
    ['backend', `${r.backend} (${r.threads} thread${r.threads === 1 ? '' : 's'})`],
    ['load', `${r.load_s.toFixed(2)} s`],
    ...Object.entries(r.pp).map(([k, v]) => [k, `${v.toFixed(1)} tok/s`]),
    [`tg${r.tg_tokens}`, `${r.tg_tok_s.toFixed(1)} tok/s`],
    ['peak RSS', `${r.peak_rss_mb.toFixed(0)} MiB`],
    ['roofline', `${r.roofline_tok_s.toFixed(1)} tok/s (${(r.bytes_per_token / 2 ** 20).toFixed(1)} MiB/token at ${r.bandwidth_gb_s.toFixed(1)} GB/s): ${(100 * r.roofline_fraction).toFixed(1)}% reached`],
  ];
  if (r.llama_cpp && r.ratio_vs_llama_cpp) {
    const l = r.llama_cpp;
    rows.push(['llama.cpp', `node-llama-cpp ${l.version}, ${l.threads} thread${l.threads === 1 ? '' : 's'}: ` +
      [...Object.entries(l.pp).map(([k, v]) => `${k} ${v.toFixed(1)}`), `tg${l.tg_tokens} ${l.tg_tok_s.toFixed(1)} tok/s`].join(', ')]);
    rows.push(['ratio', [...Object.entries(r.ratio_vs_llama_cpp.pp).map(([k, v]) => `${k} ${v.toFixed(2)}x`), `tg ${r.ratio_vs_llama_cpp.tg.toFixed(2)}x`].join(', ') + ' (ristretto / node-llama-cpp)']);
  }
  process.stdout.write(rows.map(([k, v]) => `${k!.padEnd(10)} ${v}`).join('\n') + '\n');
}
