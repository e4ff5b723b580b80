// A worker thread of the wasm backend's pool (./pool.ts): instantiates the kernel module over the shared
// memory and claims chunks of the jobs the main thread publishes, spinning between jobs, then sleeping.

import { parentPort, workerData } from 'node:worker_threads';
import { ARGS_BYTE, CLOSED, DONE, N_CHUNKS, NARGS, SLEEPERS, SPIN, STOP, WORD, runChunk, type ChunkExports } from './pool.js';
import './webassembly.js';

const { module, memory, ctl, tid } = workerData as { module: WebAssembly.Module; memory: WebAssembly.Memory; ctl: SharedArrayBuffer; tid: number };
const instance = await WebAssembly.instantiate(module, { env: { memory } });
const ex = instance.exports as unknown as ChunkExports;
const I = new Int32Array(ctl, 0, ARGS_BYTE / 4);
const A = new Float64Array(ctl, ARGS_BYTE, NARGS);
parentPort!.postMessage('ready');

let seen = Atomics.load(I, WORD) >>> 16;
for (;;) {
  // wait for a new job (a new generation in WORD)
  let w = Atomics.load(I, WORD);
  let spins = 0;
  while (w >>> 16 === seen) {
    if (++spins > SPIN) {
      Atomics.add(I, SLEEPERS, 1);
      if (Atomics.load(I, STOP) !== 0) process.exit(0);
      Atomics.wait(I, WORD, w, 100);
      Atomics.sub(I, SLEEPERS, 1);
      spins = 0;
    }
    w = Atomics.load(I, WORD);
  }
  if (Atomics.load(I, STOP) !== 0) break;
  const g = w >>> 16;
  seen = g;
  // claim chunks while this job is live; a successful claim proves the arguments read are this job's
  for (;;) {
    w = Atomics.load(I, WORD);
    const c = w & 0xffff;
    if (w >>> 16 !== g || c === CLOSED || c >= A[N_CHUNKS]!) break;
    if (Atomics.compareExchange(I, WORD, w, w + 1) !== w) continue;
    runChunk(ex, A, c, tid);
    Atomics.add(I, DONE, 1);
  }
}
