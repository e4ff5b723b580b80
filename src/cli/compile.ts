// `ristretto compile --model PATH --target ane --buckets 32,64,128 --out DIR`: write an ANE bundle
// (MIL programs, weight blobs, manifest with the placement plan).

import { parseArgs } from 'node:util';
import { compileBundle, writeBundle } from '../compile/bundle.js';
import type { NormLowering } from '../compile/lower-ane.js';
import { InvalidArgumentError } from '../errors.js';
import { loadModel } from '../runtime/load-model.js';
import { num, oneOf, required, str } from './args.js';

export const COMPILE_HELP = `Usage: ristretto compile --model PATH --target ane --out DIR [options]

  --model PATH        checkpoint: llama2.c .bin, .gguf, or an HF folder
  --tokenizer PATH    tokenizer when not beside or inside the model (used for the fp16 calibration text)
  --target ane        the compile target (ane: MIL programs + weight blobs)
  --buckets LIST      prefill sequence-length buckets, comma-separated (default 32,64,128)
  --out DIR           bundle directory to write
  --norm KIND         RMSNorm lowering: pow (default: reduce_sum, pow(-0.5)) | rsqrt | layernorm (cat([x,-x]) + layer_norm)
  --fuse N            layers per program: 0 = separate attention and FFN programs (default: the plan decides)
  --budget N          compiles allowed per process (default 100)
  --quiet             no summary on stderr
`;

export function parseBuckets(s: string | undefined): number[] {
  if (s === undefined) return [32, 64, 128];
  const b = s.split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number);
  if (b.length === 0 || b.some((x) => !Number.isInteger(x) || x <= 0)) throw new InvalidArgumentError(`--buckets: expected positive integers like 32,64,128, got ${JSON.stringify(s)}`);
  return b;
}

export const CALIBRATION_TEXT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she saw a big red ball.';

export async function compileCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, tokenizer: { type: 'string' }, target: { type: 'string' }, buckets: { type: 'string' },
      out: { type: 'string' }, norm: { type: 'string' }, fuse: { type: 'string' }, budget: { type: 'string' },
      quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
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
  const model = await loadModel(modelPath, { tokenizer: str(values, 'tokenizer') });
  const ids = model.tokenizer.encode(CALIBRATION_TEXT);
  const t0 = performance.now();
  const bundle = compileBundle(
    { config: model.config, architecture: model.info.architecture, parameter: (n) => model.parameters().get(n) },
    {
      buckets: parseBuckets(str(values, 'buckets')),
      norm: oneOf(values, 'norm', ['pow', 'rsqrt', 'layernorm'] as const, 'pow') as NormLowering,
      layersPerProgram: num(values, 'fuse', { int: true, min: 0 }),
      budget: num(values, 'budget', { int: true, min: 1 }),
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
        `${bundle.blobs.size} weight files (${(bytes / 1e6).toFixed(2)} MB), classifier on the ${m.plan.classifier.device.toUpperCase()}, ` +
        `residual scale ${m.residualScale}, in ${(performance.now() - t0).toFixed(0)} ms -> ${out}\n`,
    );
    for (const r of m.plan.reasons) process.stderr.write(`[ristretto]   ${r}\n`);
  }
  model.dispose();
}
