// Model benchmark: prompt processing (ppN) and decode (tgN) tokens/s, load time, peak RSS,
// and the decode roofline (weight bytes read per token / measured memory bandwidth).

import * as os from 'node:os';
import { archInfo } from '../models/index.js';
import type { PoolStats } from '../backends/wasm/pool.js';
import { benchLlamaCpp, type LlamaCppResult } from './bench-llama-cpp.js';
import { loadModel, type LoadOptions } from './load-model.js';

export interface BenchOptions extends Pick<LoadOptions, 'backends' | 'tokenizer' | 'backend'> {
  /** Prompt lengths to time (default [128, 512], capped by the context). */
  promptLengths?: number[];
  /** Tokens to decode (default 128). */
  decodeTokens?: number;
  /** Repetitions; the best is reported (default 1). */
  repeat?: number;
  threads?: number;
  onStage?: (stage: string) => void;
  /** Also run node-llama-cpp on the same file and threads when it is installed (default true for GGUF files). */
  llamaCpp?: boolean;
}

export interface BenchResult {
  model: string;
  backend: string;
  threads: number;
  load_s: number;
  /** Prompt tokens/s per prompt length ("pp128": ...). */
  pp: Record<string, number>;
  /** Decode tokens/s over `tg_tokens` tokens after a 1-token prompt. */
  tg_tok_s: number;
  tg_tokens: number;
  /** The first pp figure, for the one-number summary. */
  pp_tok_s: number;
  peak_rss_mb: number;
  weight_bytes: number;
  /** Bytes of weights a decode step reads (every matrix; one embedding row). */
  bytes_per_token: number;
  bandwidth_gb_s: number;
  /** bandwidth / bytes_per_token: the decode speed memory allows. */
  roofline_tok_s: number;
  roofline_fraction: number;
  /** node-llama-cpp on the same file and threads (when installed), and our speed over its. */
  llama_cpp?: LlamaCppResult;
  ratio_vs_llama_cpp?: { pp: Record<string, number>; tg: number };
  /** Jobs the wasm thread pool ran in parallel and chunks the workers took (threads > 1). */
  pool?: { jobs: number; parallel_jobs: number; worker_chunk_fraction: number; stalls: number };
}

/** Memory bandwidth measured with typed-array copies (memcpy: a read and a write per byte). */
export function measureBandwidth(bytes = 128 * 2 ** 20, reps = 5): number {
  const a = new Uint8Array(bytes).fill(1);
  const b = new Uint8Array(bytes);
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    b.set(a);
    best = Math.min(best, performance.now() - t0);
  }
  return (2 * bytes) / (best / 1000) / 1e9;
}

export async function benchModel(path: string, o: BenchOptions = {}): Promise<BenchResult> {
  const t0 = performance.now();
  const model = await loadModel(path, { backends: o.backends, tokenizer: o.tokenizer, backend: o.backend, threads: o.threads });
  const loadS = (performance.now() - t0) / 1000;
  const info = archInfo(model.config);
  const V = info.vocabSize;
  const ctxLen = model.createSession().contextLength;
  const rand = (n: number): number[] => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % V);
  const repeat = o.repeat ?? 1;
  const pp: Record<string, number> = {};
  for (const n of (o.promptLengths ?? [128, 512]).filter((n) => n <= ctxLen)) {
    o.onStage?.(`pp${n}`);
    let best = Infinity;
    for (let r = 0; r < repeat; r++) {
      const s = model.createSession();
      const t = performance.now();
      s.forward(rand(n));
      best = Math.min(best, performance.now() - t);
    }
    pp[`pp${n}`] = n / (best / 1000);
  }
  const tg = Math.min(o.decodeTokens ?? 128, ctxLen - 1);
  o.onStage?.(`tg${tg}`);
  let bestTg = Infinity;
  for (let r = 0; r < repeat; r++) {
    const s = model.createSession();
    let logits = s.forward([1 % V]);
    const t = performance.now();
    // greedy as generate() decodes: logits read in place (a view of the backend's memory), the session's argmax
    for (let i = 0; i < tg; i++) logits = s.forward([s.argmax(logits)], 'last', true);
    bestTg = Math.min(bestTg, performance.now() - t);
  }
  const tgTokS = tg / (bestTg / 1000);

  // A decode step reads every weight matrix once, but only one row of the embedding table
  // (unless the table is also the tied output head).
  let bytesPerToken = 0;
  for (const [name, t] of model.parameters()) {
    const isEmbedding = /(embed_tokens|wte|wpe)\.weight$/.test(name);
    bytesPerToken += isEmbedding ? t.data.byteLength / t.shape[0]! : t.data.byteLength;
  }
  if ('tie_word_embeddings' in model.config && model.config.tie_word_embeddings) {
    const head = model.parameters().get(model.config.model_type === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight');
    if (head !== undefined) bytesPerToken += head.data.byteLength;
  }
  const peakRss = process.resourceUsage().maxRSS / 1024; // before the bandwidth test's buffers
  const bandwidth = measureBandwidth();
  const roofline = (bandwidth * 1e9) / bytesPerToken;
  const wasm = model.backendNames[0] === 'wasm';
  const threads = wasm ? (o.threads ?? os.availableParallelism()) : 1;
  const result: BenchResult = {
    model: path,
    backend: model.backendNames.join('+'),
    threads,
    load_s: loadS,
    pp,
    pp_tok_s: Object.values(pp)[0] ?? 0,
    tg_tok_s: tgTokS,
    tg_tokens: tg,
    peak_rss_mb: peakRss,
    weight_bytes: model.info.weightBytes,
    bytes_per_token: bytesPerToken,
    bandwidth_gb_s: bandwidth,
    roofline_tok_s: roofline,
    roofline_fraction: tgTokS / roofline,
  };
  const ps = (model as unknown as { backends: readonly { poolStats?: () => PoolStats }[] }).backends[0]?.poolStats?.();
  if (ps !== undefined) {
    result.pool = { jobs: ps.jobs, parallel_jobs: ps.parallelJobs, worker_chunk_fraction: ps.totalChunks > 0 ? ps.workerChunks / ps.totalChunks : 0, stalls: ps.stalls };
  }
  const ctx = ctxLen;
  model.dispose();
  if ((o.llamaCpp ?? true) && path.endsWith('.gguf')) {
    o.onStage?.('node-llama-cpp');
    const lc = await benchLlamaCpp(path, {
      threads, promptLengths: o.promptLengths ?? [128, 512], decodeTokens: tg, vocabSize: V, contextLength: ctx, repeat,
    });
    if (lc !== null) {
      result.llama_cpp = lc;
      const ppr: Record<string, number> = {};
      for (const [k, v] of Object.entries(pp)) if (lc.pp[k]) ppr[k] = v / lc.pp[k]!;
      result.ratio_vs_llama_cpp = { pp: ppr, tg: tgTokS / lc.tg_tok_s };
    }
  }
  return result;
}
