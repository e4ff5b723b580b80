// The MIL program as data: what the emitter prints, the parser reads back and the interpreter runs.
// The text form is the one in shared/reference/ane.md (program(1.3), func main<ios18>, typed statements).

export type MilDType = 'fp16' | 'fp32' | 'int32' | 'int8' | 'uint8' | 'uint64' | 'bool' | 'string';

export const MIL_DTYPES: readonly MilDType[] = ['fp16', 'fp32', 'int32', 'int8', 'uint8', 'uint64', 'bool', 'string'];

/** A value type: a scalar (`shape` null) or a tensor (`shape` its dims; [] is rank 0). */
export interface MilType {
  dtype: MilDType;
  shape: number[] | null;
}

export type MilLiteral =
  | { kind: 'scalar'; dtype: MilDType; value: number | boolean | string }
  | { kind: 'tensor'; type: MilType; values: (number | boolean)[] }
  | { kind: 'blob'; type: MilType; path: string; offset: number }
  | { kind: 'dict'; keyType: MilDType; valueType: MilDType; entries: [string, string][] };

export type MilArg =
  | { kind: 'ref'; name: string }
  | { kind: 'tuple'; names: string[] }
  | { kind: 'literal'; value: MilLiteral };

export interface MilStatement {
  type: MilType;
  name: string;
  op: string;
  args: { key: string; value: MilArg }[];
  /** The attribute block `[name = string("q"), val = ...]`. */
  attrs: { key: string; value: MilLiteral }[];
  /** Source position (1-based) when parsed; 0 when built in memory. */
  line: number;
  col: number;
}

export interface MilFunction {
  name: string;
  opset: string;
  inputs: { type: MilType; name: string }[];
  body: MilStatement[];
  outputs: string[];
  line: number;
  col: number;
}

export interface MilProgram {
  version: string;
  attrs: { key: string; value: MilLiteral }[];
  functions: MilFunction[];
}

/** The buildInfo block the ANE generators emit. */
export const DEFAULT_BUILD_INFO: [string, string][] = [
  ['coremlc-component-MIL', '3510.2.1'],
  ['coremlc-version', '3505.4.1'],
  ['coremltools-component-milinternal', ''],
  ['coremltools-version', '9.0'],
];

/**
 * The ops the specification lists (ane.md "Ops used by the working kernels"), plus `const`, and the two
 * alternatives it names for the norm lowering switch (`rsqrt`, `layer_norm`).
 */
export const SPEC_OPS: readonly string[] = [
  'const', 'conv', 'matmul', 'softmax', 'reshape', 'transpose', 'add', 'sub', 'mul', 'real_div', 'pow',
  'reduce_sum', 'sigmoid', 'tanh', 'cast', 'concat', 'slice_by_size', 'rsqrt', 'layer_norm',
];

export class MilError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly col: number,
    readonly file = '<mil>',
  ) {
    super(`${file}:${line}:${col}: ${message}`);
    this.name = 'MilError';
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Op counts of a function, by op name (consts included). */
export function opCounts(f: MilFunction): Record<string, number> {
  const c: Record<string, number> = {};
  for (const s of f.body) c[s.op] = (c[s.op] ?? 0) + 1;
  return c;
}
