// `ristretto encode`: text -> token ids with any tokenizer the engine reads.

import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { InvalidArgumentError, RistrettoError } from '../errors.js';
import { loadTokenizer } from '../tokenizers/load.js';
import { required } from './args.js';

export const ENCODE_HELP = `Usage: ristretto encode --tokenizer PATH [--add-special-tokens] [--parse-special] (TEXT... | --in FILE.jsonl)

Encodes text and prints one JSON line {"ids": [...]} per text, in order.

  --tokenizer PATH       a llama2.c tokenizer.bin (its size is read to the end of the file), an HF tokenizer.json
                         or a folder holding one (tokenizer_config.json beside it is used), or a .gguf file
  --add-special-tokens   add what the tokenizer adds around a text (BOS for Llama 2 / Gemma 3, [CLS] [SEP] for
                         BERT). Default: off, the ids of the text alone
  --parse-special        special-token text in the input ("<s>", "<|im_start|>") becomes that token.
                         Default: off, such text is encoded as plain text
  --in FILE.jsonl        one JSON string per line ("-" reads standard input); empty lines are skipped. Lines
                         that are not a JSON string are reported with their line numbers and nothing is printed
  TEXT...                each argument is one text

Example: ristretto encode --tokenizer tokenizer.bin --add-special-tokens "Once upon a time"
`;

/** Parses a JSONL file of strings; every bad line is reported with its 1-based number. */
export function readJsonlStrings(content: string, file: string): string[] {
  const texts: string[] = [];
  const bad: string[] = [];
  const lines = content.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      bad.push(`line ${i + 1}: not valid JSON (${(e as Error).message})`);
      return;
    }
    if (typeof v !== 'string') bad.push(`line ${i + 1}: expected a JSON string, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
    else texts.push(v);
  });
  if (bad.length > 0) {
    const shown = bad.slice(0, 20).join('\n  ');
    throw new InvalidArgumentError(`${file}: ${bad.length} bad line${bad.length > 1 ? 's' : ''} (each line must be one JSON string):\n  ${shown}${bad.length > 20 ? `\n  ... and ${bad.length - 20} more` : ''}`);
  }
  return texts;
}

export async function encodeCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      tokenizer: { type: 'string' },
      'add-special-tokens': { type: 'boolean' },
      'parse-special': { type: 'boolean' },
      in: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(ENCODE_HELP);
    return;
  }
  const tokPath = required(values, 'tokenizer', 'encode');
  if ((values.in === undefined) === (positionals.length === 0)) throw new InvalidArgumentError('encode: give either TEXT arguments or --in FILE.jsonl (exactly one of them)');
  let texts: string[];
  if (values.in !== undefined) {
    const file = values.in;
    let content: string;
    try {
      content = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (e) {
      throw new RistrettoError('NOT_FOUND', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
    }
    texts = readJsonlStrings(content, file === '-' ? '<stdin>' : file);
  } else texts = positionals;
  const { tokenizer } = loadTokenizer(tokPath);
  const opts = { addSpecialTokens: values['add-special-tokens'] ?? false, parseSpecial: values['parse-special'] ?? false };
  let buf = '';
  for (const text of texts) {
    buf += JSON.stringify({ ids: tokenizer.encode(text, opts) }) + '\n';
    if (buf.length > 1 << 16) {
      process.stdout.write(buf);
      buf = '';
    }
  }
  if (buf.length > 0) process.stdout.write(buf);
}
