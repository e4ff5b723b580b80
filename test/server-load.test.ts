// A small bounded load test on loopback (the full one is `npm run bench:serve`): 8 streaming clients x 25
// requests, a quarter disconnecting mid-stream; no unexpected failure and every slot free at the end.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadModel } from '../src/runtime/load-model.js';
import { CHATML_TEMPLATE } from '../src/runtime/template.js';
import { createServer } from '../src/server/server.js';
import { runLoadTest } from '../src/server/loadtest.js';
import { modelFileOrSkip } from './helpers/models.js';

test('load: 8 streaming clients x 25 requests, 25% disconnecting, zero failures, slots free', async (t) => {
  const f = modelFileOrSkip(t, 'llama2c/stories260K.bin');
  if (!f) return;
  const model = await loadModel(f, { tokenizer: path.join(path.dirname(f), 'tok512.bin'), contextLength: 128 });
  const server = createServer(model, { template: CHATML_TEMPLATE, parallel: 4, queue: 16 });
  const a = await server.listen(0, '127.0.0.1');
  try {
    const r = await runLoadTest({ baseUrl: `http://127.0.0.1:${a.port}`, clients: 8, requests: 200, disconnectFraction: 0.25, maxTokens: 16, timeLimitMs: 120_000 });
    t.diagnostic(`${r.requests} requests in ${(r.durationMs / 1000).toFixed(1)} s (${r.requestsPerS.toFixed(1)}/s), ${r.disconnected} disconnected, TTFT p50 ${r.ttftMs.p50.toFixed(1)} ms p99 ${r.ttftMs.p99.toFixed(1)} ms`);
    assert.deepEqual(r.failures, []);
    assert.equal(r.requests, 200);
    assert.ok(r.disconnected >= 40, `${r.disconnected} disconnected`);
    const end = Date.now() + 2000;
    while (server.stats().slotsBusy + server.stats().queued + server.stats().inFlight > 0 && Date.now() < end) await new Promise((res) => setTimeout(res, 10));
    const s = server.stats();
    assert.equal(s.slotsBusy, 0);
    assert.equal(s.queued, 0);
    assert.equal(s.inFlight, 0);
  } finally {
    await server.close({ graceMs: 1000 });
    model.dispose();
  }
});
