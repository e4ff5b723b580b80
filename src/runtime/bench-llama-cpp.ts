// The same benchmark through node-llama-cpp (llama.cpp's prebuilt CPU binary), when it is installed
// (not a dependency of the project: `npm install --no-save node-llama-cpp@3` adds it; its linux-x64 prebuilt comes from
// the npm registry). Same GGUF file, same thread count, same prompt ids, greedy decode.

export interface LlamaCppResult {
  version: string;
  threads: number;
  pp: Record<string, number>;
  pp_tok_s: number;
  tg_tok_s: number;
  tg_tokens: number;
  load_s: number;
}

/** The node-llama-cpp module when it can be imported, else null (never builds or downloads anything). */
export async function llamaCppAvailable(): Promise<{ version: string } | null> {
  try {
    const name = 'node-llama-cpp';
    await import(name);
    // its package.json is not exported: find it beside the resolved entry point
    const fs = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    let dir = fileURLToPath(import.meta.resolve(name));
    for (let i = 0; i < 6; i++) {
      dir = dir.slice(0, dir.lastIndexOf('/'));
      const f = `${dir}/package.json`;
      if (fs.existsSync(f)) {
        const pkg = JSON.parse(fs.readFileSync(f, 'utf8')) as { name?: string; version: string };
        if (pkg.name === name) return { version: pkg.version };
      }
    }
    return { version: 'unknown' };
  } catch {
    return null;
  }
}

let llamaP: Promise<unknown> | undefined;

export async function benchLlamaCpp(
  path: string,
  o: { threads: number; promptLengths: number[]; decodeTokens: number; vocabSize: number; contextLength: number; repeat?: number },
): Promise<LlamaCppResult | null> {
  const avail = await llamaCppAvailable();
  if (avail === null) return null;
  const name = 'node-llama-cpp';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const mod: any = await import(name);
  // build: 'never': only the prebuilt binary; gpu: false: the CPU backend, as ours
  llamaP ??= mod.getLlama({ gpu: false, build: 'never', logLevel: 'error', progressLogs: false });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const llama: any = await llamaP;
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const loadS = (performance.now() - t0) / 1000;
  const V = o.vocabSize;
  const rand = (n: number): number[] => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % V);
  const maxPp = Math.max(0, ...o.promptLengths);
  const ctxSize = Math.min(o.contextLength, Math.max(maxPp, o.decodeTokens + 1) + 8);
  const repeat = o.repeat ?? 1;
  try {
    const ctx = await model.createContext({ contextSize: ctxSize, batchSize: Math.max(maxPp, 1), threads: o.threads, sequences: 1 });
    const seq = ctx.getSequence();
    const pp: Record<string, number> = {};
    for (const n of o.promptLengths.filter((n) => n < ctxSize)) {
      let best = Infinity;
      for (let r = 0; r < repeat; r++) {
        await seq.clearHistory();
        const t = performance.now();
        await seq.evaluateWithoutGeneratingNewTokens(rand(n));
        best = Math.min(best, performance.now() - t);
      }
      pp[`pp${n}`] = n / (best / 1000);
    }
    const tg = Math.min(o.decodeTokens, ctxSize - 2);
    let bestTg = Infinity;
    for (let r = 0; r < repeat; r++) {
      await seq.clearHistory();
      let n = 0;
      let t = 0;
      // the first yielded token ends the 1-token prompt; time the next `tg` decode steps
      for await (const _tok of seq.evaluate([1 % V], { temperature: 0 })) {
        void _tok;
        if (n === 0) t = performance.now();
        if (n++ >= tg) break;
      }
      bestTg = Math.min(bestTg, performance.now() - t);
    }
    await ctx.dispose();
    return {
      version: avail.version, threads: o.threads, pp, pp_tok_s: Object.values(pp)[0] ?? 0,
      tg_tok_s: tg / (bestTg / 1000), tg_tokens: tg, load_s: loadS,
    };
  } finally {
    await model.dispose();
  }
}
