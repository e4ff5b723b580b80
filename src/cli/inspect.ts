// `ristretto inspect PATH`: what a checkpoint holds, read from headers only (no weights loaded).

import { parseArgs } from 'node:util';
import { numElements } from '../formats/tensor.js';
import { planCheckpoint } from '../runtime/load-model.js';
import { InvalidArgumentError } from '../errors.js';

export const INSPECT_HELP = `Usage: ristretto inspect PATH [--json]

Prints the format, architecture, config, tensor count, parameter count and dtypes of a checkpoint
(llama2.c .bin, .gguf, or an HF folder) without loading its weights.
`;

export async function inspectCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
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
    const report = {
      path: p,
      format: plan.format,
      architecture: plan.architecture,
      config: plan.config,
      tensors: tensors.length,
      parameters,
      weight_bytes: bytes,
      dtypes,
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
      `special ids:   bos ${plan.bosId ?? '-'}, eos ${plan.eosIds.join(', ') || '-'}`,
      'config:',
      ...Object.entries(plan.config).map(([k, v]) => `  ${k.padEnd(26)} ${JSON.stringify(v)}`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    plan.source.close();
  }
}
