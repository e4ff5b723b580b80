// The server against the official `openai` client (chat streamed and not, completions, embeddings, models, errors),
// greedy /v1/completions == `ristretto generate`, and hostile requests over raw HTTP. Loopback only.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import OpenAI from 'openai';
import { loadModel } from '../src/runtime/load-model.js';
import type { Model } from '../src/runtime/model.js';
import { CHATML_TEMPLATE } from '../src/runtime/template.js';
import { createServer, type RistrettoServer, type EmbeddingProvider } from '../src/server/server.js';
import { modelsDir, repoRoot } from './helpers/models.js';

const dir = modelsDir();
const MODEL = dir && path.join(dir, 'llama2c/stories260K.bin');
const TOK = dir && path.join(dir, 'llama2c/tok512.bin');

/** A deterministic fake encoder: the real one (src/runtime/embed.ts) plugs in through the same interface. */
const fakeEmbeddings: EmbeddingProvider = {
  name: 'fake-embed',
  async embed(texts) {
    return { embeddings: texts.map((t) => [t.length, 0.5, -1.25, t.charCodeAt(0) || 0]), promptTokens: texts.reduce((a, t) => a + t.length, 0) };
  },
};

let model: Model;
let server: RistrettoServer;
let base = '';
let client: OpenAI;

