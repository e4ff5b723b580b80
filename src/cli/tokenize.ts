// `ristretto tokenize`: text files -> a token file for `ristretto train`.

import { parseArgs } from 'node:util';
import { InvalidArgumentError } from '../errors.js';
import { loadTokenizer } from '../tokenizers/load.js';
import { tokenizeFiles } from '../train/data.js';
import { required, str } from './args.js';

export const TOKENIZE_HELP = `Usage: ristretto tokenize --tokenizer PATH --in TEXT [--in TEXT ...] --out data.bin [options]

  --tokenizer PATH   tokenizer.bin / tokenizer.json / .gguf
  --in PATH          a UTF-8 text file (repeatable; extra positional arguments are inputs too)
  --out PATH         the token file to write (uint16 tokens when the vocabulary fits, else uint32)
  --doc-sep TEXT     document separator inside a file (default "<|endoftext|>"); each document starts with BOS
  --no-bos           do not add the tokenizer's special tokens (BOS) at document starts
  --quiet            no summary on stderr
`;

export async function tokenizeCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      tokenizer: { type: 'string' }, in: { type: 'string', multiple: true }, out: { type: 'string' }, 'doc-sep': { type: 'string' },
      'no-bos': { type: 'boolean' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(TOKENIZE_HELP);
    return;
  }
  const inputs = [...(values.in ?? []), ...positionals];
  if (inputs.length === 0) throw new InvalidArgumentError('tokenize: give at least one --in TEXT file');
  const tok = loadTokenizer(required(values, 'tokenizer', 'tokenize')).tokenizer;
  const out = required(values, 'out', 'tokenize');
  const t0 = performance.now();
  const h = tokenizeFiles(tok, inputs, out, { docSeparator: str(values, 'doc-sep'), addSpecialTokens: values['no-bos'] !== true });
  if (values.quiet !== true) {
    process.stderr.write(
      `[ristretto] ${out}: ${h.tokens} tokens in ${h.documents} documents, uint${h.bytesPerToken * 8}, vocab ${h.vocabSize}` +
        ` (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`,
    );
  }
}
