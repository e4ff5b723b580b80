// HF tokenizer.json `post_processor`: the special tokens put around one encoded sequence. One parser for every
// tokenizer kind (byte-level BPE, SentencePiece BPE, WordPiece). Supported: TemplateProcessing (its `single`
// template), BertProcessing / RobertaProcessing ([cls] $A [sep]), ByteLevel (adds nothing), and a Sequence of
// those in which at most one adds tokens.

import { FormatError, UnsupportedError } from '../errors.js';

/** Special ids before and after the sequence ($A). */
export interface SpecialsAround {
  prefix: number[];
  suffix: number[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The specials of `post_processor` (null: none). `tokenId` resolves a special token named in a template without
 * an entry in `special_tokens`. Errors name `source` and the offending field.
 */
export function parsePostProcessor(p: unknown, source: string, tokenId: (s: string) => number | undefined, where = 'post_processor'): SpecialsAround | null {
  if (p === null || p === undefined) return null;
  if (!isObj(p)) throw new FormatError({ file: source, where, expected: 'an object', found: typeof p });
  switch (p['type']) {
    case 'ByteLevel':
      return null;
    case 'Sequence': {
      let res: SpecialsAround | null = null;
      const list = Array.isArray(p['processors']) ? p['processors'] : [];
      list.forEach((q, i) => {
        const r = parsePostProcessor(q, source, tokenId, `${where}.processors[${i}]`);
        if (r === null) return;
        if (res !== null) throw new UnsupportedError(`${source}: ${where}: a Sequence with two processors that add tokens`);
        res = r;
      });
      return res;
    }
    case 'BertProcessing':
    case 'RobertaProcessing': {
      const id = (k: string): number => {
        const v = p[k];
        if (!Array.isArray(v) || typeof v[1] !== 'number') throw new FormatError({ file: source, where: `${where}.${k}`, expected: '[token, id]', found: JSON.stringify(v) });
        return v[1];
      };
      return { prefix: [id('cls')], suffix: [id('sep')] };
    }
    case 'TemplateProcessing':
      return template(p, source, tokenId, where);
    default:
      throw new UnsupportedError(`${source}: ${where} ${JSON.stringify(p['type'])} is not supported (supported: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence)`);
  }
}

function template(p: Obj, source: string, tokenId: (s: string) => number | undefined, where: string): SpecialsAround {
  const single = p['single'];
  if (!Array.isArray(single)) throw new FormatError({ file: source, where: `${where}.single`, expected: 'an array', found: typeof single });
  const specials = isObj(p['special_tokens']) ? p['special_tokens'] : {};
  const out: SpecialsAround = { prefix: [], suffix: [] };
  let seenA = false;
  single.forEach((item, i) => {
    if (isObj(item) && isObj(item['Sequence'])) {
      if (item['Sequence']['id'] === 'B') throw new UnsupportedError(`${source}: ${where}.single[${i}]: a single-sequence template refers to sequence B`);
      seenA = true;
      return;
    }
    const name = isObj(item) && isObj(item['SpecialToken']) ? item['SpecialToken']['id'] : undefined;
    if (typeof name !== 'string') throw new FormatError({ file: source, where: `${where}.single[${i}]`, expected: 'Sequence or SpecialToken', found: JSON.stringify(item) });
    const st = specials[name];
    let ids: unknown[];
    if (isObj(st) && Array.isArray(st['ids'])) ids = st['ids'];
    else {
      const id = tokenId(name);
      if (id === undefined) throw new FormatError({ file: source, where: `${where}.single[${i}]`, expected: 'a known special token', found: name });
      ids = [id];
    }
    for (const id of ids) {
      if (typeof id !== 'number') throw new FormatError({ file: source, where: `${where}.special_tokens["${name}"].ids`, expected: 'token ids', found: JSON.stringify(id) });
      (seenA ? out.suffix : out.prefix).push(id);
    }
  });
  return out;
}
