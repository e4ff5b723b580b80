// Sentence embeddings: load an encoder (BERT family, bidirectional Qwen3 as in pplx-embed, or any Llama/Qwen3
// stack), tokenize, pad texts into fixed sequence-length buckets, run batches through one graph per
// (bucket, batch) shape, pool (mean / CLS / last token / late-chunking spans), normalise and quantize.
//
// Padding never changes a result: each padded sequence is its own block of rows, pad keys are masked out with
// -Infinity (`attention_masked`), pad rows are never pooled, and every other op works row by row. So a text gives
// the same vector alone, in any batch, and in any bucket.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend, ExecContext } from '../backends/backend.js';
import { runGraph } from '../backends/backend.js';
import { referenceBackend } from '../backends/reference/index.js';
import { asF32 } from '../backends/reference/weights.js';
import { ContextLengthError, InvalidArgumentError, RistrettoError, UnsupportedError, throwIfAborted } from '../errors.js';
import { readJsonFile } from '../formats/hf-config.js';
import type { HostTensor } from '../formats/tensor.js';
import type { Graph } from '../graph/graph.js';
import { BERT_POOLER } from '../models/bert.js';
import { planHFEncoder } from '../models/checkpoints/hf-encoder.js';
import { planGGUFEncoder } from '../models/checkpoints/gguf-encoder.js';
import { checkPlan } from '../models/checkpoints/types.js';
import { buildEncoderGraph, encoderInfo, encoderParams, type EncoderConfig, type EncoderInfo } from '../models/encoders.js';
import { loadTokenizerFor } from '../tokenizers/load.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { detectFormat, readPlanWeights, type LoadProgress } from './load-model.js';
import { compileBundle, loadBundle, type Bundle } from '../compile/bundle.js';
import { AneEncoderSimulator, ENCODER_CALIBRATION_TEXT } from './ane-sim-encoder.js';
import {
  applyPooling, finishEmbedding, lateChunkSpans, poolingMatrix, spanRow,
  type EmbeddingOutput, type OutputArray, type Pooling, type PoolingMatrix,
} from './embed-math.js';

export * from './embed-math.js';

/** BERT's pooler_output (tanh(dense(CLS))), for BERT checkpoints that have the pooler. */
export type PoolingMode = Pooling | 'pooler';

export interface EmbeddingModelOptions {
  /** A tokenizer file or folder when it is not beside the model. */
  tokenizer?: string;
  onProgress?: (e: LoadProgress) => void;
  signal?: AbortSignal;
  /** Execution backends in priority order; the reference backend is always appended as the fallback. */
  backends?: Backend[];
  /** Sequence-length buckets (padded shapes). Default: 16, 32, 64, ... doubling up to maxTokens, and maxTokens. */
  buckets?: number[];
  /** Longest input in tokens (special tokens included). Default: the model's positions, capped by the
   *  tokenizer's model_max_length and sentence-transformers' max_seq_length when they say less. */
  maxTokens?: number;
  /** Sequences per graph run (default 16). */
  batchSize?: number;
  /** Always run full batches of `batchSize` sequences (padding with empty ones), so only one shape per bucket
   *  exists (what a compiled ANE program needs). Default false: a last, smaller batch runs as it is. */
  fixedBatch?: boolean;
  /** Texts longer than maxTokens: truncate with a warning (default), or reject with ContextLengthError. */
  truncate?: boolean;
  /** Where warnings go (default: process.emitWarning). */
  onWarning?: (message: string) => void;
  /** Match special-token text ("[SEP]", "</s>") in input text, as HF tokenizers and sentence-transformers do.
   *  Default true. */
  parseSpecial?: boolean;
  /** Defaults for embed(); otherwise from sentence-transformers files (modules.json, 1_Pooling/config.json),
   *  config.json's `embedding` block, or mean pooling for bidirectional encoders and last-token for causal ones. */
  pooling?: PoolingMode;
  normalize?: boolean;
  /** The late-chunking separator (default: config.json embedding.late_chunking_separator_token_id, else [SEP]
   *  for WordPiece, else the tokenizer's EOS). */
  separatorId?: number;
  /** 'ane-sim': every text runs through an ANE bundle's programs on the MIL interpreter (fp16), one text per
   *  dispatch, padded to the bundle's buckets (which become the model's buckets); pooling stays on the host.
   *  Default 'cpu' (the graph on `backends`). */
  device?: 'cpu' | 'ane-sim';
  /** With device 'ane-sim': a bundle (or its directory) compiled from this model (ristretto compile --target ane).
   *  Default: compiled in memory at `buckets` (rounded up to multiples of 32). */
  aneBundle?: string | Bundle;
}

