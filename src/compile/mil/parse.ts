// MIL text reader: the emitted programs and hand-written MIL in the same syntax. Every error names
// the line and column.

import { parseHexFloat } from '../fp16.js';
import { MIL_DTYPES, MilError, type MilArg, type MilDType, type MilFunction, type MilLiteral, type MilProgram, type MilStatement, type MilType } from './ast.js';

type TokKind = 'ident' | 'number' | 'string' | 'punct' | 'eof';
interface Tok {
  kind: TokKind;
  text: string;
  line: number;
  col: number;
}

function tokenize(src: string, file: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  let line = 1;
  let col = 1;
  const adv = (n: number): void => {
    for (let k = 0; k < n; k++) {
      if (src[i] === '\n') {
        line++;
        col = 1;
      } else col++;
      i++;
    }
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      adv(1);
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') adv(1);
      continue;
    }
    const start = { line, col };
    if (c === '-' && src[i + 1] === '>') {
      toks.push({ kind: 'punct', text: '->', ...start });
      adv(2);
      continue;
    }
    if ('()[]{}<>,=;'.includes(c)) {
      toks.push({ kind: 'punct', text: c, ...start });
      adv(1);
      continue;
    }
    if (c === '"') {
      let s = '';
      adv(1);
      for (;;) {
        if (i >= src.length || src[i] === '\n') throw new MilError('unterminated string', start.line, start.col, file);
        const d = src[i]!;
        if (d === '"') {
          adv(1);
          break;
        }
        if (d === '\\') {
          const e = src[i + 1];
          s += e === 'n' ? '\n' : e === 't' ? '\t' : (e ?? '');
          adv(2);
          continue;
        }
        s += d;
        adv(1);
      }
      toks.push({ kind: 'string', text: s, ...start });
      continue;
    }
    const num = /^[+-]?(?:0[xX][0-9a-fA-F]*(?:\.[0-9a-fA-F]*)?(?:[pP][+-]?\d+)?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|nan)/.exec(src.slice(i, i + 64));
    if (num !== null && (/[\d.]/.test(c) || ((c === '-' || c === '+') && num[0].length > 1))) {
      toks.push({ kind: 'number', text: num[0], ...start });
      adv(num[0].length);
      continue;
    }
    const id = /^[A-Za-z_@][A-Za-z0-9_.@]*/.exec(src.slice(i, i + 256));
    if (id !== null) {
      toks.push({ kind: 'ident', text: id[0], ...start });
      adv(id[0].length);
      continue;
    }
    throw new MilError(`unexpected character ${JSON.stringify(c)}`, line, col, file);
  }
  toks.push({ kind: 'eof', text: '<end of input>', line, col });
  return toks;
}

function parseNumber(text: string): number {
  const t = text.replace(/^\+/, '');
  if (t === 'inf') return Infinity;
  if (t === '-inf') return -Infinity;
  if (t === 'nan' || t === '-nan') return NaN;
  const h = parseHexFloat(t);
  return h !== null ? h : Number(t);
}

class Parser {
  private p = 0;
  constructor(
    private readonly toks: Tok[],
    private readonly file: string,
  ) {}

  private peek(k = 0): Tok {
    return this.toks[Math.min(this.p + k, this.toks.length - 1)]!;
  }
  private next(): Tok {
    return this.toks[this.p++] ?? this.toks[this.toks.length - 1]!;
  }
  fail(msg: string, t: Tok = this.peek()): never {
    throw new MilError(msg, t.line, t.col, this.file);
  }
  private is(text: string): boolean {
    const t = this.peek();
    return (t.kind === 'punct' || t.kind === 'ident') && t.text === text;
  }
  private expect(text: string): Tok {
    const t = this.peek();
    if (!this.is(text)) this.fail(`expected "${text}", found ${t.kind === 'eof' ? 'the end of input' : `"${t.text}"`}`);
    return this.next();
  }
  private ident(what: string): Tok {
    const t = this.peek();
    if (t.kind !== 'ident') this.fail(`expected ${what}, found "${t.text}"`);
    return this.next();
  }
  private int(what: string): number {
    const t = this.peek();
    if (t.kind !== 'number' || !/^[+-]?\d+$/.test(t.text)) this.fail(`expected an integer (${what}), found "${t.text}"`);
    this.next();
    return Number(t.text);
  }

