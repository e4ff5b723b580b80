// OpenAI request bodies -> validated generation parameters. Every error names the parameter (HTTP 400).

import type { ChatMessage } from '../runtime/template.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badParam = (param: string, message: string, code: string | null = 'invalid_value'): ApiError =>
  new ApiError(400, message, 'invalid_request_error', param, code);

type Body = Record<string, unknown>;

export function asBody(v: unknown): Body {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, 'the request body must be a JSON object', 'invalid_request_error', null, 'invalid_json');
  return v as Body;
}

function num(b: Body, key: string, o: { min?: number; max?: number; int?: boolean; minExclusive?: boolean } = {}): number | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badParam(key, `${key} must be a number, got ${JSON.stringify(v)?.slice(0, 40)}`, 'invalid_type');
  if (o.int && !Number.isInteger(v)) throw badParam(key, `${key} must be an integer, got ${v}`, 'invalid_type');
  if (o.min !== undefined && (o.minExclusive ? v <= o.min : v < o.min)) throw badParam(key, `${key} must be ${o.minExclusive ? '>' : '>='} ${o.min}, got ${v}`);
  if (o.max !== undefined && v > o.max) throw badParam(key, `${key} must be <= ${o.max}, got ${v}`);
  return v;
}

function bool(b: Body, key: string): boolean | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badParam(key, `${key} must be a boolean, got ${JSON.stringify(v)?.slice(0, 40)}`, 'invalid_type');
  return v;
}

export function optString(b: Body, key: string): string | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badParam(key, `${key} must be a string`, 'invalid_type');
  return v;
}

export interface SamplingParams {
  maxTokens?: number;
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  seed?: number;
  stop: string[];
  presencePenalty: number;
  frequencyPenalty: number;
  stream: boolean;
  includeUsage: boolean;
  returnTokens: boolean;
}

/** The sampling parameters shared by chat and text completions (OpenAI defaults: temperature 1, top_p 1). */
export function samplingParams(b: Body, defaultMaxTokens: number | undefined): SamplingParams {
  const maxKey = b.max_completion_tokens !== undefined && b.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = num(b, maxKey, { int: true, min: 0 }) ?? defaultMaxTokens;
  const n = num(b, 'n', { int: true, min: 1 });
  if (n !== undefined && n !== 1) throw badParam('n', 'only n = 1 is supported');
  if (bool(b, 'logprobs') === true || (b.top_logprobs !== undefined && b.top_logprobs !== null && typeof b.logprobs !== 'boolean')) throw badParam('logprobs', 'logprobs are not supported');
  if (b.logprobs !== undefined && b.logprobs !== null && typeof b.logprobs !== 'boolean') {
    // text completions: logprobs is an integer
    if (b.logprobs !== 0) throw badParam('logprobs', 'logprobs are not supported');
  }
  const stopRaw = b.stop;
  let stop: string[] = [];
  if (typeof stopRaw === 'string') stop = [stopRaw];
  else if (Array.isArray(stopRaw)) {
    if (stopRaw.length > 16 || !stopRaw.every((s) => typeof s === 'string')) throw badParam('stop', 'stop must be a string or a list of at most 16 strings', 'invalid_type');
    stop = stopRaw as string[];
  } else if (stopRaw !== undefined && stopRaw !== null) throw badParam('stop', 'stop must be a string or a list of strings', 'invalid_type');
  const seed = num(b, 'seed', { int: true });
  const streamOptions = b.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && (typeof streamOptions !== 'object' || Array.isArray(streamOptions))) {
    throw badParam('stream_options', 'stream_options must be an object', 'invalid_type');
  }
  const stream = bool(b, 'stream') ?? false;
  const includeUsage = streamOptions ? bool(streamOptions as Body, 'include_usage') ?? false : false;
  return {
    maxTokens,
    temperature: num(b, 'temperature', { min: 0, max: 2 }) ?? 1,
    topP: num(b, 'top_p', { min: 0, max: 1, minExclusive: true }) ?? 1,
    topK: num(b, 'top_k', { int: true, min: 0 }) ?? 0,
    minP: num(b, 'min_p', { min: 0, max: 0.999999 }) ?? 0,
    // The sampler wants a positive integer seed; any integer maps to one, deterministically.
    seed: seed === undefined ? undefined : seed > 0 && seed <= Number.MAX_SAFE_INTEGER ? seed : (Math.abs(seed) % 0x7fffffff) + 1,
    stop,
    presencePenalty: num(b, 'presence_penalty', { min: -2, max: 2 }) ?? 0,
    frequencyPenalty: num(b, 'frequency_penalty', { min: -2, max: 2 }) ?? 0,
    stream,
    includeUsage,
    returnTokens: bool(b, 'return_tokens') ?? false,
  };
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