export interface EmbedOptions<O extends EmbeddingOutput = EmbeddingOutput> {
  pooling?: PoolingMode;
  /** L2-normalise float output (quantized outputs always come from the unnormalised pooled vector). */
  normalize?: boolean;
  output?: O;
  truncate?: boolean;
  batchSize?: number;
  signal?: AbortSignal;
}

export interface Embedding<O extends EmbeddingOutput = 'float'> {
  text: string;
  /** Tokens the encoder saw (special tokens included, after truncation). */
  tokens: number;
  truncated: boolean;
  embedding: OutputArray<O>;
}

export interface ChunkEmbedding<O extends EmbeddingOutput = 'float'> extends Embedding<O> {
  /** Which encoder window the chunk was in, and its token span [start, end) there. */
  window: number;
  span: [number, number];
}

export interface EncodedSequence {
  ids: number[];
  /** Final hidden states [ids.length, dim], row-major. */
  hidden: Float32Array;
}

interface Frame {
  prefix: number[];
  suffix: number[];
}

/** The special tokens the tokenizer's post-processor puts around a text ([CLS] ... [SEP], <s> ...). */
function specialFrame(tok: Tokenizer): Frame {
  for (const probe of ['a', 'hello', 'x y']) {
    const core = tok.encode(probe, { addSpecialTokens: false });
    const full = tok.encode(probe, { addSpecialTokens: true });
    for (let i = 0; core.length > 0 && i + core.length <= full.length; i++) {
      if (core.every((id, j) => full[i + j] === id)) return { prefix: full.slice(0, i), suffix: full.slice(i + core.length) };
    }
  }
  return { prefix: [], suffix: [] };
}

