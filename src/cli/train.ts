// `ristretto train`: train from scratch (a preset or CONFIG.json) or fine-tune a checkpoint on a token
// file; one line per step, validation and samples every N steps, a progress bar with ETA on a TTY,
// JSON lines with --log-json, atomic checkpoints (--resume continues bit-identically), loss.svg.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { InvalidArgumentError, RistrettoError } from '../errors.js';
import { loadTokenizerFor } from '../tokenizers/load.js';
import { planCheckpoint } from '../runtime/load-model.js';
import { CheckpointError, listCheckpoints, verifyCheckpoint } from '../train/checkpoint.js';
import { TokenFile } from '../train/data.js';
import { LOSS_SCALE_DEFAULTS } from '../train/optim.js';
import { initParams, loadParams, resolveConfig } from '../train/params.js';
import { Trainer, TRAIN_DEFAULTS, type TrainEvent, type TrainOptions } from '../train/trainer.js';
import { createFastTraining } from '../train/wasm-gemm.js';
import { num, oneOf, str } from './args.js';

export const TRAIN_HELP = `Usage: ristretto train (--config NAME|CONFIG.json | --model PATH) --data data.bin --steps N --out DIR [options]

Model
  --config NAME|FILE     from scratch: stories260K | stories15M | stories42M | stories110M, or an HF-style config.json
                         (the vocabulary size comes from the token file unless the config sets it)
  --model PATH           fine-tune a checkpoint (llama2.c .bin, GGUF, HF folder)
  --tokenizer PATH       tokenizer for samples and export (default: the model's own)
  --precision f32|f64    arithmetic of weights, activations and optimizer state (default f32)
  --backend wasm|reference    f32 compute: WebAssembly SIMD forward + GEMMs (default) or plain TypeScript (the oracle)
  --threads N            threads of the wasm backend's forward (default: the machine's)
Data
  --data PATH            token file from 'ristretto tokenize'
  --seq T                sequence length (default ${TRAIN_DEFAULTS.seqLen})
  --batch B              sequences per micro-batch (default ${TRAIN_DEFAULTS.batch})
  --accum A              micro-batches accumulated per step (default 1)
  --val-fraction F       held-out tail of the token file (default ${TRAIN_DEFAULTS.valFraction})
  --seed S               seed for initialisation and window sampling (default ${TRAIN_DEFAULTS.seed})
Optimizer
  --steps N              optimizer steps (required)
  --lr LR                peak learning rate (default ${TRAIN_DEFAULTS.lr})
  --min-lr LR            cosine floor (default lr/10)
  --warmup N             linear warmup steps (default min(100, steps/10))
  --schedule cosine|constant
  --beta1 B --beta2 B --eps E    AdamW (default 0.9, 0.95, 1e-8)
  --weight-decay WD      decoupled, on 2-D weights incl. the embedding; 0 on norms (default 0.1)
  --clip NORM            global-norm clipping, 0 = off (default 1.0)
  --loss-scale none|static|dynamic    loss scaling for fp16 compute (default none)
  --loss-scale-init S    initial/static scale (default 65536)
  --fp16-range           count |grad| > 65504 as overflow (emulates fp16 compute; skipped steps are logged)
Run
  --out DIR              checkpoints/, loss.svg, config.json
  --resume               continue from the newest checkpoint in --out (bit-identical to an uninterrupted run)
  --resume-from FILE     continue from a given checkpoint
  --eval-every N         validation loss every N steps (default ${TRAIN_DEFAULTS.evalEvery}; 0 = at the end)
  --eval-batches N       validation batches (default ${TRAIN_DEFAULTS.evalBatches})
  --sample-every N       print a generated sample every N steps (default 0 = off)
  --ckpt-every N         checkpoint every N steps (default ${TRAIN_DEFAULTS.ckptEvery}); always at the end
  --keep K               checkpoints kept (default ${TRAIN_DEFAULTS.keep})
  --log-json PATH        JSON lines (one per event) to PATH; "-" writes them to stdout instead of text lines
  --quiet                no per-step lines (JSON lines still written)
`;

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  s = Math.round(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Renders trainer events: text lines on stdout, a progress bar on a TTY stderr, JSON lines. */
export function eventPrinter(o: { json: string | null; quiet: boolean; stdout?: NodeJS.WriteStream; stderr?: NodeJS.WriteStream }): { emit: (e: TrainEvent) => void; close: () => void } {
  const out = o.stdout ?? process.stdout;
  const err = o.stderr ?? process.stderr;
  const jsonToStdout = o.json === '-';
  const jsonFd = o.json !== null && !jsonToStdout ? fs.openSync(o.json, 'a') : null;
  const tty = err.isTTY === true && !o.quiet;
  let bar = false;
  const clearBar = (): void => {
    if (bar) err.write('\r\x1b[K');
    bar = false;
  };
  const text = (s: string): void => {
    if (o.quiet || jsonToStdout) return;
    clearBar();
    out.write(s + '\n');
  };
  const emit = (e: TrainEvent): void => {
    const rec = JSON.stringify({ ...e, time: new Date().toISOString() }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
    if (jsonFd !== null) fs.writeSync(jsonFd, rec + '\n');
    if (jsonToStdout) out.write(rec + '\n');
    switch (e.type) {
      case 'start':
        text(`[train] ${(e.parameters / 1e6).toFixed(3)}M parameters, ${e.tokensPerStep} tokens/step, steps ${e.step + 1}..${e.steps}${e.resumedFrom ? ` (resumed from ${e.resumedFrom})` : ''}`);
        break;
      case 'step':
        text(
          `step ${String(e.step).padStart(String(e.steps).length)}/${e.steps} | loss ${e.loss.toFixed(4)} | lr ${e.lr.toExponential(2)} | grad ${Number.isFinite(e.gradNorm) ? e.gradNorm.toFixed(3) : 'overflow'}` +
            `${e.skipped ? ` | SKIPPED (loss scale -> ${e.lossScale})` : ''} | ${e.tokPerS.toFixed(0)} tok/s | ${e.ms.toFixed(0)} ms/step`,
        );
        if (tty) {
          const w = 30;
          const fill = Math.round((e.step / e.steps) * w);
          err.write(`\r[${'#'.repeat(fill)}${'.'.repeat(w - fill)}] ${e.step}/${e.steps} loss ${e.loss.toFixed(3)} ETA ${fmtTime(e.etaS)}\x1b[K`);
          bar = true;
        }
        break;
      case 'eval':
        text(`[eval] step ${e.step}: validation loss ${e.valLoss.toFixed(4)}`);
        break;
      case 'sample':
        text(`[sample] step ${e.step}: ${JSON.stringify(e.text)}`);
        break;
      case 'checkpoint':
        text(`[checkpoint] step ${e.step}: ${e.file} (plot ${e.plot})`);
        break;
      case 'done':
        text(`[done] step ${e.step}${e.valLoss !== null ? `, validation loss ${e.valLoss.toFixed(4)}` : ''} in ${fmtTime(e.ms / 1000)}`);
        break;
    }
  };
  return { emit, close: () => { clearBar(); if (jsonFd !== null) fs.closeSync(jsonFd); } };
}

export async function trainCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' }, model: { type: 'string' }, tokenizer: { type: 'string' }, precision: { type: 'string' },
      data: { type: 'string' }, seq: { type: 'string' }, batch: { type: 'string' }, accum: { type: 'string' }, 'val-fraction': { type: 'string' },
      seed: { type: 'string' }, steps: { type: 'string' }, lr: { type: 'string' }, 'min-lr': { type: 'string' }, warmup: { type: 'string' },
      schedule: { type: 'string' }, beta1: { type: 'string' }, beta2: { type: 'string' }, eps: { type: 'string' }, 'weight-decay': { type: 'string' },
      clip: { type: 'string' }, 'loss-scale': { type: 'string' }, 'loss-scale-init': { type: 'string' }, 'fp16-range': { type: 'boolean' },
      out: { type: 'string' }, resume: { type: 'boolean' }, 'resume-from': { type: 'string' }, 'eval-every': { type: 'string' },
      'eval-batches': { type: 'string' }, 'sample-every': { type: 'string' }, 'ckpt-every': { type: 'string' }, keep: { type: 'string' },
      'log-json': { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      backend: { type: 'string' }, threads: { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(TRAIN_HELP);
    return;
  }
  const outDir = str(values, 'out');
  if (outDir === undefined) throw new InvalidArgumentError('train: --out DIR is required');
  const printer = eventPrinter({ json: str(values, 'log-json') ?? null, quiet: values.quiet === true });
  const controller = new AbortController();
  const onSig = (): void => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\n[train] interrupted: finishing this step and writing a checkpoint (Ctrl-C again to quit now)\n');
    controller.abort();
  };
  process.on('SIGINT', onSig);
  const backendName = oneOf(values, 'backend', ['wasm', 'reference'] as const, 'wasm');
  const threads = num(values, 'threads', { int: true, min: 1 });
  const fast = backendName === 'wasm' ? await createFastTraining(threads === undefined ? {} : { threads }) : null;
  const compute = fast === null ? {} : { backends: fast.backends, gemm: fast.gemm };
  try {
    let trainer: Trainer;
    const resumeFrom = str(values, 'resume-from');
    const steps = num(values, 'steps', { int: true, min: 1 });
    if (values.resume === true || resumeFrom !== undefined) {
      let file = resumeFrom;
      if (file === undefined) {
        const all = listCheckpoints(path.join(outDir, 'checkpoints'));
        if (all.length === 0) throw new RistrettoError('NOT_FOUND', `--resume: no checkpoints in ${path.join(outDir, 'checkpoints')}`);
        file = all[all.length - 1]!.file;
        try {
          verifyCheckpoint(file);
        } catch (e) {
          if (!(e instanceof CheckpointError)) throw e;
          const prev = all.slice(0, -1).reverse().find((c) => {
            try {
              verifyCheckpoint(c.file);
              return true;
            } catch {
              return false;
            }
          });
          throw new RistrettoError('FORMAT', `${e.message}.${prev ? ` The previous good checkpoint is ${prev.file}: resume from it with --resume-from ${prev.file}` : ' No good checkpoint remains.'}`);
        }
      }
      trainer = Trainer.resume(file, { steps, outDir, dataPath: str(values, 'data'), ...compute });
    } else {
      const dataPath = str(values, 'data');
      if (dataPath === undefined) throw new InvalidArgumentError('train: --data data.bin is required (make one with ristretto tokenize)');
      if (steps === undefined) throw new InvalidArgumentError('train: --steps N is required');
      const configSpec = str(values, 'config');
      const modelPath = str(values, 'model');
      if ((configSpec === undefined) === (modelPath === undefined)) throw new InvalidArgumentError('train: give exactly one of --config (from scratch) and --model (fine-tune)');
      if (listCheckpoints(path.join(outDir, 'checkpoints')).length > 0) {
        throw new InvalidArgumentError(`${outDir} already holds checkpoints: pass --resume to continue, or choose another --out`);
      }
      const precision = oneOf(values, 'precision', ['f32', 'f64'] as const, 'f32');
      const seed = num(values, 'seed', { int: true, min: 0 }) ?? TRAIN_DEFAULTS.seed;
      const lr = num(values, 'lr', { min: 0 }) ?? TRAIN_DEFAULTS.lr;
      const mode = oneOf(values, 'loss-scale', ['none', 'static', 'dynamic'] as const, 'none');
      const options: TrainOptions = {
        ...TRAIN_DEFAULTS,
        steps,
        batch: num(values, 'batch', { int: true, min: 1 }) ?? TRAIN_DEFAULTS.batch,
        seqLen: num(values, 'seq', { int: true, min: 1 }) ?? TRAIN_DEFAULTS.seqLen,
        accum: num(values, 'accum', { int: true, min: 1 }) ?? 1,
        lr,
        minLr: num(values, 'min-lr', { min: 0 }) ?? lr / 10,
        warmup: num(values, 'warmup', { int: true, min: 0 }) ?? Math.min(100, Math.floor(steps / 10)),
        schedule: oneOf(values, 'schedule', ['cosine', 'constant'] as const, 'cosine'),
        beta1: num(values, 'beta1', { min: 0, max: 1 }) ?? TRAIN_DEFAULTS.beta1,
        beta2: num(values, 'beta2', { min: 0, max: 1 }) ?? TRAIN_DEFAULTS.beta2,
        eps: num(values, 'eps', { min: 0 }) ?? TRAIN_DEFAULTS.eps,
        weightDecay: num(values, 'weight-decay', { min: 0 }) ?? TRAIN_DEFAULTS.weightDecay,
        clip: num(values, 'clip', { min: 0 }) ?? TRAIN_DEFAULTS.clip,
        lossScale: {
          ...LOSS_SCALE_DEFAULTS, mode,
          initScale: num(values, 'loss-scale-init', { min: 1 }) ?? LOSS_SCALE_DEFAULTS.initScale,
          maxFinite: values['fp16-range'] === true ? 65504 : Infinity,
        },
        seed,
        valFraction: num(values, 'val-fraction', { min: 0, max: 0.9 }) ?? TRAIN_DEFAULTS.valFraction,
        evalEvery: num(values, 'eval-every', { int: true, min: 0 }) ?? TRAIN_DEFAULTS.evalEvery,
        evalBatches: num(values, 'eval-batches', { int: true, min: 1 }) ?? TRAIN_DEFAULTS.evalBatches,
        sampleEvery: num(values, 'sample-every', { int: true, min: 0 }) ?? 0,
        ckptEvery: num(values, 'ckpt-every', { int: true, min: 0 }) ?? TRAIN_DEFAULTS.ckptEvery,
        keep: num(values, 'keep', { int: true, min: 1 }) ?? TRAIN_DEFAULTS.keep,
        precision,
      };
      const data = new TokenFile(dataPath);
      const vocab = data.header.vocabSize;
      data.close();
      let tokenizerPath = str(values, 'tokenizer') ?? null;
      let config;
      let params;
      let source: string;
      if (modelPath !== undefined) {
        ({ config, params } = loadParams(modelPath, precision));
        source = modelPath;
        if (tokenizerPath === null) {
          const plan = planCheckpoint(modelPath);
          try {
            tokenizerPath = loadTokenizerFor(modelPath, plan).path;
          } catch {
            tokenizerPath = null;
          } finally {
            plan.source.close();
          }
        }
      } else {
        config = resolveConfig(configSpec!, vocab);
        params = initParams(config, seed, precision);
        source = path.basename(configSpec!);
      }
      if (tokenizerPath !== null) tokenizerPath = path.resolve(tokenizerPath);
      fs.mkdirSync(outDir, { recursive: true });
      fs.writeFileSync(path.join(outDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
      trainer = new Trainer({ config, params, options, outDir, dataPath, tokenizerPath, source, ...compute });
    }
    await trainer.run(printer.emit, controller.signal);
  } finally {
    fast?.dispose();
    process.off('SIGINT', onSig);
    printer.close();
  }
}
