// Tool calls in chat replies: the parser (Hermes/Qwen <tool_call> tags, Llama 3 JSON), the streaming filter
// (a tool call is never streamed as content), and the server end to end with the official openai client,
// driven by a scripted model whose greedy reply is a fixed token sequence.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import OpenAI from 'openai';
import { parseToolCalls, ToolCallStreamFilter } from '../src/runtime/tool-calls.js';
import { loadTokenizer } from '../src/tokenizers/load.js';
import { CHATML_TEMPLATE } from '../src/runtime/template.js';
import { createServer } from '../src/server/server.js';
import type { Model } from '../src/runtime/model.js';
import { repoRoot } from './helpers/models.js';

const QWEN = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>';

test('parseToolCalls: Hermes/Qwen tags, several calls, text around, cut at EOS', () => {
  const one = parseToolCalls(QWEN)!;
  assert.equal(one.content, null);
  assert.equal(one.toolCalls.length, 1);
  assert.equal(one.toolCalls[0]!.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(one.toolCalls[0]!.function.arguments), { city: 'Paris', unit: 'c' });
  assert.match(one.toolCalls[0]!.id, /^call_/);

  const two = parseToolCalls(`<think>\nweather first\n</think>\n\n${QWEN}\n<tool_call>\n{"name": "time", "arguments": {}}\n</tool_call>`)!;
  assert.equal(two.content, '<think>\nweather first\n</think>');
  assert.deepEqual(two.toolCalls.map((c) => c.function.name), ['get_weather', 'time']);
  assert.notEqual(two.toolCalls[0]!.id, two.toolCalls[1]!.id);

  const cut = parseToolCalls('<tool_call>\n{"name": "f", "arguments": "{\\"a\\": 1}"}')!;
  assert.equal(cut.toolCalls[0]!.function.arguments, '{"a": 1}', 'string arguments are kept as given');

  assert.equal(parseToolCalls('<tool_call>\n{"name": "f", "arguments": {"a": </tool_call>'), null, 'broken JSON stays text');
  assert.equal(parseToolCalls('<tool_call>{"arguments": {}}</tool_call>'), null, 'no name');
  assert.equal(parseToolCalls('It is sunny in Paris.'), null);
});

test('parseToolCalls: Llama 3 JSON replies (parameters, python_tag, several separated by ;)', () => {
  const a = parseToolCalls('{"name": "get_weather", "parameters": {"city": "Oslo"}}')!;
  assert.equal(a.content, null);
  assert.deepEqual(JSON.parse(a.toolCalls[0]!.function.arguments), { city: 'Oslo' });
  const b = parseToolCalls('<|python_tag|>{"name": "search", "parameters": {"q": "x"}}')!;
  assert.equal(b.toolCalls[0]!.function.name, 'search');
  const c = parseToolCalls('{"name": "a", "parameters": {"x": 1}}; {"name": "b", "parameters": {}}')!;
  assert.deepEqual(c.toolCalls.map((t) => t.function.name), ['a', 'b']);
  assert.equal(parseToolCalls('{"answer": 42}'), null, 'JSON that is not a call stays text');
  assert.equal(parseToolCalls('{not json'), null);
});

/** Pieces of `text` cut at every position pattern of a seeded generator (1..4 characters each). */
function pieces(text: string, seed: number): string[] {
  const out: string[] = [];
  let s = seed;
  for (let i = 0; i < text.length; ) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const n = 1 + ((s >>> 16) % 4);
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}

test('ToolCallStreamFilter: plain text passes through; tool calls are never streamed as content', () => {
  for (let seed = 1; seed <= 20; seed++) {
    for (const text of ['Once upon a time <b>there</b> was a tool.', '  {not a call', '<think>ok</think>\n\n' + QWEN, QWEN, '{"name": "f", "parameters": {}}', '<|python_tag|>{"name": "f", "parameters": {}}', 'x < tool']) {
      const f = new ToolCallStreamFilter();
      let streamed = '';
      for (const p of pieces(text, seed)) streamed += f.push(p);
      const end = f.finish();
      const parsed = parseToolCalls(text);
      if (parsed === null) {
        assert.equal(streamed + end.content, text, `plain text, seed ${seed}`);
        assert.equal(end.toolCalls.length, 0);
      } else {
        assert.ok(!streamed.includes('<tool_call') && !streamed.includes('"name"'), `seed ${seed}: streamed ${JSON.stringify(streamed)}`);
        assert.deepEqual(end.toolCalls.map((c) => [c.function.name, c.function.arguments]), parsed.toolCalls.map((c) => [c.function.name, c.function.arguments]));
        assert.equal((streamed + end.content).trim(), parsed.content ?? '');
      }
    }
  }
});

