// Reading typed fields out of an HF `config.json` object, with errors naming the key.

import { RistrettoError } from '../errors.js';

export interface ConfigFields {
  num(key: string, dflt?: number): number;
  /** The first key present among `keys` (GPT-2 has n_embd where others have hidden_size). */
  numOf(keys: string[], dflt?: number): number;
  bool(key: string, dflt: boolean): boolean;
}

export function configFields(c: Record<string, unknown>, what: string): ConfigFields {
  const num = (k: string, dflt?: number): number => {
    const v = c[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      throw new RistrettoError('CONFIG', `config.json: "${k}" is required for a ${what} model`);
    }
    throw new RistrettoError('CONFIG', `config.json: "${k}" must be a number, found ${JSON.stringify(v)}`);
  };
  return {
    num,
    numOf: (keys, dflt) => {
      const k = keys.find((x) => c[x] !== undefined && c[x] !== null);
      return num(k ?? keys[0]!, dflt);
    },
    bool: (k, dflt) => {
      const v = c[k];
      if (v === undefined || v === null) return dflt;
      if (typeof v !== 'boolean') throw new RistrettoError('CONFIG', `config.json: "${k}" must be true or false, found ${JSON.stringify(v)}`);
      return v;
    },
  };
}

export function requirePositiveInts(cfg: object, keys: readonly string[], what: string): void {
  for (const k of keys) {
    const v = (cfg as Record<string, unknown>)[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new RistrettoError('CONFIG', `${what} config: ${k} must be a positive integer, found ${String(v)}`);
    }
  }
}
