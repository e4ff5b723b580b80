// HuggingFace `config.json` (+ optional `generation_config.json`) and generic JSON file reading with clear errors:
// a missing file is NOT_FOUND naming the path; bad UTF-8 or bad JSON is a FormatError naming the file and the
// character position (UTF-16 index) (and line:column) of the first syntax error.

import * as nodePath from 'node:path';
import { RistrettoError } from '../errors.js';
import { FileReader, fail } from './file-reader.js';

const MAX_JSON_BYTES = 256 * 1024 * 1024; // V8 strings top out near 512M UTF-16 units

/**
 * Index of the first JSON syntax error in `s` (V8's messages do not always carry a position), or -1.
 * An iterative scanner: no recursion, so deeply nested input cannot overflow the stack.
 */
export function jsonErrorPosition(s: string): number {
  let i = 0;
  const stack: string[] = []; // '{' or '['
  const ws = (): void => { while (i < s.length && ' \t\n\r'.includes(s[i]!)) i++; };
  const str = (): boolean => {
    if (s[i] !== '"') return false;
    for (i++; i < s.length; i++) {
      const ch = s.charCodeAt(i);
      if (ch === 34) { i++; return true; }
      if (ch < 0x20) return false;
      if (ch === 92) {
        const e = s[++i];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(s.slice(i + 1, i + 5))) return false;
          i += 4;
        } else if (e === undefined || !'"\\/bfnrt'.includes(e)) return false;
      }
    }
    return false;
  };
  const scalar = (): boolean => {
    if (s[i] === '"') return str();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(s.slice(i, i + 400));
    if (!m || m[0].length === 0) return false;
    i += m[0].length;
    return true;
  };
  // value -> after-value loop
  let expectValue = true;
  for (;;) {
    ws();
    if (expectValue) {
      if (s[i] === '{' || s[i] === '[') {
        stack.push(s[i]!);
        i++;
        ws();
        if ((stack.at(-1) === '{' && s[i] === '}') || (stack.at(-1) === '[' && s[i] === ']')) {
          stack.pop();
          i++;
          expectValue = false;
          continue;
        }
        if (stack.at(-1) === '{') {
          if (!str()) return i;
          ws();
          if (s[i] !== ':') return i;
          i++;
        }
        continue;
      }
      if (!scalar()) return i;
      expectValue = false;
      continue;
    }
    const top = stack.at(-1);
    if (top === undefined) return i < s.length ? i : -1;
    if (s[i] === ',') {
      i++;
      if (top === '{') {
        ws();
        if (!str()) return i;
        ws();
        if (s[i] !== ':') return i;
        i++;
      }
      expectValue = true;
    } else if ((top === '{' && s[i] === '}') || (top === '[' && s[i] === ']')) {
      stack.pop();
      i++;
    } else return i;
  }
}

/** Parses JSON text; a syntax error is a FormatError with the position, line and column. */
export function parseJson(text: string, file: string, where = 'JSON'): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const pos = jsonErrorPosition(text);
    const before = text.slice(0, Math.max(0, pos));
    const line = before.split('\n').length;
    const col = pos - before.lastIndexOf('\n');
    const at = pos < 0 ? '' : pos >= text.length ? ` at end of input (position ${pos})` : ` at position ${pos} (line ${line}, column ${col})`;
    return fail(file, where, 'valid JSON', `${(e as Error).message.replace(/\s+/g, ' ')}${at}`);
  }
}

/** Reads a UTF-8 JSON file (a leading BOM is ignored). Missing -> NOT_FOUND; bad UTF-8/JSON -> FormatError. */
export function readJsonFile(path: string): unknown {
  const r = new FileReader(path);
  try {
    if (r.size > MAX_JSON_BYTES) fail(path, 'file', `at most ${MAX_JSON_BYTES} bytes of JSON`, `${r.size} bytes`);
    let text = r.string(0, r.size, 'file');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    return parseJson(text, path);
  } finally {
    r.close();
  }
}

function readObject(path: string): Record<string, unknown> {
  const v = readJsonFile(path);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'top level', 'a JSON object', Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v);
  return v as Record<string, unknown>;
}

/** Reads `dir/config.json` (required) and `dir/generation_config.json` (optional, null when absent). */
export function readHfConfig(dir: string): { config: Record<string, unknown>; generation: Record<string, unknown> | null } {
  const config = readObject(nodePath.join(dir, 'config.json'));
  let generation: Record<string, unknown> | null = null;
  try {
    generation = readObject(nodePath.join(dir, 'generation_config.json'));
  } catch (e) {
    if (!(e instanceof RistrettoError && e.code === 'NOT_FOUND')) throw e;
  }
  return { config, generation };
}
