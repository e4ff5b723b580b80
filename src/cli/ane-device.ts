// `--device ane-sim` for generate: prefill through a compiled ANE bundle's programs on the MIL interpreter,
// decode on the CPU. Uses --bundle DIR when given, else compiles the model in memory at --buckets.

import { compileBundle, loadBundle } from '../compile/bundle.js';
import { AneSimulator, aneSimTarget } from '../runtime/ane-sim.js';
import type { GenerationTarget } from '../runtime/generate.js';
import type { Model } from '../runtime/model.js';
import { RistrettoError } from '../errors.js';
import { CALIBRATION_TEXT, parseBuckets } from './compile.js';

export async function deviceTarget(model: Model, device: 'cpu' | 'ane-sim', bundleDir: string | undefined, buckets: string | undefined, quiet: boolean): Promise<GenerationTarget> {
  if (device === 'cpu') return model;
  const loaded = loadBundle(
    bundleDir ??
      compileBundle(
        { config: model.config, architecture: model.info.architecture, parameter: (n) => model.parameters().get(n) },
        { buckets: parseBuckets(buckets), calibrationIds: model.tokenizer.encode(CALIBRATION_TEXT), modelPath: model.info.path },
      ),
  );
  const m = loaded.manifest;
  if (JSON.stringify(m.model.config) !== JSON.stringify(model.config)) {
    throw new RistrettoError('INVALID_ARGUMENT', `--bundle ${bundleDir}: compiled for a different model config (${m.model.architecture}, ${m.model.numLayers} layers, dim ${m.model.dim}); recompile with ristretto compile`);
  }
  if (!quiet) {
    process.stderr.write(`[ristretto] ane-sim: prefill through ${m.plan.programsPerBucket} programs per bucket (buckets ${m.buckets.join(', ')}) on the MIL interpreter${m.chunked ? `, prompts longer than ${m.chunked.bucket} in chunks of ${m.chunked.bucket} through ${m.chunked.groups.length} chunked-prefill programs (up to ${m.chunked.maxPrompt} tokens)` : ''}, decode on the CPU; classifier on the ${m.plan.classifier.device.toUpperCase()}\n`);
  }
  return aneSimTarget(model, new AneSimulator(loaded, model));
}