before(async () => {
  if (dir === null) return;
  model = await loadModel(MODEL!, { tokenizer: TOK!, contextLength: 256 });
  server = createServer(model, { template: CHATML_TEMPLATE, embeddings: fakeEmbeddings, parallel: 2, queue: 4, modelName: 'stories', maxBodyBytes: 1 << 20 });
  const a = await server.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${a.port}`;
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });
});

after(async () => {
  if (dir === null) return;
  await server.close({ graceMs: 1000 });
  model.dispose();
});

function raw(method: string, p: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${p}`, { method, headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let json: any = null;
        try {
          json = JSON.parse(text);
        } catch {
          /* SSE or empty */
        }
        resolve({ status: res.statusCode!, json, text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function slotsFree(timeoutMs = 2000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const s = server.stats();
    if (s.slotsBusy === 0 && s.queued === 0 && s.inFlight === 0) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

test('openai client: chat completion, streamed and not, equal for the same seed', async (t) => {
  if (dir === null) return t.skip('shared/models not found');
  const req = { model: 'stories', messages: [{ role: 'user' as const, content: 'Once upon a time' }], max_tokens: 20, temperature: 0.9, seed: 42, top_p: 0.95 };
  const r = await client.chat.completions.create(req);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0]!.message.role, 'assistant');
  assert.ok(['stop', 'length'].includes(r.choices[0]!.finish_reason));
  assert.equal(r.usage!.completion_tokens + r.usage!.prompt_tokens, r.usage!.total_tokens);
  const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish: string | null = null;
  let usage = null;
  let chunks = 0;
  for await (const c of stream) {
    chunks++;
    assert.equal(c.object, 'chat.completion.chunk');
    if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content;
    if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
    if (c.usage) usage = c.usage;
  }
  assert.ok(chunks > 2);
  assert.equal(text, r.choices[0]!.message.content);
  assert.equal(finish, r.choices[0]!.finish_reason);
  const { prompt_tokens_details: cachedSecond, ...usageRest } = usage as unknown as Record<string, unknown>;
  const { prompt_tokens_details: _cachedFirst, ...firstRest } = r.usage as unknown as Record<string, unknown>;
  assert.deepEqual(usageRest, firstRest);
  // the same prompt again goes to the slot that holds it: all but its last token come from the cache
  assert.deepEqual(cachedSecond, { cached_tokens: r.usage!.prompt_tokens - 1 });
  assert.ok(await slotsFree());
});

test('prompt cache: a multi-turn conversation gives the same replies with and without it, prefilling less', async (t) => {
  if (dir === null) return t.skip('shared/models not found');
  const plain = createServer(model, { template: CHATML_TEMPLATE, parallel: 2, modelName: 'stories', promptCache: false });
  const a = await plain.listen(0, '127.0.0.1');
  const noCache = new OpenAI({ baseURL: `http://127.0.0.1:${a.port}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });
  try {
    const run = async (c: OpenAI) => {
      const messages: { role: 'user' | 'assistant'; content: string }[] = [];
      const out: { text: string; cached: number; prompt: number }[] = [];
      for (const user of ['Once upon a time', 'Tell me more about the dog.', 'And then?']) {
        messages.push({ role: 'user', content: user });
        const r = await c.chat.completions.create({ model: 'stories', messages, max_tokens: 12, temperature: 0 });
        const text = r.choices[0]!.message.content ?? '';
        messages.push({ role: 'assistant', content: text });
        out.push({ text, cached: r.usage!.prompt_tokens_details!.cached_tokens!, prompt: r.usage!.prompt_tokens });
      }
      return out;
    };
    const without = await run(noCache);
    const withCache = await run(client);
    assert.deepEqual(withCache.map((x) => x.text), without.map((x) => x.text));
    assert.deepEqual(without.map((x) => x.cached), [0, 0, 0]);
    // turns 2 and 3 reuse the earlier turns' tokens
    for (const x of withCache.slice(1)) assert.ok(x.cached > 0 && x.cached < x.prompt, JSON.stringify(withCache));
    t.diagnostic(`cached/prompt tokens per turn: ${withCache.map((x) => `${x.cached}/${x.prompt}`).join(', ')}`);
  } finally {
    await plain.close({ graceMs: 100 });
  }
});

test('openai client: completions; greedy ids equal `ristretto generate`', async (t) => {
  if (dir === null) return t.skip('shared/models not found');
  const prompt = 'Once upon a time, there was a little girl';
  const r = await client.completions.create({ model: 'stories', prompt, max_tokens: 30, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  const out = JSON.parse(execFileSync(process.execPath, [path.join(repoRoot, 'dist/src/cli/main.js'), 'generate', '--model', MODEL!, '--tokenizer', TOK!,
    '--prompt', prompt, '--max-tokens', '30', '--temperature', '0', '--output', 'json', '--quiet'], { encoding: 'utf8' }));
  assert.deepEqual((r.choices[0] as unknown as { token_ids: number[] }).token_ids, out.generated_ids);
  assert.equal(r.choices[0]!.text, out.text);
  assert.equal(r.usage!.completion_tokens, out.generated_ids.length);
  const s = await client.completions.create({ model: 'stories', prompt, max_tokens: 30, temperature: 0, stream: true });
  let text = '';
  for await (const c of s) text += c.choices[0]?.text ?? '';
  assert.equal(text, out.text);
  const stopped = await client.completions.create({ model: 'stories', prompt, max_tokens: 30, temperature: 0, stop: [out.text.slice(5, 9)] });
  assert.equal(stopped.choices[0]!.finish_reason, 'stop');
  assert.equal(stopped.choices[0]!.text, out.text.slice(0, 5));
});

test('openai client: embeddings (float and base64), model list, errors', async (t) => {
  if (dir === null) return t.skip('shared/models not found');
  const e = await client.embeddings.create({ model: 'fake-embed', input: ['ab', 'xyz'] }); // the client asks for base64
  assert.equal(e.data.length, 2);
  assert.deepEqual(e.data[1]!.embedding, [3, 0.5, -1.25, 120]);
  const f = await client.embeddings.create({ model: 'fake-embed', input: 'q', encoding_format: 'float' });
  assert.deepEqual(f.data[0]!.embedding, [1, 0.5, -1.25, 113]);
  assert.equal(f.usage.prompt_tokens, 1);
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['stories', 'fake-embed']);
  await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.NotFoundError);
    assert.equal((err as InstanceType<typeof OpenAI.APIError>).code, 'model_not_found');
    return true;
  });
  await assert.rejects(client.chat.completions.create({ model: 'stories', messages: [{ role: 'user', content: 'x' }], temperature: 7 }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal((err as InstanceType<typeof OpenAI.APIError>).param, 'temperature');
    return true;
  });
  await assert.rejects(client.chat.completions.create({ model: 'stories', messages: [{ role: 'user', content: 'x' }], max_tokens: 100000 }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal((err as InstanceType<typeof OpenAI.APIError>).code, 'context_length_exceeded');
    return true;
  });
});

test('hostile requests get the right error and the server keeps serving', async (t) => {
  if (dir === null) return t.skip('shared/models not found');
  const chat = (extra: object): string => JSON.stringify({ model: 'stories', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...extra });
  const cases: [string, string, string | Buffer | undefined, number, string | null][] = [
    ['malformed JSON', '/v1/chat/completions', '{"model": "stories", "messages": [', 400, 'invalid_json'],
    ['not an object', '/v1/chat/completions', '[1,2]', 400, 'invalid_json'],
    ['empty body', '/v1/chat/completions', '', 400, 'invalid_json'],
    ['wrong type temperature', '/v1/chat/completions', chat({ temperature: 'hot' }), 400, 'invalid_type'],
    ['wrong type messages', '/v1/chat/completions', JSON.stringify({ messages: 'hi' }), 400, 'invalid_type'],
    ['bad role', '/v1/chat/completions', JSON.stringify({ messages: [{ role: 'wizard', content: 'x' }] }), 400, 'invalid_value'],
    ['negative max_tokens', '/v1/chat/completions', chat({ max_tokens: -1 }), 400, 'invalid_value'],
    ['huge max_tokens', '/v1/chat/completions', chat({ max_tokens: 1e12 }), 400, 'context_length_exceeded'],
    ['n = 3', '/v1/chat/completions', chat({ n: 3 }), 400, 'invalid_value'],
    ['stop of numbers', '/v1/completions', JSON.stringify({ prompt: 'x', stop: [1] }), 400, 'invalid_type'],
    ['token ids out of range', '/v1/completions', JSON.stringify({ prompt: [1, 99999] }), 400, 'invalid_type'],
    ['10 MB body', '/v1/chat/completions', Buffer.alloc(10 * 1024 * 1024, 0x20), 413, 'request_too_large'],
    ['unknown route', '/v1/nothing', '{}', 404, 'not_found'],
  ];
  for (const [name, p, body, status, code] of cases) {
    const r = await raw('POST', p, body);
    assert.equal(r.status, status, `${name}: status (${r.text.slice(0, 200)})`);
    assert.equal(typeof r.json?.error?.message, 'string', `${name}: OpenAI error shape`);
    assert.ok('type' in r.json.error && 'param' in r.json.error && 'code' in r.json.error, `${name}: all error fields`);
    assert.equal(r.json.error.code, code, `${name}: code`);
  }
  const typed = await raw('POST', '/v1/chat/completions', chat({ temperature: 'hot' }));
  assert.equal(typed.json.error.param, 'temperature');
  const unknown = await raw('POST', '/v1/chat/completions', chat({ frobnicate: true, user: 'me', logit_bias: {} }));
  assert.equal(unknown.status, 200, 'unknown fields are ignored');
  // A stream abandoned before its first byte.
  await new Promise<void>((resolve) => {
    const req = http.request(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' } });
    req.on('error', () => resolve());
    req.end(chat({ stream: true, max_tokens: 200 }));
    setImmediate(() => {
      req.destroy();
      resolve();
    });
  });
  assert.ok(await slotsFree(), 'slots free after an abandoned stream');
  const ok = await raw('POST', '/v1/chat/completions', chat({}));
  assert.equal(ok.status, 200);
  const tok = await raw('POST', '/tokenize', JSON.stringify({ content: 'Once upon' }));
  const detok = await raw('POST', '/detokenize', JSON.stringify({ tokens: tok.json.tokens }));
  assert.equal(detok.json.content, 'Once upon');
  const applied = await raw('POST', '/apply-template', JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(applied.json.prompt, '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  const health = await raw('GET', '/health');
  assert.equal(health.status, 200);
  assert.equal(health.json.slots_processing, 0);
});

test('a client that disconnects mid-stream cancels its generation and frees its slot', async (t) => {
  if (dir === null) return t.skip('shared/models not found');
  const served = server.stats().requests;
  await new Promise<void>((resolve, reject) => {
    const req = http.request(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => undefined);
    req.end(JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: 240, temperature: 1, seed: 3 }));
    setTimeout(() => reject(new Error('no first chunk')), 5000);
  });
  assert.ok(await slotsFree(500), 'the slot is freed promptly');
  assert.ok(server.stats().requests > served);
});

test('429 when the queue is full; 401 with --api-key; 503 while loading', async (t) => {
  if (dir === null) return t.skip('shared/models not found');
  let release!: (m: Model) => void;
  const pending = new Promise<Model>((r) => (release = r));
  const s2 = createServer(pending, { template: CHATML_TEMPLATE, parallel: 1, queue: 0, apiKey: 'sekret' });
  const a = await s2.listen(0, '127.0.0.1');
  const u = `http://127.0.0.1:${a.port}`;
  const get = async (p: string, init?: RequestInit): Promise<Response> => fetch(`${u}${p}`, init);
  assert.equal((await get('/health')).status, 503);
  release(model);
  await s2.ready;
  assert.equal((await get('/health')).status, 200);
  const body = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 200, temperature: 1, seed: 5 });
  assert.equal((await get('/v1/chat/completions', { method: 'POST', body, headers: { 'Content-Type': 'application/json' } })).status, 401);
  assert.equal((await get('/v1/models', { headers: { Authorization: 'Bearer wrong' } })).status, 401);
  const auth = { 'Content-Type': 'application/json', Authorization: 'Bearer sekret' };
  const first = get('/v1/chat/completions', { method: 'POST', body, headers: auth });
  await new Promise((r) => setTimeout(r, 20));
  const second = await get('/v1/chat/completions', { method: 'POST', body, headers: auth });
  assert.equal(second.status, 429);
  assert.equal(((await second.json()) as { error: { code: string } }).error.code, 'queue_full');
  assert.equal((await first).status, 200);
  await s2.close({ graceMs: 1000 });
});
