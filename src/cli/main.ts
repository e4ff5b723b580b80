#!/usr/bin/env node
// The `ristretto` command line: a thin layer over the library.

import { RistrettoError } from '../errors.js';
import { generateCommand, GENERATE_HELP } from './generate.js';
import { inspectCommand, INSPECT_HELP } from './inspect.js';
import { trainCommand, TRAIN_HELP } from './train.js';
import { exportCommand, EXPORT_HELP } from './export.js';
import { tokenizeCommand, TOKENIZE_HELP } from './tokenize.js';
import { benchCommand, BENCH_HELP } from './bench.js';
import { encodeCommand, ENCODE_HELP } from './encode.js';
import { decodeCommand, DECODE_HELP } from './decode.js';
import { embedCommand, EMBED_HELP } from './embed.js';
import { chatCommand, CHAT_HELP } from './chat.js';
import { serveCommand, SERVE_HELP } from './serve.js';
import { templateCommand, TEMPLATE_HELP } from './template.js';
import { compileCommand, COMPILE_HELP } from './compile.js';
import { auditCommand, AUDIT_HELP } from './audit.js';

const HELP = `ristretto: run transformer models on the device

Usage: ristretto <command> [options]

Commands:
  generate   generate text from a checkpoint (llama2.c .bin, GGUF, HF safetensors)
  inspect    show a checkpoint's format, architecture, config, tensors and dtypes
  train      train from scratch or fine-tune on a token file (checkpoints, --resume, loss plot)
  export     a training checkpoint -> safetensors, GGUF or llama2.c .bin
  tokenize   text files -> a token file for train
  bench      time prompt processing and decode of a model
  encode     text -> token ids with a tokenizer (tokenizer.bin, tokenizer.json or folder, .gguf)
  decode     token ids -> text with a tokenizer
  embed      sentence embeddings (float, int8, binary, ubinary) as JSON lines; late chunking
  chat       interactive chat in the terminal with the model's chat template
  serve      OpenAI-compatible HTTP server (chat, completions, embeddings)
  template   print the prompt a chat template renders (text or JSON with ids)
  compile    compile a model for the Apple Neural Engine (MIL programs, weight blobs, placement plan)
  audit      explain a compiled ANE bundle program by program

Run 'ristretto <command> --help' for a command's options.
`;

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<void>; help: string }> = {
  generate: { run: generateCommand, help: GENERATE_HELP },
  inspect: { run: inspectCommand, help: INSPECT_HELP },
  train: { run: trainCommand, help: TRAIN_HELP },
  export: { run: exportCommand, help: EXPORT_HELP },
  tokenize: { run: tokenizeCommand, help: TOKENIZE_HELP },
  bench: { run: benchCommand, help: BENCH_HELP },
  encode: { run: encodeCommand, help: ENCODE_HELP },
  decode: { run: decodeCommand, help: DECODE_HELP },
  embed: { run: embedCommand, help: EMBED_HELP },
  chat: { run: chatCommand, help: CHAT_HELP },
  serve: { run: serveCommand, help: SERVE_HELP },
  template: { run: templateCommand, help: TEMPLATE_HELP },
  compile: { run: compileCommand, help: COMPILE_HELP },
  audit: { run: auditCommand, help: AUDIT_HELP },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP);
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (cmd === undefined) {
    process.stderr.write(`ristretto: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
  try {
    await cmd.run(rest);
    return 0;
  } catch (e) {
    if (e instanceof RistrettoError) {
      process.stderr.write(`ristretto ${name}: ${e.message}\n`);
      return e.code === 'INVALID_ARGUMENT' ? 2 : 1;
    }
    if (e instanceof Error && (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`ristretto ${name}: ${e.message}\n\n${cmd.help}`);
      return 2;
    }
    process.stderr.write(`ristretto ${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
