// A minimal SentencePiece vocabulary as GGUF metadata, so tests can write self-contained GGUF models.

import type { GGUFMetadataEntry } from '../../src/formats/gguf.js';

export function tinySpmVocab(size: number): GGUFMetadataEntry[] {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (let i = 0; tokens.length < size; i++) {
    tokens.push('▁' + letters[i % 26]!.repeat(1 + Math.floor(i / 26)));
    types.push(1);
  }
  return [
    ['tokenizer.ggml.model', 'string', 'llama'],
    ['tokenizer.ggml.tokens', { array: 'string' }, tokens],
    ['tokenizer.ggml.scores', { array: 'float32' }, tokens.map((_, i) => -i)],
    ['tokenizer.ggml.token_type', { array: 'int32' }, types],
    ['tokenizer.ggml.bos_token_id', 'uint32', 1],
    ['tokenizer.ggml.eos_token_id', 'uint32', 2],
    ['tokenizer.ggml.unknown_token_id', 'uint32', 0],
  ];
}
