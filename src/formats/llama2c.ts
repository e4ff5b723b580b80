// llama2.c checkpoints (karpathy/llama2.c `run.c` / `export.py`) and its `tokenizer.bin`.
//
// Legacy (version 0, `legacy_export`, what run.c reads): 7 x int32
//   dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len   (vocab_size < 0: unshared classifier)
// then fp32, stacked over layers (run.c memory_map_weights order):
//   token_embedding_table[vocab,dim], rms_att[L,dim], wq[L,dim,dim], wk[L,kv_dim,dim], wv[L,kv_dim,dim],
//   wo[L,dim,dim], rms_ffn[L,dim], w1[L,hidden,dim], w2[L,dim,hidden], w3[L,hidden,dim], rms_final[dim],
//   freq_cis_real[seq_len,head_size/2], freq_cis_imag[seq_len,head_size/2] (unused), wcls[vocab,dim] if unshared.
// Version 1 (`version1_export`): u32 magic 0x616b3432 ("ak42" little-endian), i32 version = 1, the same 7 int32
//   (vocab_size positive), u8 shared_classifier, zero padding to 256 bytes; then fp32: every attention_norm,
//   every ffn_norm, norm, tok_embeddings, every wq, wk, wv, wo, w1, w2, w3, then output if not shared.
// Version 2 (`version2_export`) is Q8_0 and is not supported.
// kv_dim = dim * n_kv_heads / n_heads; head_size = dim / n_heads.

import * as fs from 'node:fs';
import { InvalidArgumentError, UnsupportedError } from '../errors.js';
import { Cursor, FileReader, FileTensorSource, openAndParse, decodeUtf8, fail, writeAll, type TensorEntry } from './file-reader.js';
import type { HostTensor, TensorSource } from './tensor.js';

export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
  version: 0 | 1;
}

export type Llama2cSource = TensorSource & { config: Llama2cConfig };

const MAGIC = 0x616b3432;
const V1_HEADER = 256;

/** Validates a config; `file` names the file in errors (FormatError), or `null` for API use (InvalidArgumentError). */
function validate(c: Llama2cConfig, file: string | null): void {
  const bad = (where: string, expected: string, found: string | number): never => {
    if (file === null) throw new InvalidArgumentError(`llama2.c config: ${where}: expected ${expected}, found ${found}`);
    return fail(file, where, expected, String(found));
  };
  for (const k of ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize', 'seqLen'] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0 || c[k] > 0x7fffffff) bad(`header.${k}`, 'a positive int32', c[k]);
  }
  if (c.dim % c.nHeads !== 0) bad('header.n_heads', `a divisor of dim ${c.dim}`, c.nHeads);
  if (c.nHeads % c.nKvHeads !== 0) bad('header.n_kv_heads', `a divisor of n_heads ${c.nHeads}`, c.nKvHeads);
  if ((c.dim / c.nHeads) % 2 !== 0) bad('header.dim / n_heads', 'an even head size (RoPE rotates pairs)', c.dim / c.nHeads);
}

/** Tensor names and shapes in file order (the sections of one version), with per-layer slices. */
function layout(c: Llama2cConfig): { name: string; shape: number[] }[] {
  const { dim, hiddenDim: h, nLayers: L, vocabSize: V } = c;
  const kv = (dim * c.nKvHeads) / c.nHeads;
  const per = (suffix: string, shape: number[]): { name: string; shape: number[] }[] =>
    Array.from({ length: L }, (_, i) => ({ name: `layers.${i}.${suffix}`, shape }));
  const emb = [{ name: 'tok_embeddings.weight', shape: [V, dim] }];
  const attn = [
    ...per('attention.wq.weight', [dim, dim]),
    ...per('attention.wk.weight', [kv, dim]),
    ...per('attention.wv.weight', [kv, dim]),
    ...per('attention.wo.weight', [dim, dim]),
  ];
  const ffn = [
    ...per('feed_forward.w1.weight', [h, dim]),
    ...per('feed_forward.w2.weight', [dim, h]),
    ...per('feed_forward.w3.weight', [h, dim]),
  ];
  const norm = [{ name: 'norm.weight', shape: [dim] }];
  const out = c.sharedClassifier ? [] : [{ name: 'output.weight', shape: [V, dim] }];
  if (c.version === 1) {
    return [...per('attention_norm.weight', [dim]), ...per('ffn_norm.weight', [dim]), ...norm, ...emb, ...attn, ...ffn, ...out];
  }
  // Legacy: freq_cis sits between rms_final and wcls; FREQ_CIS marks it (skipped, not a tensor).
  const freq = { name: FREQ_CIS, shape: [2, c.seqLen, dim / c.nHeads / 2] };
  return [...emb, ...per('attention_norm.weight', [dim]), ...attn.slice(0, 4 * L), ...per('ffn_norm.weight', [dim]), ...ffn, ...norm, freq, ...out];
}
const FREQ_CIS = '\0freq_cis';

