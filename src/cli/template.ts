// `ristretto template`: print the prompt a model's chat template renders (text, or JSON with the ids).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { InvalidArgumentError, RistrettoError } from '../errors.js';
import { loadTokenizer } from '../tokenizers/load.js';
import { ChatTemplate, loadChatTemplate, type ChatMessage } from '../runtime/template.js';
import { oneOf, required, str } from './args.js';

export const TEMPLATE_HELP = `Usage: ristretto template --model PATH (--messages FILE.json | --user TEXT [--system TEXT]) [options]

  --model PATH              a model (HF folder, .gguf) or a tokenizer-only folder with tokenizer_config.json
  --messages FILE.json      a list of messages, or an object with "messages" and other template variables
                            ("tools", "documents", "enable_thinking", "add_generation_prompt", ...); - reads stdin
  --user TEXT               a single user message (instead of --messages)
  --system TEXT             a system message before it
  --add-generation-prompt   append the assistant turn header
  --chat-template FILE      a Jinja template to use instead of the model's own
  --template-name NAME      one of several named templates (default: HF's choice)
  --output FORMAT           text (the prompt, default) | json ({"prompt": ..., "ids": [...]})
`;

export async function templateCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, messages: { type: 'string' }, user: { type: 'string' }, system: { type: 'string' },
      'add-generation-prompt': { type: 'boolean' }, 'chat-template': { type: 'string' }, 'template-name': { type: 'string' },
      output: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(TEMPLATE_HELP);
    return;
  }
  const modelPath = required(values, 'model', 'template');
  const output = oneOf(values, 'output', ['text', 'json'] as const, 'text');
  const file = str(values, 'messages');
  const user = str(values, 'user');
  if ((file === undefined) === (user === undefined)) throw new InvalidArgumentError('template: give exactly one of --messages FILE.json or --user TEXT');
  let messages: ChatMessage[];
  let vars: Record<string, unknown> = {};
  if (file !== undefined) {
    const text = file === '-' ? fs.readFileSync(0, 'utf8') : readFile(file);
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new InvalidArgumentError(`--messages ${file}: not valid JSON (${(e as Error).message})`);
    }
    if (Array.isArray(data)) messages = data as ChatMessage[];
    else if (data !== null && typeof data === 'object' && Array.isArray((data as { messages?: unknown }).messages)) {
      ({ messages, ...vars } = data as { messages: ChatMessage[] });
    } else throw new InvalidArgumentError(`--messages ${file}: expected a list of messages or an object with "messages"`);
  } else {
    messages = [];
    const sys = str(values, 'system');
    if (sys !== undefined) messages.push({ role: 'system', content: sys });
    messages.push({ role: 'user', content: user! });
  }
  const tplFile = str(values, 'chat-template');
  const own = (): ChatTemplate => loadChatTemplate(modelPath);
  let template: ChatTemplate;
  if (tplFile !== undefined) {
    let base: ChatTemplate | undefined;
    try {
      base = own();
    } catch {
      base = undefined;
    }
    template = ChatTemplate.fromSource(readFile(tplFile), base, tplFile);
  } else template = own();

  const { tools, documents, add_generation_prompt, ...rest } = vars as { tools?: unknown[]; documents?: unknown[]; add_generation_prompt?: unknown; [k: string]: unknown };
  const opts = {
    addGenerationPrompt: values['add-generation-prompt'] === true || add_generation_prompt === true,
    tools: tools ?? null,
    documents: documents ?? null,
    variables: rest,
    templateName: str(values, 'template-name'),
  };
  if (output === 'text') {
    process.stdout.write(template.render(messages, opts));
    if (process.stdout.isTTY) process.stdout.write('\n');
    return;
  }
  const tokenizer = loadTokenizer(tokenizerPathFor(modelPath)).tokenizer;
  const applied = template.apply(messages, tokenizer, opts);
  process.stdout.write(JSON.stringify({ prompt: applied.prompt, ids: applied.ids }) + '\n');
}

function readFile(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    throw new RistrettoError('NOT_FOUND', `${p}: no such file`);
  }
}

/** The tokenizer for a model path: the folder's tokenizer.json, or the GGUF itself. */
function tokenizerPathFor(p: string): string {
  if (fs.statSync(p).isDirectory()) return p;
  if (path.basename(p) === 'tokenizer_config.json') return path.dirname(p);
  return p;
}
