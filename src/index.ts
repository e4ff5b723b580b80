// ristretto: the library entry point.

export { loadModel, detectFormat, planCheckpoint, type LoadOptions, type LoadProgress } from './runtime/load-model.js';
export { Model, type ModelInfo } from './runtime/model.js';
export { InferenceSession } from './runtime/session.js';
export { generate, generateStream, type GenerateOptions, type GenerationResult, type TokenEvent, type FinishReason } from './runtime/generate.js';
export { Sampler, SAMPLER_DEFAULTS, argmax, type SamplerOptions } from './runtime/sampler.js';
export { XorShiftRng } from './runtime/rng.js';
export * from './errors.js';

export type { Tokenizer, EncodeOptions, DecodeOptions } from './tokenizers/tokenizer.js';
export { StreamDecoder } from './tokenizers/stream-decoder.js';
export { loadTokenizer } from './tokenizers/load.js';

export { Graph, Sym, type Node } from './graph/graph.js';
export { OP_NAMES, type OpName, type OpAttrs } from './graph/ops.js';
export { runGraph, type Backend, type Kernel, type Value, type Dense, type Weight, type ExecContext } from './backends/backend.js';
export { referenceBackend } from './backends/reference/index.js';
export { buildGraph, modelParams, type ModelConfig } from './models/index.js';
export { buildLlamaGraph, llamaConfigFromHF, type LlamaConfig } from './models/llama.js';

export type { DType, HostTensor, TensorInfo, TensorSource } from './formats/tensor.js';
export { openGGUF, writeGGUF, type GGUFFile, type GGUFValue } from './formats/gguf.js';
export { openSafetensors, openSafetensorsDir, writeSafetensors } from './formats/safetensors.js';
export { openLlama2c, writeLlama2c, readLlama2cTokenizer, type Llama2cConfig } from './formats/llama2c.js';

export { ChatTemplate, loadChatTemplate, chatTemplateFromGGUF, specialTokensFromConfig, CHATML_TEMPLATE, TemplateError, type ChatMessage, type ContentPart, type ToolCall, type RenderOptions, type AppliedTemplate } from './runtime/template.js';
export { ChatSession, type ChatOptions, type ChatTurnOptions, type ChatTurnResult } from './runtime/chat.js';
export { createServer, type ServerOptions, type RistrettoServer, type ServerStats, type EmbeddingProvider } from './server/server.js';