/** Validates `messages` (OpenAI chat format); content parts of type text are kept as the template expects. */
export function chatMessages(b: Body): ChatMessage[] {
  const m = b.messages;
  if (!Array.isArray(m) || m.length === 0) throw badParam('messages', 'messages must be a non-empty list of {role, content}', m === undefined ? 'missing_required_parameter' : 'invalid_type');
  return m.map((x, i) => {
    const p = `messages[${i}]`;
    if (x === null || typeof x !== 'object' || Array.isArray(x)) throw badParam(p, `${p} must be an object`, 'invalid_type');
    const msg = x as Record<string, unknown>;
    if (typeof msg.role !== 'string' || !ROLES.has(msg.role)) throw badParam(`${p}.role`, `${p}.role must be one of ${[...ROLES].join(', ')}`);
    const c = msg.content;
    if (c !== undefined && c !== null && typeof c !== 'string') {
      if (!Array.isArray(c)) throw badParam(`${p}.content`, `${p}.content must be a string or a list of content parts`, 'invalid_type');
      c.forEach((part, j) => {
        if (part === null || typeof part !== 'object' || typeof (part as Body).type !== 'string') throw badParam(`${p}.content[${j}]`, 'content parts must be objects with a "type"', 'invalid_type');
        if ((part as Body).type === 'text' && typeof (part as Body).text !== 'string') throw badParam(`${p}.content[${j}].text`, 'a text part needs a string "text"', 'invalid_type');
        if ((part as Body).type !== 'text') throw badParam(`${p}.content[${j}].type`, `content part type "${(part as Body).type}" is not supported (text only)`);
      });
    }
    if ((c === undefined || c === null) && msg.role !== 'assistant') throw badParam(`${p}.content`, `${p}.content is required`, 'missing_required_parameter');
    if (msg.tool_calls !== undefined && msg.tool_calls !== null && !Array.isArray(msg.tool_calls)) throw badParam(`${p}.tool_calls`, 'tool_calls must be a list', 'invalid_type');
    const out: ChatMessage = { ...(msg as ChatMessage), role: msg.role === 'developer' ? 'system' : msg.role };
    // tool_call arguments arrive as JSON strings; templates (e.g. Qwen3's) print dicts with tojson, strings verbatim.
    if (Array.isArray(out.tool_calls)) {
      out.tool_calls = out.tool_calls.map((tc) => {
        const f = tc?.function;
        if (f && typeof f.arguments === 'string') {
          try {
            const parsed: unknown = JSON.parse(f.arguments);
            if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return { ...tc, function: { ...f, arguments: parsed as Record<string, unknown> } };
          } catch {
            // keep the string
          }
        }
        return tc;
      });
    }
    if (c === null || c === undefined) out.content = msg.tool_calls ? '' : (c as null);
    return out;
  });
}

export function toolsParam(b: Body): unknown[] | undefined {
  const t = b.tools;
  if (t === undefined || t === null) return undefined;
  if (!Array.isArray(t)) throw badParam('tools', 'tools must be a list of function schemas', 'invalid_type');
  return t;
}

/**
 * Whether the reply is parsed for tool calls: yes when tools are given and tool_choice is absent or "auto";
 * "none" keeps the reply as text. Forcing a call ("required", a named function) needs constrained decoding,
 * which this server does not do: refused rather than ignored.
 */
export function parseToolCallsParam(b: Body): boolean {
  const tools = toolsParam(b);
  const c = b.tool_choice;
  if (c === undefined || c === null || c === 'auto') return tools !== undefined && tools.length > 0;
  if (c === 'none') return false;
  throw badParam('tool_choice', 'only tool_choice "auto" and "none" are supported (forcing a tool call needs constrained decoding)');
}

export function templateKwargs(b: Body): Record<string, unknown> {
  const k = b.chat_template_kwargs;
  if (k === undefined || k === null) return {};
  if (typeof k !== 'object' || Array.isArray(k)) throw badParam('chat_template_kwargs', 'chat_template_kwargs must be an object', 'invalid_type');
  return k as Record<string, unknown>;
}
