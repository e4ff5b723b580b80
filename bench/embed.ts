// Embedding benchmark: documents per second at 128 and 512 tokens, batch 1 and 32, for the shipped encoders
// (hf/bert-tiny-random, hf/qwen3-encoder-tiny-random) and, with --minilm, a random-weight BERT of
// all-MiniLM-L6-v2's shape (384 wide, 6 layers, 12 heads, 1536 MLP; weights in memory, f32; 512 x 32 skipped).
// Documents are War and Peace passages truncated to exactly the token count (one bucket of that size).
// Backends: reference and wasm (matmuls etc. in WebAssembly; ops it lacks fall back to the reference).
// `npm run bench:embed [-- --minilm] [--backend reference|wasm] [--docs N] [--out FILE]` writes bench/results/embed.json.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../src/backends/backend.js';
import { referenceBackend } from '../src/backends/reference/index.js';
import { createWasmBackend } from '../src/backends/wasm/index.js';
import type { HostTensor } from '../src/formats/tensor.js';
import { bertParams, type BertConfig } from '../src/models/bert.js';
import { EmbeddingModel, loadEmbeddingModel } from '../src/runtime/embed.js';
import { loadTokenizer } from '../src/tokenizers/load.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const models = process.env.RISTRETTO_MODELS ?? path.resolve(repo, '../shared/models');

interface Row {
  backend: string;
  model: string;
  tokens: number;
  batch: number;
  docs: number;
  seconds?: number;
  docs_per_s?: number;
  tokens_per_s?: number;
  /** Set when the run failed (e.g. a backend error); the other figures are then absent. */
  error?: string;
}

function passages(n: number): string[] {
  const text = fs.readFileSync(path.join(models, 'corpus/war-and-peace.txt'), 'utf8');
  const words = text.split(/\s+/).filter(Boolean);
  // ~1000 words per document: always more than 512 tokens, so truncation makes every document exact.
  return Array.from({ length: n }, (_, i) => words.slice(i * 1000, (i + 1) * 1000).join(' '));
}

function minilmShaped(dir: string, maxTokens: number, backends: Backend[]): EmbeddingModel {
  const c: BertConfig = {
    model_type: 'bert', vocab_size: 30522, hidden_size: 384, num_hidden_layers: 6, num_attention_heads: 12,
    intermediate_size: 1536, max_position_embeddings: 512, type_vocab_size: 2, layer_norm_eps: 1e-12, hidden_act: 'gelu', pad_token_id: 0,
  };
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.1;
  const weights = new Map<string, HostTensor>();
  for (const [name, shape] of bertParams(c)) {
    const f = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand);
    weights.set(name, { name, dtype: 'f32', shape, data: new Uint8Array(f.buffer) });
  }
  const tokenizer = loadTokenizer(dir).tokenizer;
  return new EmbeddingModel('minilm-l6-shape (random)', c, tokenizer, weights, [...backends, referenceBackend], {
    maxTokens, buckets: [maxTokens], pooling: 'mean', normalize: true, separatorId: 102, onWarning: () => {},
  });
}

async function time(m: EmbeddingModel, docs: string[], batch: number): Promise<number> {
  await m.embed(docs.slice(0, Math.min(batch, 2)), { batchSize: batch }); // build the graphs first
  const t0 = performance.now();
  await m.embed(docs, { batchSize: batch });
  return (performance.now() - t0) / 1000;
}

type BackendName = 'reference' | 'wasm';

async function backendsFor(name: BackendName): Promise<Backend[]> {
  return name === 'wasm' ? [await createWasmBackend()] : [];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { minilm: { type: 'boolean' }, docs: { type: 'string' }, out: { type: 'string' }, backend: { type: 'string', multiple: true } },
  });
  const loadAtStart = os.loadavg().map((x) => +x.toFixed(2));
  const out = values.out ?? path.join(repo, 'bench/results/embed.json');
  const nDocs = Number(values.docs ?? 32);
  const docs = passages(Math.max(nDocs, 32));
  const backends = (values.backend ?? ['reference', 'wasm']) as BackendName[];
  const rows: Row[] = [];
  const minilm = 'minilm-l6-shape (random, f32)';
  for (const backend of backends) {
    const be = await backendsFor(backend);
    const opts = (t: number) => ({ maxTokens: t, buckets: [t], onWarning: () => {}, backends: be });
    const targets: { name: string; open: (maxTokens: number) => Promise<EmbeddingModel> }[] = [
      { name: 'hf/bert-tiny-random', open: (t) => loadEmbeddingModel(path.join(models, 'hf/bert-tiny-random'), opts(t)) },
      { name: 'hf/qwen3-encoder-tiny-random', open: (t) => loadEmbeddingModel(path.join(models, 'hf/qwen3-encoder-tiny-random'), opts(t)) },
    ];
    if (values.minilm) targets.push({ name: minilm, open: async (t) => minilmShaped(path.join(models, 'hf/bert-tiny-random'), t, be) });
    for (const target of targets) {
      for (const tokens of [128, 512]) {
        const m = await target.open(tokens);
        for (const batch of [1, 32]) {
          // batch 1: a few documents one at a time; batch 32: one full batch of 32. The MiniLM shape is slow on the
          // reference backend (~7 s per 128-token document): 2 documents at batch 1, batch 32 at 128 tokens only.
          const slow = target.name === minilm && backend === 'reference';
          if (slow && tokens === 512 && batch === 32) continue;
          const n = batch === 1 ? Math.min(nDocs, slow ? 2 : 8) : Math.max(32, nDocs);
          const set = docs.slice(0, n);
          let row: Row;
          try {
            const s = await time(m, set, batch);
            row = { backend, model: target.name, tokens, batch, docs: n, seconds: +s.toFixed(4), docs_per_s: +(n / s).toFixed(2), tokens_per_s: Math.round((n * tokens) / s) };
          } catch (e) {
            row = { backend, model: target.name, tokens, batch, docs: n, error: e instanceof Error ? e.message : String(e) };
          }
          rows.push(row);
          process.stderr.write(`${JSON.stringify(row)}\n`);
        }
        m.dispose();
      }
    }
  }
  const result = {
    benchmark: 'embed: documents/s (tokenize + encode + mean-pool + normalise), documents truncated to exactly N tokens, one bucket of N',
    date: new Date().toISOString(),
    machine: { node: process.version, platform: `${process.platform} ${process.arch}`, cpu: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length, loadavg_at_start: loadAtStart, loadavg_at_end: os.loadavg().map((x) => +x.toFixed(2)) },
    backends: {
      reference: 'TypeScript, f64 accumulation',
      wasm: 'WebAssembly SIMD kernels on the default thread pool (os.availableParallelism()); every encoder op runs in wasm (attention_masked: assembly/attention.ts)',
    },
    note: 'shared 2-CPU machine with other jobs running: figures vary by 2-3x between runs',
    results: rows,
  };
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  process.stderr.write(`wrote ${out}\n`);
}

await main();
