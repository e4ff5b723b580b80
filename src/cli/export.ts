// `ristretto export`: a training checkpoint -> safetensors (HF folder), GGUF, or llama2.c .bin.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { RistrettoError } from '../errors.js';
import { listCheckpoints } from '../train/checkpoint.js';
import { exportCheckpoint } from '../train/export.js';
import { oneOf, required, str } from './args.js';

export const EXPORT_HELP = `Usage: ristretto export --checkpoint PATH --format safetensors|gguf|llama2c --out PATH

  --checkpoint PATH  a .ckpt file, a training --out folder or its checkpoints/ folder (the newest checkpoint)
  --format F         safetensors: an HF folder (config.json + model.safetensors [+ tokenizer.json])
                     gguf: one .gguf file (SentencePiece tokenizers are embedded)
                     llama2c: a run.c .bin (tok{vocab}.bin is copied beside it for llama2.c tokenizers)
  --out PATH         the folder (safetensors) or file to write
  --tokenizer PATH   the tokenizer to ship with the model (default: the one the run trained with)
`;

/** A checkpoint file from a file or a folder (newest inside `folder` or `folder/checkpoints`). */
export function resolveCheckpoint(p: string): string {
  if (!fs.existsSync(p)) throw new RistrettoError('NOT_FOUND', `${p}: no such checkpoint file or folder`);
  if (fs.statSync(p).isFile()) return p;
  const all = [...listCheckpoints(path.join(p, 'checkpoints')), ...listCheckpoints(p)].sort((a, b) => a.step - b.step);
  if (all.length === 0) throw new RistrettoError('NOT_FOUND', `${p}: no step-*.ckpt checkpoints here or in ${path.join(p, 'checkpoints')}`);
  return all[all.length - 1]!.file;
}

export async function exportCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: 'string' }, format: { type: 'string' }, out: { type: 'string' }, tokenizer: { type: 'string' },
      quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(EXPORT_HELP);
    return;
  }
  const ckpt = resolveCheckpoint(required(values, 'checkpoint', 'export'));
  const format = oneOf(values, 'format', ['safetensors', 'gguf', 'llama2c'] as const, 'safetensors');
  const r = exportCheckpoint(ckpt, format, required(values, 'out', 'export'), str(values, 'tokenizer'));
  if (values.quiet !== true) {
    process.stderr.write(`[ristretto] exported ${ckpt} -> ${r.path} (${r.format})${r.tokenizer ? `, tokenizer ${r.tokenizer}` : ''}\n`);
    if (r.note !== null) process.stderr.write(`[ristretto] note: ${r.note}\n`);
  }
}
