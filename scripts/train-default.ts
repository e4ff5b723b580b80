// Reproduces the default model (models/default/): a byte-level BPE tokenizer and a small Llama-style
// story model trained from scratch with ristretto's own pipeline on the TinyStories excerpt.
//
//   npm run train:default [-- --corpus PATH] [--work DIR] [--steps N] [--threads N]
//
// Corpus: ../shared/models/corpus/tinystories-lowercase-4MB.txt (or $RISTRETTO_MODELS/corpus/...),
// a lower-cased 4.19 MB excerpt of TinyStories (Eldan & Li 2023, CDLA-Sharing-1.0). Stories are
// separated by a single newline (paragraphs by blank lines); each story becomes one document that
// starts with <|endoftext|>. Steps: BPE (vocab 1024) -> token file -> train (wasm fast path) ->
// GGUF with the tokenizer embedded -> models/default/README.md (recipe, losses, a greedy sample).
// A run interrupted after a checkpoint resumes from it (same --work).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { writeGGUFCheckpoint } from '../src/models/checkpoints/write.js';
import { loadModel } from '../src/runtime/load-model.js';
import { tokenizerFromJson } from '../src/tokenizers/load.js';
import { bpeGgufMetadata, bpeTokenizerJson, trainBpe } from '../src/train/bpe.js';
import { tokenizeFiles } from '../src/train/data.js';
import { initParams, presetConfig, toHostTensors } from '../src/train/params.js';
import { Trainer, TRAIN_DEFAULTS, type TrainEvent } from '../src/train/trainer.js';
import { createFastTraining } from '../src/train/wasm-gemm.js';

// scripts/train-default.ts compiles to dist/scripts/train-default.js: the package root is two levels up.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const DEFAULT_RECIPE = {
  name: 'ristretto-stories-1m',
  vocab: 1024,
  special: '<|endoftext|>',
  dim: 128,
  hidden: 352,
  layers: 4,
  heads: 4,
  seq: 256,
  batch: 8,
  steps: 2000,
  lr: 2e-3,
  minLr: 2e-4,
  warmup: 30,
  weightDecay: 0.1,
  clip: 1.0,
  seed: 1337,
  valFraction: 0.05,
  evalEvery: 100,
  evalBatches: 4,
} as const;

const { values } = parseArgs({
  options: {
    corpus: { type: 'string' }, work: { type: 'string' }, steps: { type: 'string' }, threads: { type: 'string' },
    out: { type: 'string' },
  },
});

const R = { ...DEFAULT_RECIPE, steps: values.steps !== undefined ? Number(values.steps) : DEFAULT_RECIPE.steps };
const modelsDir = process.env.RISTRETTO_MODELS ?? path.resolve(root, '../shared/models');
const corpus = values.corpus ?? path.join(modelsDir, 'corpus/tinystories-lowercase-4MB.txt');
if (!fs.existsSync(corpus)) {
  console.error(`train:default: the TinyStories corpus is missing: ${corpus}\n` +
    'Pass --corpus PATH (tinystories-lowercase-4MB.txt, sha256 30c6f2fa...) or set RISTRETTO_MODELS to the shared models folder.');
  process.exit(1);
}
const work = path.resolve(values.work ?? path.join(os.tmpdir(), 'ristretto-train-default'));
const outDir = path.resolve(values.out ?? path.join(root, 'models/default'));
fs.mkdirSync(work, { recursive: true });
fs.mkdirSync(outDir, { recursive: true });
const log = (s: string): void => console.log(`[train:default] ${s}`);

// 1. Documents: one story each.
const raw = fs.readFileSync(corpus, 'utf8').replace(/\r\n/g, '\n');
const stories: string[] = [];
let cur: string[] = [];
let prevBlank = true;
for (const line of raw.split('\n')) {
  const blank = line.trim() === '';
  if (!blank && !prevBlank && cur.length > 0) {
    stories.push(cur.join('\n').trim());
    cur = [];
  }
  cur.push(line);
  prevBlank = blank;
}
if (cur.join('').trim() !== '') stories.push(cur.join('\n').trim());
const storiesFile = path.join(work, 'stories.txt');
fs.writeFileSync(storiesFile, stories.join(R.special));
log(`${stories.length} stories, ${(raw.length / 1e6).toFixed(2)} M characters`);