function readJsonIf(p: string): Record<string, unknown> | null {
  if (!fs.existsSync(p)) return null;
  const v = readJsonFile(p);
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

interface StDefaults {
  pooling?: PoolingMode;
  normalize?: boolean;
  maxSeqLength?: number;
}

/** sentence-transformers files: modules.json (Pooling, Normalize; Dense is not supported), 1_Pooling/config.json. */
export function readSentenceTransformersConfig(dir: string): StDefaults {
  const out: StDefaults = {};
  const st = readJsonIf(path.join(dir, 'sentence_bert_config.json'));
  if (typeof st?.['max_seq_length'] === 'number') out.maxSeqLength = st['max_seq_length'];
  const modulesFile = path.join(dir, 'modules.json');
  if (!fs.existsSync(modulesFile)) return out;
  const modules = readJsonFile(modulesFile);
  if (!Array.isArray(modules)) throw new RistrettoError('FORMAT', `${modulesFile}: expected an array of modules`);
  for (const m of modules as Record<string, unknown>[]) {
    const type = String(m['type'] ?? '');
    const kind = type.split('.').pop();
    if (kind === 'Transformer') continue;
    if (kind === 'Normalize') {
      out.normalize = true;
      continue;
    }
    if (kind === 'Pooling') {
      const cfgFile = path.join(dir, String(m['path'] ?? ''), 'config.json');
      const c = readJsonIf(cfgFile) ?? {};
      if (c['pooling_mode_cls_token'] === true) out.pooling = 'cls';
      else if (c['pooling_mode_lasttoken'] === true) out.pooling = 'last';
      else if (c['pooling_mode_mean_tokens'] === true) out.pooling = 'mean';
      else if (c['pooling_mode'] === 'cls' || c['pooling_mode'] === 'mean' || c['pooling_mode'] === 'lasttoken') out.pooling = c['pooling_mode'] === 'lasttoken' ? 'last' : c['pooling_mode'];
      else throw new UnsupportedError(`${cfgFile}: pooling mode ${JSON.stringify(c)} is not supported (supported: mean, cls, last token)`);
      continue;
    }
    throw new UnsupportedError(`${modulesFile}: sentence-transformers module ${type} is not supported (supported: Transformer, Pooling, Normalize)`);
  }
  return out;
}

/** Default buckets: 16, 32, 64, ... below maxTokens, then maxTokens. */
export function defaultBuckets(maxTokens: number): number[] {
  const b: number[] = [];
  for (let n = 16; n < maxTokens; n *= 2) b.push(n);
  b.push(maxTokens);
  return b;
}

/** The smallest bucket that holds n tokens. */
export function pickBucket(buckets: readonly number[], n: number): number {
  for (const b of buckets) if (b >= n) return b;
  throw new ContextLengthError(n, buckets[buckets.length - 1] ?? 0, 'text');
}

export class EmbeddingModel {
  readonly info: EncoderInfo;
  /** Embedding width. */
  readonly dimension: number;
  readonly maxTokens: number;
  readonly buckets: readonly number[];
  readonly defaults: { pooling: PoolingMode; normalize: boolean; separatorId: number | null };
  private readonly frame: Frame;
  private readonly graphs = new Map<string, Graph>();
  private disposed = false;

  constructor(
    readonly path: string,
    readonly config: EncoderConfig,
    readonly tokenizer: Tokenizer,
    private weights: Map<string, HostTensor>,
    private readonly backends: readonly Backend[],
    private readonly options: EmbeddingModelOptions & { maxTokens: number; pooling: PoolingMode; normalize: boolean; separatorId: number | null; ane?: AneEncoderSimulator },
  ) {
    this.info = encoderInfo(config);
    this.dimension = this.info.hiddenSize;
    this.maxTokens = options.maxTokens;
    const buckets = [...new Set(options.buckets ?? defaultBuckets(this.maxTokens))].sort((a, b) => a - b);
    if (buckets.length === 0 || buckets.some((b) => !Number.isInteger(b) || b <= 0)) throw new InvalidArgumentError(`buckets must be positive integers, got ${JSON.stringify(options.buckets)}`);
    if (buckets[buckets.length - 1]! > this.info.maxPositions && this.config.model_type === 'bert') {
      throw new InvalidArgumentError(`bucket ${buckets[buckets.length - 1]} exceeds the model's ${this.info.maxPositions} learned positions`);
    }
    this.buckets = buckets;
    this.maxTokens = Math.min(this.maxTokens, buckets[buckets.length - 1]!);
    this.defaults = { pooling: options.pooling, normalize: options.normalize, separatorId: options.separatorId };
    this.frame = specialFrame(tokenizer);
  }

  /** Token ids of one text (special tokens included), truncated to maxTokens when `truncate`. */
  tokenize(text: string, truncate = this.options.truncate ?? true): { ids: number[]; truncated: boolean } {
    const core = this.tokenizer.encode(text, { addSpecialTokens: false, parseSpecial: this.options.parseSpecial ?? true });
    const { prefix, suffix } = this.frame;
    const room = this.maxTokens - prefix.length - suffix.length;
    if (core.length <= room) return { ids: [...prefix, ...core, ...suffix], truncated: false };
    const n = core.length + prefix.length + suffix.length;
    if (!truncate) throw new ContextLengthError(n, this.maxTokens, 'text');
    this.warn(`a text of ${n} tokens was truncated to the model's limit of ${this.maxTokens}`);
    return { ids: [...prefix, ...core.slice(0, room), ...suffix], truncated: true };
  }

  /**
   * Final hidden states of token sequences: they are grouped by the smallest bucket that fits, padded, and run
   * `batchSize` sequences per graph. The results come back in input order, unpadded.
   */
  async encode(sequences: readonly (readonly number[])[], options: { batchSize?: number; signal?: AbortSignal } = {}): Promise<EncodedSequence[]> {
    this.assertLive();
    const batchSize = options.batchSize ?? this.options.batchSize ?? 16;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidArgumentError(`batchSize must be a positive integer, got ${batchSize}`);
    const byBucket = new Map<number, number[]>();
    sequences.forEach((ids, i) => {
      if (ids.length === 0) throw new InvalidArgumentError(`sequence ${i} has no tokens`);
      const b = pickBucket(this.buckets, ids.length);
      let list = byBucket.get(b);
      if (list === undefined) byBucket.set(b, (list = []));
      list.push(i);
    });
    const out: EncodedSequence[] = new Array(sequences.length);
    for (const [bucket, members] of [...byBucket].sort((a, b) => a[0] - b[0])) {
      for (let s = 0; s < members.length; s += batchSize) {
        throwIfAborted(options.signal);
        const group = members.slice(s, s + batchSize);
        const hidden = this.runBatch(bucket, group.map((i) => sequences[i]!), this.options.fixedBatch ? batchSize : group.length);
        group.forEach((i, k) => {
          const n = sequences[i]!.length;
          const o = k * bucket * this.dimension;
          out[i] = { ids: [...sequences[i]!], hidden: hidden.slice(o, o + n * this.dimension) };
        });
        await new Promise((r) => setImmediate(r));
      }
    }
    return out;
  }

  /** Embeds each text: one vector per text, pooled, optionally normalised, in the requested output form. */
  async embed<O extends EmbeddingOutput = 'float'>(texts: string | readonly string[], options: EmbedOptions<O> = {}): Promise<Embedding<O>[]> {
    const list = typeof texts === 'string' ? [texts] : texts;
    const pooling = this.poolingOf(options.pooling);
    const output = (options.output ?? 'float') as O;
    checkOutput(output);
    const normalize = options.normalize ?? this.defaults.normalize;
    const toks = list.map((t, i) => {
      if (typeof t !== 'string') throw new InvalidArgumentError(`embed: text ${i} is not a string`);
      return this.tokenize(t, options.truncate);
    });
    const enc = await this.encode(toks.map((t) => t.ids), options);
    return enc.map((e, i) => ({
      text: list[i]!,
      tokens: e.ids.length,
      truncated: toks[i]!.truncated,
      embedding: finishEmbedding(this.pool(e, pooling), output, normalize),
    }));
  }

  /**
   * Late chunking: consecutive chunks are joined with the separator token into windows of at most maxTokens,
   * each window runs through the encoder ONCE, and each chunk is the mean of its own span of that window
   * (separators excluded; the first chunk includes the BOS/CLS prefix). A chunk longer than a window alone is
   * truncated (with a warning) or rejected, as `truncate` says.
   */
  async embedChunks<O extends EmbeddingOutput = 'float'>(chunks: readonly string[], options: Omit<EmbedOptions<O>, 'pooling'> = {}): Promise<ChunkEmbedding<O>[]> {
    const sep = this.defaults.separatorId;
    if (sep === null) throw new UnsupportedError(`${this.path}: no late-chunking separator token is known; pass separatorId`);
    const output = (options.output ?? 'float') as O;
    checkOutput(output);
    const normalize = options.normalize ?? this.defaults.normalize;
    const { prefix, suffix } = this.frame;
    const room = this.maxTokens - prefix.length - suffix.length;
    const parts = chunks.map((c, i) => {
      if (typeof c !== 'string') throw new InvalidArgumentError(`embedChunks: chunk ${i} is not a string`);
      let ids = this.tokenizer.encode(c, { addSpecialTokens: false, parseSpecial: this.options.parseSpecial ?? true });
      let truncated = false;
      if (ids.length > room) {
        if (!(options.truncate ?? this.options.truncate ?? true)) throw new ContextLengthError(ids.length + prefix.length + suffix.length, this.maxTokens, `chunk ${i}`);
        this.warn(`chunk ${i} of ${ids.length} tokens was truncated to fit one window of ${this.maxTokens}`);
        ids = ids.slice(0, room);
        truncated = true;
      }
      if (ids.length === 0 && (i > 0 || prefix.length === 0)) throw new InvalidArgumentError(`embedChunks: chunk ${i} has no tokens`);
      return { ids, truncated };
    });
    // Greedy windows: as many whole consecutive chunks as fit.
    const windows: { first: number; count: number; ids: number[] }[] = [];
    for (let i = 0; i < parts.length; ) {
      const ids = [...prefix, ...parts[i]!.ids];
      let count = 1;
      while (i + count < parts.length && ids.length + 1 + parts[i + count]!.ids.length + suffix.length <= this.maxTokens) {
        ids.push(sep, ...parts[i + count]!.ids);
        count++;
      }
      ids.push(...suffix);
      windows.push({ first: i, count, ids });
      i += count;
    }
    const enc = await this.encode(windows.map((w) => w.ids), options);
    const result: ChunkEmbedding<O>[] = [];
    windows.forEach((w, wi) => {
      // A suffix made of separators (BERT's trailing [SEP]) belongs to no chunk; any other suffix to the last one.
      const end = suffix.length > 0 && suffix.every((id) => id === sep) ? w.ids.length - suffix.length : w.ids.length;
      const spans = lateChunkSpans(w.ids, sep, end);
      if (spans.length !== w.count) throw new InvalidArgumentError(`embedChunks: a chunk in window ${wi} contains the separator token ${sep} itself`);
      const pooled = applyPooling(enc[wi]!.hidden, this.dimension, spans.map(([a, b]) => spanRow(a, b)));
      spans.forEach((span, k) => {
        const i = w.first + k;
        result.push({
          text: chunks[i]!,
          tokens: span[1] - span[0],
          truncated: parts[i]!.truncated,
          window: wi,
          span,
          embedding: finishEmbedding(pooled[k]!, output, normalize),
        });
      });
    });
    return result;
  }

  /** Releases the weights; the model cannot be used afterwards. */
  dispose(): void {
    this.disposed = true;
    this.weights = new Map();
    this.graphs.clear();
  }

  private poolingOf(p: PoolingMode | undefined): PoolingMode {
    const pooling = p ?? this.defaults.pooling;
    if (!['mean', 'cls', 'last', 'pooler'].includes(pooling)) throw new InvalidArgumentError(`pooling must be mean, cls, last or pooler, got ${JSON.stringify(pooling)}`);
    if (pooling === 'pooler' && !this.weights.has(BERT_POOLER.weight)) throw new UnsupportedError(`${this.path}: pooling "pooler" needs a BERT checkpoint with pooler weights`);
    return pooling;
  }

  private pool(e: EncodedSequence, pooling: PoolingMode): Float64Array {
    const P: PoolingMatrix = poolingMatrix(pooling === 'pooler' ? 'cls' : pooling, e.ids.length);
    const v = applyPooling(e.hidden, this.dimension, P)[0]!;
    if (pooling !== 'pooler') return v;
    // HF BertModel pooler_output: tanh(W cls + b).
    const D = this.dimension;
    const W = asF32({ kind: 'weight', tensor: this.weights.get(BERT_POOLER.weight)! });
    const b = asF32({ kind: 'weight', tensor: this.weights.get(BERT_POOLER.bias)! });
    const x = Float32Array.from(v);
    const out = new Float64Array(D);
    for (let n = 0; n < D; n++) {
      let acc = 0;
      for (let k = 0; k < D; k++) acc += x[k]! * W[n * D + k]!;
      out[n] = Math.tanh(acc + b[n]!);
    }
    return out;
  }

  /** A weight by name (the ANE compiler reads the encoder's parameters through it). */
  parameter(name: string): HostTensor | undefined {
    return this.weights.get(name);
  }

  /** One graph run: `seqs` right-padded to `bucket` rows each, `batch` >= seqs.length blocks (extra ones empty). */
  private runBatch(bucket: number, seqs: readonly (readonly number[])[], batch: number): Float32Array {
    const ane = this.options.ane;
    if (ane !== undefined) {
      // device 'ane-sim': one bundle pass per text; pad rows stay zero (never pooled)
      const out = new Float32Array(batch * bucket * this.dimension);
      seqs.forEach((s, b) => out.set(ane.encode(s, bucket, this.padId()), b * bucket * this.dimension));
      return out;
    }
    const key = `${bucket}x${batch}`;
    let g = this.graphs.get(key);
    if (g === undefined) {
      g = buildEncoderGraph(this.config, bucket, batch);
      this.graphs.set(key, g);
    }
    const T = bucket * batch;
    const pad = this.padId();
    const ids = new Int32Array(T).fill(pad);
    const positions = new Int32Array(T);
    const tokenTypes = new Int32Array(T);
    const mask = new Float32Array(T).fill(-Infinity);
    seqs.forEach((s, b) => {
      const o = b * bucket;
      for (let i = 0; i < s.length; i++) {
        ids[o + i] = s[i]!;
        mask[o + i] = 0;
      }
      // position_ids = cumsum(mask) - 1 (clamped at 0): 0..n-1, pad rows repeat the last position.
      for (let i = 0; i < bucket; i++) positions[o + i] = Math.max(0, Math.min(i, s.length - 1));
    });
    const inputs: Record<string, Int32Array | Float32Array> = { ids, positions, token_type_ids: tokenTypes, key_mask: mask };
    const ctx: ExecContext = {
      weight: (name) => {
        const t = this.weights.get(name);
        if (t === undefined) throw new Error(`weight "${name}" is missing`);
        return t;
      },
      state: (name) => {
        throw new Error(`encoder graphs have no state ("${name}")`);
      },
      input: (name) => {
        const v = inputs[name];
        if (v === undefined) throw new Error(`graph input "${name}" was not fed`);
        return v;
      },
    };
    return runGraph(g, this.backends, ctx).get('hidden')!.data as Float32Array;
  }

  private padId(): number {
    const t = this.tokenizer as Tokenizer & { padId?: number | null };
    const fromConfig = (this.config as { pad_token_id?: number }).pad_token_id;
    const id = t.padId ?? fromConfig ?? 0;
    return id >= 0 && id < this.config.vocab_size ? id : 0;
  }

  private warn(message: string): void {
    (this.options.onWarning ?? ((m: string) => process.emitWarning(m, 'RistrettoWarning')))(message);
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('this embedding model was disposed');
  }
}

function checkOutput(o: string): void {
  if (!['float', 'int8', 'binary', 'ubinary'].includes(o)) throw new InvalidArgumentError(`output must be float, int8, binary or ubinary, got ${JSON.stringify(o)}`);
}

/** Loads an encoder checkpoint for embeddings: an HF folder (config.json + safetensors + tokenizer.json) or a
 *  llama.cpp BERT GGUF (weights, WordPiece vocab and pooling type in one file). */
export async function loadEmbeddingModel(modelPath: string, options: EmbeddingModelOptions = {}): Promise<EmbeddingModel> {
  const t0 = performance.now();
  const { onProgress, signal } = options;
  throwIfAborted(signal);
  const format = detectFormat(modelPath);
  if (format !== 'safetensors' && format !== 'gguf') throw new UnsupportedError(`${modelPath}: embedding models load from HF folders (config.json + safetensors) or GGUF (BERT)`);
  // HF folders carry sentence-transformers / tokenizer configs beside the weights; a GGUF file says all in its metadata
  const dir = format === 'gguf' ? null : fs.statSync(modelPath).isDirectory() ? modelPath : path.dirname(modelPath);
  const plan = dir === null ? planGGUFEncoder(modelPath) : { ...planHFEncoder(dir), pooling: undefined };
  try {
    onProgress?.({ type: 'open', path: modelPath, format: plan.format, architecture: plan.architecture });
    const params = new Map([...encoderParams(plan.config), ...plan.extras]);
    checkPlan(plan, params);
    const { weights, parameters, weightBytes } = await readPlanWeights(plan, params, onProgress, signal);
    const tok = loadTokenizerFor(modelPath, plan, options.tokenizer);
    onProgress?.({ type: 'tokenizer', path: tok.path, kind: tok.tokenizer.kind });
    if (tok.tokenizer.vocabSize > plan.config.vocab_size) {
      throw new RistrettoError('CONFIG', `${tok.path}: the tokenizer has ${tok.tokenizer.vocabSize} tokens but the model ${modelPath} only ${plan.config.vocab_size}`);
    }

    const info = encoderInfo(plan.config);
    const st: StDefaults = dir === null ? {} : readSentenceTransformersConfig(dir);
    const raw = (dir === null ? null : readJsonIf(path.join(dir, 'config.json'))) ?? {};
    const emb = (typeof raw['embedding'] === 'object' && raw['embedding'] !== null ? raw['embedding'] : {}) as Record<string, unknown>;
    const tokCfg = (dir === null ? null : readJsonIf(path.join(dir, 'tokenizer_config.json'))) ?? {};
    let maxTokens = options.maxTokens ?? info.maxPositions;
    if (options.maxTokens === undefined) {
      const mml = tokCfg['model_max_length'];
      if (typeof mml === 'number' && mml > 0 && mml < maxTokens) maxTokens = mml;
      if (st.maxSeqLength !== undefined && st.maxSeqLength < maxTokens) maxTokens = st.maxSeqLength;
    }
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InvalidArgumentError(`maxTokens must be a positive integer, got ${maxTokens}`);
    if (plan.config.model_type === 'bert' && maxTokens > info.maxPositions) throw new InvalidArgumentError(`maxTokens ${maxTokens} exceeds the model's ${info.maxPositions} learned positions`);
    const embPooling = emb['pooling'] === 'mean' || emb['pooling'] === 'cls' || emb['pooling'] === 'last' ? emb['pooling'] : undefined;
    const pooling = options.pooling ?? st.pooling ?? embPooling ?? plan.pooling ?? (info.bidirectional ? 'mean' : 'last');
    const normalize = options.normalize ?? st.normalize ?? (typeof emb['normalize'] === 'boolean' ? emb['normalize'] : false);
    const wp = tok.tokenizer as Tokenizer & { sepId?: number | null };
    const sepFromConfig = emb['late_chunking_separator_token_id'];
    const separatorId = options.separatorId ?? (typeof sepFromConfig === 'number' ? sepFromConfig : null) ?? wp.sepId ?? tok.tokenizer.eosIds[0] ?? null;

    let ane: AneEncoderSimulator | undefined;
    if (options.device === 'ane-sim') {
      const bundle = options.aneBundle ?? compileBundle(
        { config: plan.config, architecture: plan.architecture, parameter: (n) => weights.get(n) },
        { buckets: options.buckets ?? defaultBuckets(maxTokens), encoder: true, calibrationIds: tok.tokenizer.encode(ENCODER_CALIBRATION_TEXT), modelPath },
      );
      ane = new AneEncoderSimulator(loadBundle(bundle), plan.config, (n) => weights.get(n));
    }
    const model = new EmbeddingModel(modelPath, plan.config, tok.tokenizer, weights, [...(options.backends ?? []), referenceBackend], {
      ...options, maxTokens, pooling, normalize, separatorId, ...(ane ? { ane, buckets: [...ane.buckets] } : {}),
    });
    onProgress?.({ type: 'ready', ms: performance.now() - t0, parameters, weightBytes });
    return model;
  } finally {
    plan.source.close();
  }
}
