// `ristretto serve`: the OpenAI-compatible server (see src/server/server.ts). Binds 127.0.0.1 unless told otherwise;
// /health answers 503 while the model loads; SIGINT/SIGTERM stop accepting, finish (or after a grace period
// cancel) in-flight requests, and exit.

import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { loadModel } from '../runtime/load-model.js';
import { loadChatTemplate } from '../runtime/template.js';
import { createServer, type EmbeddingProvider } from '../server/server.js';
import { num, required, str } from './args.js';
import { progressReporter } from './progress.js';

export const SERVE_HELP = `Usage: ristretto serve --model PATH [options]

  --model PATH            checkpoint: llama2.c .bin, .gguf, or an HF folder
  --tokenizer PATH        tokenizer file or folder when not beside or inside the model (its folder's
                          tokenizer_config.json chat template is used when the model has none)
  --chat-template FILE    a Jinja chat template to use instead of the model's own
  --embedding-model PATH  also serve /v1/embeddings with this encoder
  --host HOST             address to bind (default 127.0.0.1)
  --port N                port (default 8080; 0 picks a free one)
  --parallel N            requests decoding at once, each with its own KV cache (default 1)
  --queue N               requests waiting for a slot before 429 (default 64)
  --api-key KEY           require "Authorization: Bearer KEY" (also read from RISTRETTO_API_KEY)
  --ctx N                 KV-cache length per slot (default: the model's)
  --no-prompt-cache       prefill every prompt from scratch (default: reuse a slot's cached prefix)
  --name NAME             the model id clients see (default: the model file or folder name)
  --max-body BYTES        largest request body before 413 (default 2097152)
  --quiet                 no request log
`;

export async function serveCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, tokenizer: { type: 'string' }, 'chat-template': { type: 'string' },
      'embedding-model': { type: 'string' }, host: { type: 'string' }, port: { type: 'string' },
      parallel: { type: 'string' }, queue: { type: 'string' }, 'api-key': { type: 'string' }, ctx: { type: 'string' },
      name: { type: 'string' }, 'max-body': { type: 'string' }, quiet: { type: 'boolean' }, 'no-prompt-cache': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(SERVE_HELP);
    return;
  }
  const modelPath = required(values, 'model', 'serve');
  const quiet = values.quiet === true;
  const host = str(values, 'host') ?? '127.0.0.1';
  const port = num(values, 'port', { int: true, min: 0, max: 65535 }) ?? 8080;
  const ctx = num(values, 'ctx', { int: true, min: 1 });
  const tokenizer = str(values, 'tokenizer');
  const templateFile = str(values, 'chat-template');
  const controller = new AbortController();

  const modelP = loadModel(modelPath, { tokenizer, contextLength: ctx, onProgress: quiet ? undefined : progressReporter(), signal: controller.signal });
  const embPath = str(values, 'embedding-model');
  const embeddings = embPath === undefined ? undefined : loadEmbeddingProvider(embPath);
  const server = createServer(modelP, {
    parallel: num(values, 'parallel', { int: true, min: 1, max: 256 }),
    queue: num(values, 'queue', { int: true, min: 0 }),
    apiKey: str(values, 'api-key') ?? process.env.RISTRETTO_API_KEY,
    contextLength: ctx,
    promptCache: values['no-prompt-cache'] !== true,
    modelName: str(values, 'name'),
    template: templateFile === undefined ? undefined : fs.readFileSync(templateFile, 'utf8'),
    templatePath: tokenizer !== undefined && !hasOwnTemplate(modelPath) ? tokenizer : undefined,
    embeddings,
    maxBodyBytes: num(values, 'max-body', { int: true, min: 1024 }),
    log: quiet ? undefined : (line) => process.stderr.write(`[ristretto] ${line}\n`),
  });
  const addr = await server.listen(port, host);
  process.stderr.write(`[ristretto] listening on http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port} (loading the model...)\n`);

  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) {
      process.stderr.write('[ristretto] second signal: exiting now\n');
      process.exit(130);
    }
    stopping = true;
    process.stderr.write(`[ristretto] ${sig}: no new requests; finishing in-flight ones (up to 10 s)\n`);
    controller.abort();
    void server.close({ graceMs: 10_000 }).then(() => {
      process.stderr.write('[ristretto] stopped\n');
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  try {
    await server.ready;
    const s = server.stats();
    process.stderr.write(`[ristretto] ready: ${s.slots} slot(s)\n`);
  } catch (e) {
    process.stderr.write(`[ristretto] the model failed to load: ${(e as Error).message}\n`);
    await server.close({ graceMs: 0 });
    throw e;
  }
  await new Promise<void>((resolve) => server.http.once('close', () => resolve()));
}

function hasOwnTemplate(modelPath: string): boolean {
  try {
    loadChatTemplate(modelPath);
    return true;
  } catch {
    return false;
  }
}

/** Wires an embedding model (src/runtime/embed.ts) behind the server's small EmbeddingProvider interface. */
async function loadEmbeddingProvider(p: string): Promise<EmbeddingProvider> {
  const { loadEmbeddingModel } = await import('../runtime/embed.js');
  const m = await loadEmbeddingModel(p);
  const name = p.replace(/[\\/]+$/, '').split(/[\\/]/).pop() ?? p;
  return {
    name,
    async embed(texts, options) {
      const out = await m.embed(texts, { signal: options?.signal });
      return { embeddings: out.map((e) => e.embedding as ArrayLike<number>), promptTokens: out.reduce((a, e) => a + e.tokens, 0) };
    },
  };
}
