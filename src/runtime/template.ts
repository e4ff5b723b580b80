// Chat templates: find a model's Jinja `chat_template` (tokenizer_config.json, chat_template.jinja/.json, or GGUF
// `tokenizer.chat_template`), render it the way HF transformers' apply_chat_template does, and tokenize the result.
//
// Tokenization differs from HF on purpose in one way: HF encodes the rendered string with special tokens parsed
// anywhere, so a user who writes "<|im_end|>\n<|im_start|>system\n..." in a message forges turns. Here special
// tokens are parsed only where the template itself wrote them; the same text coming from message content (or tools,
// documents, extra variables) stays plain text. When no input string holds a special token's text — every ordinary
// conversation — the ids are exactly HF's.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RistrettoError } from '../errors.js';
import { openGGUF, type GGUFValue } from '../formats/gguf.js';
import { readJsonFile } from '../formats/hf-config.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { JinjaTemplate, TemplateError } from './template-jinja.js';

export { TemplateError } from './template-jinja.js';

/** One part of a multimodal message content list (only text is used here). */
export interface ContentPart {
  type: string;
  text?: string;
  [key: string]: unknown;
}

export interface ToolCall {
  id?: string;
  type?: string;
  function: { name: string; arguments: string | Record<string, unknown> };
  [key: string]: unknown;
}

export interface ChatMessage {
  role: string;
  content?: string | ContentPart[] | null;
  tool_calls?: ToolCall[];
  reasoning_content?: string;
  name?: string;
  tool_call_id?: string;
  [key: string]: unknown;
}

export interface RenderOptions {
  /** Append the assistant turn's header. Default false (as HF). */
  addGenerationPrompt?: boolean;
  /** OpenAI-style tool (function) schemas; passed as `tools` (None when absent). */
  tools?: readonly unknown[] | null;
  /** RAG documents; passed as `documents` (None when absent). */
  documents?: readonly unknown[] | null;
  /** Other template variables, e.g. { enable_thinking: false }. They override the config's special tokens. */
  variables?: Record<string, unknown>;
  /** Which named template to use when the config has several (default: HF's choice). */
  templateName?: string;
  /** Clock for strftime_now (default: now). */
  now?: () => Date;
}

export interface AppliedTemplate {
  prompt: string;
  ids: number[];
}

export interface ChatTemplateInit {
  /** The template source, or named templates ({ default: ..., tool_use: ... }). */
  template: string | Record<string, string>;
  /** Special-token variables (bos_token, eos_token, ...), as transformers passes them. */
  specialTokens?: Record<string, unknown>;
  /** Texts of the tokenizer's special tokens (for keeping them plain inside message content). */
  specialTexts?: readonly string[];
  /** Where the template came from (named in errors). */
  origin?: string;
}

const MARK_OPEN = '\u{10FFFD}';
const MARK_CLOSE = '\u{10FFFC}';

export class ChatTemplate {
  readonly templates: Readonly<Record<string, string>>;
  readonly specialTokens: Readonly<Record<string, unknown>>;
  readonly specialTexts: readonly string[];
  readonly origin: string;
  private readonly compiled = new Map<string, JinjaTemplate>();

  constructor(init: ChatTemplateInit) {
    this.templates = typeof init.template === 'string' ? { default: init.template } : { ...init.template };
    if (Object.keys(this.templates).length === 0) throw new TemplateError(`${init.origin ?? 'chat template'}: no template given`);
    this.specialTokens = { ...(init.specialTokens ?? {}) };
    this.origin = init.origin ?? '(given template)';
    const texts = new Set<string>(init.specialTexts ?? []);
    for (const v of Object.values(this.specialTokens)) {
      if (typeof v === 'string' && v.length > 0) texts.add(v);
      if (Array.isArray(v)) for (const x of v) if (typeof x === 'string' && x.length > 0) texts.add(x);
    }
    this.specialTexts = [...texts];
  }

  /** A template given as text (e.g. `--chat-template FILE`), with the special tokens of `base` when known. */
  static fromSource(source: string, base?: ChatTemplate | { specialTokens?: Record<string, unknown>; specialTexts?: readonly string[] }, origin = '(given template)'): ChatTemplate {
    return new ChatTemplate({ template: source, specialTokens: base?.specialTokens as Record<string, unknown> | undefined, specialTexts: base?.specialTexts, origin });
  }

  /** The template source HF would pick: the named one, else `tool_use` when tools are given, else `default`. */
  source(opts: { templateName?: string; tools?: readonly unknown[] | null } = {}): string {
    const t = this.templates;
    if (opts.templateName !== undefined) {
      const s = t[opts.templateName];
      if (s === undefined) throw new TemplateError(`${this.origin}: no chat template named "${opts.templateName}" (have: ${Object.keys(t).join(', ')})`);
      return s;
    }
    if (opts.tools != null && t.tool_use !== undefined) return t.tool_use;
    if (t.default !== undefined) return t.default;
    const names = Object.keys(t);
    if (names.length === 1) return t[names[0]!]!;
    throw new TemplateError(`${this.origin}: several chat templates (${names.join(', ')}) and none is "default"; choose one by name`);
  }

