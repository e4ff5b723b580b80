// A bounded load test for the server, over loopback only: `clients` concurrent streaming chat clients send
// `requests` requests in all (a fraction of them disconnect right after their first token), within a time limit.
// Used by bench/serve.ts (the full run) and by the test suite (a small run).

import * as http from 'node:http';

export interface LoadTestOptions {
  /** http://127.0.0.1:PORT — anything but a loopback address is refused. */
  baseUrl: string;
  clients: number;
  requests: number;
  /** Every k-th request of a client (k = round(1 / fraction)) disconnects after its first token. Default 0.25. */
  disconnectFraction?: number;
  maxTokens?: number;
  /** Stop issuing new requests after this long (default 10 min). */
  timeLimitMs?: number;
  apiKey?: string;
  model?: string;
  prompt?: string;
}

export interface LoadTestResult {
  requests: number;
  completed: number;
  disconnected: number;
  /** Every outcome that was not the expected one (must be empty). */
  failures: string[];
  durationMs: number;
  requestsPerS: number;
  completionTokens: number;
  ttftMs: { p50: number; p90: number; p99: number; max: number };
  timedOut: boolean;
}

function assertLoopback(u: URL): void {
  const h = u.hostname.replace(/^\[|\]$/g, '');
  if (!(h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h))) throw new Error(`load tests only target loopback addresses, not ${u.hostname}`);
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

interface One {
  kind: 'completed' | 'disconnected' | 'failed';
  ttft?: number;
  tokens?: number;
  error?: string;
}

function oneRequest(url: URL, agent: http.Agent, body: string, apiKey: string | undefined, disconnect: boolean): Promise<One> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let settled = false;
    const done = (r: One): void => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...(apiKey ? { Authorization: `Bearer ${apiKey}` } : {}) },
    }, (res) => {
      if (res.statusCode !== 200) {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => done({ kind: 'failed', error: `HTTP ${res.statusCode}: ${text.slice(0, 200)}` }));
        return;
      }
      let buf = '';
      let ttft: number | undefined;
      let tokens = 0;
      let finished = false;
      let sawDone = false;
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let nl: number;
        while ((nl = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, nl);
          buf = buf.slice(nl + 2);
          if (!ev.startsWith('data: ')) continue;
          const data = ev.slice(6);
          if (data === '[DONE]') {
            sawDone = true;
            continue;
          }
          let j: { choices?: { delta?: { content?: string }; finish_reason?: string | null }[]; error?: unknown };
          try {
            j = JSON.parse(data);
          } catch {
            done({ kind: 'failed', error: `bad SSE JSON: ${data.slice(0, 100)}` });
            req.destroy();
            return;
          }
          if (j.error) {
            done({ kind: 'failed', error: `error event: ${JSON.stringify(j.error).slice(0, 200)}` });
            return;
          }
          const ch = j.choices?.[0];
          if (ch?.delta?.content) {
            tokens++;
            if (ttft === undefined) {
              ttft = performance.now() - t0;
              if (disconnect) {
                req.destroy();
                done({ kind: 'disconnected', ttft, tokens });
                return;
              }
            }
          }
          if (ch?.finish_reason) finished = true;
        }
      });
      res.on('end', () => {
        if (finished && sawDone) done({ kind: 'completed', ttft: ttft ?? performance.now() - t0, tokens });
        else done({ kind: disconnect ? 'disconnected' : 'failed', error: `stream ended without ${finished ? '[DONE]' : 'a finish_reason'}` });
      });
      res.on('error', (e) => done({ kind: disconnect ? 'disconnected' : 'failed', error: e.message }));
    });
    req.on('error', (e) => done({ kind: disconnect && settled ? 'disconnected' : 'failed', error: e.message }));
    req.end(body);
  });
}

export async function runLoadTest(o: LoadTestOptions): Promise<LoadTestResult> {
  const base = new URL(o.baseUrl);
  assertLoopback(base);
  const url = new URL('/v1/chat/completions', base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.clients * 2 });
  const every = Math.max(1, Math.round(1 / (o.disconnectFraction ?? 0.25)));
  const deadline = Date.now() + (o.timeLimitMs ?? 600_000);
  const ttfts: number[] = [];
  const failures: string[] = [];
  let next = 0;
  let completed = 0;
  let disconnected = 0;
  let completionTokens = 0;
  let timedOut = false;
  const t0 = performance.now();
  const client = async (c: number): Promise<void> => {
    let mine = 0;
    for (;;) {
      if (Date.now() > deadline) {
        timedOut = true;
        return;
      }
      const n = next++;
      if (n >= o.requests) return;
      mine++;
      const disconnect = mine % every === 0;
      const body = JSON.stringify({
        model: o.model,
        messages: [{ role: 'user', content: `${o.prompt ?? 'Tell me a story'} #${n % 17}` }],
        stream: true,
        max_tokens: o.maxTokens ?? 24,
        temperature: 0.8,
        seed: 1 + n,
      });
      const r = await oneRequest(url, agent, body, o.apiKey, disconnect);
      if (r.ttft !== undefined) ttfts.push(r.ttft);
      if (r.kind === 'completed') {
        completed++;
        completionTokens += r.tokens ?? 0;
      } else if (r.kind === 'disconnected') disconnected++;
      else failures.push(`client ${c} request ${n}: ${r.error}`);
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  agent.destroy();
  const durationMs = performance.now() - t0;
  ttfts.sort((a, b) => a - b);
  const done = completed + disconnected + failures.length;
  return {
    requests: done,
    completed,
    disconnected,
    failures,
    durationMs,
    requestsPerS: done / (durationMs / 1000),
    completionTokens,
    ttftMs: { p50: percentile(ttfts, 50), p90: percentile(ttfts, 90), p99: percentile(ttfts, 99), max: ttfts.at(-1) ?? NaN },
    timedOut,
  };
}
