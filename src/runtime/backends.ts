// Which backends execute a model: the WebAssembly SIMD backend (the default, with worker threads) in
// front of the reference backend, which stays last as the per-op fallback and the oracle.

import * as os from 'node:os';
import type { Backend } from '../backends/backend.js';
import { referenceBackend } from '../backends/reference/index.js';
import { createWasmBackend, type WasmBackend } from '../backends/wasm/index.js';
import { InvalidArgumentError, RistrettoError } from '../errors.js';
import type { HostTensor } from '../formats/tensor.js';

export type BackendChoice = 'auto' | 'wasm' | 'reference';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'wasm', 'reference'];

export interface BackendOptions {
  /** 'auto' (default): wasm when it instantiates (and the weights fit one wasm memory), else the reference
   *  with a one-line notice; 'wasm': wasm or an error; 'reference': the reference backend alone. */
  backend?: BackendChoice;
  /** Threads of the wasm backend. Default: os.availableParallelism(); the pool falls back to one thread by
   *  itself for small matrices and while the other vCPUs are busy. */
  threads?: number;
  /** Bytes of weights the model will place in wasm memory (checked against the 4 GiB wasm32 limit). */
  weightBytes?: number;
  /** Where the auto fallback notice goes (default: stderr). */
  notice?: (message: string) => void;
}

export interface Backends {
  /** In priority order, the reference backend last. */
  readonly list: Backend[];
  /** The wasm backend when in use. */
  readonly wasm?: WasmBackend;
  /** Copies a weight into the fast backend's memory and returns the tensor to keep (a view of that memory,
   *  so the weights are held once); the tensor itself when there is no fast backend. */
  place(t: HostTensor): HostTensor;
  /** Stops worker threads. */
  dispose(): void;
}

/** Headroom below 4 GiB for the KV cache, activations and scratch. */
const WASM_WEIGHT_LIMIT = 4 * 2 ** 30 - 256 * 2 ** 20;

export async function createBackends(o: BackendOptions = {}): Promise<Backends> {
  const choice = o.backend ?? 'auto';
  if (!BACKEND_CHOICES.includes(choice)) throw new InvalidArgumentError(`backend: expected one of ${BACKEND_CHOICES.join(', ')}, got ${JSON.stringify(choice)}`);
  if (o.threads !== undefined && (!Number.isInteger(o.threads) || o.threads < 1)) throw new InvalidArgumentError(`threads: expected a positive integer, got ${o.threads}`);
  const reference: Backends = { list: [referenceBackend], place: (t) => t, dispose: () => {} };
  if (choice === 'reference') return reference;
  const notice = o.notice ?? ((m: string) => process.stderr.write(`[ristretto] ${m}\n`));
  if (o.weightBytes !== undefined && o.weightBytes > WASM_WEIGHT_LIMIT) {
    const msg = `the weights (${(o.weightBytes / 2 ** 30).toFixed(2)} GiB) do not fit one 4 GiB WebAssembly memory; use a quantized file (Q8_0/Q4_0)`;
    if (choice === 'wasm') throw new RistrettoError('UNSUPPORTED', `wasm backend: ${msg}`);
    notice(`${msg}: using the (slow) reference backend`);
    return reference;
  }
  let wasm: WasmBackend;
  try {
    wasm = await createWasmBackend({ threads: o.threads ?? os.availableParallelism() });
  } catch (e) {
    if (choice === 'wasm') throw e;
    notice(`the WebAssembly backend is unavailable (${e instanceof Error ? e.message : String(e)}): using the reference backend`);
    return reference;
  }
  return {
    list: [wasm, referenceBackend],
    wasm,
    place: (t) => wasm.place(t),
    dispose: () => wasm.dispose(),
  };
}
