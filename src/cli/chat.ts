// `ristretto chat`: an interactive terminal chat. Streams each reply; Ctrl-C stops the current reply (a second
// Ctrl-C at the prompt quits); /reset, /system TEXT, /stats, /exit.

import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { AbortError, RistrettoError } from '../errors.js';
import { loadModel } from '../runtime/load-model.js';
import { num, str } from './args.js';
import { modelOrDefault } from './default-model.js';
import { progressReporter } from './progress.js';

export const CHAT_HELP = `Usage: ristretto chat [--model PATH] [options]

  --model PATH            checkpoint: llama2.c .bin, .gguf, or an HF folder
                          (default: the bundled story model, models/default/ristretto-stories-1m.gguf)
  --tokenizer PATH        tokenizer when not beside or inside the model
  --system TEXT           system message
  --chat-template FILE    a Jinja chat template to use instead of the model's own
  --ctx N                 KV-cache length (default: the model's)
  --max-tokens N          longest reply (default: until the end of turn or the context)
  --temperature T         default 0.7; --top-p P (default 0.95), --top-k K, --min-p P, --seed S
  --drop-oldest           when the context fills, forget the oldest turns instead of failing
  --stats                 print tokens/s after every reply

Commands at the prompt: /reset, /system TEXT, /stats (toggle), /exit. Ctrl-C stops the current reply.
`;

export async function chatCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, tokenizer: { type: 'string' }, system: { type: 'string' }, 'chat-template': { type: 'string' },
      ctx: { type: 'string' }, 'max-tokens': { type: 'string' }, temperature: { type: 'string' }, 'top-p': { type: 'string' },
      'top-k': { type: 'string' }, 'min-p': { type: 'string' }, seed: { type: 'string' }, 'drop-oldest': { type: 'boolean' },
      stats: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(CHAT_HELP);
    return;
  }
  const model = await loadModel(modelOrDefault(values, 'chat'), {
    tokenizer: str(values, 'tokenizer'),
    contextLength: num(values, 'ctx', { int: true, min: 1 }),
    onProgress: progressReporter(),
  });
  const tplFile = str(values, 'chat-template');
  const chat = model.chat({
    template: tplFile === undefined ? undefined : fs.readFileSync(tplFile, 'utf8'),
    system: str(values, 'system'),
    overflow: values['drop-oldest'] ? 'drop-oldest' : 'error',
  });
  const sampling = {
    maxTokens: num(values, 'max-tokens', { int: true, min: 1 }),
    temperature: num(values, 'temperature', { min: 0 }) ?? 0.7,
    topP: num(values, 'top-p', { min: 0, max: 1 }) ?? 0.95,
    topK: num(values, 'top-k', { int: true, min: 0 }),
    minP: num(values, 'min-p', { min: 0, max: 1 }),
    seed: num(values, 'seed', { int: true, min: 1 }),
  };
  let showStats = values.stats === true;
  const out = process.stdout;
  const rl = readline.createInterface({ input: process.stdin, output: out, terminal: process.stdin.isTTY === true });
  let current: AbortController | null = null;
  let lastSigint = 0;
  rl.on('SIGINT', () => {
    if (current !== null) {
      current.abort();
      return;
    }
    if (Date.now() - lastSigint < 2000) {
      rl.close();
      return;
    }
    lastSigint = Date.now();
    out.write('\n(press Ctrl-C again or type /exit to quit)\n');
    rl.prompt();
  });
  process.on('SIGINT', () => current?.abort());
  out.write(`ristretto chat: ${model.info.path} (context ${chat.contextLength} tokens). /reset, /system TEXT, /stats, /exit\n`);
  rl.setPrompt('> ');
  rl.prompt();
  for await (const line of rl) {
    const text = line.trim();
    if (text === '') {
      rl.prompt();
      continue;
    }
    if (text === '/exit' || text === '/quit') break;
    if (text === '/reset') {
      chat.reset();
      out.write('(history cleared)\n');
      rl.prompt();
      continue;
    }
    if (text === '/system' || text.startsWith('/system ')) {
      chat.setSystem(text.slice('/system'.length).trim());
      out.write('(system message set)\n');
      rl.prompt();
      continue;
    }
    if (text === '/stats') {
      showStats = !showStats;
      out.write(`(stats ${showStats ? 'on' : 'off'})\n`);
      rl.prompt();
      continue;
    }
    current = new AbortController();
    try {
      const r = await chat.ask(line, { ...sampling, signal: current.signal, onToken: (e) => e.text && out.write(e.text) });
      out.write('\n');
      if (showStats) {
        const t = r.timings;
        out.write(`[${r.promptIds.length - r.cachedTokens} new prompt tokens (${r.cachedTokens} cached), ${t.prefillTokensPerS.toFixed(1)} tok/s prefill; ${r.generatedIds.length} tokens, ${t.decodeTokensPerS.toFixed(1)} tok/s; ${r.finishReason}]\n`);
      }
    } catch (e) {
      if (e instanceof AbortError) out.write('\n(stopped)\n');
      else if (e instanceof RistrettoError || (e instanceof Error && e.name === 'TemplateError')) out.write(`\n(error: ${e.message})\n`);
      else throw e;
    } finally {
      current = null;
    }
    rl.prompt();
  }
  rl.close();
  chat.dispose();
  model.dispose();
}
