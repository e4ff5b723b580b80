// Pre-tokenizer regexes and splitting, with the semantics of HF `tokenizers` (which runs Oniguruma regexes) and of
// llama.cpp's per-`tokenizer.ggml.pre` regex lists.
//
// `translateRegex` rewrites an Oniguruma (Ruby syntax) pattern into a JavaScript pattern for the `u` flag:
//   - `(?i:...)` / `(?i)` scoped case-insensitivity (Node 20 has no inline modifiers) -> each cased literal becomes
//     a character class of its case variants (`'s` -> `'[sSſ]`), ranges in classes get their other-case range;
//   - `\s`/`\S` -> `\p{White_Space}`/`\P{White_Space}` (Oniguruma's \s includes U+0085 and excludes U+FEFF, JS's
//     is the other way round), `\d` -> `\p{Nd}`, `\w` -> letters/marks/digits/connectors, `\h` -> hex digit;
//   - `\p{Han}`-style script names -> `\p{Script=Han}`, `\p{^L}` -> `\P{L}`, `\x{HHHH}` -> `\u{HHHH}`;
//   - possessive quantifiers (`*+`, `++`, `?+`) and atomic groups `(?>...)` -> the `(?=(?<a>X))\k<a>` emulation;
//     `{n,m}+` is NOT possessive in Ruby syntax: it repeats the interval (`(?:X{n,m})+`);
//   - `.` -> `[^\n]`, `^`/`$` -> line anchors (Ruby semantics), `\A`/`\z`/`\Z` -> string anchors;
//   - identity escapes that JS's `u` mode rejects (`\'`, `\#`, ...) -> the plain character.
// Anything else it does not understand raises UnsupportedError naming the construct.

import { UnsupportedError } from '../errors.js';

/** HF GPT-2 ByteLevel pre-tokenizer regex (also what `ByteLevel(use_regex=true)` uses). */
export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/** Llama 3 split regex as written in its tokenizer.json. */
export const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Qwen2 / Qwen3 split regex as written in their tokenizer.json (single digits). */
export const QWEN2_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** GPT-4o / o200k style (llama.cpp "gpt-4o"). */
export const GPT4O_PATTERN =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const GPT2_LLAMACPP = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

export interface GGUFPreTokenizer {
  /** Regexes applied one after the other, each splitting every piece with Isolated behaviour. */
  patterns: string[];
  /** The tokenizer merges whole pre-tokens found in the vocabulary as is (llama.cpp sets this for Llama 3). */
  ignoreMerges: boolean;
  /** HF applies an NFC normalizer for this family (Qwen2). */
  nfc: boolean;
  /** llama.cpp's default for adding BOS when the GGUF does not say. */
  addBos: boolean;
}

/**
 * The pre-tokenizer that llama.cpp uses for a `tokenizer.ggml.pre` value of a "gpt2"-model GGUF. For the families
 * that have a HF tokenizer.json (GPT-2, Llama 3, Qwen2) the tokenizer.json regex is used so results equal HF.
 */
