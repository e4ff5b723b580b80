// Jinja for chat templates, rendered the way HF transformers renders them with Python Jinja2
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, transformers' `tojson`).
//
// The lexer, parser and most of the interpreter are @huggingface/jinja's. Where its runtime differs from
// Python Jinja2 we subclass its Interpreter and give the Python behaviour instead (never per model):
//   - output and `~`/`string` use Python's str(): None/True/False, list/dict/tuple repr, float repr (1.0, 1e-05)
//   - `tojson` is Python's json.dumps (", " and ": " separators, float repr, ensure_ascii, indent, sort_keys)
//   - str methods take Python's arguments (strip/lstrip/rstrip(chars), capitalize lower-cases the rest,
//     title, find/rfind/index/count, splitlines, removeprefix/removesuffix, isdigit/isspace/..., format with {})
//   - `trim` strips Python whitespace (\x1c-\x1f, \x85, not U+FEFF) and takes chars
//   - `==`/`!=`/`in` compare like Python (lists and dicts by value; Undefined != None)
//   - string comparison `<`, `str * int`, iterating a string (characters) or Undefined (nothing)
//   - attribute access on Undefined raises (Jinja2's default Undefined), as does `raise_exception`
//   - filters it lacks: list/sum/min/max/select/reject/map(filter)/format/wordcount/first/last on strings,
//     length of undefined (0), reverse of strings, escape, center, round, abs
//   - tests it lacks: float, divisibleby via filter syntax, iterable/sequence on dicts, sameas
//   - `{%+` / `+%}` whitespace modifiers and exponent float literals (1e3): rewritten in the source (pythonJinjaSyntax)
// Known remaining differences: numbers parsed from JSON lose the int/float distinction (2.0 arrives as 2);
// tests with arguments written without parentheses (`is divisibleby 3`).

import { Environment, Interpreter, parse, tokenize } from '@huggingface/jinja';

/** A template error: raise_exception() in the template, or a failure to parse/evaluate it. */
export class TemplateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TemplateError';
  }
}

// ---- runtime value classes (the package does not export them; take them from live instances) ----

/* eslint-disable @typescript-eslint/no-explicit-any */
type RV = any;
type Ctor = new (value?: any) => RV;

const probe = new Environment();
probe.set('s', '');
probe.set('i', 1);
probe.set('f', 1.5);
probe.set('b', true);
probe.set('n', null);
probe.set('a', []);
probe.set('o', {});
probe.set('fn', () => 0);
const K = {
  String: probe.lookupVariable('s').constructor as Ctor,
  Integer: probe.lookupVariable('i').constructor as Ctor,
  Float: probe.lookupVariable('f').constructor as Ctor,
  Boolean: probe.lookupVariable('b').constructor as Ctor,
  Null: probe.lookupVariable('n').constructor as Ctor,
  Array: probe.lookupVariable('a').constructor as Ctor,
  Object: probe.lookupVariable('o').constructor as Ctor,
  Function: probe.lookupVariable('fn').constructor as Ctor,
  Undefined: probe.lookupVariable('__nope__').constructor as Ctor,
};
const TupleCtor = (new (Interpreter as unknown as new (e: unknown) => { evaluate(n: unknown, e: unknown): RV })(probe)).evaluate({ type: 'TupleLiteral', value: [] }, probe).constructor as Ctor;
const tuple = (xs: RV[]): RV => new TupleCtor(xs);
const str = (s: string): RV => new K.String(s);
const int = (n: number): RV => new K.Integer(n);
const float = (n: number): RV => new K.Float(n);
const bool = (b: boolean): RV => new K.Boolean(b);
const none = (): RV => new K.Null(null);
const undef = (): RV => new K.Undefined();
const arr = (xs: RV[]): RV => new K.Array(xs);
const fn = (f: (args: RV[]) => RV): RV => new K.Function((args: RV[]) => f(args));

const isStr = (v: RV): boolean => v?.type === 'StringValue';
const isInt = (v: RV): boolean => v?.type === 'IntegerValue';
const isFloat = (v: RV): boolean => v?.type === 'FloatValue';
const isNum = (v: RV): boolean => isInt(v) || isFloat(v);
const isBool = (v: RV): boolean => v?.type === 'BooleanValue';
const isArr = (v: RV): boolean => v?.type === 'ArrayValue' || v?.type === 'TupleValue';
const isObj = (v: RV): boolean => v?.type === 'ObjectValue' || v?.type === 'KeywordArgumentsValue';
const isNs = (v: RV): boolean => v?.type === 'NamespaceValue';
const isUndef = (v: RV): boolean => v?.type === 'UndefinedValue';
const isNull = (v: RV): boolean => v?.type === 'NullValue';

// ---- Python str(), repr(), json.dumps ----

