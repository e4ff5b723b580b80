// Decode slots: at most `parallel` requests generate at once, each on its slot's own preallocated KV cache; up to
// `queue` more wait in FIFO order; beyond that acquire() fails at once (HTTP 429). A waiter whose signal aborts
// (client gone) leaves the queue; a slot is released exactly once when its request ends, however it ends.

import { AbortError } from '../errors.js';

export class QueueFullError extends Error {
  constructor(readonly parallel: number, readonly queue: number) {
    super(`the server is busy: ${parallel} requests are generating and ${queue} are waiting; retry later`);
    this.name = 'QueueFullError';
  }
}

export interface Slot<T> {
  readonly id: number;
  /** The slot's resource (a KV-cache session), created on first use and kept for the next request. */
  readonly resource: T;
  release(): void;
}

interface Waiter<T> {
  resolve(slot: Slot<T>): void;
  reject(e: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class SlotPool<T> {
  private readonly free: number[] = [];
  private readonly resources: (T | undefined)[];
  private readonly waiters: Waiter<T>[] = [];
  private busyCount = 0;

  constructor(
    readonly parallel: number,
    readonly queueLimit: number,
    private readonly create: (id: number) => T,
  ) {
    for (let i = parallel - 1; i >= 0; i--) this.free.push(i);
    this.resources = new Array(parallel).fill(undefined);
  }

  get busy(): number {
    return this.busyCount;
  }

  get queued(): number {
    return this.waiters.length;
  }

  get idle(): number {
    return this.parallel - this.busyCount;
  }

  /**
   * A free slot now, or the next one released (FIFO). `score` ranks the free slots by their resource (undefined
   * before first use): the highest wins, ties go to the most recently freed.
   */
  acquire(signal?: AbortSignal, score?: (resource: T | undefined) => number): Promise<Slot<T>> {
    if (signal?.aborted) return Promise.reject(new AbortError('the client went away while queued'));
    const id = score === undefined ? this.free.pop() : this.takeBest(score);
    if (id !== undefined) return Promise.resolve(this.take(id));
    if (this.waiters.length >= this.queueLimit) return Promise.reject(new QueueFullError(this.parallel, this.queueLimit));
    return new Promise((resolve, reject) => {
      const w: Waiter<T> = { resolve, reject, signal };
      if (signal !== undefined) {
        w.onAbort = () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new AbortError('the client went away while queued'));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.push(w);
    });
  }

  /** Rejects every queued request (shutdown). */
  rejectQueued(e: unknown): void {
    for (const w of this.waiters.splice(0)) {
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.reject(e);
    }
  }

  private takeBest(score: (resource: T | undefined) => number): number | undefined {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = this.free.length - 1; i >= 0; i--) {
      const s = score(this.resources[this.free[i]!]);
      if (s > bestScore) {
        bestScore = s;
        best = i;
      }
    }
    return best < 0 ? undefined : this.free.splice(best, 1)[0];
  }

  private take(id: number): Slot<T> {
    this.busyCount++;
    let released = false;
    const resource = (this.resources[id] ??= this.create(id));
    return {
      id,
      resource,
      release: () => {
        if (released) return;
        released = true;
        this.busyCount--;
        const w = this.waiters.shift();
        if (w !== undefined) {
          if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
          w.resolve(this.take(id));
        } else this.free.push(id);
      },
    };
  }
}