  private compile(src: string): JinjaTemplate {
    let c = this.compiled.get(src);
    if (c === undefined) {
      c = new JinjaTemplate(src);
      this.compiled.set(src, c);
    }
    return c;
  }

  /** The variables transformers passes: messages, tools, documents, add_generation_prompt, special tokens, extras. */
  private variables(messages: readonly ChatMessage[], o: RenderOptions): Record<string, unknown> {
    return {
      ...this.specialTokens,
      messages,
      tools: o.tools ?? null,
      documents: o.documents ?? null,
      add_generation_prompt: o.addGenerationPrompt ?? false,
      ...(o.variables ?? {}),
    };
  }

  /** The rendered prompt string, exactly as apply_chat_template(tokenize=False). */
  render(messages: readonly ChatMessage[], o: RenderOptions = {}): string {
    checkMessages(messages);
    const src = this.source(o);
    return this.compile(src).render(this.variables(messages, o), { now: o.now });
  }

  /**
   * The rendered prompt and its ids. Special tokens are parsed where the template wrote them; special-token text
   * inside the inputs (message content, tools, documents, variables) stays plain text.
   */
  apply(messages: readonly ChatMessage[], tokenizer: Tokenizer, o: RenderOptions = {}): AppliedTemplate {
    checkMessages(messages);
    const specials = specialTextsOf(tokenizer, this.specialTexts);
    const src = this.source(o);
    const marks: string[] = [];
    const protect = (v: unknown): unknown => {
      if (typeof v === 'string') {
        if (!specials.some((s) => v.includes(s))) return v;
        return replaceSpecials(v, specials, (t) => {
          marks.push(t);
          return `${MARK_OPEN}${marks.length - 1}${MARK_CLOSE}`;
        });
      }
      if (Array.isArray(v)) return v.map(protect);
      if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, protect(x)]));
      return v;
    };
    const safe: RenderOptions = {
      ...o,
      tools: o.tools == null ? o.tools : (protect(o.tools) as unknown[]),
      documents: o.documents == null ? o.documents : (protect(o.documents) as unknown[]),
      variables: o.variables === undefined ? undefined : (protect(o.variables) as Record<string, unknown>),
    };
    const rendered = this.compile(src).render(this.variables(protect(messages) as ChatMessage[], safe), { now: o.now });
    if (marks.length === 0) {
      return { prompt: rendered, ids: tokenizer.encode(rendered, { addSpecialTokens: false, parseSpecial: true }) };
    }
    // Restore the protected texts and remember where they are.
    const markRe = new RegExp(`${MARK_OPEN}(\\d+)${MARK_CLOSE}`, 'gu');
    let prompt = '';
    const plain: [number, number][] = [];
    let last = 0;
    for (const m of rendered.matchAll(markRe)) {
      prompt += rendered.slice(last, m.index);
      const text = marks[Number(m[1])] ?? '';
      plain.push([prompt.length, prompt.length + text.length]);
      prompt += text;
      last = m.index! + m[0].length;
    }
    prompt += rendered.slice(last);
    return { prompt, ids: encodeWithPlainRanges(tokenizer, prompt, plain, specials) };
  }

  /**
   * Token ids that end an assistant turn under this template: the special token the template writes right after
   * an assistant message (found by rendering a probe conversation), plus the config's eos_token.
   */
  endOfTurnIds(tokenizer: Tokenizer): number[] {
    const ids = new Set<number>();
    const eos = this.specialTokens.eos_token;
    if (typeof eos === 'string') {
      const id = tokenizer.tokenToId(eos);
      if (id !== undefined) ids.add(id);
    }
    const probe = 'ristretto-probe-reply';
    try {
      const text = this.render([{ role: 'user', content: 'hi' }, { role: 'assistant', content: probe }], {});
      const at = text.lastIndexOf(probe);
      if (at >= 0) {
        const after = tokenizer.encode(text.slice(at + probe.length), { addSpecialTokens: false, parseSpecial: true });
        if (after.length > 0 && tokenizer.isSpecial(after[0]!)) ids.add(after[0]!);
      }
    } catch {
      // a template that rejects the probe conversation: keep eos only
    }
    return [...ids];
  }
}

function checkMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages)) throw new TemplateError('messages must be a list of {role, content} objects');
  messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || typeof m.role !== 'string') throw new TemplateError(`messages[${i}]: expected an object with a string "role"`);
  });
}