// 2. Tokenizer.
let t0 = performance.now();
const bpe = trainBpe(stories, { vocabSize: R.vocab, specialTokens: [R.special] });
const tokJsonPath = path.join(work, 'tokenizer.json');
const tokJson = bpeTokenizerJson(bpe, R.special);
fs.writeFileSync(tokJsonPath, JSON.stringify(tokJson));
const tokenizer = tokenizerFromJson(tokJson, undefined, tokJsonPath);
log(`BPE: ${bpe.merges.length} merges, vocab ${bpe.vocab.length} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

// 3. Token file.
t0 = performance.now();
const dataPath = path.join(work, 'stories.bin');
const h = tokenizeFiles(tokenizer, [storiesFile], dataPath, { docSeparator: R.special });
log(`tokens: ${h.tokens} in ${h.documents} documents (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

// 4. Train (resumes from the newest checkpoint in the work folder).
const config = presetConfig('stories260K', R.vocab);
Object.assign(config, {
  hidden_size: R.dim, intermediate_size: R.hidden, num_hidden_layers: R.layers, num_attention_heads: R.heads, num_key_value_heads: R.heads,
  head_dim: R.dim / R.heads, max_position_embeddings: R.seq,
});
const fast = await createFastTraining(values.threads !== undefined ? { threads: Number(values.threads) } : {});
const trainDir = path.join(work, 'run');
const latest = Trainer.latestCheckpoint(trainDir);
const trainer = latest !== null
  ? Trainer.resume(latest, { steps: R.steps, outDir: trainDir, dataPath, backends: fast.backends, gemm: fast.gemm })
  : new Trainer({
    config, params: initParams(config, R.seed), outDir: trainDir, dataPath, tokenizerPath: tokJsonPath, source: R.name,
    backends: fast.backends, gemm: fast.gemm,
    options: {
      ...TRAIN_DEFAULTS, steps: R.steps, batch: R.batch, seqLen: R.seq, lr: R.lr, minLr: R.minLr, warmup: R.warmup, weightDecay: R.weightDecay,
      clip: R.clip, seed: R.seed, valFraction: R.valFraction, evalEvery: R.evalEvery, evalBatches: R.evalBatches, ckptEvery: 50, keep: 2,
    },
  });
const emit = (e: TrainEvent): void => {
  if (e.type === 'step' && (e.step % 10 === 0 || e.step === 1)) log(`step ${e.step}/${e.steps} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ${e.tokPerS.toFixed(0)} tok/s ${e.ms.toFixed(0)} ms/step ETA ${e.etaS.toFixed(0)} s`);
  else if (e.type === 'eval') log(`step ${e.step}: validation loss ${e.valLoss.toFixed(4)}`);
  else if (e.type === 'done') log(`done: step ${e.step}, validation loss ${e.valLoss?.toFixed(4)} (${(e.ms / 1000).toFixed(0)} s)`);
};
await trainer.run(emit);

// 5. GGUF with the tokenizer embedded.
const gguf = path.join(outDir, `${R.name}.gguf`);
// A story model has no chat format: for `ristretto chat`, every user turn starts a new story with
// the user's (lower-cased) text and the reply continues it until <|endoftext|>.
const CHAT_TEMPLATE = "{% for m in messages %}{% if m['role'] == 'user' %}{{ bos_token }}{{ m['content'] | lower }}{% elif m['role'] == 'assistant' %}{{ m['content'] }}{% endif %}{% endfor %}";
writeGGUFCheckpoint(gguf, trainer.config, toHostTensors(trainer.config, trainer.params), {
  tokenizerMetadata: [...bpeGgufMetadata(bpe, { bos: R.special, eos: R.special }), ['tokenizer.chat_template', 'string', CHAT_TEMPLATE]],
  name: R.name,
});
const bytes = fs.statSync(gguf).size;
let nParams = 0;
for (const p of trainer.params.values()) nParams += p.length;
log(`wrote ${gguf} (${(bytes / 1e6).toFixed(2)} MB, ${nParams} parameters)`);

// 6. A greedy sample from the written file, and the README.
const model = await loadModel(gguf);
const prompt = 'once upon a time';
const sample = await model.generate(prompt, { maxTokens: 200, temperature: 0 });
model.dispose();
fast.dispose();
const hist = trainer.history;
const tokensSeen = hist.train.length * R.batch * R.seq;
const elapsedS = hist.train.length > 0 ? JSON.parse(JSON.stringify((trainer as unknown as { elapsedMs: number }).elapsedMs)) / 1000 : 0;
const val = hist.val.map((v) => `| ${v.step} | ${v.loss.toFixed(4)} |`).join('\n');
const trainAt = (s: number): string => {
  const w = hist.train.filter((p) => p.step > s - 10 && p.step <= s);
  return w.length === 0 ? '' : (w.reduce((a, p) => a + p.loss, 0) / w.length).toFixed(4);
};
const finalVal = hist.val.at(-1)?.loss;
const readme = `# ${R.name} — ristretto's default model

A ${(nParams / 1e6).toFixed(2)}M-parameter Llama-style story model and its own 1024-token byte-level BPE tokenizer, both
trained from scratch by ristretto's own pipeline (no pretrained weights, no third-party tokenizer). \`ristretto generate\`
and \`ristretto chat\` use it when no \`--model\` is given. It writes short, lower-case children's stories; it is a demo
model, not a useful language model.

- File: \`${R.name}.gguf\` — GGUF v3, arch \`llama\`, F32 tensors, tokenizer embedded (\`tokenizer.ggml.model = gpt2\`,
  GPT-2 pre-tokenization, \`<|endoftext|>\` = id 0 is BOS and EOS). ${bytes} bytes.
- Shape: dim ${R.dim}, ${R.layers} layers, ${R.heads} heads (head dim ${R.dim / R.heads}), SwiGLU hidden ${R.hidden}, RMSNorm eps 1e-5,
  RoPE theta 10000, tied embedding/classifier, vocab ${R.vocab}, context ${R.seq}. ${nParams} parameters.
- Validation loss (held-out last ${R.valFraction * 100}% of the token file, ${R.evalBatches * R.batch} windows of ${R.seq}): **${finalVal?.toFixed(4) ?? 'n/a'}** nats/token.

## Reproduce

\`\`\`
npm run build && npm run train:default        # corpus from ../shared/models (or --corpus PATH / $RISTRETTO_MODELS)
\`\`\`

\`scripts/train-default.ts\` runs every step: (1) split the corpus into ${stories.length} stories (a new story starts at a
non-blank line directly after a non-blank line); (2) train the byte-level BPE (\`src/train/bpe.ts\`, vocab ${R.vocab} =
1 special + 256 bytes + ${bpe.merges.length} merges, GPT-2 pre-tokenization; the trainer reproduces Stanford CS336's reference
merges exactly); (3) tokenize, each story prefixed by \`<|endoftext|>\` (${h.tokens} tokens); (4) train with the WebAssembly
fast path: AdamW (beta 0.9/0.95, weight decay ${R.weightDecay}), lr ${R.lr} with ${R.warmup} warmup steps and cosine decay to ${R.minLr},
global-norm clip ${R.clip}, batch ${R.batch} x ${R.seq} tokens, ${R.steps} steps (${tokensSeen} tokens seen, about
${(tokensSeen / h.tokens).toFixed(1)} epochs), seed ${R.seed}; (5) write the GGUF and this README.
Training took ${(elapsedS / 60).toFixed(1)} minutes on a shared 2-vCPU machine.

## Loss

| step | validation loss |
|---:|---:|
${val}

Training loss (mean of the last 10 steps): ${[1, 100, 200, 300, 400, 500, 600, 800, 1000].filter((s) => s <= R.steps).map((s) => `step ${s}: ${trainAt(s)}`).join(', ')}.

## Greedy sample

\`ristretto generate --prompt "${prompt}" --temperature 0 --max-tokens 200\`:

> ${(prompt + sample.text).replace(/\n+/g, ' ')}

## Data and licence

- Training text: \`tinystories-lowercase-4MB.txt\`, a lower-cased 4.19 MB excerpt of the **TinyStories** dataset
  (Ronen Eldan and Yuanzhi Li, 2023, https://huggingface.co/datasets/roneneldan/TinyStories), as published in the
  MIT-licensed repository Arnoochka/Transformer-Parallelism (commit 4c57e396). TinyStories is licensed under the
  **Community Data License Agreement – Sharing, Version 1.0 (CDLA-Sharing-1.0)**, https://cdla.dev/sharing-1-0/.
- The text itself is not included here. The model weights and the tokenizer are results of computation on the data;
  CDLA-Sharing-1.0 (section 1.4, 3.3) places no restriction on such "Results" — see LICENSE in this folder.
- The weights and tokenizer are released under the project's MIT licence.
`;
fs.writeFileSync(path.join(outDir, 'README.md'), readme);
fs.writeFileSync(path.join(outDir, 'training-log.json'), JSON.stringify({ recipe: R, parameters: nParams, tokens: h.tokens, tokensSeen, history: hist }, null, 1) + '\n');
log(`greedy sample: ${JSON.stringify(prompt + sample.text)}`);
log(`wrote ${path.join(outDir, 'README.md')}`);
