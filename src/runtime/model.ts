// A loaded model: config, weights, tokenizer, and the generation entry points.

import type { Backend } from '../backends/backend.js';
import type { HostTensor } from '../formats/tensor.js';
import type { CheckpointFormat } from '../models/checkpoints/types.js';
import type { ModelConfig } from '../models/index.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { generate, generateStream, type GenerateOptions, type GenerationResult, type TokenEvent } from './generate.js';
import { InferenceSession } from './session.js';
import { ChatSession, type ChatOptions } from './chat.js';

export interface ModelInfo {
  path: string;
  format: CheckpointFormat;
  architecture: string;
  parameters: number;
  weightBytes: number;
  dtypes: Record<string, number>;
}

export class Model {
  private disposed = false;

  constructor(
    readonly info: ModelInfo,
    readonly config: ModelConfig,
    readonly tokenizer: Tokenizer,
    private weights: Map<string, HostTensor>,
    private readonly backends: readonly Backend[],
    /** Ids that end generation: EOS ids, plus BOS (llama2.c models separate stories with BOS). */
    readonly stopTokenIds: readonly number[],
    /** KV-cache length of new sessions (undefined: the architecture's default). */
    readonly contextLength?: number,
    /** Releases the backends this model owns (worker threads), at dispose. */
    private readonly releaseBackends?: () => void,
  ) {}

  /** A fresh sequence with its own preallocated KV cache. */
  createSession(contextLength?: number): InferenceSession {
    this.assertLive();
    const w = this.weights;
    return new InferenceSession(this.config, { get: (n) => w.get(n) }, this.backends, contextLength ?? this.contextLength);
  }

  /** Streams tokens as they are generated; stops on EOS, stop strings, maxTokens, or `signal`. */
  stream(prompt: string | readonly number[], options: GenerateOptions = {}): AsyncGenerator<TokenEvent, GenerationResult, void> {
    this.assertLive();
    return generateStream(this, prompt, options);
  }

  /** The whole generation at once (folds `stream`); `onToken` sees each token as it comes. */
  generate(prompt: string | readonly number[], options: GenerateOptions & { onToken?: (e: TokenEvent) => void } = {}): Promise<GenerationResult> {
    this.assertLive();
    return generate(this, prompt, options);
  }

  /** A multi-turn chat with the model's chat template (or `options.template`), reusing its KV cache across turns. */
  chat(options: ChatOptions = {}): ChatSession {
    this.assertLive();
    return new ChatSession(this, options);
  }

  /** Logits for every position of `ids` in one pass ([ids.length * vocab]). */
  logits(ids: readonly number[]): Float32Array {
    return this.createSession().forward(ids, 'all');
  }

  /** Names of the backends that execute this model, fastest first (the reference is last). */
  get backendNames(): string[] {
    return this.backends.map((b) => b.name);
  }

  /** The model's parameters by name (HF names), as loaded. */
  parameters(): ReadonlyMap<string, HostTensor> {
    this.assertLive();
    return this.weights;
  }

  /** Releases the weights; the model cannot be used afterwards. */
  dispose(): void {
    this.disposed = true;
    this.weights = new Map();
    this.releaseBackends?.();
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('this model was disposed');
  }
}
