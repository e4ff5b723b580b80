// Shared checks against reference/embed-*.json (independent float64 PyTorch references).

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadEmbeddingModel, type EmbeddingModel } from '../../src/runtime/embed.js';

export interface QuantFields {
  mean_pooled: number[];
  mean_pooled_normalized: number[];
  int8: number[];
  binary: number[];
  ubinary: number[];
  int8_fragile_dims: number[];
  binary_fragile_dims: number[];
}

export interface EmbedCase extends QuantFields {
  text: string;
  ids: number[];
  n_tokens: number;
  last_hidden_state_row0: number[];
  last_hidden_state_first8_per_token: number[][];
  cls_pooled?: number[];
  cls_pooled_normalized?: number[];
  pooler_output?: number[];
}

export interface EmbedReference {
  cases: EmbedCase[];
  late_chunking?: {
    chunks: string[];
    ids: number[];
    spans: [number, number][];
    chunk_embeddings: (QuantFields & { span: [number, number]; independent_mean_pooled: number[] })[];
  };
}

const loaded = new Map<string, Promise<EmbeddingModel>>();

/** One EmbeddingModel per folder for a whole test file (default options, warnings silenced). */
export function sharedModel(dir: string): Promise<EmbeddingModel> {
  let m = loaded.get(dir);
  if (m === undefined) loaded.set(dir, (m = loadEmbeddingModel(dir, { onWarning: () => {} })));
  return m;
}

export function readReference(models: string, name: string): EmbedReference {
  return JSON.parse(fs.readFileSync(path.join(models, 'reference', name), 'utf8')) as EmbedReference;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** int8 exact except ±1 on the reference's fragile dims; binary/ubinary exact (fragile binary dims excepted). */
export function assertQuantized(what: string, ref: QuantFields, got: { int8: ArrayLike<number>; binary: ArrayLike<number>; ubinary: ArrayLike<number> }): void {
  for (let d = 0; d < ref.int8.length; d++) {
    const diff = Math.abs(got.int8[d]! - ref.int8[d]!);
    if (ref.int8_fragile_dims.includes(d)) assert.ok(diff <= 1, `${what}: int8[${d}] ${got.int8[d]} vs ${ref.int8[d]} (fragile)`);
    else assert.equal(got.int8[d], ref.int8[d], `${what}: int8[${d}]`);
  }
  if (ref.binary_fragile_dims.length === 0) {
    assert.deepEqual(Array.from(got.binary), ref.binary, `${what}: binary`);
    assert.deepEqual(Array.from(got.ubinary), ref.ubinary, `${what}: ubinary`);
  }
}
