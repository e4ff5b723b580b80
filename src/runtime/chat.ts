// Multi-turn chat over one KV cache. Each turn renders the whole conversation with the model's chat template,
// compares its ids with the ids already in the cache, rewinds to the longest common prefix and prefills only what
// is new (normally just the new user turn and the assistant header). Generation stops on the template's
// end-of-turn tokens as well as the model's EOS ids. When a turn would overflow the context the caller chooses:
// fail with a ContextLengthError, or drop the oldest turns (the system message is kept).

import { AbortError, ContextLengthError, InvalidArgumentError } from '../errors.js';
import { generateStream, type GenerateOptions, type GenerationResult, type TokenEvent } from './generate.js';
import type { Model } from './model.js';
import { prefixSession, reusablePrefix, type InferenceSession } from './session.js';
import { ChatTemplate, loadChatTemplate, type ChatMessage, type RenderOptions } from './template.js';

export interface ChatOptions {
  /** The chat template (object or Jinja source). Default: the model's own (an error names the file when it has none). */
  template?: ChatTemplate | string;
  /** A system message to start with. */
  system?: string;
  /** Earlier conversation to continue. */
  messages?: readonly ChatMessage[];
  /** KV-cache length of this chat (default: the model's). */
  contextLength?: number;
  /** On context overflow: throw a ContextLengthError (default), or drop the oldest turns. */
  overflow?: 'error' | 'drop-oldest';
  /** Template inputs used on every turn: tools, documents, extra variables (e.g. { enable_thinking: false }). */
  templateOptions?: Omit<RenderOptions, 'addGenerationPrompt'>;
}

export type ChatTurnOptions = Omit<GenerateOptions, 'addSpecialTokens'>;

export interface ChatTurnResult extends GenerationResult {
  /** The assistant message added to the history. */
  message: ChatMessage;
  /** Prompt tokens already in the KV cache (not prefilled again). */
  cachedTokens: number;
  /** Messages dropped from the front of the history to make room (drop-oldest). */
  droppedMessages: number;
}

export class ChatSession {
  readonly template: ChatTemplate;
  readonly messages: ChatMessage[] = [];
  private session: InferenceSession | null = null;
  /** Ids whose keys/values are in the cache, position by position. */
  private cached: number[] = [];
  private readonly stopIds: number[];
  private busy = false;

  constructor(
    readonly model: Model,
    private readonly options: ChatOptions = {},
  ) {
    const t = options.template;
    this.template = t instanceof ChatTemplate ? t : typeof t === 'string' ? ChatTemplate.fromSource(t, safeTemplate(model)) : loadChatTemplate(model.info.path);
    this.stopIds = [...new Set([...model.stopTokenIds, ...this.template.endOfTurnIds(model.tokenizer)])];
    this.reset(options.system, options.messages);
  }

  /** Token ids that end a reply (model EOS + the template's end-of-turn tokens). */
  get stopTokenIds(): readonly number[] {
    return this.stopIds;
  }

  /** Tokens currently held in the KV cache. */
  get cachedTokens(): number {
    return this.cached.length;
  }

  get contextLength(): number {
    return this.kv().contextLength;
  }

  /** Clears the history (keeping or replacing the system message); the cache is reused where it still matches. */
  reset(system?: string, messages: readonly ChatMessage[] = []): void {
    this.assertIdle();
    const sys = system ?? (this.messages[0]?.role === 'system' ? (this.messages[0].content as string) : undefined);
    this.messages.length = 0;
    if (sys !== undefined && sys !== '') this.messages.push({ role: 'system', content: sys });
    this.messages.push(...messages.map((m) => ({ ...m })));
  }

  /** Sets (or with '' removes) the system message, keeping the rest of the history. */
  setSystem(text: string): void {
    this.assertIdle();
    if (this.messages[0]?.role === 'system') this.messages.shift();
    if (text !== '') this.messages.unshift({ role: 'system', content: text });
  }