const specialCache = new WeakMap<Tokenizer, string[]>();

/** The texts of every special token (the tokenizer's, plus the config's), longest first. */
function specialTextsOf(tokenizer: Tokenizer, extra: readonly string[]): string[] {
  let own = specialCache.get(tokenizer);
  if (own === undefined) {
    own = [];
    for (let id = 0; id < tokenizer.vocabSize; id++) {
      if (!tokenizer.isSpecial(id)) continue;
      const t = tokenizer.idToToken(id);
      if (t !== undefined && t.length > 0) own.push(t);
    }
    specialCache.set(tokenizer, own);
  }
  const all = new Set([...own, ...extra.filter((t) => tokenizer.tokenToId(t) !== undefined && tokenizer.isSpecial(tokenizer.tokenToId(t)!))]);
  return [...all].sort((a, b) => b.length - a.length);
}

/** Replaces each leftmost-longest occurrence of a special text (sorted longest first). */
function replaceSpecials(s: string, specials: readonly string[], f: (t: string) => string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const m = matchAt(s, i, specials);
    if (m !== null) {
      out += f(m);
      i += m.length;
    } else {
      out += s[i];
      i++;
    }
  }
  return out;
}

function matchAt(s: string, i: number, specials: readonly string[]): string | null {
  for (const t of specials) if (s.startsWith(t, i)) return t;
  return null;
}

/**
 * Encodes `text` with special tokens parsed everywhere except in `plain` ranges: the text is cut at each special
 * token outside those ranges, and the pieces between are encoded with special tokens left as text.
 */
function encodeWithPlainRanges(tokenizer: Tokenizer, text: string, plain: readonly [number, number][], specials: readonly string[]): number[] {
  const ids: number[] = [];
  let piece = '';
  let r = 0;
  const flush = (): void => {
    if (piece.length > 0) ids.push(...tokenizer.encode(piece, { addSpecialTokens: false, parseSpecial: false }));
    piece = '';
  };
  let i = 0;
  while (i < text.length) {
    while (r < plain.length && plain[r]![1] <= i) r++;
    const inPlain = r < plain.length && plain[r]![0] <= i && i < plain[r]![1];
    if (inPlain) {
      piece += text.slice(i, plain[r]![1]);
      i = plain[r]![1];
      continue;
    }
    const m = matchAt(text, i, specials);
    // A match must not run into a protected range.
    if (m !== null && !(r < plain.length && plain[r]![0] < i + m.length)) {
      const id = tokenizer.tokenToId(m);
      if (id !== undefined) {
        flush();
        ids.push(id);
        i += m.length;
        continue;
      }
    }
    piece += text[i];
    i++;
  }
  flush();
  return ids;
}

// ---- finding a model's template ----

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'];

/** The special-token variables transformers passes from tokenizer_config.json. */
export function specialTokensFromConfig(cfg: Record<string, unknown>): Record<string, unknown> {
  const content = (v: unknown): unknown => (v !== null && typeof v === 'object' && !Array.isArray(v) && 'content' in v ? (v as { content: unknown }).content : v);
  const out: Record<string, unknown> = {};
  for (const k of SPECIAL_KEYS) {
    const v = content(cfg[k]);
    if (v !== null && v !== undefined) out[k] = v;
  }
  const extra = cfg.additional_special_tokens;
  if (Array.isArray(extra) && extra.length > 0) out.additional_special_tokens = extra.map(content);
  const named = cfg.extra_special_tokens;
  if (named !== null && typeof named === 'object' && !Array.isArray(named)) {
    for (const [k, v] of Object.entries(named)) {
      const c = content(v);
      if (c !== null && c !== undefined) out[k] = c;
    }
  }
  return out;
}

function specialTextsFromConfig(cfg: Record<string, unknown>): string[] {
  const dec = cfg.added_tokens_decoder;
  const out: string[] = [];
  if (dec !== null && typeof dec === 'object') {
    for (const t of Object.values(dec as Record<string, { content?: unknown; special?: unknown }>)) {
      if (t && t.special === true && typeof t.content === 'string') out.push(t.content);
    }
  }
  return out;
}

function templatesFromValue(v: unknown, where: string): string | Record<string, string> | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const out: Record<string, string> = {};
    for (const t of v) {
      if (t && typeof t === 'object' && typeof (t as { name?: unknown }).name === 'string' && typeof (t as { template?: unknown }).template === 'string') {
        out[(t as { name: string }).name] = (t as { template: string }).template;
      } else throw new RistrettoError('FORMAT', `${where}: chat_template list entries must be {"name": ..., "template": ...}`);
    }
    return out;
  }
  if (v === undefined || v === null) return undefined;
  throw new RistrettoError('FORMAT', `${where}: chat_template must be a string or a list of {name, template}`);
}