export function ggufPreTokenizer(pre: string | undefined): GGUFPreTokenizer {
  const p = (pre ?? 'default').toLowerCase();
  const base = { ignoreMerges: false, nfc: false, addBos: false };
  switch (p) {
    case 'gpt-2': case 'gpt2': case 'phi-2': case 'roberta-bpe': case 'jina-es': case 'jina-de': case 'gigachat':
    case 'jina-v1-en': case 'jina-v2-es': case 'jina-v2-de': case 'jina-v2-code': case 'mpt': case 'olmo':
    case 'jais': case 'trillion':
      return { ...base, patterns: [GPT2_PATTERN] };
    case 'llama3': case 'llama-v3': case 'llama-bpe': case 'falcon3': case 'falcon-h1': case 'pixtral':
    case 'midm-2.0': case 'lfm2': case 'dbrx': case 'smaug-bpe': case 'chatglm-bpe':
      return { ...base, patterns: [LLAMA3_PATTERN], ignoreMerges: true, addBos: !['chatglm-bpe'].includes(p) };
    case 'qwen2': case 'deepseek-r1-qwen': case 'megrez': case 'stablelm2':
      return { ...base, patterns: [QWEN2_PATTERN], nfc: p !== 'stablelm2' };
    case 'starcoder': case 'refact': case 'command-r': case 'smollm': case 'codeshell': case 'exaone':
    case 'minerva-7b':
      return { ...base, patterns: ['\\p{N}', GPT2_LLAMACPP] };
    case 'gpt-4o':
      return { ...base, patterns: [GPT4O_PATTERN] };
    case 'poro-chat': case 'bloom': case 'gpt3-finnish':
      return { ...base, patterns: [' ?[^(\\s|.,!?…。，、।۔،)]+'] };
    case 'viking':
      return { ...base, patterns: [' ?[^(\\s|.,!?…。，、।۔،)]+', '\\p{N}'] };
    case 'default':
      return {
        ...base,
        patterns: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2_LLAMACPP, '\\p{N}+', '[0-9][0-9][0-9]'],
      };
    default:
      throw new UnsupportedError(`GGUF tokenizer.ggml.pre "${pre}": unknown pre-tokenizer (byte-level BPE)`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Oniguruma -> JavaScript regex translation

const GENERAL_CATEGORIES = new Set(
  ('L Lu Ll Lt Lm Lo LC M Mn Mc Me N Nd Nl No P Pc Pd Ps Pe Pi Pf Po S Sm Sc Sk So Z Zs Zl Zp C Cc Cf Cs Co Cn ' +
    'Letter Cased_Letter Uppercase_Letter Lowercase_Letter Titlecase_Letter Modifier_Letter Other_Letter Mark ' +
    'Nonspacing_Mark Spacing_Mark Enclosing_Mark Number Decimal_Number Letter_Number Other_Number Punctuation ' +
    'Connector_Punctuation Dash_Punctuation Open_Punctuation Close_Punctuation Initial_Punctuation ' +
    'Final_Punctuation Other_Punctuation Symbol Math_Symbol Currency_Symbol Modifier_Symbol Other_Symbol ' +
    'Separator Space_Separator Line_Separator Paragraph_Separator Other Control Format Surrogate Private_Use ' +
    'Unassigned').split(' '),
);

const WORD_CLASS_BODY = '\\p{L}\\p{M}\\p{Nd}\\p{Pc}';
/** Characters whose simple case folding is irregular; candidates for case-variant classes. */
const IRREGULAR_FOLDS = [
  0x17f, 0x212a, 0x212b, 0x1e9e, 0x1fbe, 0x345, 0x3c2, 0x3d0, 0x3d1, 0x3d5, 0x3d6, 0x3f0, 0x3f1, 0x3f5, 0x1e9b,
  0x2126, 0x3f4, 0x1c80, 0x1c81, 0x1c82, 0x1c83, 0x1c84, 0x1c85, 0x1c86, 0x1c87, 0x1c88, 0xb5, 0x130, 0x131,
];

function escapeControl(ch: string): string | null {
  const c = ch.codePointAt(0)!;
  if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) {
    return c <= 0xff ? '\\x' + c.toString(16).padStart(2, '0') : '\\u' + c.toString(16).padStart(4, '0');
  }
  return null;
}
function escapeClassChar(ch: string): string {
  return escapeControl(ch) ?? (/[\\\]\[\^\-]/.test(ch) ? '\\' + ch : ch);
}
function escapeLiteral(ch: string): string {
  return escapeControl(ch) ?? (/[\\^$.*+?()[\]{}|/]/.test(ch) ? '\\' + ch : ch);
}

/** All characters equal to `ch` under case-insensitive Unicode matching (including `ch`), or just [ch]. */
function caseVariants(ch: string): string[] {
  const lo = ch.toLowerCase();
  const up = ch.toUpperCase();
  if (lo === up && lo === ch) return [ch];
  const re = new RegExp('^' + escapeLiteral(ch) + '$', 'iu');
  const cands = new Set<string>([ch]);
  for (const c of [lo, up, ch.toLocaleLowerCase('und'), ...IRREGULAR_FOLDS.map((cp) => String.fromCodePoint(cp))]) {
    if ([...c].length === 1 && re.test(c)) cands.add(c);
  }
  // also the lower-case of the upper-case (e.g. 'ſ' -> 'S' -> 's')
  const lu = up.toLowerCase();
  if ([...lu].length === 1 && re.test(lu)) cands.add(lu);
  return [...cands];
}

function propertyEscape(name: string, negated: boolean, where: string): string {
  let n = name.trim();
  if (n.startsWith('^')) {
    negated = !negated;
    n = n.slice(1);
  }
  const letter = negated ? 'P' : 'p';
  if (/^any$/i.test(n)) return negated ? '[^\\s\\S]' : '[\\s\\S]';
  const tryProp = (p: string): string | null => {
    try {
      new RegExp(`\\p{${p}}`, 'u');
      return `\\${letter}{${p}}`;
    } catch {
      return null;
    }
  };
  if (GENERAL_CATEGORIES.has(n)) return `\\${letter}{${n}}`;
  const direct = tryProp(n);
  if (direct) return direct;
  const script = tryProp(`Script=${n}`);
  if (script) return script;
  // Oniguruma names are case-insensitive and ignore spaces/underscores/hyphens: try a Title_Case form.
  const norm = n
    .toLowerCase()
    .split(/[ _-]+/)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('_');
  const viaNorm = tryProp(norm) ?? tryProp(`Script=${norm}`);
  if (viaNorm) return viaNorm;
  throw new UnsupportedError(`regex ${where}: unknown Unicode property \\p{${name}}`);
}

interface EscapeResult {
  /** Text for outside a class. */
  text: string;
  /** Text usable inside a class (without brackets), or null when it cannot be used there. */
  classText: string | null;
  /** The literal character when the escape denotes one character (for case variants and ranges). */
  literal: string | null;
  len: number;
}

function readEscape(src: string, i: number, where: string): EscapeResult {
  const c = src[i + 1];
  if (c === undefined) throw new UnsupportedError(`regex ${where}: trailing backslash`);
  const lit = (ch: string, len: number): EscapeResult => ({
    text: escapeLiteral(ch),
    classText: escapeClassChar(ch),
    literal: ch,
    len,
  });
  switch (c) {
    case 's': return { text: '\\p{White_Space}', classText: '\\p{White_Space}', literal: null, len: 2 };
    case 'S': return { text: '\\P{White_Space}', classText: '\\P{White_Space}', literal: null, len: 2 };
    case 'd': return { text: '\\p{Nd}', classText: '\\p{Nd}', literal: null, len: 2 };
    case 'D': return { text: '\\P{Nd}', classText: '\\P{Nd}', literal: null, len: 2 };
    case 'w': return { text: `[${WORD_CLASS_BODY}]`, classText: WORD_CLASS_BODY, literal: null, len: 2 };
    case 'W': return { text: `[^${WORD_CLASS_BODY}]`, classText: null, literal: null, len: 2 };
    case 'h': return { text: '[0-9a-fA-F]', classText: '0-9a-fA-F', literal: null, len: 2 };
    case 'H': return { text: '[^0-9a-fA-F]', classText: null, literal: null, len: 2 };
    case 'n': return lit('\n', 2);
    case 'r': return lit('\r', 2);
    case 't': return lit('\t', 2);
    case 'f': return lit('\f', 2);
    case 'v': return lit('\v', 2);
    case 'a': return lit('\x07', 2);
    case 'e': return lit('\x1b', 2);
    case '0': {
      const m = /^[0-7]{1,2}/.exec(src.slice(i + 2));
      const oct = m ? m[0] : '';
      return lit(String.fromCharCode(parseInt('0' + oct, 8)), 2 + oct.length);
    }
    case 'x': {
      const braced = /^\{([0-9a-fA-F]{1,8})\}/.exec(src.slice(i + 2));
      if (braced) return lit(String.fromCodePoint(parseInt(braced[1]!, 16)), 2 + braced[0].length);
      const m = /^[0-9a-fA-F]{1,2}/.exec(src.slice(i + 2));
      if (!m) throw new UnsupportedError(`regex ${where}: bad \\x escape`);
      return lit(String.fromCharCode(parseInt(m[0], 16)), 2 + m[0].length);
    }
    case 'u': {
      const m = /^[0-9a-fA-F]{4}/.exec(src.slice(i + 2));
      if (!m) throw new UnsupportedError(`regex ${where}: bad \\u escape`);
      return lit(String.fromCharCode(parseInt(m[0], 16)), 6);
    }
    case 'p':
    case 'P': {
      const m = /^\{([^}]*)\}/.exec(src.slice(i + 2));
      if (!m) throw new UnsupportedError(`regex ${where}: \\${c} without {name}`);
      const t = propertyEscape(m[1]!, c === 'P', where);
      return { text: t, classText: t.startsWith('[') ? null : t, literal: null, len: 2 + m[0].length };
    }
    case 'A': return { text: '^', classText: null, literal: null, len: 2 };
    case 'z': return { text: '$', classText: null, literal: null, len: 2 };
    case 'Z': return { text: '(?=\\n?$)', classText: null, literal: null, len: 2 };
    case 'b': {
      const w = `[${WORD_CLASS_BODY}]`;
      return { text: `(?:(?<=${w})(?!${w})|(?<!${w})(?=${w}))`, classText: null, literal: null, len: 2 };
    }
    case 'B': {
      const w = `[${WORD_CLASS_BODY}]`;
      return { text: `(?:(?<=${w})(?=${w})|(?<!${w})(?!${w}))`, classText: null, literal: null, len: 2 };
    }
    default:
      if (/[A-Za-z0-9]/.test(c)) throw new UnsupportedError(`regex ${where}: unsupported escape \\${c}`);
      return lit(c, 2);
  }
}

