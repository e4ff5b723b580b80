// Small helpers over node:util parseArgs: typed numbers with errors that name the flag.

import { InvalidArgumentError } from '../errors.js';

export function num(values: Record<string, unknown>, flag: string, opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  const v = values[flag];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`--${flag}: expected a number, got ${JSON.stringify(v)}`);
  if (opts.int && !Number.isInteger(n)) throw new InvalidArgumentError(`--${flag}: expected an integer, got ${v}`);
  if (opts.min !== undefined && n < opts.min) throw new InvalidArgumentError(`--${flag}: must be >= ${opts.min}, got ${v}`);
  if (opts.max !== undefined && n > opts.max) throw new InvalidArgumentError(`--${flag}: must be <= ${opts.max}, got ${v}`);
  return n;
}

export function str(values: Record<string, unknown>, flag: string): string | undefined {
  const v = values[flag];
  return typeof v === 'string' ? v : undefined;
}

export function oneOf<T extends string>(values: Record<string, unknown>, flag: string, allowed: readonly T[], dflt: T): T {
  const v = values[flag];
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new InvalidArgumentError(`--${flag}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

export function required(values: Record<string, unknown>, flag: string, command: string): string {
  const v = str(values, flag);
  if (v === undefined) throw new InvalidArgumentError(`${command}: --${flag} is required`);
  return v;
}
