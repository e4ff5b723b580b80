// `ristretto compile --model PATH --target ane --buckets 32,64,128 --out DIR`: write an ANE bundle
// (MIL programs, weight blobs, manifest with the placement plan).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { compileBundle, writeBundle, type CompileSource } from '../compile/bundle.js';
import type { GeluErfLowering, NormLowering } from '../compile/lower-ane.js';
import { loadEmbeddingModel } from '../runtime/embed.js';
import { InvalidArgumentError } from '../errors.js';
import { loadModel } from '../runtime/load-model.js';
import { num, oneOf, required, str } from './args.js';

export const COMPILE_HELP = `Usage: ristretto compile --model PATH --target ane --out DIR [options]

  --model PATH        checkpoint: llama2.c .bin, .gguf, or an HF folder; encoder folders (BERT, Qwen3 with
                      is_causal false) compile as encoders: no classifier, the output program returns the final
                      hidden states, attention programs take the key-padding mask as an input
  --tokenizer PATH    tokenizer when not beside or inside the model (used for the fp16 calibration text)
  --target ane        the compile target (ane: MIL programs + weight blobs)
  --buckets LIST      prefill sequence-length buckets, comma-separated (default 32,64,128)
  --out DIR           bundle directory to write
  --norm KIND         RMSNorm lowering: pow (default: reduce_sum, pow(-0.5)) | rsqrt | layernorm (cat([x,-x]) + layer_norm)
  --fuse N            layers per program: 0 = separate attention and FFN programs (default: the plan decides)
  --budget N          compiles allowed per process (default 100)
  --context N         decoders: longest prompt prefilled on the ANE; prompts longer than the largest bucket B run in
                      chunks of B through chunked-prefill attention programs (K/V cache, mask and RoPE inputs)
                      (default: the trained context, at most 2048; 0: none, longer prompts finish on the CPU)
  --gelu-erf KIND     exact (erf) GELU lowering: rational (default: x sigmoid(rational(x)), max error 5.6e-5) | tanh
  --quiet             no summary on stderr
`;

export function parseBuckets(s: string | undefined): number[] {
  if (s === undefined) return [32, 64, 128];
  const b = s.split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number);
  if (b.length === 0 || b.some((x) => !Number.isInteger(x) || x <= 0)) throw new InvalidArgumentError(`--buckets: expected positive integers like 32,64,128, got ${JSON.stringify(s)}`);
  return b;
}

/** An HF folder holding an encoder: BERT, or Qwen3 with is_causal false / use_bidirectional_attention. */
export function isEncoderFolder(modelPath: string): boolean {
  if (!fs.existsSync(modelPath)) return false;
  const dir = fs.statSync(modelPath).isDirectory() ? modelPath : path.dirname(modelPath);
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) return false;
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  const archs = Array.isArray(raw['architectures']) ? (raw['architectures'] as unknown[]).map(String) : [];
  if (raw['model_type'] === 'bert' || (raw['model_type'] === undefined && archs.some((a) => a.startsWith('Bert')))) return true;
  return raw['model_type'] === 'qwen3' && (raw['is_causal'] === false || raw['use_bidirectional_attention'] === true);
}

export const CALIBRATION_TEXT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she saw a big red ball.';

export async function compileCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, tokenizer: { type: 'string' }, target: { type: 'string' }, buckets: { type: 'string' },
      out: { type: 'string' }, norm: { type: 'string' }, fuse: { type: 'string' }, budget: { type: 'string' },
      quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, 'gelu-erf': { type: 'string' }, context: { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(COMPILE_HELP);
    return;
  }
  oneOf(values, 'target', ['ane'] as const, 'ane');
  const out = required(values, 'out', 'compile');
  const modelPath = required(values, 'model', 'compile');
  const encoder = isEncoderFolder(modelPath);
  let model: { tokenizer: { encode(s: string): number[] }; dispose(): void };
  let source: CompileSource;
  if (encoder) {
    const m = await loadEmbeddingModel(modelPath, { tokenizer: str(values, 'tokenizer'), onWarning: () => {} });
    model = m;
    source = { config: m.config, architecture: `${m.config.model_type} encoder`, parameter: (n) => m.parameter(n) };
  } else {
    const m = await loadModel(modelPath, { tokenizer: str(values, 'tokenizer') });
    model = m;
    source = { config: m.config, architecture: m.info.architecture, parameter: (n) => m.parameters().get(n) };
  }
  const ids = model.tokenizer.encode(CALIBRATION_TEXT);
  const t0 = performance.now();
  const bundle = compileBundle(
    source,
    {
      encoder,
      geluErf: oneOf(values, 'gelu-erf', ['rational', 'tanh'] as const, 'rational') as GeluErfLowering,
      buckets: parseBuckets(str(values, 'buckets')),
      norm: oneOf(values, 'norm', ['pow', 'rsqrt', 'layernorm'] as const, 'pow') as NormLowering,
      layersPerProgram: num(values, 'fuse', { int: true, min: 0 }),
      budget: num(values, 'budget', { int: true, min: 1 }),
      context: num(values, 'context', { int: true, min: 0 }),
      calibrationIds: ids.length > 0 ? ids : undefined,
      modelPath,
    },
  );
  writeBundle(bundle, out);
  if (values.quiet !== true) {
    const m = bundle.manifest;
    const bytes = [...bundle.blobs.values()].reduce((a, b) => a + b.length, 0);
    process.stderr.write(
      `[ristretto] ${m.programs.length} programs (${m.plan.programsPerBucket} per bucket x buckets ${m.buckets.join(', ')}), ` +
        `${bundle.blobs.size} weight files (${(bytes / 1e6).toFixed(2)} MB), ${m.encoder ? 'encoder (no classifier: final hidden states out, key_mask input)' : `classifier on the ${m.plan.classifier.device.toUpperCase()}`}, ` +
        `residual scale ${m.residualScale}, in ${(performance.now() - t0).toFixed(0)} ms -> ${out}\n`,
    );
    for (const r of m.plan.reasons) process.stderr.write(`[ristretto]   ${r}\n`);
  }
  model.dispose();
}