function elems(shape: number[]): bigint {
  return shape.reduce((a, d) => a * BigInt(d), 1n);
}

/** Opens a llama2.c checkpoint (legacy or version 1); tensors are read lazily by offset. */
export function openLlama2c(path: string): Llama2cSource {
  return openAndParse(path, parse);
}

function parse(r: FileReader): Llama2cSource {
  const file = r.path;
  const first = r.u32(0, 'header');
  let config: Llama2cConfig;
  let headerSize: number;
  const ints = (at: number): number[] => Array.from({ length: 7 }, (_, i) => r.i32(at + 4 * i, `header int32[${i}]`));
  if (first === MAGIC) {
    const version = r.i32(4, 'header.version');
    if (version === 2) throw new UnsupportedError(`${file}: llama2.c version 2 checkpoints (Q8_0) are not supported`);
    if (version !== 1) fail(file, 'header.version', '1 (or 2, unsupported)', String(version));
    const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen] = ints(8) as [number, number, number, number, number, number, number];
    const shared = r.u8(36, 'header.shared_classifier');
    if (shared > 1) fail(file, 'header.shared_classifier', '0 or 1', String(shared));
    const pad = r.bytes(37, V1_HEADER - 37, 'header padding');
    const nz = pad.findIndex((b) => b !== 0);
    if (nz >= 0) fail(file, 'header padding', 'zero bytes up to offset 256', `byte ${pad[nz]} at offset ${37 + nz}`);
    config = { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, sharedClassifier: shared === 1, version: 1 };
    headerSize = V1_HEADER;
  } else {
    const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = ints(0) as [number, number, number, number, number, number, number];
    // run.c: "negative vocab size is hacky way of signaling unshared weights"
    config = { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocab), seqLen, sharedClassifier: vocab > 0, version: 0 };
    headerSize = 28;
  }
  validate(config, file);

  // Expected size first, in BigInt (seven int32 fields multiply far past 2^53), before building the tensor
  // list: a hostile n_layers of 2^31 must not allocate per-layer entries.
  const { dim, hiddenDim: h, nLayers: L, nHeads, nKvHeads, vocabSize: V, seqLen } = config;
  const B = BigInt;
  const kv = B((dim * nKvHeads) / nHeads);
  const perLayer = 2n * B(dim) + 2n * B(dim) * B(dim) + 2n * kv * B(dim) + 3n * B(h) * B(dim);
  const classifiers = config.sharedClassifier ? 1n : 2n;
  const freqBytes = config.version === 0 ? 4n * B(seqLen) * B(dim / nHeads) : 0n; // 2 x [seq_len, head_size/2]
  const total = B(headerSize) + 4n * (classifiers * B(V) * B(dim) + B(L) * perLayer + B(dim)) + freqBytes;
  const size = BigInt(r.size);
  const withFreq = size === total;
  if (!withFreq && !(config.version === 0 && size === total - freqBytes)) {
    const exp = config.version === 0 ? `${total} bytes (or ${total - freqBytes} without the freq_cis block)` : `${total} bytes`;
    fail(file, 'file size', `${exp} for ${JSON.stringify(config)}`, `${r.size} bytes`);
  }
  const items = layout(config);
  const entries = new Map<string, TensorEntry>();
  let off = headerSize;
  for (const t of items) {
    const bytes = Number(elems(t.shape) * 4n);
    if (t.name === FREQ_CIS) {
      if (withFreq) off += bytes;
      continue;
    }
    entries.set(t.name, { info: { name: t.name, dtype: 'f32', typeName: 'F32', shape: t.shape, byteLength: bytes }, offset: off });
    off += bytes;
  }
  return Object.assign(new FileTensorSource(r, entries), { config });
}

/** Tensor names of a config, in file order (for writeLlama2c's getTensor). */
export function llama2cTensorNames(config: Llama2cConfig): string[] {
  return layout(config).map((t) => t.name).filter((n) => n !== FREQ_CIS);
}

/**
 * Writes a llama2.c checkpoint in `config.version` (0 = legacy run.c format, 1 = "ak42" v1). `getTensor(name)`
 * returns each tensor's fp32 values (row-major, outermost first) for the names of `llama2cTensorNames(config)`;
 * `shape` is the shape the file expects.
 * Legacy files get the freq_cis block computed as export.py does (theta 10000).
 */