/** Translate a character class starting at src[i] === '['. Returns [text, consumed length]. */
function readClass(src: string, i: number, ci: boolean, where: string): [string, number] {
  let j = i + 1;
  let negated = false;
  if (src[j] === '^') {
    negated = true;
    j++;
  }
  const parts: string[] = [];
  let first = true;
  // Items: literal chars (for ranges / case variants) or class escapes.
  type Item = { lit: string; esc?: boolean } | { raw: string };
  const items: Item[] = [];
  while (true) {
    if (j >= src.length) throw new UnsupportedError(`regex ${where}: unterminated character class`);
    const c = src[j]!;
    if (c === ']' && !first) {
      j++;
      break;
    }
    first = false;
    if (c === '[') {
      if (src[j + 1] === ':') throw new UnsupportedError(`regex ${where}: POSIX bracket expression`);
      throw new UnsupportedError(`regex ${where}: nested character class`);
    }
    if (c === '&' && src[j + 1] === '&') throw new UnsupportedError(`regex ${where}: class intersection &&`);
    if (c === '\\') {
      const e = readEscape(src, j, where);
      if (e.literal !== null) items.push({ lit: e.literal, esc: true });
      else if (e.classText !== null) items.push({ raw: e.classText });
      else throw new UnsupportedError(`regex ${where}: escape ${src.slice(j, j + e.len)} inside a class`);
      j += e.len;
      continue;
    }
    const cp = src.codePointAt(j)!;
    const ch = String.fromCodePoint(cp);
    items.push({ lit: ch });
    j += ch.length;
  }
  // Build with ranges: lit '-' lit (the '-' being a literal item between two literal items, not first or last).
  for (let k = 0; k < items.length; k++) {
    const it = items[k]!;
    if ('raw' in it) {
      parts.push(it.raw);
      continue;
    }
    const next = items[k + 1];
    const after = items[k + 2];
    if (next && 'lit' in next && next.lit === '-' && !next.esc && after && 'lit' in after && k + 2 < items.length) {
      const a = it.lit;
      const b = after.lit;
      parts.push(escapeClassChar(a) + '-' + escapeClassChar(b));
      if (ci) {
        if (/^[a-z]$/.test(a) && /^[a-z]$/.test(b)) parts.push(a.toUpperCase() + '-' + b.toUpperCase());
        else if (/^[A-Z]$/.test(a) && /^[A-Z]$/.test(b)) parts.push(a.toLowerCase() + '-' + b.toLowerCase());
        else if (a.toLowerCase() !== a.toUpperCase() || b.toLowerCase() !== b.toUpperCase()) {
          throw new UnsupportedError(`regex ${where}: case-insensitive non-ASCII range ${a}-${b}`);
        }
      }
      k += 2;
      continue;
    }
    const vars = ci ? caseVariants(it.lit) : [it.lit];
    for (const v of vars) parts.push(escapeClassChar(v));
  }
  return [`[${negated ? '^' : ''}${parts.join('')}]`, j - i];
}

