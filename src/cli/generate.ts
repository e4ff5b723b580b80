// `ristretto generate`: stream a continuation to stdout (text) or print one JSON object.

import { parseArgs } from 'node:util';
import { loadModel } from '../runtime/load-model.js';
import { archInfo } from '../models/index.js';
import { InvalidArgumentError } from '../errors.js';
import { num, oneOf, str } from './args.js';
import { modelOrDefault } from './default-model.js';
import { progressReporter } from './progress.js';
import { generate } from '../runtime/generate.js';
import { deviceTarget } from './ane-device.js';
import { BACKEND_CHOICES } from '../runtime/backends.js';

export const GENERATE_HELP = `Usage: ristretto generate [--model PATH] [options]

  --model PATH          checkpoint: llama2.c .bin, .gguf, or an HF folder (config.json + safetensors)
                        (default: the bundled story model, models/default/ristretto-stories-1m.gguf)
  --tokenizer PATH      tokenizer.bin / tokenizer.json / .gguf when not beside or inside the model
  --prompt TEXT         the prompt (default: empty, i.e. BOS only)
  --max-tokens N        new tokens to generate at most (default 256; capped by the context)
  --steps N             llama2.c run.c semantics instead: total positions incl. the prompt
  --temperature T       0 = greedy (default 1.0)
  --top-p P             nucleus mass (default 0.9); 1 disables
  --top-k K             keep the K most likely tokens (default off)
  --min-p P             drop tokens below P x the top probability (default off)
  --repeat-penalty R    llama.cpp-style repetition penalty over the last 64 tokens (default 1: off)
  --ctx N               KV-cache length (default: the trained context, at least 2048 for RoPE models)
  --seed S              RNG seed (default: random)
  --sampler NAME        default | llama2c (exactly run.c's sampler; the default equals it without top-k/min-p/penalties)
  --stop TEXT           stop when the text contains TEXT (repeatable)
  --output FORMAT       text (stream the continuation to stdout) | json (one object with prompt_ids, generated_ids, text)
  --quiet               no progress or statistics on stderr
  --backend NAME        auto (default: WebAssembly SIMD when available) | wasm | reference (plain TypeScript, the oracle)
  --threads N           threads of the wasm backend (default: the machine's; small work stays on one)
  --device DEV          cpu (default) | ane-sim: prefill through compiled ANE programs on the MIL interpreter, decode on the CPU
  --bundle DIR          ane-sim: a bundle from ristretto compile (default: compile in memory)
  --buckets LIST        ane-sim without --bundle: prefill buckets (default 32,64,128)
`;

export async function generateCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, tokenizer: { type: 'string' }, prompt: { type: 'string' },
      'max-tokens': { type: 'string' }, steps: { type: 'string' }, temperature: { type: 'string' },
      'top-p': { type: 'string' }, 'top-k': { type: 'string' }, 'min-p': { type: 'string' },
      'repeat-penalty': { type: 'string' }, ctx: { type: 'string' }, seed: { type: 'string' }, sampler: { type: 'string' },
      stop: { type: 'string', multiple: true }, output: { type: 'string' }, quiet: { type: 'boolean' },
      device: { type: 'string' }, bundle: { type: 'string' }, buckets: { type: 'string' },
      backend: { type: 'string' }, threads: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(GENERATE_HELP);
    return;
  }
  const output = oneOf(values, 'output', ['text', 'json'] as const, 'text');
  const quiet = values.quiet === true;
  const maxTokensFlag = num(values, 'max-tokens', { int: true, min: 0 });
  const steps = num(values, 'steps', { int: true, min: 1 });
  if (maxTokensFlag !== undefined && steps !== undefined) throw new InvalidArgumentError('--max-tokens and --steps exclude each other');

  // Validate every flag before the (possibly slow) load.
  const sampling = {
    temperature: num(values, 'temperature', { min: 0 }),
    topP: num(values, 'top-p', { min: 0, max: 1 }),
    topK: num(values, 'top-k', { int: true, min: 0 }),
    minP: num(values, 'min-p', { min: 0, max: 1 }),
    repetitionPenalty: num(values, 'repeat-penalty', { min: 0 }),
    seed: num(values, 'seed', { int: true, min: 1 }),
    sampler: oneOf(values, 'sampler', ['default', 'llama2c'] as const, 'default'),
  };
  const contextLength = num(values, 'ctx', { int: true, min: 1 });
  const backend = oneOf(values, 'backend', BACKEND_CHOICES, 'auto');
  const threads = num(values, 'threads', { int: true, min: 1 });
  const modelPath = modelOrDefault(values, 'generate');
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const model = await loadModel(modelPath, {
    tokenizer: str(values, 'tokenizer'),
    onProgress: quiet ? undefined : progressReporter(),
    signal: controller.signal,
    contextLength,
    backend,
    threads,
  });
  const prompt = str(values, 'prompt') ?? '';
  const promptIds = model.tokenizer.encode(prompt, { addSpecialTokens: true });
  // run.c: `steps` positions in all; the prompt uses len-1 of them before the first sample.
  const maxTokens = steps !== undefined ? Math.max(0, steps - promptIds.length + 1) : (maxTokensFlag ?? 256);
  const trained = archInfo(model.config).maxPositions;
  if (!quiet && promptIds.length + maxTokens - 1 > trained) {
    process.stderr.write(`[ristretto] warning: up to ${promptIds.length + maxTokens - 1} positions requested; the model was trained with ${trained}\n`);
  }
  const target = await deviceTarget(model, oneOf(values, 'device', ['cpu', 'ane-sim'] as const, 'cpu'), str(values, 'bundle'), str(values, 'buckets'), quiet);
  const result = await generate(target, promptIds, {
    maxTokens,
    ...sampling,
    stop: values.stop,
    signal: controller.signal,
    onToken: output === 'text' ? (e) => e.text && process.stdout.write(e.text) : undefined,
  });
  if (output === 'json') {
    process.stdout.write(JSON.stringify({ prompt_ids: result.promptIds, generated_ids: result.generatedIds, text: result.text, finish_reason: result.finishReason }) + '\n');
  } else {
    process.stdout.write('\n');
  }
  if (!quiet) {
    const t = result.timings;
    process.stderr.write(
      `[ristretto] prompt ${result.promptIds.length} tokens (${t.prefillTokensPerS.toFixed(1)} tok/s), ` +
        `generated ${result.generatedIds.length} (${t.decodeTokensPerS.toFixed(1)} tok/s), finish: ${result.finishReason}\n`,
    );
  }
  model.dispose();
}
