// Finding and loading a tokenizer: tokenizer.bin (llama2.c), tokenizer.json (HF), or GGUF metadata.
// The kind is chosen by content: GGUF `tokenizer.ggml.model`, tokenizer.json's model and pre-tokenizer.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RistrettoError, UnsupportedError } from '../errors.js';
import { openGGUF, type GGUFFile, type GGUFValue } from '../formats/gguf.js';
import { readJsonFile } from '../formats/hf-config.js';
import { ByteLevelBPETokenizer } from './byte-level-bpe.js';
import { SentencePieceBPETokenizer } from './sentencepiece-bpe.js';
import { detectTokenizerJsonKind } from './tokenizer-json.js';
import { WordPieceTokenizer } from './wordpiece.js';
import type { Tokenizer } from './tokenizer.js';

export interface LoadedTokenizer {
  tokenizer: Tokenizer;
  /** Where it came from (a file, or the GGUF holding it). */
  path: string;
}

/** Builds a tokenizer from GGUF metadata (`tokenizer.ggml.*`). */
export function tokenizerFromGGUF(metadata: Map<string, GGUFValue>, file: string): Tokenizer {
  const kind = metadata.get('tokenizer.ggml.model');
  if (kind === 'llama') return SentencePieceBPETokenizer.fromGGUFMetadata(metadata, file);
  if (kind === 'gpt2') return ByteLevelBPETokenizer.fromGGUFMetadata(metadata, file);
  if (kind === 'bert') return WordPieceTokenizer.fromGGUFMetadata(metadata, file);
  if (kind === undefined) throw new RistrettoError('NOT_FOUND', `${file}: the GGUF file holds no tokenizer (no tokenizer.ggml.model); pass --tokenizer`);
  throw new UnsupportedError(`${file}: tokenizer.ggml.model ${JSON.stringify(kind)} is not supported (supported: llama, gpt2, bert)`);
}

/** Builds a tokenizer from a parsed tokenizer.json (+ tokenizer_config.json): the one tokenizer.json dispatch. */
export function tokenizerFromJson(json: unknown, config?: unknown, file = 'tokenizer.json'): Tokenizer {
  const kind = detectTokenizerJsonKind(json, file);
  switch (kind) {
    case 'byte-level-bpe':
      return ByteLevelBPETokenizer.fromTokenizerJson(json, config, file);
    case 'sentencepiece-bpe':
      return SentencePieceBPETokenizer.fromTokenizerJson(json, config);
    case 'wordpiece':
      return WordPieceTokenizer.fromTokenizerJson(json, config, file);
    default:
      throw new UnsupportedError(`${file}: ${kind} tokenizers are not supported yet (supported: BPE, WordPiece)`);
  }
}

/** Loads a tokenizer from a file or folder given by the user. */
export function loadTokenizer(p: string, vocabSize?: number): LoadedTokenizer {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new RistrettoError('NOT_FOUND', `${p}: no such tokenizer file or folder`);
  }
  if (st.isDirectory()) {
    const json = path.join(p, 'tokenizer.json');
    if (fs.existsSync(json)) return loadTokenizer(json);
    const bin = path.join(p, 'tokenizer.bin');
    if (fs.existsSync(bin)) return loadTokenizer(bin, vocabSize);
    throw new RistrettoError('NOT_FOUND', `${p}: no tokenizer.json or tokenizer.bin in this folder`);
  }
  if (isGGUF(p)) {
    const f = openGGUF(p);
    try {
      return { tokenizer: tokenizerFromGGUF(f.metadata, p), path: p };
    } finally {
      f.close();
    }
  }
  if (p.endsWith('.json')) {
    const cfgPath = path.join(path.dirname(p), 'tokenizer_config.json');
    const config = fs.existsSync(cfgPath) ? readJsonFile(cfgPath) : undefined;
    return { tokenizer: tokenizerFromJson(readJsonFile(p), config, p), path: p };
  }
  return { tokenizer: SentencePieceBPETokenizer.fromLlama2cTokenizer(p, { vocabSize }), path: p };
}

/**
 * The tokenizer for a checkpoint: `override` when given; else the GGUF's own metadata, the HF
 * folder's tokenizer.json, or for llama2.c `.bin` a `tok{vocab}.bin` / `tokenizer.bin` beside it.
 */
export function loadTokenizerFor(
  modelPath: string,
  plan: { format: string; source: unknown; config: { vocab_size: number } },
  override?: string,
): LoadedTokenizer {
  if (override !== undefined) return loadTokenizer(override, plan.format === 'llama2c' ? plan.config.vocab_size : undefined);
  if (plan.format === 'gguf') {
    return { tokenizer: tokenizerFromGGUF((plan.source as GGUFFile).metadata, modelPath), path: modelPath };
  }
  const dir = fs.statSync(modelPath).isDirectory() ? modelPath : path.dirname(modelPath);
  if (plan.format === 'safetensors') return loadTokenizer(path.join(dir, 'tokenizer.json'));
  const vocab = plan.config.vocab_size;
  for (const name of [`tok${vocab}.bin`, 'tokenizer.bin']) {
    const p = path.join(dir, name);
    if (!fs.existsSync(p)) continue;
    // tokenizer.bin does not record its size: read to EOF and check it fits the model.
    const t = loadTokenizer(p);
    if (t.tokenizer.vocabSize === vocab) return t;
  }
  throw new RistrettoError('NOT_FOUND', `${modelPath}: no tokenizer with ${vocab} tokens found beside the model (looked for tok${vocab}.bin, tokenizer.bin); pass --tokenizer PATH`);
}

function isGGUF(p: string): boolean {
  const fd = fs.openSync(p, 'r');
  try {
    const b = Buffer.alloc(4);
    return fs.readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === 'GGUF';
  } finally {
    fs.closeSync(fd);
  }
}
