// `ristretto decode`: token ids -> text with any tokenizer the engine reads.

import { parseArgs } from 'node:util';
import { InvalidArgumentError } from '../errors.js';
import { loadTokenizer } from '../tokenizers/load.js';
import { required } from './args.js';

export const DECODE_HELP = `Usage: ristretto decode --tokenizer PATH [--keep-special] [--json] IDS...

Decodes token ids and prints the text followed by a newline.

  --tokenizer PATH   a llama2.c tokenizer.bin, an HF tokenizer.json or a folder holding one, or a .gguf file
  --keep-special     print special tokens (BOS, EOS, <|im_start|>) as their text. Default: they are dropped
  --json             print {"text": "..."} instead, exact even for text with trailing newlines
  IDS...             token ids, as separate arguments or in one argument separated by commas or spaces;
                     brackets are ignored, so "[1, 2, 3]" works too

Example: ristretto decode --tokenizer tokenizer.bin 1 9038 2501 263 931
`;

/** Token ids from arguments such as "1", "1,2,3" or "[1, 2, 3]". */
export function parseIds(args: readonly string[], vocabSize: number): number[] {
  const ids: number[] = [];
  for (const arg of args) {
    for (const part of arg.replace(/[[\]]/g, ' ').split(/[\s,]+/)) {
      if (part === '') continue;
      const n = Number(part);
      if (!/^\d+$/.test(part) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${JSON.stringify(part)} is not a token id (a non-negative integer)`);
      if (n >= vocabSize) throw new InvalidArgumentError(`token id ${n} is outside the vocabulary (size ${vocabSize})`);
      ids.push(n);
    }
  }
  return ids;
}

export async function decodeCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      tokenizer: { type: 'string' },
      'keep-special': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(DECODE_HELP);
    return;
  }
  const tokPath = required(values, 'tokenizer', 'decode');
  const { tokenizer } = loadTokenizer(tokPath);
  const ids = parseIds(positionals, tokenizer.vocabSize);
  const text = tokenizer.decode(ids, { skipSpecialTokens: !(values['keep-special'] ?? false) });
  process.stdout.write(values.json ? JSON.stringify({ text }) + '\n' : text + '\n');
}
