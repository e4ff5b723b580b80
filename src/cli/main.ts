#!/usr/bin/env node
// The `ristretto` command line: a thin layer over the library.

import { RistrettoError } from '../errors.js';
import { generateCommand, GENERATE_HELP } from './generate.js';
import { inspectCommand, INSPECT_HELP } from './inspect.js';
import { benchCommand, BENCH_HELP } from './bench.js';

const HELP = `ristretto: run transformer models on the device

Usage: ristretto <command> [options]

Commands:
  generate   generate text from a checkpoint (llama2.c .bin, GGUF, HF safetensors)
  inspect    show a checkpoint's format, architecture, config, tensors and dtypes
  bench      time prompt processing and decode of a model

Run 'ristretto <command> --help' for a command's options.
`;

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<void>; help: string }> = {
  generate: { run: generateCommand, help: GENERATE_HELP },
  inspect: { run: inspectCommand, help: INSPECT_HELP },
  bench: { run: benchCommand, help: BENCH_HELP },
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