  program(): MilProgram {
    this.expect('program');
    this.expect('(');
    const v = this.peek();
    if (v.kind !== 'number') this.fail('expected the program version, e.g. program(1.3)');
    this.next();
    this.expect(')');
    const attrs = this.is('[') ? this.attrBlock() : [];
    this.expect('{');
    const functions: MilFunction[] = [];
    while (!this.is('}')) {
      if (this.peek().kind === 'eof') this.fail('unexpected end of input: missing "}" closing the program');
      functions.push(this.func());
    }
    this.expect('}');
    if (this.peek().kind !== 'eof') this.fail(`unexpected "${this.peek().text}" after the program`);
    if (functions.length === 0) this.fail('the program has no function');
    return { version: v.text, attrs, functions };
  }

  private func(): MilFunction {
    const ft = this.expect('func');
    const name = this.ident('a function name').text;
    this.expect('<');
    const opset = this.ident('an opset, e.g. ios18').text;
    this.expect('>');
    this.expect('(');
    const inputs: { type: MilType; name: string }[] = [];
    while (!this.is(')')) {
      const type = this.type();
      inputs.push({ type, name: this.ident('an input name').text });
      if (!this.is(')')) this.expect(',');
    }
    this.expect(')');
    this.expect('{');
    const body: MilStatement[] = [];
    while (!this.is('}')) {
      if (this.peek().kind === 'eof') this.fail(`unexpected end of input: function "${name}" is not closed`);
      body.push(this.statement());
    }
    this.expect('}');
    this.expect('->');
    this.expect('(');
    const outputs: string[] = [];
    while (!this.is(')')) {
      outputs.push(this.ident('an output name').text);
      if (!this.is(')')) this.expect(',');
    }
    this.expect(')');
    this.expect(';');
    return { name, opset, inputs, body, outputs, line: ft.line, col: ft.col };
  }

  private dtype(): MilDType {
    const t = this.ident('a dtype');
    if (!(MIL_DTYPES as readonly string[]).includes(t.text)) this.fail(`unknown dtype "${t.text}" (known: ${MIL_DTYPES.join(', ')})`, t);
    return t.text as MilDType;
  }

  private type(): MilType {
    if (this.is('tensor')) {
      this.next();
      this.expect('<');
      const dtype = this.dtype();
      this.expect(',');
      this.expect('[');
      const shape: number[] = [];
      while (!this.is(']')) {
        shape.push(this.int('a dimension'));
        if (!this.is(']')) this.expect(',');
      }
      this.expect(']');
      this.expect('>');
      return { dtype, shape };
    }
    return { dtype: this.dtype(), shape: null };
  }

  private statement(): MilStatement {
    const start = this.peek();
    const type = this.type();
    const name = this.ident('a value name').text;
    this.expect('=');
    const opTok = this.ident('an op name');
    this.expect('(');
    const args: { key: string; value: MilArg }[] = [];
    while (!this.is(')')) {
      const key = this.ident('an argument name').text;
      this.expect('=');
      args.push({ key, value: this.arg() });
      if (!this.is(')')) this.expect(',');
    }
    this.expect(')');
    const attrs = this.is('[') ? this.attrBlock() : [];
    this.expect(';');
    return { type, name, op: opTok.text, args, attrs, line: start.line, col: start.col };
  }

  private arg(): MilArg {
    if (this.is('(')) {
      this.next();
      const names: string[] = [];
      while (!this.is(')')) {
        names.push(this.ident('a value name').text);
        if (!this.is(')')) this.expect(',');
      }
      this.expect(')');
      return { kind: 'tuple', names };
    }
    const t = this.peek();
    if (t.kind === 'ident' && !(this.peek(1).kind === 'punct' && (this.peek(1).text === '(' || this.peek(1).text === '<'))) {
      this.next();
      return { kind: 'ref', name: t.text };
    }
    return { kind: 'literal', value: this.literal() };
  }

