// Checking a tokenizer against reference/tokenizer-cases-modern.json (HF tokenizers 0.23.2):
// ids (HF matches special-token text anywhere -> parseSpecial: true), ids_with_special, tokens and
// the three decodes; `extra` adds tokenizer-specific checks. All failures are listed, then asserted.

import assert from 'node:assert/strict';
import type { DecodeOptions, Tokenizer } from '../../src/tokenizers/tokenizer.js';

export interface ModernCase {
  text: string;
  ids: number[];
  tokens: string[];
  ids_with_special: number[];
  decoded: string;
  decoded_with_special: string;
  decoded_skip_special: string;
  decoded_clean_up?: string;
}

export type Eq = (a: unknown, b: unknown, what: string) => void;

const show = (s: string): string => {
  const j = JSON.stringify(s);
  return j.length > 90 ? j.slice(0, 87) + '..."' : j;
};

export function checkModernCases(
  t: { diagnostic(m: string): void },
  tok: Tokenizer,
  cases: ModernCase[],
  name: string,
  o: { decodes?: boolean; decodeOptions?: object; extra?: (c: ModernCase, eq: Eq, ids: number[]) => void } = {},
): void {
  const failures: string[] = [];
  let matched = 0;
  for (const c of cases) {
    const before = failures.length;
    const eq: Eq = (a, b, what) => {
      if (JSON.stringify(a) !== JSON.stringify(b)) failures.push(`${what} ${show(c.text)}`);
    };
    const ids = tok.encode(c.text, { parseSpecial: true, addSpecialTokens: false });
    eq(ids, c.ids, 'ids');
    eq(tok.encode(c.text, { parseSpecial: true }), c.ids_with_special, 'ids_with_special');
    if (o.decodes ?? true) {
      const d = (x: DecodeOptions) => ({ ...(o.decodeOptions ?? {}), ...x });
      eq(ids.map((i) => tok.idToToken(i)), c.tokens, 'tokens');
      eq(tok.decode(c.ids, d({ skipSpecialTokens: false })), c.decoded, 'decoded');
      eq(tok.decode(c.ids_with_special, d({ skipSpecialTokens: false })), c.decoded_with_special, 'decoded_with_special');
      eq(tok.decode(c.ids_with_special, d({ skipSpecialTokens: true })), c.decoded_skip_special, 'decoded_skip_special');
      o.extra?.(c, eq, ids);
    }
    if (failures.length === before) matched++;
  }
  t.diagnostic(`${name}: ${matched}/${cases.length} cases matched${failures.length ? '; failures: ' + failures.join(', ') : ''}`);
  assert.deepEqual(failures, [], name);
}
