// The bundled default model (models/default/, made by `npm run train:default`): used by `generate`
// and `chat` when no --model is given. Resolved relative to the package, never the working directory.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RistrettoError } from '../errors.js';
import { str } from './args.js';

export const DEFAULT_MODEL_FILE = 'models/default/ristretto-stories-1m.gguf';

/** The package root: the nearest folder above this module holding ristretto's package.json. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if ((JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === 'ristretto') return dir;
      } catch {
        // not ours: keep looking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
    dir = up;
  }
}

/** Absolute path of the bundled default model. */
export function defaultModelPath(): string {
  return path.join(packageRoot(), DEFAULT_MODEL_FILE);
}

/** --model when given, else the bundled default model (an error when it is missing). */
export function modelOrDefault(values: Record<string, unknown>, command: string): string {
  const m = str(values, 'model');
  if (m !== undefined) return m;
  const p = defaultModelPath();
  if (!fs.existsSync(p)) {
    throw new RistrettoError('NOT_FOUND', `${command}: no --model given and the default model ${p} is missing (reinstall, or run npm run train:default)`);
  }
  return p;
}
