// BERT embedding models in GGUF, as llama.cpp's converter writes them: the hf/bert-tiny-random weights under
// llama.cpp's tensor names, with the WordPiece vocab metadata taken from llama.cpp's own ggml-vocab-bert-bge.gguf
// (the same uncased 30522-token vocab), F32 and F16. Loaded through loadEmbeddingModel, the embeddings match
// reference/embed-bert-tiny.json (HF transformers), and bert.pooling_type picks the pooling.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openGGUF, writeGGUF, type GGUFMetadataEntry, type GGUFValueType } from '../src/formats/gguf.js';
import { quantize, readTensorAsF32 } from '../src/formats/dtypes/index.js';
import type { DType, HostTensor } from '../src/formats/tensor.js';
import { openSafetensorsDir } from '../src/formats/safetensors.js';
import { loadEmbeddingModel } from '../src/runtime/embed.js';
import { bertGGUFMetadata, bertGGUFNames } from '../src/models/checkpoints/gguf-encoder.js';
import { bertConfigFromHF } from '../src/models/bert.js';
import { UnsupportedError } from '../src/errors.js';
import { modelFileOrSkip } from './helpers/models.js';
import { maxAbsDiff, readReference } from './util/embed-reference.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ristretto-embed-gguf-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Writes hf/bert-tiny-random as a llama.cpp-style BERT GGUF (matrices in `type`, 1-D tensors f32). */
function writeBertGGUF(dir: string, vocabGGUF: string, file: string, type: DType, pooling: 'mean' | 'cls' | undefined): void {
  const config = bertConfigFromHF(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')));
  const names = bertGGUFNames(config);
  // llama.cpp's LLM_ARCH_BERT names, written out here independently of the mapping under test
  for (const [hf, gg] of [
    ['embeddings.word_embeddings.weight', 'token_embd.weight'], ['embeddings.token_type_embeddings.weight', 'token_types.weight'],
    ['embeddings.position_embeddings.weight', 'position_embd.weight'], ['embeddings.LayerNorm.bias', 'token_embd_norm.bias'],
    ['encoder.layer.1.attention.self.key.weight', 'blk.1.attn_k.weight'], ['encoder.layer.0.attention.output.LayerNorm.weight', 'blk.0.attn_output_norm.weight'],
    ['encoder.layer.0.intermediate.dense.bias', 'blk.0.ffn_up.bias'], ['encoder.layer.1.output.dense.weight', 'blk.1.ffn_down.weight'],
    ['encoder.layer.1.output.LayerNorm.bias', 'blk.1.layer_output_norm.bias'], ['encoder.layer.0.attention.output.dense.weight', 'blk.0.attn_output.weight'],
  ]) assert.equal(names.get(hf!), gg, hf);
  const src = openSafetensorsDir(dir);
  const tensors: HostTensor[] = [];
  for (const [hf, gg] of names) {
    const t = src.read(hf);
    const f = readTensorAsF32(t);
    const ty: DType = t.shape.length === 2 ? type : 'f32';
    tensors.push({ name: gg, dtype: ty, shape: [...t.shape], data: ty === 'f32' ? new Uint8Array(f.buffer, f.byteOffset, f.byteLength) : quantize(ty, f) });
  }
  src.close();
  const vocab = openGGUF(vocabGGUF);
  const tokenizer: GGUFMetadataEntry[] = [];
  for (const [k, v] of vocab.metadata) if (k.startsWith('tokenizer.')) tokenizer.push([k, vocab.metadataTypes.get(k) as GGUFValueType, v]);
  vocab.close();
  writeGGUF(file, { metadata: [...bertGGUFMetadata(config, pooling, 'bert-tiny-random'), ...tokenizer], tensors });
}

test('GGUF BERT (llama.cpp layout, F32 and F16) gives the reference embeddings; bert.pooling_type picks the pooling', async (t) => {
  const dir = modelFileOrSkip(t, 'hf/bert-tiny-random');
  const vocab = modelFileOrSkip(t, 'gguf/vocab/ggml-vocab-bert-bge.gguf');
  const models = dir && path.dirname(path.dirname(dir));
  if (!dir || !vocab || !models || !modelFileOrSkip(t, 'reference/embed-bert-tiny.json')) return;
  const ref = readReference(models, 'embed-bert-tiny.json');
  const texts = ref.cases.map((c) => c.text);
  const worst: Record<string, number> = {};
  for (const [type, bound] of [['f32', 1e-4], ['f16', 5e-3]] as const) {
    const file = path.join(tmp, `bert-${type}.gguf`);
    writeBertGGUF(dir, vocab, file, type, 'mean');
    const m = await loadEmbeddingModel(file, { backends: [] });
    assert.equal(m.defaults.pooling, 'mean', 'from bert.pooling_type');
    assert.equal(m.dimension, 64);
    const ids = texts.map((s) => m.tokenize(s).ids);
    ref.cases.forEach((c, i) => assert.deepEqual(ids[i], c.ids, `ids of ${JSON.stringify(c.text)}`));
    const [mean, clsN] = await Promise.all([m.embed(texts, { pooling: 'mean', normalize: false }), m.embed(texts, { pooling: 'cls', normalize: true })]);
    let w = 0;
    ref.cases.forEach((c, i) => {
      w = Math.max(w, maxAbsDiff(mean[i]!.embedding, c.mean_pooled), maxAbsDiff(clsN[i]!.embedding, c.cls_pooled_normalized!));
    });
    worst[type] = w;
    assert.ok(w < bound, `${type}: max abs diff ${w} vs reference`);
  }
  t.diagnostic(`GGUF BERT vs HF reference, max abs diff: ${JSON.stringify(worst)}`);
  const clsFile = path.join(tmp, 'bert-cls.gguf');
  writeBertGGUF(dir, vocab, clsFile, 'f32', 'cls');
  const m = await loadEmbeddingModel(clsFile, { backends: [] });
  assert.equal(m.defaults.pooling, 'cls');
  const [e] = await m.embed(texts[0]!, { normalize: false });
  assert.ok(maxAbsDiff(e!.embedding, ref.cases[0]!.cls_pooled!) < 1e-4);
});

test('GGUF embedding models other than BERT are refused, naming the file', async (t) => {
  const f = modelFileOrSkip(t, 'gguf/stories260K.gguf');
  if (!f) return;
  await assert.rejects(loadEmbeddingModel(f), (e: unknown) => e instanceof UnsupportedError && e.message.includes(f) && /supported: bert/.test(e.message));
});
