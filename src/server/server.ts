// An OpenAI-compatible HTTP server on node:http.
//
//   GET  /health                 503 {"status":"loading"} until the model is ready, then 200 with slot counts
//   GET  /v1/models[/ID]         the chat model (and the embedding model)
//   POST /v1/chat/completions    chat with the model's template; stream (SSE) or not
//   POST /v1/completions         raw text (or token-id) prompt, encoded like `ristretto generate`
//   POST /v1/embeddings          when an embedding provider is configured
//   POST /tokenize, /detokenize, /apply-template
//
// `parallel` requests decode at once, each on its slot's own KV cache; `queue` more wait; beyond that 429. A client
// that disconnects aborts its generation at the next token and frees its slot. Errors use OpenAI's shape
// {"error": {"message", "type", "param", "code"}}. Unknown request fields are ignored (as OpenAI-compatible servers
// do); known fields with unsupported values (n > 1, logprobs) are rejected naming the parameter.

import * as http from 'node:http';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { AbortError, ContextLengthError, RistrettoError } from '../errors.js';
import { generateStream, type GenerateOptions, type GenerationResult } from '../runtime/generate.js';
import type { Model } from '../runtime/model.js';
import { prefixSession, reusablePrefix, type InferenceSession } from '../runtime/session.js';
import { ChatTemplate, loadChatTemplate, TemplateError, type ChatMessage } from '../runtime/template.js';
import { ApiError, asBody, badParam, chatMessages, optString, parseToolCallsParam, samplingParams, templateKwargs, toolsParam, type SamplingParams } from './params.js';
import { parseToolCalls, ToolCallStreamFilter } from '../runtime/tool-calls.js';
import { QueueFullError, SlotPool } from './slots.js';

/** What /v1/embeddings needs: a name and a batch embed. */
export interface EmbeddingProvider {
  readonly name: string;
  embed(texts: string[], options?: { signal?: AbortSignal }): Promise<ArrayLike<number>[] | { embeddings: ArrayLike<number>[]; promptTokens: number }>;
}

/** What a generation replies to: a chat (whose reply may carry tool calls) or a text completion. */
interface ReplyKind {
  kind: 'chat' | 'text';
  model: string;
  /** Parse the reply for tool calls (chat with tools offered). */
  tools?: boolean;
}

export interface ServerOptions {
  /** The id clients use in `model` and see in /v1/models (default: the model file or folder name). */
  modelName?: string;
  /** The chat template (default: the model's own; chat requests fail with a clear error when it has none). */
  template?: ChatTemplate | string;
  /** Where to look for the template when not beside the model (e.g. the --tokenizer folder). */
  templatePath?: string;
  embeddings?: EmbeddingProvider | Promise<EmbeddingProvider>;
  /** Requests decoding at once (default 1). */
  parallel?: number;
  /** Requests waiting for a slot before 429 (default 64). */
  queue?: number;
  /** Require `Authorization: Bearer KEY` (compared in constant time). /health stays open. */
  apiKey?: string;
  /** KV-cache length per slot (default: the model's). */
  contextLength?: number;
  /** Keep each slot's KV cache between requests and prefill only what a new prompt does not share with it
   *  (default true; requests go to the free slot sharing the longest prefix). */
  promptCache?: boolean;
  /** Largest request body (default 2 MiB); larger gets 413. */
  maxBodyBytes?: number;
  /** Default max_tokens for /v1/completions (OpenAI: 16). Chat defaults to the rest of the context. */
  defaultCompletionTokens?: number;
  /** Log one line per request to this function. */
  log?: (line: string) => void;
}

export interface ServerStats {
  ready: boolean;
  slots: number;
  slotsBusy: number;
  queued: number;
  requests: number;
  inFlight: number;
}

export interface RistrettoServer {
  readonly http: http.Server;
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** Stops accepting, lets in-flight requests finish for `graceMs` (default 10 s), aborts the rest, closes. */
  close(options?: { graceMs?: number }): Promise<void>;
  stats(): ServerStats;
  /** Resolves once the model (and embedding provider) are loaded. */
  readonly ready: Promise<void>;
}

interface Loaded {
  model: Model;
  template: ChatTemplate | null;
  templateError: string | null;
  pool: SlotPool<SlotState>;
  stopIds: number[];
  modelName: string;
  contextLength: number;
}