  /** The prompt (text and ids) the next turn would prefill, with the generation prompt. */
  renderPrompt(messages: readonly ChatMessage[] = this.messages): { prompt: string; ids: number[] } {
    return this.template.apply(messages, this.model.tokenizer, { ...this.options.templateOptions, addGenerationPrompt: true });
  }

  /**
   * Adds a user message (or any message) and streams the assistant's reply. The reply is added to the history when
   * the stream ends; if it is aborted, the partial reply is kept and AbortError is thrown.
   */
  async *send(input: string | ChatMessage, options: ChatTurnOptions = {}): AsyncGenerator<TokenEvent, ChatTurnResult, void> {
    this.assertIdle();
    if (options.signal?.aborted) throw new AbortError();
    this.busy = true;
    try {
      const msg: ChatMessage = typeof input === 'string' ? { role: 'user', content: input } : { ...input };
      this.messages.push(msg);
      let dropped = 0;
      let ids: number[];
      const kv = this.kv();
      const need = (n: number): number => n + Math.max(1, Math.min(options.maxTokens ?? 1, kv.contextLength));
      for (;;) {
        try {
          ids = this.renderPrompt().ids;
        } catch (e) {
          this.messages.pop();
          throw e;
        }
        if (need(ids.length) - 1 <= kv.contextLength) break;
        if (this.options.overflow === 'drop-oldest' && this.dropOldest()) {
          dropped++;
          continue;
        }
        this.messages.splice(this.messages.indexOf(msg), 1);
        throw new ContextLengthError(need(ids.length) - 1, kv.contextLength, 'the conversation');
      }

      kv.rewind(Math.min(reusablePrefix(this.cached, ids), kv.pos));
      this.cached.length = kv.pos;
      const cachedTokens = kv.pos;

      const generated: number[] = [];
      let text = '';
      const it = generateStream({ tokenizer: this.model.tokenizer, stopTokenIds: this.stopIds, createSession: () => prefixSession(kv, cachedTokens) }, ids, options);
      let result: GenerationResult;
      try {
        for (;;) {
          const r = await it.next();
          if (r.done) {
            result = r.value;
            break;
          }
          generated.push(r.value.token);
          text += r.value.text;
          yield r.value;
        }
      } catch (e) {
        this.cached = [...ids, ...generated].slice(0, kv.pos);
        if (e instanceof AbortError) this.messages.push({ role: 'assistant', content: text });
        throw e;
      }
      this.cached = [...ids, ...generated].slice(0, kv.pos);
      const message: ChatMessage = { role: 'assistant', content: result.text };
      this.messages.push(message);
      return { ...result, message, cachedTokens, droppedMessages: dropped };
    } finally {
      this.busy = false;
    }
  }

  /** `send` folded: the whole reply at once (`onToken` sees each token). */
  async ask(input: string | ChatMessage, options: ChatTurnOptions & { onToken?: (e: TokenEvent) => void } = {}): Promise<ChatTurnResult> {
    const it = this.send(input, options);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
      options.onToken?.(r.value);
    }
  }

  /** Frees the KV cache (a later turn allocates a new one). */
  dispose(): void {
    this.session = null;
    this.cached = [];
  }

  private kv(): InferenceSession {
    this.session ??= this.model.createSession(this.options.contextLength);
    return this.session;
  }

  /** Drops the oldest non-system turn (a user message and what follows it up to the next user message). */
  private dropOldest(): boolean {
    const start = this.messages[0]?.role === 'system' ? 1 : 0;
    const lastUser = this.messages.map((m) => m.role).lastIndexOf('user');
    if (lastUser <= start) return false;
    let end = start + 1;
    while (end < lastUser && this.messages[end]!.role !== 'user') end++;
    this.messages.splice(start, end - start);
    return true;
  }

  private assertIdle(): void {
    if (this.busy) throw new InvalidArgumentError('this chat is already generating a reply; wait for it (or abort it) first');
  }
}

/** The model's own template, or null when it has none (for borrowing its special tokens). */
function safeTemplate(model: Model): ChatTemplate | undefined {
  try {
    return loadChatTemplate(model.info.path);
  } catch {
    return undefined;
  }
}
