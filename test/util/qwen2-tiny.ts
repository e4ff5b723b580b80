// A tiny random Qwen2 (Qwen2ForCausalLM) checkpoint, written from a seed; test/fixtures/qwen2-tiny-reference.json
// holds its logits from scripts/reference/qwen2_numpy.py (independent float64 numpy forward pass):
//   node -e "import('./dist/test/util/qwen2-tiny.js').then(m => m.writeQwen2Tiny('/tmp/qwen2-tiny'))"
//   python3 scripts/reference/qwen2_numpy.py /tmp/qwen2-tiny 1,5,9,33,2,260,17,287 > test/fixtures/qwen2-tiny-reference.json

import { writeHFCheckpoint } from '../../src/models/checkpoints/write.js';
import { qwen3Params, type Qwen3Config } from '../../src/models/qwen3.js';
import { randomWeights } from './random-weights.js';

export const QWEN2_TINY: Qwen3Config = {
  model_type: 'qwen2', vocab_size: 288, hidden_size: 48, intermediate_size: 96, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, head_dim: 12, rms_norm_eps: 1e-6, rope_theta: 1000000,
  rope_scaling: null, max_position_embeddings: 128, tie_word_embeddings: false, rope_style: 'neox',
  attention_bias: true, is_causal: true,
};

export const QWEN2_TINY_IDS = [1, 5, 9, 33, 2, 260, 17, 287];

export function writeQwen2Tiny(dir: string): void {
  writeHFCheckpoint(dir, QWEN2_TINY, randomWeights(qwen3Params(QWEN2_TINY), 2024));
}