export function writeLlama2c(
  path: string,
  config: Llama2cConfig,
  getTensor: (name: string, shape: number[]) => Float32Array | HostTensor,
): void {
  validate(config, null);
  const c = config;
  let header: Uint8Array;
  if (c.version === 1) {
    header = new Uint8Array(V1_HEADER);
    const dv = new DataView(header.buffer);
    dv.setUint32(0, MAGIC, true);
    dv.setInt32(4, 1, true);
    [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.vocabSize, c.seqLen].forEach((v, i) => dv.setInt32(8 + 4 * i, v, true));
    dv.setUint8(36, c.sharedClassifier ? 1 : 0);
  } else {
    header = new Uint8Array(28);
    const dv = new DataView(header.buffer);
    const vocab = c.sharedClassifier ? c.vocabSize : -c.vocabSize;
    [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, vocab, c.seqLen].forEach((v, i) => dv.setInt32(4 * i, v, true));
  }
  const fd = fs.openSync(path, 'w');
  try {
    writeAll(fd, header);
    for (const t of layout(c)) {
      const n = Number(elems(t.shape));
      let data: Uint8Array;
      if (t.name === FREQ_CIS) {
        const half = t.shape[2]!;
        const hs = half * 2;
        const f = new Float32Array(n);
        for (let p = 0; p < c.seqLen; p++) {
          for (let j = 0; j < half; j++) {
            const a = p / Math.pow(10000, (2 * j) / hs);
            f[p * half + j] = Math.cos(a);
            f[c.seqLen * half + p * half + j] = Math.sin(a);
          }
        }
        data = new Uint8Array(f.buffer);
      } else {
        const v = getTensor(t.name, [...t.shape]);
        if (v instanceof Float32Array) data = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
        else if (v.dtype === 'f32') data = v.data;
        else throw new InvalidArgumentError(`writeLlama2c: tensor "${t.name}" must be f32, got ${v.dtype}`);
        if (data.byteLength !== n * 4) throw new InvalidArgumentError(`writeLlama2c: tensor "${t.name}" has ${data.byteLength} bytes, expected ${n * 4} (shape [${t.shape}])`);
      }
      writeAll(fd, data);
    }
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// tokenizer.bin (llama2.c tokenizer.py export): int32 max_token_length, then per token:
// float32 score, int32 len, len bytes (no NUL). The token count is not stored (run.c takes it from the model).

export interface Llama2cTokenizer {
  maxTokenLength: number;
  /** The exact bytes of each piece. */
  pieces: Uint8Array[];
  /** The pieces as strings (strict UTF-8: a piece that is not valid UTF-8 makes the file a FormatError). */
  vocab: string[];
  scores: Float32Array;
}

/** tokenizer.py writes max_token_length = the longest piece; anything beyond this is not a tokenizer file. */
const MAX_TOKEN_LENGTH_LIMIT = 1 << 20;

/**
 * Reads a llama2.c tokenizer.bin (the one reader; the SentencePiece tokenizer builds on it). With `vocabSize` (from
 * the model header), exactly that many tokens must be present and the file must end there; without it, tokens are
 * read until EOF. Checks, each a FormatError naming the field: max_token_length in 1..2^20; each len in
 * 0..max_token_length (tokenizer.py writes max_token_length = the longest piece, so a longer piece means a corrupt
 * file); scores are numbers (NaN would break merge ordering); pieces are valid UTF-8 (SentencePiece pieces always
 * are); at least one token.
 */
export function readLlama2cTokenizer(path: string, vocabSize?: number): Llama2cTokenizer {
  if (vocabSize !== undefined && (!Number.isSafeInteger(vocabSize) || vocabSize <= 0)) {
    throw new InvalidArgumentError(`readLlama2cTokenizer: vocabSize must be a positive integer, got ${vocabSize}`);
  }
  const r = new FileReader(path);
  try {
    const maxLen = r.i32(0, 'max_token_length');
    if (maxLen <= 0 || maxLen > MAX_TOKEN_LENGTH_LIMIT) fail(path, 'max_token_length', `an integer in 1..${MAX_TOKEN_LENGTH_LIMIT}`, String(maxLen));
    // Each token takes at least 8 bytes: bound the count before allocating.
    const maxTokens = Math.floor((r.size - 4) / 8);
    if (vocabSize !== undefined && vocabSize > maxTokens) fail(path, 'token count', `${vocabSize} tokens (at least ${vocabSize * 8 + 4} bytes)`, `file size ${r.size}`);
    const c = new Cursor(r, 4);
    const pieces: Uint8Array[] = [];
    const vocab: string[] = [];
    const scores: number[] = [];
    while (vocabSize !== undefined ? pieces.length < vocabSize : c.remaining > 0) {
      const i = pieces.length;
      const score = c.f32(`token ${i} score`);
      if (Number.isNaN(score)) fail(path, `token ${i} score`, 'a number', 'NaN');
      scores.push(score);
      const len = c.i32(`token ${i} len`);
      if (len < 0 || len > maxLen) fail(path, `token ${i} len`, `0..${maxLen} (max_token_length)`, String(len));
      const bytes = c.bytes(len, `token ${i} bytes`);
      pieces.push(bytes);
      vocab.push(decodeUtf8(bytes, path, `token ${i} bytes`));
    }
    if (c.remaining !== 0) fail(path, 'end of file', `end after ${vocabSize} tokens at offset ${c.pos}`, `${c.remaining} more bytes`);
    if (pieces.length === 0) fail(path, 'tokens', 'at least one token', 'none');
    return { maxTokenLength: maxLen, pieces, vocab, scores: Float32Array.from(scores) };
  } finally {
    r.close();
  }
}
