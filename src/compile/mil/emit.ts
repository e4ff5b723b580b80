// MIL text emitter: exactly the syntax of shared/reference/ane.md.

import { hexFloat } from '../fp16.js';
import type { MilArg, MilLiteral, MilProgram, MilStatement, MilType, MilFunction, MilDType } from './ast.js';

export function emitType(t: MilType): string {
  return t.shape === null ? t.dtype : `tensor<${t.dtype}, [${t.shape.join(', ')}]>`;
}

function quote(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

function scalarText(dtype: MilDType, v: number | boolean | string): string {
  switch (dtype) {
    case 'fp16':
    case 'fp32':
      return hexFloat(v as number);
    case 'bool':
      return v ? 'true' : 'false';
    case 'string':
      return quote(String(v));
    default:
      return String(v);
  }
}

export function emitLiteral(l: MilLiteral): string {
  switch (l.kind) {
    case 'scalar':
      return `${l.dtype}(${scalarText(l.dtype, l.value)})`;
    case 'tensor':
      return `${emitType(l.type)}([${l.values.map((v) => scalarText(l.type.dtype, v)).join(', ')}])`;
    case 'blob':
      return `${emitType(l.type)}(BLOBFILE(path = string(${quote(l.path)}), offset = uint64(${l.offset})))`;
    case 'dict':
      return `dict<${l.keyType}, ${l.valueType}>({${l.entries.map(([k, v]) => `{${quote(k)}, ${quote(v)}}`).join(', ')}})`;
  }
}

function emitArg(a: MilArg): string {
  if (a.kind === 'ref') return a.name;
  if (a.kind === 'tuple') return `(${a.names.join(', ')})`;
  return emitLiteral(a.value);
}

export function emitStatement(s: MilStatement): string {
  const args = s.args.map((a) => `${a.key} = ${emitArg(a.value)}`).join(', ');
  const attrs = s.attrs.map((a) => `${a.key} = ${emitLiteral(a.value)}`).join(', ');
  return `${emitType(s.type)} ${s.name} = ${s.op}(${args})${attrs ? `[${attrs}]` : ''};`;
}

export function emitFunction(f: MilFunction): string {
  const inputs = f.inputs.map((i) => `${emitType(i.type)} ${i.name}`).join(', ');
  const lines = [`    func ${f.name}<${f.opset}>(${inputs}) {`];
  for (const s of f.body) lines.push(`        ${emitStatement(s)}`);
  lines.push(`    } -> (${f.outputs.join(', ')});`);
  return lines.join('\n');
}

export function emitProgram(p: MilProgram): string {
  const attrs = p.attrs.map((a) => `${a.key} = ${emitLiteral(a.value)}`).join(', ');
  const out = [`program(${p.version})`];
  if (attrs) out.push(`[${attrs}]`);
  out.push('{');
  out.push(p.functions.map(emitFunction).join('\n\n'));
  out.push('}');
  return out.join('\n') + '\n';
}