// ---- the server, with a model whose greedy reply is a script --------------------------------------------

const tok = loadTokenizer(path.join(repoRoot, 'models/default/ristretto-stories-1m.gguf')).tokenizer;
const EOS = 1023;

/** A Model stand-in: every forward() returns one-hot logits for the next scripted token, then EOS. */
function scriptedModel(reply: string): Model {
  const script = [...tok.encode(reply, { addSpecialTokens: false }), EOS];
  const session = () => {
    let step = 0;
    return {
      contextLength: 4096,
      position: 0,
      rewind() {
        step = 0;
      },
      forward() {
        const l = new Float32Array(tok.vocabSize).fill(-1e9); // any sampler picks the scripted token
        l[script[Math.min(step++, script.length - 1)]!] = 0;
        return l;
      },
    };
  };
  return { info: { path: 'scripted' }, tokenizer: tok, stopTokenIds: [EOS], config: { model_type: 'llama' }, createSession: session, dispose() {} } as unknown as Model;
}

const servers: { close(o: { graceMs: number }): Promise<void> }[] = [];
after(async () => {
  for (const s of servers) await s.close({ graceMs: 100 });
});

async function clientFor(reply: string): Promise<OpenAI> {
  const server = createServer(scriptedModel(reply), { template: CHATML_TEMPLATE, modelName: 'scripted' });
  servers.push(server);
  const a = await server.listen(0, '127.0.0.1');
  return new OpenAI({ baseURL: `http://127.0.0.1:${a.port}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });
}

const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];

test('server: a tool-call reply comes back as tool_calls (non-streamed and streamed); without tools it is text', async () => {
  const client = await clientFor(QWEN);
  const messages = [{ role: 'user' as const, content: 'Weather in Paris?' }];
  const r = await client.chat.completions.create({ model: 'scripted', messages, tools });
  assert.equal(r.choices[0]!.finish_reason, 'tool_calls', JSON.stringify(r.choices[0]));
  const call = r.choices[0]!.message.tool_calls![0]!;
  assert.equal(call.type, 'function');
  assert.equal(call.type === 'function' && call.function.name, 'get_weather');
  assert.deepEqual(call.type === 'function' && JSON.parse(call.function.arguments), { city: 'Paris', unit: 'c' });
  assert.equal(r.choices[0]!.message.content, null);

  const stream = await client.chat.completions.create({ model: 'scripted', messages, tools, stream: true });
  let content = '';
  const deltas: unknown[] = [];
  let finish: string | null = null;
  for await (const c of stream) {
    const ch = c.choices[0];
    if (!ch) continue;
    content += ch.delta.content ?? '';
    if (ch.delta.tool_calls) deltas.push(...ch.delta.tool_calls);
    finish = ch.finish_reason ?? finish;
  }
  assert.equal(content, '');
  assert.equal(finish, 'tool_calls');
  assert.equal(deltas.length, 1);
  assert.equal((deltas[0] as { function: { name: string } }).function.name, 'get_weather');

  const plain = await client.chat.completions.create({ model: 'scripted', messages });
  assert.equal(plain.choices[0]!.message.content, QWEN, 'no tools offered: the reply is text');
  assert.equal(plain.choices[0]!.message.tool_calls, undefined);
  const none = await client.chat.completions.create({ model: 'scripted', messages, tools, tool_choice: 'none' });
  assert.equal(none.choices[0]!.message.content, QWEN);
  await assert.rejects(client.chat.completions.create({ model: 'scripted', messages, tools, tool_choice: 'required' }), /tool_choice/);
});

test('server: with tools offered, a text reply still streams as content', async () => {
  const text = 'It is sunny <b>today</b>.';
  const client = await clientFor(text);
  const stream = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'hi' }], tools, stream: true });
  let content = '';
  let finish: string | null = null;
  for await (const c of stream) {
    content += c.choices[0]?.delta.content ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(content, text);
  assert.equal(finish, 'stop');
});
