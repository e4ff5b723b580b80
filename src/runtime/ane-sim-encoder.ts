// Encoders on the simulated ANE: one text per dispatch sequence, right-padded to a bundle bucket. The prologue
// (embedding lookups, position / token-type embeddings) runs on the CPU in fp32, exactly as for decoders; the
// bundle's programs (MIL interpreter, fp16 storage) run the layers with the key-padding mask as a program input
// (0 for the text's tokens, MASK_VALUE for padding) and the output program returns the final hidden states,
// which the host pools (embed.ts). Nothing is cached: an encoder makes a single pass.

import type { LoadedBundle } from '../compile/bundle.js';
import { partitionGraph, type Partition } from '../compile/passes/partition.js';
import { RistrettoError } from '../errors.js';
import type { HostTensor } from '../formats/tensor.js';
import { buildEncoderGraph, type EncoderConfig } from '../models/encoders.js';
import { runAnePrologue } from './ane-prologue.js';

/** The text the fp16 range calibration of an in-memory encoder compile runs on. */
export const ENCODER_CALIBRATION_TEXT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she saw a big red ball.';

export class AneEncoderSimulator {
  private readonly parts = new Map<number, Partition>();

  constructor(
    readonly loaded: LoadedBundle,
    private readonly config: EncoderConfig,
    private readonly weight: (name: string) => HostTensor | undefined,
  ) {
    const m = loaded.manifest;
    if (m.encoder === undefined) throw new RistrettoError('INVALID_ARGUMENT', 'the ANE bundle was compiled for a decoder, not an encoder (no key-padding mask input, no hidden-state output)');
    if (JSON.stringify(m.model.config) !== JSON.stringify(config)) {
      throw new RistrettoError('INVALID_ARGUMENT', `the ANE bundle was compiled for a different model config (${m.model.architecture}, ${m.model.numLayers} layers, dim ${m.model.dim}); recompile it with ristretto compile`);
    }
  }

  get buckets(): readonly number[] {
    return this.loaded.manifest.buckets;
  }

  get dim(): number {
    return this.loaded.manifest.model.dim;
  }

  private partition(S: number): Partition {
    let p = this.parts.get(S);
    if (p === undefined) {
      p = partitionGraph(buildEncoderGraph(this.config, S, 1));
      this.parts.set(S, p);
    }
    return p;
  }

  /** The prologue on the CPU (fp32), in the ANE layout [1, D, 1, S], scaled by the residual scale and rounded to fp16. */
  private embed(ids: Int32Array, S: number): Float32Array {
    const positions = Int32Array.from({ length: S }, (_, i) => i);
    const inputs: Record<string, Int32Array | Float32Array> = { ids, positions, token_type_ids: new Int32Array(S), key_mask: new Float32Array(S) };
    return runAnePrologue(this.partition(S), S, this.loaded.manifest.residualScale, (n) => this.weight(n), (n) => inputs[n]!);
  }

  /**
   * Final hidden states [ids.length, dim] (row-major) of one text, right-padded with `padId` to bucket S (the
   * smallest bundle bucket that holds it when S is not given).
   */
  encode(ids: readonly number[], S?: number, padId = 0): Float32Array {
    const m = this.loaded.manifest;
    const n = ids.length;
    const bucket = S ?? m.buckets.find((b) => b >= n);
    if (bucket === undefined || !m.buckets.includes(bucket)) throw new RistrettoError('INVALID_ARGUMENT', `no ANE bundle bucket ${S ?? ''} for a text of ${n} tokens (buckets ${m.buckets.join(', ')})`);
    if (n < 1 || n > bucket) throw new RistrettoError('INVALID_ARGUMENT', `a text of ${n} tokens does not fit bucket ${bucket}`);
    const padded = new Int32Array(bucket).fill(padId);
    padded.set(ids);
    let x = this.embed(padded, bucket);
    const keyMask = new Float32Array(bucket);
    for (let i = n; i < bucket; i++) keyMask[i] = m.encoder!.keyMask.drop;
    let hidden: Float32Array | null = null;
    for (const p of m.programs.filter((q) => q.bucket === bucket)) {
      const interp = this.loaded.programs.get(p.name);
      if (interp === undefined) throw new Error(`bundle: program ${p.name} is not loaded`);
      const feed: Record<string, Float32Array> = { x };
      if (p.inputs.some((i) => i.role === 'mask')) feed['key_mask'] = keyMask;
      const out = interp.run(feed);
      for (const io of p.outputs) {
        if (io.role === 'residual') x = out[io.name]!.data as Float32Array;
        else if (io.role === 'hidden') hidden = out[io.name]!.data as Float32Array;
      }
    }
    if (hidden === null) throw new Error('bundle: no program returned the final hidden states');
    const D = this.dim;
    const rows = new Float32Array(n * D);
    for (let d = 0; d < D; d++) for (let t = 0; t < n; t++) rows[t * D + d] = hidden[d * bucket + t]!;
    return rows;
  }
}
