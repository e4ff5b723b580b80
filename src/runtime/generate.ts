// Generation: prefill the prompt, then decode one token at a time. The primitive is an async
// iterator of token events that honours an AbortSignal; the non-streaming call folds it.

import { AbortError, ContextLengthError, InvalidArgumentError } from '../errors.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { StreamDecoder } from '../tokenizers/stream-decoder.js';
import { Sampler, type SamplerOptions } from './sampler.js';
import type { InferenceSession } from './session.js';

export interface GenerateOptions extends SamplerOptions {
  /** New tokens to generate at most. Default: until the context is full. */
  maxTokens?: number;
  /** Stop when the text contains one of these; the stop string is not included in the output. */
  stop?: readonly string[];
  /** Extra token ids that end generation (the model's EOS ids always do). */
  stopTokens?: readonly number[];
  /** Add the tokenizer's special tokens (BOS) to a text prompt. Default true. */
  addSpecialTokens?: boolean;
  signal?: AbortSignal;
}

export interface TokenEvent {
  /** The sampled token id. */
  token: number;
  /** Text this token completes (may be empty while a UTF-8 sequence or a possible stop string is pending). */
  text: string;
}

export type FinishReason = 'stop' | 'length';

export interface GenerationResult {
  promptIds: number[];
  generatedIds: number[];
  text: string;
  finishReason: FinishReason;
  timings: { prefillMs: number; decodeMs: number; prefillTokensPerS: number; decodeTokensPerS: number };
}

export interface GenerationTarget {
  tokenizer: Tokenizer;
  /** Token ids that end generation (EOS, and BOS for llama2.c-style models). */
  stopTokenIds: readonly number[];
  createSession(): InferenceSession;
}

const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/** Decoding yields to the event loop (timers, I/O: an abort, a disconnect) when this long has passed since it last
 *  did, instead of after every token (a tiny model decodes a token in ~0.1 ms; a setImmediate round trip costs a
 *  noticeable part of that). The signal is checked after every token either way. */
const YIELD_MS = 2;

export async function* generateStream(
  target: GenerationTarget,
  prompt: string | readonly number[],
  options: GenerateOptions = {},
): AsyncGenerator<TokenEvent, GenerationResult, void> {
  const { signal } = options;
  if (signal?.aborted) throw new AbortError();
  const tok = target.tokenizer;
  const promptIds = typeof prompt === 'string' ? tok.encode(prompt, { addSpecialTokens: options.addSpecialTokens ?? true }) : [...prompt];
  if (promptIds.length === 0) throw new InvalidArgumentError('the prompt is empty and the tokenizer adds no BOS: nothing to condition on');
  const session = target.createSession();
  if (promptIds.length > session.contextLength) {
    throw new ContextLengthError(promptIds.length, session.contextLength, 'the prompt');
  }
  // The last sampled token is never fed back, so n new tokens need prompt + n - 1 positions.
  const room = session.contextLength - promptIds.length + 1;
  const maxTokens = Math.min(options.maxTokens ?? room, room);
  if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new InvalidArgumentError(`maxTokens must be a non-negative integer, got ${options.maxTokens}`);

  // greedy decoding takes the session's argmax (in the backend's memory when it can), when it has one
  const sampler = new Sampler(options, typeof session.argmax === 'function' ? { argmax: (x) => session.argmax(x) } : {});
  const stopIds = new Set([...target.stopTokenIds, ...(options.stopTokens ?? [])]);
  const stops = (options.stop ?? []).filter((s) => s.length > 0);
  const decoder = new StreamDecoder(tok, { skipSpecialTokens: true });
  const history = [...promptIds];
  const generatedIds: number[] = [];
  let text = '';
  let emitted = 0;
  let finishReason: FinishReason = 'length';

  const t0 = performance.now();
  // the logits may be a view of the backend's memory: each is sampled right away, before anything else runs
  let logits = maxTokens > 0 ? session.forward(promptIds, 'last', true) : new Float32Array(0);
  const t1 = performance.now();
  let lastYield = t1;
  const feed = [0];

  for (let i = 0; i < maxTokens; i++) {
    if (i > 0) {
      const now = performance.now();
      if (now - lastYield >= YIELD_MS) {
        await nextTick(); // let timers and I/O (an abort, a disconnect) run between tokens
        lastYield = performance.now();
      }
      if (signal?.aborted) throw new AbortError();
      feed[0] = generatedIds[generatedIds.length - 1]!;
      logits = session.forward(feed, 'last', true);
    }
    const next = sampler.sample(logits, history);
    if (stopIds.has(next)) {
      finishReason = 'stop';
      break;
    }
    generatedIds.push(next);
    history.push(next);
    text += decoder.push(next);
    const hit = findStop(text, stops, emitted);
    if (hit >= 0) {
      text = text.slice(0, hit);
      finishReason = 'stop';
      yield { token: next, text: text.slice(emitted) };
      emitted = text.length;
      break;
    }
    const safe = text.length - pendingStopPrefix(text, stops);
    const delta = safe > emitted ? text.slice(emitted, safe) : '';
    emitted = Math.max(emitted, safe);
    yield { token: next, text: delta };
  }
  if (finishReason === 'length') {
    text += decoder.flush();
    const hit = findStop(text, stops, emitted);
    if (hit >= 0) text = text.slice(0, hit);
  }
  const t2 = performance.now();
  const result: GenerationResult = {
    promptIds,
    generatedIds,
    text,
    finishReason,
    timings: {
      prefillMs: t1 - t0,
      decodeMs: t2 - t1,
      prefillTokensPerS: promptIds.length / Math.max(1e-9, (t1 - t0) / 1000),
      decodeTokensPerS: Math.max(0, generatedIds.length - 1) / Math.max(1e-9, (t2 - t1) / 1000),
    },
  };
  return result;
}

/** Runs generateStream to the end; `onToken` sees every event. */
export async function generate(
  target: GenerationTarget,
  prompt: string | readonly number[],
  options: GenerateOptions & { onToken?: (e: TokenEvent) => void } = {},
): Promise<GenerationResult> {
  const it = generateStream(target, prompt, options);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
    options.onToken?.(r.value);
  }
}

/** Index of the earliest stop string in `text` that ends after `from`, or -1. */
function findStop(text: string, stops: readonly string[], from: number): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s, Math.max(0, from - s.length + 1));
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string (held back). */
function pendingStopPrefix(text: string, stops: readonly string[]): number {
  let keep = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > keep; k--) {
      if (text.endsWith(s.slice(0, k))) {
        keep = k;
        break;
      }
    }
  }
  return keep;
}