  private attrBlock(): { key: string; value: MilLiteral }[] {
    this.expect('[');
    const out: { key: string; value: MilLiteral }[] = [];
    while (!this.is(']')) {
      const key = this.ident('an attribute name').text;
      this.expect('=');
      out.push({ key, value: this.literal() });
      if (!this.is(']')) this.expect(',');
    }
    this.expect(']');
    return out;
  }

  private scalarValue(dtype: MilDType): number | boolean | string {
    const t = this.next();
    if (dtype === 'string') {
      if (t.kind !== 'string') this.fail(`expected a quoted string, found "${t.text}"`, t);
      return t.text;
    }
    if (dtype === 'bool') {
      if (t.text !== 'true' && t.text !== 'false') this.fail(`expected true or false, found "${t.text}"`, t);
      return t.text === 'true';
    }
    if (t.kind !== 'number' && !(t.kind === 'ident' && (t.text === 'inf' || t.text === 'nan'))) this.fail(`expected a ${dtype} number, found "${t.text}"`, t);
    const v = parseNumber(t.text);
    if (dtype !== 'fp16' && dtype !== 'fp32' && !Number.isInteger(v)) this.fail(`${dtype} value must be an integer, found ${t.text}`, t);
    if (Number.isNaN(v) && !/nan/.test(t.text)) this.fail(`malformed number "${t.text}"`, t);
    return v;
  }

  literal(): MilLiteral {
    const t = this.peek();
    if (this.is('dict')) {
      this.next();
      this.expect('<');
      const keyType = this.dtype();
      this.expect(',');
      const valueType = this.dtype();
      this.expect('>');
      this.expect('(');
      this.expect('{');
      const entries: [string, string][] = [];
      while (!this.is('}')) {
        this.expect('{');
        const k = this.next();
        this.expect(',');
        const v = this.next();
        if (k.kind !== 'string' || v.kind !== 'string') this.fail('dict entries must be {"key", "value"} strings', k);
        this.expect('}');
        entries.push([k.text, v.text]);
        if (!this.is('}')) this.expect(',');
      }
      this.expect('}');
      this.expect(')');
      return { kind: 'dict', keyType, valueType, entries };
    }
    if (t.kind !== 'ident') this.fail(`expected a typed literal such as fp16(...), int32(...) or tensor<...>(...), found "${t.text}"`);
    const type = this.type();
    this.expect('(');
    if (type.shape === null) {
      const value = this.scalarValue(type.dtype);
      this.expect(')');
      return { kind: 'scalar', dtype: type.dtype, value };
    }
    if (this.is('BLOBFILE')) {
      this.next();
      this.expect('(');
      let path: string | null = null;
      let offset: number | null = null;
      while (!this.is(')')) {
        const key = this.ident('path or offset');
        this.expect('=');
        const v = this.literal();
        if (key.text === 'path' && v.kind === 'scalar' && v.dtype === 'string') path = v.value as string;
        else if (key.text === 'offset' && v.kind === 'scalar' && v.dtype === 'uint64') offset = v.value as number;
        else this.fail(`BLOBFILE: unexpected ${key.text} = ... (want path = string(...), offset = uint64(...))`, key);
        if (!this.is(')')) this.expect(',');
      }
      this.expect(')');
      this.expect(')');
      if (path === null || offset === null) this.fail('BLOBFILE needs both path and offset', t);
      return { kind: 'blob', type, path, offset };
    }
    this.expect('[');
    const values: (number | boolean)[] = [];
    while (!this.is(']')) {
      values.push(this.scalarValue(type.dtype) as number | boolean);
      if (!this.is(']')) this.expect(',');
    }
    this.expect(']');
    this.expect(')');
    const n = type.shape.reduce((a, b) => a * b, 1);
    if (values.length !== n) this.fail(`tensor literal of shape [${type.shape.join(', ')}] needs ${n} values, has ${values.length}`, t);
    return { kind: 'tensor', type, values };
  }
}

/** Parses MIL text; throws MilError with line and column on malformed input. */
export function parseMil(text: string, file = '<mil>'): MilProgram {
  return new Parser(tokenize(text, file), file).program();
}