interface GroupFrame {
  ci: boolean;
  /** Output index where the group's text starts (at its opening parenthesis). */
  start: number;
  atomic: boolean;
}

/** Translate an Oniguruma (Ruby syntax, as used by HF `tokenizers`) pattern to a JS pattern for the `u` flag. */
export function translateRegex(src: string): string {
  const where = JSON.stringify(src.length > 80 ? src.slice(0, 77) + '...' : src);
  let out = '';
  let ci = false;
  let lastAtomStart = -1;
  let atomicCount = 0;
  const stack: GroupFrame[] = [];
  const wrapAtomic = (from: number): void => {
    const atom = out.slice(from);
    const name = `_atomic${atomicCount++}`;
    out = out.slice(0, from) + `(?=(?<${name}>${atom}))\\k<${name}>`;
  };
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\') {
      const d = src[i + 1];
      if (d !== undefined && /[1-9k]/.test(d)) throw new UnsupportedError(`regex ${where}: backreference \\${d}`);
      const e = readEscape(src, i, where);
      lastAtomStart = out.length;
      if (ci && e.literal !== null) {
        const v = caseVariants(e.literal);
        out += v.length > 1 ? `[${v.map(escapeClassChar).join('')}]` : e.text;
      } else out += e.text;
      i += e.len;
      continue;
    }
    if (c === '[') {
      const [text, len] = readClass(src, i, ci, where);
      lastAtomStart = out.length;
      out += text;
      i += len;
      continue;
    }
    if (c === '(') {
      if (src[i + 1] === '?') {
        const rest = src.slice(i + 2);
        if (rest.startsWith('#')) {
          const end = src.indexOf(')', i);
          if (end < 0) throw new UnsupportedError(`regex ${where}: unterminated comment`);
          i = end + 1;
          continue;
        }
        const flags = /^([imx]*)(?:-([imx]*))?([:)])/.exec(rest);
        if (flags && (flags[1] || flags[2] || flags[3] === ':')) {
          const on = flags[1] ?? '';
          const off = flags[2] ?? '';
          if (/[mx]/.test(on + off)) throw new UnsupportedError(`regex ${where}: inline flags (?${on}-${off})`);
          const newCi: boolean = on.includes('i') ? true : off.includes('i') ? false : ci;
          if (flags[3] === ')') {
            // (?i) applies to the rest of the enclosing group
            ci = newCi;
            i += 2 + flags[0].length;
            continue;
          }
          stack.push({ ci, start: out.length, atomic: false });
          ci = newCi;
          out += '(?:';
          i += 2 + flags[0].length;
          continue;
        }
        if (rest.startsWith('>')) {
          stack.push({ ci, start: out.length, atomic: true });
          out += '(?:';
          i += 3;
          continue;
        }
        if (rest.startsWith('P<')) {
          stack.push({ ci, start: out.length, atomic: false });
          out += '(?<';
          i += 4;
          continue;
        }
        if (rest.startsWith(':') || rest.startsWith('=') || rest.startsWith('!') || rest.startsWith('<=') ||
          rest.startsWith('<!') || /^<[A-Za-z_]/.test(rest)) {
          const head = rest.startsWith('<=') || rest.startsWith('<!') ? rest.slice(0, 2) : rest.startsWith('<')
            ? rest.slice(0, rest.indexOf('>') + 1)
            : rest.slice(0, 1);
          stack.push({ ci, start: out.length, atomic: false });
          out += '(?' + head;
          i += 2 + head.length;
          continue;
        }
        throw new UnsupportedError(`regex ${where}: group syntax ${src.slice(i, i + 4)}`);
      }
      stack.push({ ci, start: out.length, atomic: false });
      out += '(';
      i++;
      continue;
    }
    if (c === ')') {
      const f = stack.pop();
      if (!f) throw new UnsupportedError(`regex ${where}: unbalanced ')'`);
      out += ')';
      ci = f.ci;
      if (f.atomic) wrapAtomic(f.start);
      lastAtomStart = f.start;
      i++;
      continue;
    }
    if (c === '*' || c === '+' || c === '?' || c === '{') {
      let q: string;
      if (c === '{') {
        const m = /^\{(\d*)(,(\d*))?\}/.exec(src.slice(i));
        if (!m || (m[1] === '' && (m[2] === undefined || m[3] === ''))) {
          // a literal brace
          lastAtomStart = out.length;
          out += ci ? '\\{' : '\\{';
          i++;
          continue;
        }
        q = m[1] === '' ? `{0${m[2]}}` : m[0];
        i += m[0].length;
        if (lastAtomStart < 0) throw new UnsupportedError(`regex ${where}: quantifier without target`);
        out += q;
        if (src[i] === '?') {
          out += '?';
          i++;
        } else if (src[i] === '+') {
          // Ruby syntax: {n,m}+ is not possessive; it is a repetition of the interval
          out = out.slice(0, lastAtomStart) + '(?:' + out.slice(lastAtomStart) + ')';
          continue; // the '+' is handled as a quantifier on the new group in the next iteration
        }
        continue;
      }
      if (lastAtomStart < 0) throw new UnsupportedError(`regex ${where}: quantifier ${c} without target`);
      out += c;
      i++;
      if (src[i] === '?') {
        out += '?';
        i++;
      } else if (src[i] === '+') {
        i++;
        wrapAtomic(lastAtomStart);
      }
      continue;
    }
    if (c === '|') {
      out += '|';
      lastAtomStart = -1;
      i++;
      continue;
    }
    if (c === '.') {
      lastAtomStart = out.length;
      out += '[^\\n]';
      i++;
      continue;
    }
    if (c === '^') {
      lastAtomStart = -1;
      out += '(?<![^\\n])';
      i++;
      continue;
    }
    if (c === '$') {
      lastAtomStart = -1;
      out += '(?![^\\n])';
      i++;
      continue;
    }
    const ch = String.fromCodePoint(src.codePointAt(i)!);
    lastAtomStart = out.length;
    if (ci) {
      const v = caseVariants(ch);
      out += v.length > 1 ? `[${v.map(escapeClassChar).join('')}]` : escapeLiteral(ch);
    } else out += escapeLiteral(ch);
    i += ch.length;
  }
  if (stack.length) throw new UnsupportedError(`regex ${where}: unbalanced '('`);
  return out;
}