/** A decode slot: its KV cache and the ids whose K/V it holds (valid from position 0). */
interface SlotState {
  session: InferenceSession;
  cached: number[];
}

/** OpenAI usage; prompt_tokens_details.cached_tokens counts prompt tokens whose KV came from the slot's cache. */
function usageOf(prompt: number, completion: number, cached: number): object {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } };
}

const created = (): number => Math.floor(Date.now() / 1000);
const rid = (prefix: string): string => `${prefix}-${crypto.randomBytes(12).toString('hex')}`;

export function createServer(modelOrPromise: Model | Promise<Model>, options: ServerOptions = {}): RistrettoServer {
  const parallel = options.parallel ?? 1;
  const queue = options.queue ?? 64;
  const maxBody = options.maxBodyBytes ?? 2 * 1024 * 1024;
  if (!Number.isInteger(parallel) || parallel < 1) throw new RistrettoError('INVALID_ARGUMENT', `parallel must be a positive integer, got ${parallel}`);
  if (!Number.isInteger(queue) || queue < 0) throw new RistrettoError('INVALID_ARGUMENT', `queue must be a non-negative integer, got ${queue}`);
  const promptCache = options.promptCache ?? true;
  const keyDigest = options.apiKey === undefined ? null : crypto.createHash('sha256').update(options.apiKey).digest();

  let loaded: Loaded | null = null;
  let embeddings: EmbeddingProvider | null = null;
  let loadError: unknown = null;
  let closing = false;
  let requests = 0;
  const inFlight = new Set<AbortController>();

  const ready = (async () => {
    const model = await modelOrPromise;
    let template: ChatTemplate | null = null;
    let templateError: string | null = null;
    try {
      const t = options.template;
      template = t instanceof ChatTemplate ? t : typeof t === 'string' ? ChatTemplate.fromSource(t, tryLoad(options.templatePath ?? model.info.path)) : loadChatTemplate(options.templatePath ?? model.info.path);
    } catch (e) {
      templateError = e instanceof Error ? e.message : String(e);
    }
    const stopIds = [...new Set([...model.stopTokenIds, ...(template?.endOfTurnIds(model.tokenizer) ?? [])])];
    const first = model.createSession(options.contextLength);
    const pool = new SlotPool<SlotState>(parallel, queue, (id) => ({ session: id === 0 ? first : model.createSession(options.contextLength), cached: [] }));
    const modelName = options.modelName ?? path.basename(model.info.path.replace(/[\\/]+$/, ''));
    if (options.embeddings !== undefined) embeddings = await options.embeddings;
    loaded = { model, template, templateError, pool, stopIds, modelName, contextLength: first.contextLength };
  })();
  ready.catch((e) => {
    loadError = e;
  });

  const log = options.log;

  const server = http.createServer((req, res) => {
    requests++;
    const t0 = performance.now();
    handle(req, res)
      .catch((e) => sendError(res, toApiError(e)))
      .finally(() => log?.(`${req.method} ${req.url} ${res.statusCode} ${(performance.now() - t0).toFixed(1)}ms`));
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname.replace(/\/+$/, '') || '/';
    if (route === '/health' || route === '/v1/health') {
      await drain(req, maxBody);
      if (loadError !== null) return sendJson(res, 500, { status: 'error', error: String((loadError as Error).message ?? loadError) });
      if (loaded === null) return sendJson(res, 503, { status: 'loading', error: { message: 'the model is loading', type: 'unavailable_error', param: null, code: 'loading' } });
      const p = loaded.pool;
      return sendJson(res, 200, { status: closing ? 'shutting_down' : 'ok', slots_idle: p.idle, slots_processing: p.busy, queued: p.queued });
    }
    if (keyDigest !== null && !authorized(req, keyDigest)) {
      await drain(req, maxBody);
      throw new ApiError(401, 'invalid or missing API key (send "Authorization: Bearer KEY")', 'authentication_error', null, 'invalid_api_key');
    }
    const key = `${req.method} ${route}`;
    const handler = ROUTES[key];
    if (handler === undefined) {
      await drain(req, maxBody);
      const known = Object.keys(ROUTES).some((k) => k.endsWith(` ${route}`)) || route.startsWith('/v1/models/');
      if (known && !(req.method === 'GET' && route.startsWith('/v1/models/'))) throw new ApiError(405, `${req.method} is not allowed on ${route}`, 'invalid_request_error', null, 'method_not_allowed');
      if (req.method === 'GET' && route.startsWith('/v1/models/')) return getModel(res, decodeURIComponent(route.slice('/v1/models/'.length)));
      throw new ApiError(404, `unknown route: ${req.method} ${route}`, 'invalid_request_error', null, 'not_found');
    }
    if (closing) {
      await drain(req, maxBody);
      throw new ApiError(503, 'the server is shutting down', 'unavailable_error', null, 'shutting_down');
    }
    const body = req.method === 'POST' ? await readJson(req, maxBody) : undefined;
    if (loaded === null) {
      if (loadError !== null) throw new ApiError(500, `the model failed to load: ${(loadError as Error).message}`, 'server_error');
      throw new ApiError(503, 'the model is loading; retry shortly', 'unavailable_error', null, 'loading');
    }
    await handler(req, res, body, loaded);
  }

  type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: unknown, l: Loaded) => Promise<void>;

  const ROUTES: Record<string, Handler> = {
    'GET /v1/models': async (_req, res, _b, l) => sendJson(res, 200, { object: 'list', data: modelList(l) }),
    'GET /models': async (_req, res, _b, l) => sendJson(res, 200, { object: 'list', data: modelList(l) }),
    'POST /v1/chat/completions': (req, res, body, l) => chatCompletions(req, res, asBody(body), l),
    'POST /chat/completions': (req, res, body, l) => chatCompletions(req, res, asBody(body), l),
    'POST /v1/completions': (req, res, body, l) => completions(req, res, asBody(body), l),
    'POST /completions': (req, res, body, l) => completions(req, res, asBody(body), l),
    'POST /v1/embeddings': (req, res, body, l) => embeddingsRoute(req, res, asBody(body), l),
    'POST /embeddings': (req, res, body, l) => embeddingsRoute(req, res, asBody(body), l),
    'POST /tokenize': async (_req, res, body, l) => {
      const b = asBody(body);
      const content = b.content;
      if (typeof content !== 'string') throw badParam('content', 'content must be a string', 'invalid_type');
      const addSpecial = b.add_special === undefined ? false : b.add_special === true;
      const parseSpecial = b.parse_special === true;
      const tokens = l.model.tokenizer.encode(content, { addSpecialTokens: addSpecial, parseSpecial });
      const withPieces = b.with_pieces === true;
      sendJson(res, 200, { tokens: withPieces ? tokens.map((id) => ({ id, piece: l.model.tokenizer.idToToken(id) ?? '' })) : tokens });
    },
    'POST /detokenize': async (_req, res, body, l) => {
      const b = asBody(body);
      const tokens = b.tokens;
      const V = l.model.tokenizer.vocabSize;
      if (!Array.isArray(tokens) || !tokens.every((t) => Number.isInteger(t) && t >= 0 && t < V)) throw badParam('tokens', `tokens must be a list of token ids in [0, ${V})`, 'invalid_type');
      sendJson(res, 200, { content: l.model.tokenizer.decode(tokens as number[], { skipSpecialTokens: b.skip_special_tokens !== false }) });
    },
    'POST /apply-template': async (_req, res, body, l) => {
      const b = asBody(body);
      const messages = chatMessages(b);
      const template = requireTemplate(l);
      const applied = applyTemplate(template, l, messages, b, b.add_generation_prompt === undefined ? true : b.add_generation_prompt === true);
      sendJson(res, 200, { prompt: applied.prompt, ids: applied.ids });
    },
  };

  function modelList(l: Loaded): unknown[] {
    const out: unknown[] = [{ id: l.modelName, object: 'model', created: 0, owned_by: 'ristretto', context_length: contextOf(l) }];
    if (embeddings !== null) out.push({ id: embeddings.name, object: 'model', created: 0, owned_by: 'ristretto' });
    return out;
  }

  function getModel(res: http.ServerResponse, id: string): void {
    if (loaded === null) throw new ApiError(503, 'the model is loading; retry shortly', 'unavailable_error', null, 'loading');
    const m = modelList(loaded).find((x) => (x as { id: string }).id === id);
    if (m === undefined) throw new ApiError(404, `the model "${id}" does not exist`, 'invalid_request_error', 'model', 'model_not_found');
    sendJson(res, 200, m);
  }

  function contextOf(l: Loaded): number {
    return l.contextLength;
  }

  function checkModel(b: Record<string, unknown>, l: Loaded, names: string[]): string {
    const m = optString(b, 'model');
    if (m === undefined || m === '') return names[0]!;
    if (!names.includes(m)) throw new ApiError(404, `the model "${m}" does not exist (this server has ${names.map((n) => `"${n}"`).join(', ')})`, 'invalid_request_error', 'model', 'model_not_found');
    return m;
  }

  function requireTemplate(l: Loaded): ChatTemplate {
    if (l.template === null) throw new ApiError(400, `chat is unavailable: ${l.templateError}`, 'invalid_request_error', null, 'no_chat_template');
    return l.template;
  }

  function applyTemplate(template: ChatTemplate, l: Loaded, messages: ChatMessage[], b: Record<string, unknown>, addGenerationPrompt: boolean): { prompt: string; ids: number[] } {
    try {
      return template.apply(messages, l.model.tokenizer, { addGenerationPrompt, tools: toolsParam(b), variables: templateKwargs(b) });
    } catch (e) {
      if (e instanceof TemplateError) throw new ApiError(400, `the chat template rejected the messages: ${e.message}`, 'invalid_request_error', 'messages', 'template_error');
      throw e;
    }
  }

  async function chatCompletions(req: http.IncomingMessage, res: http.ServerResponse, b: Record<string, unknown>, l: Loaded): Promise<void> {
    const model = checkModel(b, l, [l.modelName]);
    const template = requireTemplate(l);
    const messages = chatMessages(b);
    const sp = samplingParams(b, undefined);
    const tools = parseToolCallsParam(b);
    const { ids } = applyTemplate(template, l, messages, b, true);
    await runGeneration(req, res, l, ids, sp, { kind: 'chat', model, tools });
  }

  async function completions(req: http.IncomingMessage, res: http.ServerResponse, b: Record<string, unknown>, l: Loaded): Promise<void> {
    const model = checkModel(b, l, [l.modelName]);
    let prompt = b.prompt;
    if (Array.isArray(prompt) && prompt.length === 1 && (typeof prompt[0] === 'string' || Array.isArray(prompt[0]))) prompt = prompt[0];
    let ids: number[];
    const V = l.model.tokenizer.vocabSize;
    if (typeof prompt === 'string') {
      ids = l.model.tokenizer.encode(prompt, { addSpecialTokens: true });
    } else if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((t) => Number.isInteger(t) && t >= 0 && t < V)) {
      ids = prompt as number[];
    } else {
      throw badParam('prompt', prompt === undefined ? 'prompt is required' : 'prompt must be a string, a list with one string, or a list of token ids', prompt === undefined ? 'missing_required_parameter' : 'invalid_type');
    }
    if (b.echo === true) throw badParam('echo', 'echo is not supported');
    if (b.suffix !== undefined && b.suffix !== null) throw badParam('suffix', 'suffix is not supported');
    const bestOf = b.best_of;
    if (bestOf !== undefined && bestOf !== null && bestOf !== 1) throw badParam('best_of', 'only best_of = 1 is supported');
    if (ids.length === 0) throw badParam('prompt', 'the prompt is empty and the tokenizer adds no BOS');
    const sp = samplingParams(b, options.defaultCompletionTokens ?? 16);
    await runGeneration(req, res, l, ids, { ...sp, returnTokens: true }, { kind: 'text', model });
  }

  async function runGeneration(req: http.IncomingMessage, res: http.ServerResponse, l: Loaded, ids: number[], sp: SamplingParams, o: ReplyKind): Promise<void> {
    const ctx = contextOf(l);
    // n new tokens need prompt + n - 1 positions.
    if (ids.length > ctx || (sp.maxTokens !== undefined && ids.length + Math.max(sp.maxTokens, 1) - 1 > ctx)) {
      const asked = ids.length + (sp.maxTokens ?? 0);
      throw new ApiError(400, `This model's maximum context length is ${ctx} tokens. However, you requested ${asked} tokens (${ids.length} in the ${o.kind === 'chat' ? 'messages' : 'prompt'}, ${sp.maxTokens ?? 0} in the completion). Please reduce the length of the ${o.kind === 'chat' ? 'messages' : 'prompt'} or completion.`, 'invalid_request_error', o.kind === 'chat' ? 'messages' : 'prompt', 'context_length_exceeded');
    }
    const ac = new AbortController();
    const onGone = (): void => {
      if (!res.writableFinished) ac.abort();
    };
    res.on('close', onGone);
    inFlight.add(ac);
    let slot;
    try {
      try {
        // the free slot whose cache shares the longest prefix with this prompt
        slot = await l.pool.acquire(ac.signal, promptCache ? (s) => (s === undefined ? 0 : reusablePrefix(s.cached, ids)) : undefined);
      } catch (e) {
        if (e instanceof QueueFullError) throw new ApiError(429, e.message, 'rate_limit_error', null, 'queue_full');
        throw e;
      }
      const state = slot.resource;
      const reused = promptCache ? Math.min(reusablePrefix(state.cached, ids), state.session.pos) : 0;
      state.session.rewind(reused);
      state.cached = []; // until this request ends well, the cache holds nothing reusable
      const session = prefixSession(state.session, reused);
      const gen: GenerateOptions = {
        maxTokens: sp.maxTokens,
        temperature: sp.temperature,
        topP: sp.topP,
        topK: sp.topK,
        minP: sp.minP,
        seed: sp.seed,
        presencePenalty: sp.presencePenalty,
        frequencyPenalty: sp.frequencyPenalty,
        penaltyWindow: sp.presencePenalty !== 0 || sp.frequencyPenalty !== 0 ? Number.MAX_SAFE_INTEGER : undefined,
        stop: sp.stop,
        signal: ac.signal,
      };
      const it = generateStream({ tokenizer: l.model.tokenizer, stopTokenIds: l.stopIds, createSession: () => session }, ids, gen);
      const id = rid(o.kind === 'chat' ? 'chatcmpl' : 'cmpl');
      const ts = created();
      let result: GenerationResult | undefined;
      if (sp.stream) result = await streamReply(res, it, id, ts, o, sp, ids.length, reused);
      else {
        for (;;) {
          const r = await it.next();
          if (r.done) {
            result = r.value;
            break;
          }
        }
        const usage = usageOf(ids.length, result.generatedIds.length, reused);
        const extra = sp.returnTokens ? { token_ids: result.generatedIds } : {};
        const calls = o.tools === true ? parseToolCalls(result.text) : null;
        const choice = o.kind === 'chat'
          ? calls !== null
            ? { index: 0, message: { role: 'assistant', content: calls.content, refusal: null, tool_calls: calls.toolCalls }, logprobs: null, finish_reason: 'tool_calls', ...extra }
            : { index: 0, message: { role: 'assistant', content: result.text, refusal: null }, logprobs: null, finish_reason: result.finishReason, ...extra }
          : { index: 0, text: result.text, logprobs: null, finish_reason: result.finishReason, ...extra };
        sendJson(res, 200, { id, object: o.kind === 'chat' ? 'chat.completion' : 'text_completion', created: ts, model: o.model, system_fingerprint: 'ristretto', choices: [choice], usage });
      }
      // the cache now holds the prompt and the generated tokens fed back (all but a last one sampled)
      if (result !== undefined && promptCache) state.cached = [...ids, ...result.generatedIds].slice(0, state.session.pos);
    } finally {
      slot?.release();
      inFlight.delete(ac);
      res.off('close', onGone);
    }
  }

  async function streamReply(
    res: http.ServerResponse,
    it: AsyncGenerator<{ token: number; text: string }, GenerationResult, void>,
    id: string,
    ts: number,
    o: ReplyKind,
    sp: SamplingParams,
    promptTokens: number,
    cachedTokens: number,
  ): Promise<GenerationResult | undefined> {
    const chat = o.kind === 'chat';
    const object = chat ? 'chat.completion.chunk' : 'text_completion';
    const base = { id, object, created: ts, model: o.model, system_fingerprint: 'ristretto' };
    const usageNull = sp.includeUsage ? { usage: null } : {};
    const chunk = (text: string | null, finish: string | null, tokens?: number[]): unknown => {
      const ids = tokens !== undefined && sp.returnTokens ? { token_ids: tokens } : {};
      const choice = chat
        ? { index: 0, delta: text === null ? {} : { content: text }, logprobs: null, finish_reason: finish, ...ids }
        : { index: 0, text: text ?? '', logprobs: null, finish_reason: finish, ...ids };
      return { ...base, choices: [choice], ...usageNull };
    };
    const r0 = await it.next(); // the prefill happens before the first byte, so its errors still get a status code
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    const write = (v: unknown): void => {
      if (!res.destroyed) res.write(`data: ${JSON.stringify(v)}\n\n`);
    };
    if (chat) write({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], ...usageNull });
    let r = r0;
    let sent = '';
    // with tools, text that may be a tool call is held back and sent as tool_calls at the end
    const filter = o.tools === true ? new ToolCallStreamFilter() : null;
    try {
      while (!r.done) {
        const text = filter !== null ? filter.push(r.value.text) : r.value.text;
        if (text !== '' || sp.returnTokens) write(chunk(text, null, [r.value.token]));
        sent += r.value.text;
        r = await it.next();
      }
    } catch (e) {
      if (e instanceof AbortError) {
        res.destroy();
        return undefined;
      }
      write(toApiError(e).toJSON());
      res.end('data: [DONE]\n\n');
      return undefined;
    }
    const result = r.value;
    // Text the stream held back to the end (a pending stop-string prefix, an incomplete UTF-8 sequence).
    const tail = result.text.length > sent.length && result.text.startsWith(sent) ? result.text.slice(sent.length) : '';
    let finish: string = result.finishReason;
    if (filter !== null) {
      const rest = filter.push(tail);
      const end = filter.finish();
      if (rest + end.content !== '') write(chunk(rest + end.content, null));
      if (end.toolCalls.length > 0) {
        const tool_calls = end.toolCalls.map((c, index) => ({ index, ...c }));
        write({ ...base, choices: [{ index: 0, delta: { tool_calls }, logprobs: null, finish_reason: null }], ...usageNull });
        finish = 'tool_calls';
      }
    } else if (tail !== '') write(chunk(tail, null));
    const usage = usageOf(promptTokens, result.generatedIds.length, cachedTokens);
    // Usage rides on the finishing chunk too (null there when stream_options.include_usage asks for its own chunk).
    write({ ...(chunk(null, finish) as object), usage: sp.includeUsage ? null : usage });
    if (sp.includeUsage) write({ ...base, choices: [], usage });
    res.end('data: [DONE]\n\n');
    return result;
  }

  async function embeddingsRoute(req: http.IncomingMessage, res: http.ServerResponse, b: Record<string, unknown>, l: Loaded): Promise<void> {
    if (embeddings === null) throw new ApiError(404, 'no embedding model is loaded (start the server with --embedding-model PATH)', 'invalid_request_error', 'model', 'model_not_found');
    const model = checkModel(b, l, [embeddings.name]);
    let input = b.input;
    if (typeof input === 'string') input = [input];
    if (Array.isArray(input) && input.length > 0 && input.every((x) => Number.isInteger(x))) input = [l.model.tokenizer.decode(input as number[])];
    if (!Array.isArray(input) || input.length === 0 || input.length > 2048) throw badParam('input', 'input must be a string or a list of 1 to 2048 strings', input === undefined ? 'missing_required_parameter' : 'invalid_type');
    const texts = (input as unknown[]).map((x, i) => {
      if (typeof x === 'string') return x;
      if (Array.isArray(x) && x.every((t) => Number.isInteger(t))) return l.model.tokenizer.decode(x as number[]);
      throw badParam(`input[${i}]`, 'each input must be a string (or a list of token ids)', 'invalid_type');
    });
    const format = b.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') throw badParam('encoding_format', 'encoding_format must be "float" or "base64"');
    if (b.dimensions !== undefined && b.dimensions !== null) throw badParam('dimensions', 'dimensions is not supported');
    const ac = new AbortController();
    const onGone = (): void => {
      if (!res.writableFinished) ac.abort();
    };
    res.on('close', onGone);
    inFlight.add(ac);
    try {
      const out = await embeddings.embed(texts, { signal: ac.signal });
      const vecs = Array.isArray(out) ? out : out.embeddings;
      const promptTokens = Array.isArray(out) ? 0 : out.promptTokens;
      const data = vecs.map((v, index) => ({
        object: 'embedding',
        index,
        embedding: format === 'base64' ? Buffer.from(Float32Array.from(v).buffer).toString('base64') : Array.from(v, (x) => Math.fround(x)),
      }));
      sendJson(res, 200, { object: 'list', data, model, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } });
    } finally {
      inFlight.delete(ac);
      res.off('close', onGone);
    }
    void req;
  }

  return {
    http: server,
    ready: ready.then(() => undefined),
    listen(port = 8080, host = '127.0.0.1'): Promise<AddressInfo> {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    async close({ graceMs = 10_000 } = {}): Promise<void> {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      loaded?.pool.rejectQueued(new ApiError(503, 'the server is shutting down', 'unavailable_error', null, 'shutting_down'));
      const deadline = Date.now() + graceMs;
      while (inFlight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const ac of inFlight) ac.abort();
      const hard = setTimeout(() => server.closeAllConnections(), 1000);
      server.closeIdleConnections();
      await closed;
      clearTimeout(hard);
    },
    stats(): ServerStats {
      return { ready: loaded !== null, slots: parallel, slotsBusy: loaded?.pool.busy ?? 0, queued: loaded?.pool.queued ?? 0, requests, inFlight: inFlight.size };
    },
  };
}

