// Tool calls in a chat model's reply, turned into OpenAI `tool_calls`. Two formats cover the chat templates
// we ship tests for:
//  - Hermes / Qwen2.5 / Qwen3: each call is `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`,
//    possibly several, possibly after some text (or a <think> block); the text outside the tags is content.
//  - Llama 3.1-3.3: the whole reply is a JSON object {"name": ..., "parameters": {...}} (several separated by
//    `;`), optionally after the `<|python_tag|>` marker.
// A reply that matches neither (or whose JSON does not parse) stays plain content: a model is free to answer
// in text even when tools are offered.

export interface ToolCallOut {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ParsedReply {
  /** Text outside the tool calls (null when there is none). */
  content: string | null;
  toolCalls: ToolCallOut[];
}

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';
const PYTHON_TAG = '<|python_tag|>';

let counter = 0;
function callId(): string {
  counter = (counter + 1) % 1e9;
  return `call_${Date.now().toString(36)}${counter.toString(36).padStart(4, '0')}`;
}

/** {"name", "arguments" | "parameters"} -> a tool call, or null when it is not one. */
function asCall(v: unknown): ToolCallOut | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (typeof o['name'] !== 'string' || o['name'] === '') return null;
  const args = o['arguments'] ?? o['parameters'] ?? {};
  if (typeof args !== 'string' && (typeof args !== 'object' || args === null)) return null;
  return { id: callId(), type: 'function', function: { name: o['name'], arguments: typeof args === 'string' ? args : JSON.stringify(args) } };
}

function parseJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** The tool calls in a finished reply, or null when it has none (then the reply is plain content). */
export function parseToolCalls(text: string): ParsedReply | null {
  if (text.includes(OPEN)) {
    const calls: ToolCallOut[] = [];
    let content = '';
    let at = 0;
    for (;;) {
      const s = text.indexOf(OPEN, at);
      if (s < 0) {
        content += text.slice(at);
        break;
      }
      content += text.slice(at, s);
      const e = text.indexOf(CLOSE, s + OPEN.length);
      // a reply cut at EOS right after the JSON (no closing tag) still counts
      const body = text.slice(s + OPEN.length, e < 0 ? text.length : e);
      const call = asCall(parseJson(body.trim()));
      if (call === null) return null;
      calls.push(call);
      if (e < 0) break;
      at = e + CLOSE.length;
    }
    const c = content.trim();
    return { content: c === '' ? null : c, toolCalls: calls };
  }
  let t = text.trim();
  if (t.startsWith(PYTHON_TAG)) t = t.slice(PYTHON_TAG.length).trim();
  if (!t.startsWith('{')) return null;
  const whole = asCall(parseJson(t));
  if (whole !== null) return { content: null, toolCalls: [whole] };
  const parts = t.split(/\}\s*;\s*\{/);
  if (parts.length < 2) return null;
  const calls: ToolCallOut[] = [];
  for (let i = 0; i < parts.length; i++) {
    const call = asCall(parseJson((i > 0 ? '{' : '') + parts[i] + (i < parts.length - 1 ? '}' : '')));
    if (call === null) return null;
    calls.push(call);
  }
  return { content: null, toolCalls: calls };
}

/**
 * Streaming side: passes text through until it may be a tool call, then holds the rest back so that a
 * tool call is never streamed as content. Held from the first `<tool_call>` (and any text that could be
 * the start of one), or from the start when the reply opens with `{` or `<|python_tag|>`.
 */
export class ToolCallStreamFilter {
  private sent = '';
  private held = '';
  private holding = false;

  /** The part of `text` (the next piece of the reply) that can be streamed as content now. */
  push(text: string): string {
    if (this.holding) {
      this.held += text;
      return '';
    }
    const all = this.held + text;
    if (this.sent === '') {
      // nothing streamed yet: hold leading whitespace and anything that opens like a JSON call
      const s = all.trimStart();
      if (s.startsWith('{') || s.startsWith(PYTHON_TAG)) this.holding = true;
      if (this.holding || s === '' || PYTHON_TAG.startsWith(s)) {
        this.held = all;
        return '';
      }
    }
    const k = all.indexOf(OPEN);
    if (k >= 0) {
      this.holding = true;
      this.held = all.slice(k);
      return this.emit(all.slice(0, k));
    }
    // keep back a suffix that could begin `<tool_call>`
    let keep = 0;
    for (let n = Math.min(OPEN.length - 1, all.length); n > 0; n--) {
      if (OPEN.startsWith(all.slice(all.length - n))) {
        keep = n;
        break;
      }
    }
    this.held = all.slice(all.length - keep);
    return this.emit(all.slice(0, all.length - keep));
  }

  private emit(s: string): string {
    this.sent += s;
    return s;
  }

  /** At the end of the reply: the tool calls (with any held text that was not part of them), or the held text as content. */
  finish(): { toolCalls: ToolCallOut[]; content: string } {
    const parsed = this.held === '' ? null : parseToolCalls(this.held);
    const held = this.held;
    this.held = '';
    if (parsed === null) return { toolCalls: [], content: this.emit(held) };
    return { toolCalls: parsed.toolCalls, content: this.emit(parsed.content === null ? '' : parsed.content) };
  }
}