const compiledCache = new Map<string, RegExp>();

/** Compile an Oniguruma pattern to a global Unicode JS RegExp (cached; callers must not rely on lastIndex). */
export function compileRegex(pattern: string): RegExp {
  let re = compiledCache.get(pattern);
  if (!re) {
    const js = translateRegex(pattern);
    try {
      re = new RegExp(js, 'gu');
    } catch (e) {
      throw new UnsupportedError(`regex ${JSON.stringify(pattern)}: translated form /${js}/u does not compile: ${(e as Error).message}`);
    }
    compiledCache.set(pattern, re);
  }
  return new RegExp(re.source, re.flags);
}

// ---------------------------------------------------------------------------------------------------------------
// Splitting with HF SplitDelimiterBehavior semantics

export type SplitBehavior = 'Isolated' | 'Removed' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

/** Pattern: a compiled global RegExp, or a literal string. */
export type SplitPattern = RegExp | string;

/** HF Pattern::find_matches: [start, end, isMatch] covering the whole text (empty text -> one empty non-match). */
export function findMatches(text: string, pattern: SplitPattern): [number, number, boolean][] {
  const out: [number, number, boolean][] = [];
  if (text.length === 0) return [[0, 0, false]];
  let prev = 0;
  if (typeof pattern === 'string') {
    if (pattern.length === 0) return [[0, text.length, false]];
    let k = text.indexOf(pattern);
    while (k >= 0) {
      if (prev !== k) out.push([prev, k, false]);
      out.push([k, k + pattern.length, true]);
      prev = k + pattern.length;
      k = text.indexOf(pattern, prev);
    }
  } else {
    pattern.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = pattern.exec(text)) !== null) {
      const s = m.index;
      const e = s + m[0].length;
      if (e === s) {
        // empty match: HF records it (then drops the empty piece); advance one code point
        pattern.lastIndex = s + (text.codePointAt(s)! > 0xffff ? 2 : 1);
        if (s >= text.length) break;
        if (prev !== s) out.push([prev, s, false]);
        prev = s;
        continue;
      }
      if (prev !== s) out.push([prev, s, false]);
      out.push([s, e, true]);
      prev = e;
    }
  }
  if (prev !== text.length) out.push([prev, text.length, false]);
  return out;
}