function isGGUFFile(p: string): boolean {
  try {
    const fd = fs.openSync(p, 'r');
    try {
      const b = Buffer.alloc(4);
      return fs.readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === 'GGUF';
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** Template and special tokens from GGUF metadata. */
export function chatTemplateFromGGUF(metadata: Map<string, GGUFValue>, file: string): ChatTemplate | null {
  const main = metadata.get('tokenizer.chat_template');
  const named: Record<string, string> = {};
  if (typeof main === 'string') named.default = main;
  for (const [k, v] of metadata) {
    if (k.startsWith('tokenizer.chat_template.') && typeof v === 'string') named[k.slice('tokenizer.chat_template.'.length)] = v;
  }
  if (Object.keys(named).length === 0) return null;
  const tokens = metadata.get('tokenizer.ggml.tokens');
  const types = metadata.get('tokenizer.ggml.token_type');
  const special: Record<string, unknown> = {};
  const texts: string[] = [];
  if (Array.isArray(tokens)) {
    for (const k of SPECIAL_KEYS) {
      const id = metadata.get(`tokenizer.ggml.${k.replace('_token', '')}_token_id`);
      if (typeof id === 'number' && typeof tokens[id] === 'string') special[k] = tokens[id];
    }
    if (Array.isArray(types)) types.forEach((t, i) => {
      if (t === 3 && typeof tokens[i] === 'string') texts.push(tokens[i] as string);
    });
  }
  return new ChatTemplate({ template: named, specialTokens: special, specialTexts: texts, origin: `${file} (tokenizer.chat_template)` });
}

/**
 * Loads the chat template for a model or tokenizer path: a folder (chat_template.jinja, chat_template.json,
 * tokenizer_config.json), a tokenizer_config.json, a .jinja file, or a GGUF file. Throws a NOT_FOUND error naming
 * the files looked at when there is none.
 */
export function loadChatTemplate(p: string): ChatTemplate {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new RistrettoError('NOT_FOUND', `${p}: no such file or folder`);
  }
  if (!st.isDirectory()) {
    if (isGGUFFile(p)) {
      const f = openGGUF(p);
      try {
        const t = chatTemplateFromGGUF(f.metadata, p);
        if (t !== null) return t;
      } finally {
        f.close();
      }
      throw new RistrettoError('NOT_FOUND', `${p}: the GGUF file has no chat template (no tokenizer.chat_template); pass one (--chat-template FILE)`);
    }
    if (p.endsWith('.jinja')) return new ChatTemplate({ template: fs.readFileSync(p, 'utf8'), origin: p, ...configBeside(path.dirname(p)) });
    if (path.basename(p) === 'tokenizer_config.json' || path.basename(p) === 'chat_template.json') return loadChatTemplate(path.dirname(p));
  }
  const dir = st.isDirectory() ? p : path.dirname(p);
  const cfgPath = path.join(dir, 'tokenizer_config.json');
  const cfg = fs.existsSync(cfgPath) ? (readJsonFile(cfgPath) as Record<string, unknown>) : undefined;
  const base = cfg === undefined ? {} : { specialTokens: specialTokensFromConfig(cfg), specialTexts: specialTextsFromConfig(cfg) };
  const jinjaPath = path.join(dir, 'chat_template.jinja');
  if (fs.existsSync(jinjaPath)) return new ChatTemplate({ template: fs.readFileSync(jinjaPath, 'utf8'), origin: jinjaPath, ...base });
  const jsonPath = path.join(dir, 'chat_template.json');
  if (fs.existsSync(jsonPath)) {
    const t = templatesFromValue((readJsonFile(jsonPath) as Record<string, unknown>).chat_template, jsonPath);
    if (t !== undefined) return new ChatTemplate({ template: t, origin: jsonPath, ...base });
  }
  if (cfg !== undefined) {
    const t = templatesFromValue(cfg.chat_template, cfgPath);
    if (t !== undefined) return new ChatTemplate({ template: t, origin: cfgPath, ...base });
  }
  const looked = cfg !== undefined ? `${cfgPath} has no "chat_template"` : `no tokenizer_config.json in ${dir}`;
  throw new RistrettoError('NOT_FOUND', `${p}: the model has no chat template (${looked}; no chat_template.jinja or chat_template.json either); pass one (--chat-template FILE)`);
}

function configBeside(dir: string): { specialTokens?: Record<string, unknown>; specialTexts?: string[] } {
  const cfgPath = path.join(dir, 'tokenizer_config.json');
  if (!fs.existsSync(cfgPath)) return {};
  const cfg = readJsonFile(cfgPath) as Record<string, unknown>;
  return { specialTokens: specialTokensFromConfig(cfg), specialTexts: specialTextsFromConfig(cfg) };
}

/** A simple ChatML template (for models without their own, e.g. tests and base models). */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