function tryLoad(p: string): ChatTemplate | undefined {
  try {
    return loadChatTemplate(p);
  } catch {
    return undefined;
  }
}

/** Constant-time check of `Authorization: Bearer KEY` (both sides hashed, so lengths leak nothing). */
function authorized(req: http.IncomingMessage, keyDigest: Buffer): boolean {
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(.+)$/i.exec(h);
  const given = crypto.createHash('sha256').update(m ? m[1]!.trim() : `\0${h}`).digest();
  return crypto.timingSafeEqual(given, keyDigest) && m !== null;
}

function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof ContextLengthError) return new ApiError(400, e.message, 'invalid_request_error', 'messages', 'context_length_exceeded');
  if (e instanceof AbortError) return new ApiError(499, 'the request was cancelled', 'invalid_request_error', null, 'cancelled');
  if (e instanceof RistrettoError && e.code === 'INVALID_ARGUMENT') return new ApiError(400, e.message, 'invalid_request_error', null, 'invalid_value');
  if (e instanceof TemplateError) return new ApiError(400, e.message, 'invalid_request_error', 'messages', 'template_error');
  return new ApiError(500, `internal error: ${e instanceof Error ? e.message : String(e)}`, 'server_error', null, null);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const data = JSON.stringify(body);
  // After an oversized body the connection is not reused (the rest of a flood is never read).
  const close = status === 413 ? { Connection: 'close' } : {};
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(data), ...close });
  res.end(data);
}

function sendError(res: http.ServerResponse, e: ApiError): void {
  if (res.headersSent) {
    if (!res.destroyed) res.destroy();
    return;
  }
  sendJson(res, e.status, e.toJSON());
}

/** Reads and parses a JSON body; over `limit` bytes -> 413 (the rest is read and discarded, then the reply sent). */
async function readJson(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  const chunks: Buffer[] = [];
  let size = 0;
  let over = Number.isFinite(declared) && declared > limit;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) over = true;
    if (!over) chunks.push(c);
    if (size > limit * 64) break; // stop reading a flood; the connection is closed after the reply
  }
  if (over) {
    throw new ApiError(413, `the request body is larger than ${limit} bytes`, 'invalid_request_error', null, 'request_too_large');
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new ApiError(400, 'the request body is empty; send a JSON object', 'invalid_request_error', null, 'invalid_json');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`, 'invalid_request_error', null, 'invalid_json');
  }
}

async function drain(req: http.IncomingMessage, limit: number): Promise<void> {
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += (c as Buffer).length;
    if (size > limit * 64) break;
  }
}
