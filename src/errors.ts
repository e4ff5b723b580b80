// Typed errors. Every error names where it happened (file, field or tensor),
// what was expected and what was found, so a user can act on it without a debugger.

export type ErrorCode =
  | 'FORMAT' // a file is malformed, truncated or hostile
  | 'UNSUPPORTED' // a valid file uses something we do not implement
  | 'NOT_FOUND' // a file or tensor is missing
  | 'CONFIG' // a model config is inconsistent
  | 'CONTEXT_LENGTH' // a sequence would exceed the model's context
  | 'INVALID_ARGUMENT' // an API or CLI argument is wrong
  | 'ABORTED'; // an AbortSignal fired

export class RistrettoError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'RistrettoError';
  }
}

export interface FormatErrorDetails {
  file: string;
  /** The field, tensor or section being read, e.g. `tensor "blk.0.attn_q.weight"` or `header.n_layers`. */
  where: string;
  expected?: string;
  found?: string;
}

/** A malformed, truncated or hostile file. */
export class FormatError extends RistrettoError {
  readonly file: string;
  readonly where: string;
  readonly expected?: string;
  readonly found?: string;
  constructor(d: FormatErrorDetails, options?: { cause?: unknown }) {
    const parts = [`${d.file}: ${d.where}`];
    if (d.expected !== undefined) parts.push(`expected ${d.expected}`);
    if (d.found !== undefined) parts.push(`found ${d.found}`);
    super('FORMAT', parts.join(': '), options);
    this.name = 'FormatError';
    this.file = d.file;
    this.where = d.where;
    this.expected = d.expected;
    this.found = d.found;
  }
}

/** A well-formed file that uses a feature (dtype, architecture, version) we do not support. */
export class UnsupportedError extends RistrettoError {
  constructor(message: string) {
    super('UNSUPPORTED', message);
    this.name = 'UnsupportedError';
  }
}

export class ContextLengthError extends RistrettoError {
  readonly limit: number;
  readonly requested: number;
  constructor(requested: number, limit: number, what = 'sequence') {
    super('CONTEXT_LENGTH', `${what} needs ${requested} positions but the model's context is ${limit}`);
    this.name = 'ContextLengthError';
    this.limit = limit;
    this.requested = requested;
  }
}

export class InvalidArgumentError extends RistrettoError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
    this.name = 'InvalidArgumentError';
  }
}

export class AbortError extends RistrettoError {
  constructor(message = 'the operation was aborted') {
    super('ABORTED', message);
    this.name = 'AbortError';
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(signal.reason instanceof Error ? signal.reason.message : undefined);
}
