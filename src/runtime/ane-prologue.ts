// The prologue of an ANE bundle (embedding lookups, position / token-type embeddings) on the CPU: the partition's
// prologue nodes run on the reference kernels in fp32, and the first residual comes back in the ANE layout
// [1, D, 1, S], scaled by the bundle's residual scale and rounded to fp16. Shared by the decoder and encoder simulators.

import { referenceBackend } from '../backends/reference/index.js';
import type { Dense, ExecContext, Kernel, Value } from '../backends/backend.js';
import { roundF16InPlace } from '../compile/fp16.js';
import type { Partition } from '../compile/passes/partition.js';
import type { HostTensor } from '../formats/tensor.js';

export function runAnePrologue(
  part: Partition,
  S: number,
  residualScale: number,
  weight: (name: string) => HostTensor | undefined,
  input: (name: string) => Int32Array | Float32Array,
): Float32Array {
  const g = part.graph;
  const ctx: ExecContext = {
    weight: (n) => {
      const t = weight(n);
      if (t === undefined) throw new Error(`weight "${n}" is missing`);
      return t;
    },
    state: () => {
      throw new Error('no state in the prologue');
    },
    input,
  };
  const vals = new Map<number, Value>();
  const need = new Set<number>(part.prologue);
  for (const id of part.prologue) for (const i of g.node(id).inputs) need.add(i);
  for (const id of [...need].sort((a, b) => a - b)) {
    const n = g.node(id);
    const k = referenceBackend.kernels[n.op] as Kernel | undefined;
    if (k === undefined) throw new Error(`no reference kernel for ${n.op}`);
    vals.set(id, k(n, n.inputs.map((i) => vals.get(i)!), ctx));
  }
  const x0 = (vals.get(part.residual0) as Dense).data as Float32Array;
  const D = g.node(part.residual0).shape[1]!;
  const out = new Float32Array(D * S);
  for (let s = 0; s < S; s++) for (let d = 0; d < D; d++) out[d * S + s] = x0[s * D + d]! * residualScale;
  return roundF16InPlace(out);
}
