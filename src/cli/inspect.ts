// `ristretto inspect PATH`: what a checkpoint holds, read from headers only (no weights loaded).

import { parseArgs } from 'node:util';
import { numElements } from '../formats/tensor.js';
import { planCheckpoint } from '../runtime/load-model.js';
import { InvalidArgumentError } from '../errors.js';
import { archInfo, defaultContextLength } from '../models/index.js';
import { num } from './args.js';

const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;

export const INSPECT_HELP = `Usage: ristretto inspect PATH [--ctx N] [--json]

Prints the format, architecture, config, tensor count, parameter count and dtypes of a checkpoint
(llama2.c .bin, .gguf, or an HF folder) without loading its weights, and the memory a session
needs: weights + the KV cache at --ctx positions (default: the context a session gets by default).
`;

export async function inspectCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, ctx: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
  if (values.help) {
    process.stdout.write(INSPECT_HELP);
    return;
  }
  const p = positionals[0];
  if (p === undefined || positionals.length > 1) throw new InvalidArgumentError('inspect: give exactly one PATH');
  const plan = planCheckpoint(p);
  try {
    const tensors = plan.source.list();
    const dtypes: Record<string, number> = {};
    let parameters = 0;
    let bytes = 0;
    for (const t of tensors) {
      dtypes[t.typeName] = (dtypes[t.typeName] ?? 0) + 1;
      parameters += numElements(t.shape);
      bytes += t.byteLength;
    }
    const info = archInfo(plan.config);
    const ctx = num(values, 'ctx', { int: true, min: 1 }) ?? defaultContextLength(plan.config);
    // The KV cache holds f32 keys and values for every layer and position.
    const kvBytes = 2 * info.numLayers * ctx * info.kvDim * 4;
    const report = {
      path: p,
      format: plan.format,
      architecture: plan.architecture,
      config: plan.config,
      tensors: tensors.length,
      parameters,
      weight_bytes: bytes,
      dtypes,
      memory: { context: ctx, weight_bytes: bytes, kv_cache_bytes: kvBytes, total_bytes: bytes + kvBytes },
      bos_token_id: plan.bosId,
      eos_token_ids: plan.eosIds,
    };
    if (values.json) {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      return;
    }
    const lines = [
      `path:          ${p}`,
      `format:        ${plan.format}`,
      `architecture:  ${plan.architecture}`,
      `tensors:       ${tensors.length}`,
      `parameters:    ${parameters.toLocaleString('en-US')} (${(parameters / 1e6).toFixed(2)}M)`,
      `weight bytes:  ${bytes.toLocaleString('en-US')} (${(bytes / 2 ** 20).toFixed(1)} MiB)`,
      `dtypes:        ${Object.entries(dtypes).map(([k, v]) => `${k} x${v}`).join(', ')}`,
      `memory:        ${mib(bytes + kvBytes)} = weights ${mib(bytes)} + KV cache ${mib(kvBytes)} at ${ctx} positions (f32)`,
      `special ids:   bos ${plan.bosId ?? '-'}, eos ${plan.eosIds.join(', ') || '-'}`,
      'config:',
      ...Object.entries(plan.config).map(([k, v]) => `  ${k.padEnd(26)} ${JSON.stringify(v)}`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    plan.source.close();
  }
}
