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
export { createWasmBackend, relaxedSimdAvailable, type WasmBackend, type WasmBackendOptions } from './backends/wasm/index.js';
export { createBackends, BACKEND_CHOICES, type BackendChoice, type BackendOptions, type Backends } from './runtime/backends.js';
export { benchModel, type BenchOptions, type BenchResult } from './runtime/bench.js';
export { buildGraph, modelParams, type ModelConfig } from './models/index.js';
export { buildLlamaGraph, llamaConfigFromHF, type LlamaConfig } from './models/llama.js';

export type { DType, HostTensor, TensorInfo, TensorSource } from './formats/tensor.js';
export { openGGUF, writeGGUF, type GGUFFile, type GGUFValue } from './formats/gguf.js';
export { openSafetensors, openSafetensorsDir, writeSafetensors } from './formats/safetensors.js';
export { openLlama2c, writeLlama2c, readLlama2cTokenizer, type Llama2cConfig } from './formats/llama2c.js';

export { ChatTemplate, loadChatTemplate, chatTemplateFromGGUF, specialTokensFromConfig, CHATML_TEMPLATE, TemplateError, type ChatMessage, type ContentPart, type ToolCall, type RenderOptions, type AppliedTemplate } from './runtime/template.js';
export { ChatSession, type ChatOptions, type ChatTurnOptions, type ChatTurnResult } from './runtime/chat.js';
export { createServer, type ServerOptions, type RistrettoServer, type ServerStats, type EmbeddingProvider } from './server/server.js';

export {
  EmbeddingModel, loadEmbeddingModel, readSentenceTransformersConfig, defaultBuckets, pickBucket,
  type EmbeddingModelOptions, type EmbedOptions, type Embedding, type ChunkEmbedding, type EncodedSequence, type PoolingMode,
  type Pooling, type EmbeddingOutput, type OutputArray, poolingMatrix, lateChunkSpans, applyPooling, l2Normalize,
  quantizeInt8, quantizeBinary, packBits, roundHalfEven,
} from './runtime/embed.js';
export { WordPieceTokenizer, bertNormalize, bertPreTokenize } from './tokenizers/wordpiece.js';
export { buildBertGraph, bertConfigFromHF, type BertConfig } from './models/bert.js';
export { buildEncoderGraph, encoderConfigFromHF, type EncoderConfig } from './models/encoders.js';
// ANE compile target: MIL programs, weight blobs, placement plan, interpreter, hybrid ane-sim execution.
export { compileBundle, writeBundle, readBundle, loadBundle, type Bundle, type Manifest, type CompileOptions, type LoadedBundle } from './compile/bundle.js';
export { makePlan, ioSurface, type Plan } from './compile/plan.js';
export { auditBundle, formatAudit, type AuditReport } from './compile/audit.js';
export { parseMil } from './compile/mil/parse.js';
export { emitProgram } from './compile/mil/emit.js';
export { MilInterpreter } from './compile/mil/interp.js';
export { MilError, SPEC_OPS, type MilProgram } from './compile/mil/ast.js';
export { buildBlob, readBlobTensor } from './compile/blob.js';
export { partitionGraph, type Partition, type Kernel as CompiledKernel } from './compile/passes/partition.js';
export { AneSimulator, AneSimSession, aneSimTarget } from './runtime/ane-sim.js';
export { AneEncoderSimulator } from './runtime/ane-sim-encoder.js';
// Training: graph autodiff, AdamW + schedule + clipping + loss scaling, token files, checkpoints, export.
export { TrainGraph, buildLossGraph, backwardPass, forwardGeneric, BACKWARD, type Precision } from './train/autodiff.js';
export { jsGemm, type GemmKernels } from './train/gemm.js';
export { AdamW, clipGradNorm, globalNorm, lrAt, LossScaler, type AdamWOptions, type LossScaleOptions, type ScheduleOptions } from './train/optim.js';
export { TokenFile, TokenFileWriter, WindowSampler, tokenizeFiles } from './train/data.js';
export { saveCheckpoint, loadCheckpoint, verifyCheckpoint, listCheckpoints, CheckpointError } from './train/checkpoint.js';
export { Trainer, TRAIN_DEFAULTS, type TrainOptions, type TrainEvent } from './train/trainer.js';
export { presetConfig, initParams, loadParams } from './train/params.js';
export { exportModel, exportCheckpoint, type ExportFormat } from './train/export.js';
export { lossCurveSvg } from './train/plot.js';
