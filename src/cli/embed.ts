// `ristretto embed`: one JSON line per text, {"text", "tokens", "embedding"}.

import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { InvalidArgumentError } from '../errors.js';
import { loadEmbeddingModel, type EmbeddingOutput, type PoolingMode } from '../runtime/embed.js';
import { num, oneOf, required, str } from './args.js';
import { progressReporter } from './progress.js';

export const EMBED_HELP = `Usage: ristretto embed --model PATH [options] [TEXT...]

  --model PATH          encoder: an HF folder (config.json + safetensors + tokenizer.json): BERT family
                        (MiniLM, bge, e5), bidirectional Qwen3 (pplx-embed), or a Llama/Qwen3 stack
  --tokenizer PATH      tokenizer.json when not inside the model folder
  --in FILE.jsonl       read texts from a JSONL file: one string, or an object with "text", per line
                        ("-" reads stdin); TEXT arguments are embedded first
  --pooling MODE        mean | cls | last | pooler (default: the model's sentence-transformers config)
  --normalize           L2-normalise float embeddings (default: the model's config)
  --no-normalize        do not
  --output FORM         float (default) | int8 | binary (+1/-1) | ubinary (bytes, bits MSB first);
                        quantized forms come from the unnormalised pooled vector
  --chunks              late chunking: the texts are consecutive chunks of one document, encoded together
                        (joined by the separator token) and pooled per chunk; lines add "span"
  --batch N             sequences per encoder run (default 16)
  --max-tokens N        longest input (default: the model's limit)
  --no-truncate         reject texts longer than the limit instead of truncating them (with a warning)
  --device cpu|ane-sim  ane-sim: run the encoder through its compiled ANE programs on the MIL interpreter
  --bundle DIR          with --device ane-sim: a bundle from 'ristretto compile' (default: compiled in memory)
  --quiet               no progress on stderr
`;

/** Texts from a JSONL file: each line a JSON string or an object with a "text" string. */
export function readJsonlTexts(file: string): string[] {
  const content = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  const texts: string[] = [];
  content.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new InvalidArgumentError(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    const t = typeof v === 'string' ? v : typeof v === 'object' && v !== null ? (v as Record<string, unknown>)['text'] : undefined;
    if (typeof t !== 'string') throw new InvalidArgumentError(`${file}:${i + 1}: expected a string or an object with a "text" string`);
    texts.push(t);
  });
  return texts;
}

export async function embedCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, tokenizer: { type: 'string' }, in: { type: 'string' }, pooling: { type: 'string' },
      normalize: { type: 'boolean' }, 'no-normalize': { type: 'boolean' }, output: { type: 'string' },
      chunks: { type: 'boolean' }, batch: { type: 'string' }, 'max-tokens': { type: 'string' },
      'no-truncate': { type: 'boolean' }, device: { type: 'string' }, bundle: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(EMBED_HELP);
    return;
  }
  if (values.normalize && values['no-normalize']) throw new InvalidArgumentError('--normalize and --no-normalize exclude each other');
  const output = oneOf(values, 'output', ['float', 'int8', 'binary', 'ubinary'] as const, 'float') as EmbeddingOutput;
  const pooling = values.pooling === undefined ? undefined : (oneOf(values, 'pooling', ['mean', 'cls', 'last', 'pooler'] as const, 'mean') as PoolingMode);
  const normalize = values.normalize ? true : values['no-normalize'] ? false : undefined;
  const texts = [...positionals];
  const inFile = str(values, 'in');
  if (inFile !== undefined) texts.push(...readJsonlTexts(inFile));
  if (texts.length === 0) throw new InvalidArgumentError('embed: give TEXT arguments or --in FILE.jsonl');
  const quiet = values.quiet === true;

  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const model = await loadEmbeddingModel(required(values, 'model', 'embed'), {
    tokenizer: str(values, 'tokenizer'),
    onProgress: quiet ? undefined : progressReporter(),
    signal: controller.signal,
    maxTokens: num(values, 'max-tokens', { int: true, min: 1 }),
    truncate: values['no-truncate'] !== true,
    onWarning: (m) => process.stderr.write(`[ristretto] warning: ${m}\n`),
    device: oneOf(values, 'device', ['cpu', 'ane-sim'] as const, 'cpu'),
    aneBundle: str(values, 'bundle'),
  });
  const opts = { output, normalize, batchSize: num(values, 'batch', { int: true, min: 1 }), signal: controller.signal };
  const lines: string[] = [];
  if (values.chunks) {
    for (const r of await model.embedChunks(texts, opts)) {
      lines.push(JSON.stringify({ text: r.text, tokens: r.tokens, window: r.window, span: r.span, embedding: Array.from(r.embedding) }));
    }
  } else {
    for (const r of await model.embed(texts, { ...opts, pooling })) {
      lines.push(JSON.stringify({ text: r.text, tokens: r.tokens, ...(r.truncated ? { truncated: true } : {}), embedding: Array.from(r.embedding) }));
    }
  }
  process.stdout.write(lines.join('\n') + '\n');
  model.dispose();
}