/** Split `text` into pieces as HF `NormalizedString::split(pattern, behavior)` does (empty pieces dropped). */
export function splitText(text: string, pattern: SplitPattern, behavior: SplitBehavior, invert = false): string[] {
  if (behavior === 'Isolated' && typeof pattern !== 'string') {
    // Fast path (invert does not change the Isolated result).
    const out: string[] = [];
    let prev = 0;
    pattern.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = pattern.exec(text)) !== null) {
      const s = m.index;
      const len = m[0].length;
      if (len === 0) {
        pattern.lastIndex = s + (text.codePointAt(s)! > 0xffff ? 2 : 1);
        if (s >= text.length) break;
        continue;
      }
      if (prev !== s) out.push(text.slice(prev, s));
      out.push(m[0]);
      prev = s + len;
    }
    if (prev < text.length) out.push(text.slice(prev));
    return out;
  }
  let matches = findMatches(text, pattern);
  if (invert) matches = matches.map(([s, e, m]) => [s, e, !m]);
  let spans: [number, number][] = [];
  switch (behavior) {
    case 'Isolated':
      spans = matches.map(([s, e]) => [s, e]);
      break;
    case 'Removed':
      spans = matches.filter((m) => !m[2]).map(([s, e]) => [s, e]);
      break;
    case 'MergedWithPrevious': {
      let prevMatch = false;
      for (const [s, e, isM] of matches) {
        const last = spans[spans.length - 1];
        if (isM && !prevMatch && last) last[1] = e;
        else spans.push([s, e]);
        prevMatch = isM;
      }
      break;
    }
    case 'MergedWithNext': {
      let prevMatch = false;
      const rev: [number, number][] = [];
      for (let k = matches.length - 1; k >= 0; k--) {
        const [s, e, isM] = matches[k]!;
        const last = rev[rev.length - 1];
        if (isM && !prevMatch && last) last[0] = s;
        else rev.push([s, e]);
        prevMatch = isM;
      }
      spans = rev.reverse();
      break;
    }
    case 'Contiguous': {
      let prevMatch = false;
      for (const [s, e, isM] of matches) {
        const last = spans[spans.length - 1];
        if (isM === prevMatch && last) last[1] = e;
        else spans.push([s, e]);
        prevMatch = isM;
      }
      break;
    }
    default:
      throw new UnsupportedError(`Split behavior "${String(behavior)}"`);
  }
  return spans.filter(([s, e]) => e > s).map(([s, e]) => text.slice(s, e));
}

/** A pre-tokenizer step: maps each piece to sub-pieces. */
export type PreTokenizeStep = (piece: string) => string[];

/** Apply the steps in order to `text` (each step to every piece of the previous). */
export function runPreTokenizer(steps: readonly PreTokenizeStep[], text: string): string[] {
  let pieces = [text];
  for (const step of steps) {
    if (pieces.length === 1) {
      pieces = step(pieces[0]!);
      continue;
    }
    const next: string[] = [];
    for (const p of pieces) for (const q of step(p)) next.push(q);
    pieces = next;
  }
  return pieces;
}