/** Python's repr() of a float. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expStr] = x.toExponential().split('e') as [string, string];
  const e = Number(expStr);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let out: string;
  if (e >= -4 && e < 16) {
    if (e >= 0) {
      const intPart = digits.slice(0, e + 1).padEnd(e + 1, '0');
      const frac = digits.slice(e + 1);
      out = `${intPart}.${frac.length > 0 ? frac : '0'}`;
    } else {
      out = `0.${'0'.repeat(-e - 1)}${digits}`;
    }
  } else {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    out = `${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  return neg ? `-${out}` : out;
}

/** Python's repr() of a str. */
export function pyStrRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === q) out += `\\${q}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c > 0x7f && /[\p{C}\p{Z}]/u.test(ch) && ch !== ' ') {
      out += c <= 0xff ? `\\x${c.toString(16).padStart(2, '0')}` : c <= 0xffff ? `\\u${c.toString(16).padStart(4, '0')}` : `\\U${c.toString(16).padStart(8, '0')}`;
    } else out += ch;
  }
  return out + q;
}

export function pyRepr(v: RV): string {
  if (v === undefined || v === null) return 'None';
  switch (v.type) {
    case 'StringValue':
      return pyStrRepr(v.value);
    case 'IntegerValue':
      return String(v.value);
    case 'FloatValue':
      return pyFloatRepr(v.value);
    case 'BooleanValue':
      return v.value ? 'True' : 'False';
    case 'NullValue':
      return 'None';
    case 'UndefinedValue':
      return '';
    case 'TupleValue':
      return `(${v.value.map(pyRepr).join(', ')}${v.value.length === 1 ? ',' : ''})`;
    case 'ArrayValue':
      return `[${v.value.map(pyRepr).join(', ')}]`;
    case 'ObjectValue':
    case 'KeywordArgumentsValue':
      return `{${[...(v.value as Map<string, RV>)].map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
    case 'NamespaceValue':
      return `<Namespace {${[...(v.value as Map<string, RV>)].map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`).join(', ')}}>`;
    case 'FunctionValue':
      return '<function>';
    default:
      return String(v.value);
  }
}

/** Python's str() as Jinja2 prints a value ({{ x }}); Undefined prints nothing. */
export function pyStr(v: RV): string {
  if (isStr(v)) return v.value;
  if (isUndef(v)) return '';
  return pyRepr(v);
}

function jsonString(s: string, ensureAscii: boolean): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i]!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (c < 0x20 || (ensureAscii && c >= 0x7f)) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}

export interface PyJsonOptions {
  indent?: number | string | null;
  separators?: [string, string] | null;
  sortKeys?: boolean;
  ensureAscii?: boolean;
}

/** Python json.dumps(x, ensure_ascii, indent, separators, sort_keys) over runtime values. */
export function pyJson(v: RV, o: PyJsonOptions = {}, depth = 0): string {
  const indent = o.indent === undefined || o.indent === null ? null : typeof o.indent === 'number' ? ' '.repeat(o.indent) : o.indent;
  const [itemSep, keySep] = o.separators ?? (indent !== null ? [',', ': '] : [', ', ': ']);
  const ea = o.ensureAscii ?? false;
  switch (v?.type) {
    case 'StringValue':
      return jsonString(v.value, ea);
    case 'IntegerValue':
      return String(v.value);
    case 'FloatValue':
      return Number.isNaN(v.value) ? 'NaN' : v.value === Infinity ? 'Infinity' : v.value === -Infinity ? '-Infinity' : pyFloatRepr(v.value);
    case 'BooleanValue':
      return v.value ? 'true' : 'false';
    case 'NullValue':
    case 'UndefinedValue':
    case undefined:
      return 'null';
    case 'ArrayValue':
    case 'TupleValue': {
      const items: RV[] = v.value;
      if (items.length === 0) return '[]';
      const parts = items.map((x) => pyJson(x, o, depth + 1));
      if (indent === null) return `[${parts.join(itemSep)}]`;
      const pad = '\n' + indent.repeat(depth + 1);
      return `[${pad}${parts.join(itemSep + pad)}\n${indent.repeat(depth)}]`;
    }
    case 'ObjectValue':
    case 'KeywordArgumentsValue':
    case 'NamespaceValue': {
      let entries = [...(v.value as Map<string, RV>)];
      if (entries.length === 0) return '{}';
      if (o.sortKeys) entries = entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const parts = entries.map(([k, x]) => `${jsonString(k, ea)}${keySep}${pyJson(x, o, depth + 1)}`);
      if (indent === null) return `{${parts.join(itemSep)}}`;
      const pad = '\n' + indent.repeat(depth + 1);
      return `{${pad}${parts.join(itemSep + pad)}\n${indent.repeat(depth)}}`;
    }
    default:
      throw new TemplateError(`Object of type ${v?.type} is not JSON serializable`);
  }
}

/** Python equality between runtime values. */
export function pyEquals(a: RV, b: RV): boolean {
  if (isUndef(a) || isUndef(b)) return isUndef(a) && isUndef(b);
  if (isNull(a) || isNull(b)) return isNull(a) && isNull(b);
  if ((isNum(a) || isBool(a)) && (isNum(b) || isBool(b))) return Number(a.value) === Number(b.value);
  if (isStr(a) && isStr(b)) return a.value === b.value;
  if (isArr(a) && isArr(b)) return a.value.length === b.value.length && a.value.every((x: RV, i: number) => pyEquals(x, b.value[i]));
  if ((isObj(a) || isNs(a)) && (isObj(b) || isNs(b))) {
    const ma = a.value as Map<string, RV>;
    const mb = b.value as Map<string, RV>;
    if (ma.size !== mb.size) return false;
    for (const [k, x] of ma) if (!mb.has(k) || !pyEquals(x, mb.get(k))) return false;
    return true;
  }
  return a === b;
}

function truthy(v: RV): boolean {
  return v.__bool__().value;
}

// ---- Python str methods ----

const PY_WS = '\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';

export function pyStrip(s: string, chars: string | null | undefined, left: boolean, right: boolean): string {
  const set = chars === null || chars === undefined ? PY_WS : chars;
  let a = 0;
  let b = s.length;
  if (left) while (a < b && set.includes(s[a]!)) a++;
  if (right) while (b > a && set.includes(s[b - 1]!)) b--;
  return s.slice(a, b);
}

function pyTitle(s: string): string {
  let out = '';
  let prevCased = false;
  for (const ch of s) {
    const cased = ch.toLowerCase() !== ch.toUpperCase();
    out += cased ? (prevCased ? ch.toLowerCase() : ch.toUpperCase()) : ch;
    prevCased = cased;
  }
  return out;
}

function pyCapitalize(s: string): string {
  const first = String.fromCodePoint(s.codePointAt(0) ?? 0);
  return s.length === 0 ? s : first.toUpperCase() + s.slice(first.length).toLowerCase();
}

function argStr(v: RV, what: string): string | null {
  if (v === undefined || isNull(v) || isUndef(v)) return null;
  if (!isStr(v)) throw new TemplateError(`${what} must be str or None, not ${v.type}`);
  return v.value;
}

function pyFormat(fmt: string, args: RV[]): string {
  const kw = args.length > 0 && args[args.length - 1]?.type === 'KeywordArgumentsValue' ? (args.pop().value as Map<string, RV>) : new Map<string, RV>();
  let auto = 0;
  return fmt.replace(/\{\{|\}\}|\{([^{}!:]*)(?:![rsa])?(?::[^{}]*)?\}/g, (m, name: string | undefined) => {
    if (m === '{{') return '{';
    if (m === '}}') return '}';
    const key = name ?? '';
    const v = key === '' ? args[auto++] : /^\d+$/.test(key) ? args[Number(key)] : kw.get(key);
    if (v === undefined) throw new TemplateError(`format: no value for {${key}}`);
    return pyStr(v);
  });
}

/** printf-style `"%s" | format(x)` (Jinja2's format filter). */
function percentFormat(fmt: string, args: RV[]): string {
  let i = 0;
  return fmt.replace(/%([-+ 0#]*)(\d+)?(?:\.(\d+))?([sdirfeEgGxXo%])/g, (m, flags: string, width: string | undefined, prec: string | undefined, conv: string) => {
    if (conv === '%') return '%';
    const v = args[i++];
    if (v === undefined) throw new TemplateError('not enough arguments for format string');
    let s: string;
    if (conv === 's') s = pyStr(v);
    else if (conv === 'r') s = pyRepr(v);
    else if (conv === 'd' || conv === 'i') s = String(Math.trunc(Number(v.value)));
    else if (conv === 'f') s = Number(v.value).toFixed(prec === undefined ? 6 : Number(prec));
    else if (conv === 'x') s = Math.trunc(Number(v.value)).toString(16);
    else if (conv === 'X') s = Math.trunc(Number(v.value)).toString(16).toUpperCase();
    else if (conv === 'o') s = Math.trunc(Number(v.value)).toString(8);
    else s = String(v.value);
    if (width !== undefined && s.length < Number(width)) s = flags.includes('-') ? s.padEnd(Number(width)) : s.padStart(Number(width), flags.includes('0') ? '0' : ' ');
    return s;
  });
}

function strMethod(s: string, name: string): RV | undefined {
  const m = (f: (args: RV[]) => RV): RV => fn(f);
  switch (name) {
    case 'strip':
      return m((a) => str(pyStrip(s, argStr(a[0], 'strip arg'), true, true)));
    case 'lstrip':
      return m((a) => str(pyStrip(s, argStr(a[0], 'lstrip arg'), true, false)));
    case 'rstrip':
      return m((a) => str(pyStrip(s, argStr(a[0], 'rstrip arg'), false, true)));
    case 'capitalize':
      return m(() => str(pyCapitalize(s)));
    case 'title':
      return m(() => str(pyTitle(s)));
    case 'swapcase':
      return m(() => str([...s].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join('')));
    case 'find':
    case 'index':
      return m((a) => {
        const i = s.indexOf(String(a[0]?.value ?? ''), a[1] ? Number(a[1].value) : 0);
        if (i < 0 && name === 'index') throw new TemplateError('substring not found');
        return int(i);
      });
    case 'rfind':
      return m((a) => int(s.lastIndexOf(String(a[0]?.value ?? ''))));
    case 'count':
      return m((a) => {
        const sub = String(a[0]?.value ?? '');
        if (sub === '') return int([...s].length + 1);
        return int(s.split(sub).length - 1);
      });
    case 'join':
      return m((a) => {
        const xs = a[0];
        if (isArr(xs)) return str(xs.value.map((x: RV) => (isStr(x) ? x.value : pyStr(x))).join(s));
        if (isStr(xs)) return str([...xs.value].join(s));
        throw new TemplateError('join() argument must be iterable');
      });
    case 'splitlines':
      return m((a) => {
        const keep = a[0] !== undefined && truthy(a[0]);
        const parts: string[] = [];
        const re = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/g;
        let last = 0;
        let mm: RegExpExecArray | null;
        while ((mm = re.exec(s)) !== null) {
          parts.push(s.slice(last, keep ? mm.index + mm[0].length : mm.index));
          last = mm.index + mm[0].length;
        }
        if (last < s.length) parts.push(s.slice(last));
        return arr(parts.map(str));
      });
    case 'rsplit':
      return m((a) => {
        const sep = argStr(a[0], 'sep');
        const max = a[1] && isInt(a[1]) ? a[1].value : -1;
        if (sep === null) {
          const words = s.split(/[\s\x1c-\x1f\x85]+/u).filter((w) => w.length > 0);
          return arr(words.map(str));
        }
        const parts = s.split(sep);
        if (max >= 0 && parts.length > max + 1) {
          const head = parts.slice(0, parts.length - max).join(sep);
          return arr([head, ...parts.slice(parts.length - max)].map(str));
        }
        return arr(parts.map(str));
      });
    case 'removeprefix':
      return m((a) => str(s.startsWith(String(a[0]?.value)) ? s.slice(String(a[0]?.value).length) : s));
    case 'removesuffix':
      return m((a) => {
        const x = String(a[0]?.value);
        return str(x.length > 0 && s.endsWith(x) ? s.slice(0, s.length - x.length) : s);
      });
    case 'isdigit':
      return m(() => bool(s.length > 0 && /^\p{Nd}+$/u.test(s)));
    case 'isnumeric':
      return m(() => bool(s.length > 0 && /^\p{N}+$/u.test(s)));
    case 'isalpha':
      return m(() => bool(s.length > 0 && /^\p{L}+$/u.test(s)));
    case 'isalnum':
      return m(() => bool(s.length > 0 && /^[\p{L}\p{N}]+$/u.test(s)));
    case 'isspace':
      return m(() => bool(s.length > 0 && [...s].every((c) => PY_WS.includes(c))));
    case 'islower':
      return m(() => bool(/\p{Ll}/u.test(s) && s === s.toLowerCase()));
    case 'isupper':
      return m(() => bool(/\p{Lu}/u.test(s) && s === s.toUpperCase()));
    case 'zfill':
      return m((a) => {
        const w = Number(a[0]?.value ?? 0);
        const sign = s.startsWith('-') || s.startsWith('+') ? s[0]! : '';
        return str(sign + s.slice(sign.length).padStart(w - sign.length, '0'));
      });
    case 'center':
      return m((a) => str(center(s, Number(a[0]?.value ?? 0), a[1] ? String(a[1].value) : ' ')));
    case 'ljust':
      return m((a) => str(s.padEnd(Number(a[0]?.value ?? 0), a[1] ? String(a[1].value) : ' ')));
    case 'rjust':
      return m((a) => str(s.padStart(Number(a[0]?.value ?? 0), a[1] ? String(a[1].value) : ' ')));
    case 'format':
      return m((a) => str(pyFormat(s, [...a])));
    case 'partition':
      return m((a) => {
        const sep = String(a[0]?.value);
        const i = s.indexOf(sep);
        return arr(i < 0 ? [str(s), str(''), str('')] : [str(s.slice(0, i)), str(sep), str(s.slice(i + sep.length))]);
      });
    default:
      return undefined;
  }
}

function center(s: string, w: number, fill: string): string {
  const n = w - s.length;
  if (n <= 0) return s;
  // CPython: left = n/2 + (n & w & 1)
  const left = Math.floor(n / 2) + (n & w & 1);
  return fill.repeat(left) + s + fill.repeat(n - left);
}

// ---- tests ----

const TESTS: Record<string, (v: RV, ...args: RV[]) => boolean> = {
  string: (v) => isStr(v),
  number: (v) => isNum(v) || isBool(v),
  integer: (v) => isInt(v),
  float: (v) => isFloat(v),
  boolean: (v) => isBool(v),
  mapping: (v) => isObj(v),
  iterable: (v) => isArr(v) || isStr(v) || isObj(v),
  sequence: (v) => isArr(v) || isStr(v) || isObj(v),
  none: (v) => isNull(v),
  defined: (v) => !isUndef(v),
  undefined: (v) => isUndef(v),
  true: (v) => isBool(v) && v.value === true,
  false: (v) => isBool(v) && v.value === false,
  callable: (v) => v?.type === 'FunctionValue',
  lower: (v) => isStr(v) && v.value === v.value.toLowerCase(),
  upper: (v) => isStr(v) && v.value === v.value.toUpperCase(),
  odd: (v) => isInt(v) && Math.abs(v.value % 2) === 1,
  even: (v) => isInt(v) && v.value % 2 === 0,
  divisibleby: (v, n) => Number(v.value) % Number(n?.value) === 0,
  eq: (a, b) => pyEquals(a, b),
  equalto: (a, b) => pyEquals(a, b),
  '==': (a, b) => pyEquals(a, b),
  ne: (a, b) => !pyEquals(a, b),
  '!=': (a, b) => !pyEquals(a, b),
  sameas: (a, b) => a === b || (isNull(a) && isNull(b)) || (isBool(a) && isBool(b) && a.value === b.value),
  lt: (a, b) => a.value < b.value,
  le: (a, b) => a.value <= b.value,
  gt: (a, b) => a.value > b.value,
  ge: (a, b) => a.value >= b.value,
  '<': (a, b) => a.value < b.value,
  '<=': (a, b) => a.value <= b.value,
  '>': (a, b) => a.value > b.value,
  '>=': (a, b) => a.value >= b.value,
  in: (a, b) => containsPy(b, a),
};

function containsPy(container: RV, item: RV): boolean {
  if (isArr(container)) return container.value.some((x: RV) => pyEquals(x, item));
  if (isStr(container)) return isStr(item) && container.value.includes(item.value);
  if (isObj(container) || isNs(container)) return isStr(item) && (container.value as Map<string, RV>).has(item.value);
  if (isUndef(container)) return false;
  throw new TemplateError(`argument of type '${container?.type}' is not iterable`);
}

function toList(v: RV): RV[] {
  if (isArr(v)) return v.value;
  if (isStr(v)) return [...(v.value as string)].map(str);
  if (isObj(v)) return [...(v.value as Map<string, RV>).keys()].map(str);
  if (isUndef(v)) return [];
  throw new TemplateError(`'${v?.type}' object is not iterable`);
}

function cmp(a: RV, b: RV): number {
  const x = isStr(a) ? a.value.toLowerCase() : a.value;
  const y = isStr(b) ? b.value.toLowerCase() : b.value;
  return x < y ? -1 : x > y ? 1 : 0;
}

// ---- the interpreter ----

const VALUE_NODE = '__RistrettoValue';

/** The part of @huggingface/jinja's Interpreter we extend (its .d.ts does not resolve under NodeNext). */
interface InterpreterBase {
  run(program: any): any;
  evaluate(statement: any, environment: any): any;
  evaluateBlock(statements: any, environment: any): any;
  evaluateBinaryExpression(node: any, environment: any): any;
  evaluateMemberExpression(expr: any, environment: any): any;
  evaluateFor(node: any, environment: any): any;
  evaluateTestExpression(node: any, environment: any): any;
  applyFilter(operand: any, filterNode: any, environment: any): any;
  evaluateArguments(args: any, environment: any): [any[], Map<string, any>];
}
const BaseInterpreter = Interpreter as unknown as new (env: unknown) => InterpreterBase;

class PyInterpreter extends BaseInterpreter {
  override evaluate(statement: any, environment: any): any {
    if (statement?.type === VALUE_NODE) return statement.value;
    return super.evaluate(statement, environment);
  }

  override evaluateBlock(statements: any, environment: any): any {
    let out = '';
    for (const s of statements) {
      const v = this.evaluate(s, environment);
      // Statements (set, macro, comments) yield None; expressions print Python's str() of their value.
      if (STATEMENT_TYPES.has(s.type) && (isNull(v) || isUndef(v))) continue;
      out += pyStr(v);
    }
    return str(out);
  }

  override evaluateBinaryExpression(node: any, environment: any): any {
    const op: string = node.operator.value;
    if (op === 'and' || op === 'or') return super.evaluateBinaryExpression(node, environment);
    const left = this.evaluate(node.left, environment);
    const right = this.evaluate(node.right, environment);
    const lit = (v: RV): any => ({ type: VALUE_NODE, value: v });
    switch (op) {
      case '==':
        return bool(pyEquals(left, right));
      case '!=':
        return bool(!pyEquals(left, right));
      case '~':
        return str(pyStr(left) + pyStr(right));
      case 'in':
        return bool(containsPy(right, left));
      case 'not in':
        return bool(!containsPy(right, left));
      case '+':
        if (isStr(left) && isStr(right)) return str(left.value + right.value);
        if ((isStr(left) && !isStr(right)) || (isStr(right) && !isStr(left))) {
          if (isUndef(left) || isUndef(right)) throw new TemplateError(`unsupported operand: ${isUndef(left) ? 'undefined' : 'str'} + ${isUndef(right) ? 'undefined' : 'str'}`);
          throw new TemplateError(`can only concatenate str (not "${pyTypeName(isStr(left) ? right : left)}") to str`);
        }
        break;
      case '*':
        if (isStr(left) && isInt(right)) return str(left.value.repeat(Math.max(0, right.value)));
        if (isInt(left) && isStr(right)) return str(right.value.repeat(Math.max(0, left.value)));
        if (isArr(left) && isInt(right)) return arr(Array.from({ length: Math.max(0, right.value) }, () => left.value).flat());
        break;
      case '<':
      case '>':
      case '<=':
      case '>=':
        if (isStr(left) && isStr(right)) {
          const c = left.value < right.value ? -1 : left.value > right.value ? 1 : 0;
          return bool(op === '<' ? c < 0 : op === '>' ? c > 0 : op === '<=' ? c <= 0 : c >= 0);
        }
        break;
      case '%':
        if (isStr(left)) return str(percentFormat(left.value, isArr(right) ? [...right.value] : [right]));
        break;
    }
    return super.evaluateBinaryExpression({ ...node, left: lit(left), right: lit(right) }, environment);
  }

  override evaluateMemberExpression(expr: any, environment: any): any {
    const object = this.evaluate(expr.object, environment);
    if (isUndef(object)) {
      const what = expr.object?.type === 'Identifier' ? `'${expr.object.value}' is undefined` : 'attribute of an undefined value';
      throw new TemplateError(`jinja2.exceptions.UndefinedError: ${what}`);
    }
    if (!expr.computed && isStr(object) && expr.property?.type === 'Identifier') {
      const m = strMethod(object.value, expr.property.value);
      if (m !== undefined) return m;
    }
    if (!expr.computed && isObj(object) && expr.property?.type === 'Identifier' && !(object.value as Map<string, RV>).has(expr.property.value)) {
      const d = object.value as Map<string, RV>;
      if (expr.property.value === 'items') return fn(() => arr([...d].map(([k, x]) => tuple([str(k), x]))));
      if (expr.property.value === 'get') {
        return fn((a) => {
          const k = a[0];
          return (isStr(k) ? d.get(k.value) : undefined) ?? a[1] ?? none();
        });
      }
    }
    return super.evaluateMemberExpression({ ...expr, object: { type: VALUE_NODE, value: object } }, environment);
  }

  override evaluateFor(node: any, environment: any): any {
    const isSelect = node.iterable?.type === 'SelectExpression';
    const src = isSelect ? node.iterable.lhs : node.iterable;
    let it = this.evaluate(src, environment);
    if (isUndef(it) || isNull(it)) {
      if (isNull(it)) throw new TemplateError("'NoneType' object is not iterable");
      it = arr([]);
    } else if (isStr(it)) {
      it = arr(toList(it));
    }
    if (node.loopvar?.type === 'TupleLiteral' && isArr(it)) {
      // Unpacking: the base interpreter only unpacks lists; tuples (items(), literals) unpack alike.
      it = arr(it.value.map((x: RV) => (x?.type === 'TupleValue' ? arr(x.value) : x)));
    }
    const valueNode = { type: VALUE_NODE, value: it };
    const iterable = isSelect ? { ...node.iterable, lhs: valueNode } : valueNode;
    return super.evaluateFor({ ...node, iterable }, environment);
  }

  override evaluateTestExpression(node: any, environment: any): any {
    const name: string = node.test.value;
    const t = TESTS[name];
    if (t === undefined) return super.evaluateTestExpression(node, environment);
    const operand = this.evaluate(node.operand, environment);
    const r = t(operand);
    return bool(node.negate ? !r : r);
  }

  override applyFilter(operand: any, filterNode: any, environment: any): any {
    let name: string;
    let args: RV[] = [];
    let kwargs = new Map<string, RV>();
    if (filterNode.type === 'Identifier') name = filterNode.value;
    else if (filterNode.type === 'CallExpression' && filterNode.callee?.type === 'Identifier') {
      name = filterNode.callee.value;
      [args, kwargs] = this.evaluateArguments(filterNode.args, environment);
    } else return super.applyFilter(operand, filterNode, environment);
    const arg = (i: number, key: string): RV | undefined => args[i] ?? kwargs.get(key);
    const r = this.filter(name, operand, arg, args, kwargs, environment);
    return r === undefined ? super.applyFilter(operand, filterNode, environment) : r;
  }

  private filter(name: string, v: RV, arg: (i: number, key: string) => RV | undefined, args: RV[], kwargs: Map<string, RV>, env: any): RV | undefined {
    switch (name) {
      case 'tojson': {
        const indent = arg(0, 'indent');
        const seps = kwargs.get('separators');
        return str(
          pyJson(v, {
            indent: indent === undefined || isNull(indent) ? null : indent.value,
            ensureAscii: kwargs.has('ensure_ascii') ? truthy(kwargs.get('ensure_ascii')) : false,
            sortKeys: kwargs.has('sort_keys') ? truthy(kwargs.get('sort_keys')) : false,
            separators: seps && isArr(seps) ? [String(seps.value[0].value), String(seps.value[1].value)] : null,
          }),
        );
      }
      case 'trim':
        if (!isStr(v)) return str(pyStrip(pyStr(v), null, true, true));
        return str(pyStrip(v.value, argStr(arg(0, 'chars'), 'chars'), true, true));
      case 'string':
        return isStr(v) ? v : str(pyStr(v));
      case 'safe':
        return v;
      case 'e':
      case 'escape':
        return str(pyStr(v).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;').replace(/'/g, '&#39;'));
      case 'capitalize':
        return str(pyCapitalize(pyStr(v)));
      case 'title':
        // Jinja2's do_title: capitalise each piece split at runs of -, whitespace and opening brackets.
        return str(pyStr(v).split(/([-\s({[<]+)/u).filter((x) => x.length > 0).map((x) => x[0]!.toUpperCase() + x.slice(1).toLowerCase()).join(''));
      case 'upper':
        return str(pyStr(v).toUpperCase());
      case 'lower':
        return str(pyStr(v).toLowerCase());
      case 'list':
        return arr(toList(v));
      case 'length':
      case 'count':
        if (isObj(v) || isNs(v)) return int((v.value as Map<string, RV>).size);
        if (isStr(v)) return int([...(v.value as string)].length);
        return int(toList(v).length);
      case 'first': {
        const xs = toList(v);
        return xs.length > 0 ? xs[0] : undef();
      }
      case 'last': {
        const xs = toList(v);
        return xs.length > 0 ? xs[xs.length - 1] : undef();
      }
      case 'reverse':
        if (isStr(v)) return str([...(v.value as string)].reverse().join(''));
        return arr([...toList(v)].reverse());
      case 'join': {
        const sep = arg(0, 'd');
        const attribute = arg(1, 'attribute');
        let xs = toList(v);
        if (attribute !== undefined) xs = xs.map((x) => getAttr(x, String(attribute.value)));
        return str(xs.map(pyStr).join(sep === undefined ? '' : pyStr(sep)));
      }
      case 'sum': {
        const attribute = kwargs.get('attribute');
        const start = arg(1, 'start');
        let xs = toList(v);
        if (attribute !== undefined) xs = xs.map((x) => getAttr(x, String(attribute.value)));
        let total = start ? Number(start.value) : 0;
        let anyFloat = start ? isFloat(start) : false;
        for (const x of xs) {
          total += Number(x.value);
          anyFloat ||= isFloat(x);
        }
        return anyFloat ? float(total) : int(total);
      }
      case 'min':
      case 'max': {
        const xs = toList(v);
        if (xs.length === 0) return undef();
        const attribute = kwargs.get('attribute');
        const key = (x: RV): RV => (attribute === undefined ? x : getAttr(x, String(attribute.value)));
        return xs.reduce((best, x) => (name === 'min' ? (cmp(key(x), key(best)) < 0 ? x : best) : cmp(key(x), key(best)) > 0 ? x : best));
      }
      case 'unique': {
        const out: RV[] = [];
        for (const x of toList(v)) if (!out.some((y) => (isStr(x) && isStr(y) ? x.value.toLowerCase() === y.value.toLowerCase() : pyEquals(x, y)))) out.push(x);
        return arr(out);
      }
      case 'select':
      case 'reject': {
        const testName = args[0] === undefined ? null : String(args[0].value);
        const test = testName === null ? null : TESTS[testName];
        if (testName !== null && test === undefined) throw new TemplateError(`no test named '${testName}'`);
        const rest = args.slice(1);
        return arr(toList(v).filter((x) => (test === null ? truthy(x) : test!(x, ...rest)) === (name === 'select')));
      }
      case 'selectattr':
      case 'rejectattr': {
        const attr = String(args[0]?.value);
        const testName = args[1] === undefined ? null : String(args[1].value);
        const test = testName === null ? null : TESTS[testName];
        if (testName !== null && test === undefined) throw new TemplateError(`no test named '${testName}'`);
        const rest = args.slice(2);
        return arr(toList(v).filter((x) => {
          const a = getAttr(x, attr);
          return (test === null ? truthy(a) : test!(a, ...rest)) === (name === 'selectattr');
        }));
      }
      case 'map': {
        const attribute = kwargs.get('attribute');
        if (attribute !== undefined) {
          const dflt = kwargs.get('default');
          return arr(toList(v).map((x) => {
            const a = getAttr(x, String(attribute.value));
            return isUndef(a) && dflt !== undefined ? dflt : a;
          }));
        }
        if (args[0] === undefined) return undefined;
        const fname = String(args[0].value);
        const rest = args.slice(1);
        return arr(toList(v).map((x) => {
          const r = this.filter(fname, x, (i, k) => rest[i] ?? kwargs.get(k), rest, kwargs, env);
          if (r === undefined) throw new TemplateError(`map: unsupported filter '${fname}'`);
          return r;
        }));
      }
      case 'items':
        if (isObj(v)) return arr([...(v.value as Map<string, RV>)].map(([k, x]) => tuple([str(k), x])));
        return undefined;
      case 'dictsort': {
        if (!isObj(v)) return undefined;
        const byValue = arg(1, 'by') !== undefined && String(arg(1, 'by')!.value) === 'value';
        const reverse = arg(2, 'reverse') !== undefined && truthy(arg(2, 'reverse')!);
        const items = [...(v.value as Map<string, RV>)].map(([k, x]) => tuple([str(k), x]));
        items.sort((a, b) => cmp(a.value[byValue ? 1 : 0], b.value[byValue ? 1 : 0]) * (reverse ? -1 : 1));
        return arr(items);
      }
      case 'format':
        return str(percentFormat(pyStr(v), [...args]));
      case 'wordcount':
        return int((pyStr(v).match(/\w+/gu) ?? []).length);
      case 'indent': {
        const width = arg(0, 'width');
        const w = width === undefined ? '    ' : isStr(width) ? width.value : ' '.repeat(Number(width.value));
        const first = arg(1, 'first') !== undefined && truthy(arg(1, 'first')!);
        const blank = arg(2, 'blank') !== undefined && truthy(arg(2, 'blank')!);
        const s = pyStr(v) ;
        const lines = s.split('\n');
        return str(lines.map((x, i) => ((i === 0 && !first) || (x.length === 0 && !blank) ? x : w + x)).join('\n'));
      }
      case 'center':
        return str(center(pyStr(v), Number(arg(0, 'width')?.value ?? 80), ' '));
      case 'round': {
        const prec = Number(arg(0, 'precision')?.value ?? 0);
        const method = String(arg(1, 'method')?.value ?? 'common');
        const f = 10 ** prec;
        const x = Number(v.value) * f;
        const r = method === 'ceil' ? Math.ceil(x) : method === 'floor' ? Math.floor(x) : Math.sign(x) * Math.round(Math.abs(x));
        return float(r / f);
      }
      case 'abs':
        return isInt(v) ? int(Math.abs(v.value)) : float(Math.abs(Number(v.value)));
      case 'int': {
        if (isStr(v)) {
          const t = pyStrip(v.value, null, true, true);
          const n = /^[-+]?\d+$/.test(t) ? parseInt(t, 10) : /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t) ? Math.trunc(parseFloat(t)) : NaN;
          return Number.isNaN(n) ? (arg(0, 'default') ?? int(0)) : int(n);
        }
        if (isNum(v) || isBool(v)) return int(Math.trunc(Number(v.value)));
        return arg(0, 'default') ?? int(0);
      }
      case 'default':
      case 'd': {
        const dflt = arg(0, 'default_value') ?? str('');
        const boolean = arg(1, 'boolean');
        if (isUndef(v) || (boolean !== undefined && truthy(boolean) && !truthy(v))) return dflt;
        return v;
      }
      default:
        return undefined;
    }
  }
}

const STATEMENT_TYPES = new Set(['Set', 'Macro', 'Comment', 'If', 'For', 'CallStatement', 'FilterStatement', 'Break', 'Continue']);

function pyTypeName(v: RV): string {
  switch (v?.type) {
    case 'IntegerValue':
      return 'int';
    case 'FloatValue':
      return 'float';
    case 'BooleanValue':
      return 'bool';
    case 'NullValue':
      return 'NoneType';
    case 'ArrayValue':
      return 'list';
    case 'TupleValue':
      return 'tuple';
    case 'ObjectValue':
      return 'dict';
    default:
      return String(v?.type);
  }
}

function getAttr(x: RV, path: string): RV {
  let cur = x;
  for (const part of path.split('.')) {
    if (isObj(cur) || isNs(cur)) cur = (cur.value as Map<string, RV>).get(part) ?? undef();
    else if (isArr(cur) && /^-?\d+$/.test(part)) cur = cur.value.at(Number(part)) ?? undef();
    else return undef();
  }
  return cur;
}

// ---- public API ----

export interface JinjaGlobals {
  /** Clock for strftime_now (default: now). */
  now?: () => Date;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** Python's datetime.strftime in the C locale (local time). */
export function pyStrftime(d: Date, fmt: string): string {
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const start = new Date(d.getFullYear(), 0, 1);
  const yday = Math.floor((Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) - Date.UTC(start.getFullYear(), 0, 1)) / 86400000) + 1;
  return fmt.replace(/%([-]?)([aAbBdeHIjmMpSyYzZfcxX%])/g, (_m, dash: string, c: string) => {
    const pad = (n: number, w = 2): string => (dash ? String(n) : String(n).padStart(w, '0'));
    switch (c) {
      case 'a': return DAYS[d.getDay()]!.slice(0, 3);
      case 'A': return DAYS[d.getDay()]!;
      case 'b': return MONTHS[d.getMonth()]!.slice(0, 3);
      case 'B': return MONTHS[d.getMonth()]!;
      case 'd': return pad(d.getDate());
      case 'e': return String(d.getDate()).padStart(2, ' ');
      case 'H': return pad(d.getHours());
      case 'I': return pad(d.getHours() % 12 === 0 ? 12 : d.getHours() % 12);
      case 'j': return pad(yday, 3);
      case 'm': return pad(d.getMonth() + 1);
      case 'M': return pad(d.getMinutes());
      case 'p': return d.getHours() < 12 ? 'AM' : 'PM';
      case 'S': return pad(d.getSeconds());
      case 'y': return pad(d.getFullYear() % 100);
      case 'Y': return String(d.getFullYear());
      case 'f': return String(d.getMilliseconds() * 1000).padStart(6, '0');
      case 'z': {
        const off = -d.getTimezoneOffset();
        return `${off >= 0 ? '+' : '-'}${p2(Math.floor(Math.abs(off) / 60))}${p2(Math.abs(off) % 60)}`;
      }
      case 'Z': return '';
      case 'c': return `${DAYS[d.getDay()]!.slice(0, 3)} ${MONTHS[d.getMonth()]!.slice(0, 3)} ${String(d.getDate()).padStart(2, ' ')} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
      case 'x': return `${p2(d.getMonth() + 1)}/${p2(d.getDate())}/${p2(d.getFullYear() % 100)}`;
      case 'X': return `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
      case '%': return '%';
      default: return c;
    }
  });
}

const STRING_LITERAL = /'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g;

/** Float literals with an exponent (1e3, 2.5E-1), which the package's lexer does not read, as plain decimals. */
function expandExponents(code: string): string {
  return code.replace(/(^|[^\w.])(\d+(?:\.\d*)?|\.\d+)[eE]([+-]?\d+)(?![\w.])/g, (m, pre: string, mant: string, exp: string) => {
    const v = Number(`${mant}e${exp}`);
    const s = String(v);
    if (!Number.isFinite(v) || s.includes('e')) return m; // beyond plain notation: leave it to the parser's error
    return pre + (s.includes('.') ? s : `${s}.0`); // still a float, as in Python
  });
}

/**
 * Source rewrites for Jinja2 syntax the package's lexer lacks (applied before its lstrip/trim preprocessing):
 *  - `{%+` keeps the whitespace before the tag (no lstrip_blocks): an empty output `{{ '' }}` in front of the tag
 *    stops the package's lstrip regex, which only strips whitespace directly before `{%`;
 *  - `+%}` keeps the newline after the tag (no trim_blocks): `{{ '' }}` after the tag stops the trim regex;
 *  - float literals with an exponent inside tags (outside string literals) become plain decimals.
 */
export function pythonJinjaSyntax(source: string): string {
  let s = source.replace(/\{%\+/g, "{{ '' }}{%").replace(/\+%\}/g, "%}{{ '' }}");
  s = s.replace(/(\{\{|\{%)([\s\S]*?)(\}\}|%\})/g, (_m, open: string, body: string, close: string) => {
    let out = '';
    let at = 0;
    for (const lit of body.matchAll(STRING_LITERAL)) {
      out += expandExponents(body.slice(at, lit.index)) + lit[0];
      at = lit.index! + lit[0].length;
    }
    return open + out + expandExponents(body.slice(at)) + close;
  });
  return s;
}

/** A parsed Jinja template with HF's chat-template environment. */
export class JinjaTemplate {
  private readonly program: unknown;

  constructor(readonly source: string) {
    try {
      this.program = parse(tokenize(pythonJinjaSyntax(source), { lstrip_blocks: true, trim_blocks: true }));
    } catch (e) {
      throw new TemplateError(`cannot parse the chat template: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  /** Renders with `variables` (plain JSON-like values); throws TemplateError on raise_exception or evaluation errors. */
  render(variables: Record<string, unknown>, globals: JinjaGlobals = {}): string {
    const env = new Environment();
    env.set('false', false);
    env.set('true', true);
    env.set('none', null);
    env.set('True', true);
    env.set('False', false);
    env.set('None', null);
    env.set('range', (...a: number[]) => {
      const [start, stop, step] = a.length === 1 ? [0, a[0]!, 1] : [a[0]!, a[1]!, a[2] ?? 1];
      const out: number[] = [];
      if (step === 0) throw new TemplateError('range() arg 3 must not be zero');
      for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
      return out;
    });
    env.set('raise_exception', (message: unknown) => {
      throw new TemplateError(String(message));
    });
    env.set('strftime_now', (fmt: unknown) => pyStrftime(globals.now?.() ?? new Date(), String(fmt)));
    for (const [k, v] of Object.entries(variables)) {
      if (v === undefined) continue;
      env.variables.set(k, convert(v));
    }
    try {
      const out = new PyInterpreter(env).run(this.program as never) as RV;
      return out.value as string;
    } catch (e) {
      if (e instanceof TemplateError) throw e;
      throw new TemplateError(e instanceof Error ? e.message : String(e), { cause: e });
    }
  }
}

/** Plain values to runtime values (JS functions become callables). */
function convert(v: unknown): RV {
  const e = new Environment();
  e.set('x', v);
  return e.lookupVariable('x');
}
