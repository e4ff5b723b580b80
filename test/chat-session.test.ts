// model.chat(): history + KV-cache reuse across turns (equal to a fresh prefill), end-of-turn stops, overflow
// policy, abort keeping the partial reply.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadModel } from '../src/runtime/load-model.js';
import { CHATML_TEMPLATE } from '../src/runtime/template.js';
import { AbortError, ContextLengthError } from '../src/errors.js';
import { modelFileOrSkip } from './helpers/models.js';

test('chat: a second turn prefills only new tokens and equals a fresh prefill (greedy)', async (t) => {
  const f = modelFileOrSkip(t, 'llama2c/stories260K.bin');
  if (!f) return;
  const model = await loadModel(f, { tokenizer: path.join(path.dirname(f), 'tok512.bin'), contextLength: 256 });
  const chat = model.chat({ template: CHATML_TEMPLATE, system: 'Tell a story.' });
  const r1 = await chat.ask('Once upon a time', { temperature: 0, maxTokens: 12 });
  assert.equal(r1.cachedTokens, 0);
  assert.equal(chat.messages.length, 3);
  const p2 = chat.renderPrompt([...chat.messages, { role: 'user', content: 'Lily was happy' }]);
  const fresh = await model.generate(p2.ids, { temperature: 0, maxTokens: 12, stopTokens: chat.stopTokenIds });
  const r2 = await chat.ask('Lily was happy', { temperature: 0, maxTokens: 12 });
  assert.ok(r2.cachedTokens > r1.promptIds.length / 2, `reused ${r2.cachedTokens} cached tokens`);
  assert.deepEqual(r2.promptIds, p2.ids);
  assert.deepEqual(r2.generatedIds, fresh.generatedIds);
  assert.equal(chat.messages.at(-1)!.content, r2.text);
  chat.reset();
  assert.deepEqual(chat.messages, [{ role: 'system', content: 'Tell a story.' }]);
  model.dispose();
});

test('chat: overflow fails clearly, or drops the oldest turns', async (t) => {
  const f = modelFileOrSkip(t, 'llama2c/stories260K.bin');
  if (!f) return;
  const model = await loadModel(f, { tokenizer: path.join(path.dirname(f), 'tok512.bin'), contextLength: 100 });
  const long = 'The little dog ran to the park and played with a ball all day long.';
  const strict = model.chat({ template: CHATML_TEMPLATE });
  await strict.ask(long, { temperature: 0, maxTokens: 4 });
  await assert.rejects(strict.ask(long, { temperature: 0, maxTokens: 8 }), ContextLengthError);
  assert.equal(strict.messages.length, 2, 'the failed user turn is not kept');
  const rolling = model.chat({ template: CHATML_TEMPLATE, overflow: 'drop-oldest', system: 'S' });
  for (let i = 0; i < 3; i++) await rolling.ask(long, { temperature: 0, maxTokens: 4 });
  assert.equal(rolling.messages[0]!.role, 'system');
  assert.ok(rolling.messages.length < 7, `history trimmed to ${rolling.messages.length}`);
  model.dispose();
});

test('chat: abort keeps the partial reply and the chat stays usable', async (t) => {
  const f = modelFileOrSkip(t, 'llama2c/stories260K.bin');
  if (!f) return;
  const model = await loadModel(f, { tokenizer: path.join(path.dirname(f), 'tok512.bin'), contextLength: 256 });
  const chat = model.chat({ template: CHATML_TEMPLATE });
  const ac = new AbortController();
  let n = 0;
  await assert.rejects(chat.ask('Once', { temperature: 0, maxTokens: 50, signal: ac.signal, onToken: () => ++n === 3 && ac.abort() }), AbortError);
  assert.equal(chat.messages.length, 2);
  const r = await chat.ask('Again', { temperature: 0, maxTokens: 5 });
  assert.ok(r.generatedIds.length > 0);
  model.dispose();
});
