// Pass 2: fp16 range guard. Runs the fp32 reference over a calibration sequence, records the largest
// magnitude every node reaches (and, for norms, the largest sum of squares the fp16 `reduce_sum` would
// hold), reports where fp16 (max 65504) would overflow, and picks a power-of-two residual scale
// (pplx-embed's residual rescaling) when the residual stream or its norms' sums of squares need it.

import { referenceBackend } from '../../backends/reference/index.js';
import { runGraph, type Backend, type Kernel as BKernel, type KernelTable, type Value } from '../../backends/backend.js';
import type { Graph } from '../../graph/graph.js';
import type { OpName } from '../../graph/ops.js';
import type { HostTensor } from '../../formats/tensor.js';
import { FP16_MAX } from '../fp16.js';
import type { Partition } from './partition.js';

export interface RangeSite {
  kernel: string;
  node: number;
  op: string;
  maxAbs: number;
}

export interface Fp16Report {
  calibrationTokens: number;
  /** Largest |value| on the residual stream (before rescaling). */
  residualMaxAbs: number;
  /** Largest sum of squares a residual norm's reduce_sum holds (before rescaling). */
  residualNormSumSq: number;
  /** Power of two the residual stream is multiplied by (1 = no rescaling). */
  residualScale: number;
  /** Per kernel: largest |value| of any node inside (after rescaling where it applies). */
  kernels: { name: string; maxAbs: number; headroom: number }[];
  /** Sites whose values would overflow fp16 (> 65504) even after rescaling. */
  overflow: RangeSite[];
  notes: string[];
}

/** Headroom kept below fp16's max on the residual stream (the branch adds on top of it). */
const RESIDUAL_LIMIT = 16384;

export function calibrateFp16(
  part: Partition,
  weights: (name: string) => HostTensor,
  ids: Int32Array,
): Fp16Report {
  const g: Graph = part.graph;
  const T = g.nodes.find((n) => n.op === 'input' && n.name === 'ids')!.shape[0]!;
  const maxAbs = new Float64Array(g.nodes.length);
  const sumSq = new Float64Array(g.nodes.length);
  const kernels: KernelTable = {};
  for (const [op, k] of Object.entries(referenceBackend.kernels) as [OpName, BKernel][]) {
    (kernels as Record<string, BKernel>)[op] = (node, inputs: Value[], ctx) => {
      const v = k(node, inputs, ctx);
      if (v.kind === 'dense' && v.data instanceof Float32Array) {
        let m = 0;
        for (const x of v.data) if (Math.abs(x) > m) m = Math.abs(x);
        maxAbs[node.id] = m;
      }
      if ((node.op === 'rmsnorm' || node.op === 'layernorm') && inputs[0]!.kind === 'dense') {
        const x = inputs[0]!.data as Float32Array;
        const G = node.op === 'rmsnorm' ? (node.shape[1]! / (inputs[1]!.kind === 'weight' ? inputs[1]!.tensor.shape[0]! : (inputs[1]!.data.length))) : 1;
        const D = node.shape[1]! / G;
        let best = 0;
        for (let base = 0; base < x.length; base += D) {
          let mean = 0;
          if (node.op === 'layernorm') {
            for (let i = 0; i < D; i++) mean += x[base + i]!;
            mean /= D;
          }
          let s = 0;
          for (let i = 0; i < D; i++) s += (x[base + i]! - mean) ** 2;
          best = Math.max(best, s);
        }
        sumSq[node.id] = best;
      }
      return v;
    };
  }
  const backend: Backend = { name: 'fp16-calibration', kernels };
  const full = new Int32Array(T);
  for (let i = 0; i < T; i++) full[i] = ids[i % ids.length]!;
  const positions = Int32Array.from({ length: T }, (_, i) => i);
  runGraph(g, [backend], {
    weight: weights,
    state: () => {
      throw new Error('calibration graph has no state');
    },
    // encoders: one segment (token types 0), no padding (key_mask all 0 = keep)
    input: (name) => (name === 'ids' ? full : name === 'key_mask' ? new Float32Array(T) : name === 'token_type_ids' ? new Int32Array(T) : positions),
  });

  const residual = [part.residual0, ...part.kernels.filter((k) => k.kind !== 'classifier' && k.kind !== 'output').map((k) => k.output)];
  const residualMaxAbs = Math.max(...residual.map((id) => maxAbs[id]!));
  const normSites = part.kernels.flatMap((k) => k.residualNorms);
  const residualNormSumSq = Math.max(0, ...normSites.map((id) => sumSq[id]!));
  const need = Math.max(residualMaxAbs / RESIDUAL_LIMIT, Math.sqrt(residualNormSumSq / RESIDUAL_LIMIT));
  // Post-norm blocks (BERT) renormalise every residual sum, and their residual add sums the branch with a
  // LayerNorm output (not the stream): no rescaling there; fp16 overflow, if any, is reported below.
  const residualScale = need > 1 && !part.postNorm ? 2 ** -Math.ceil(Math.log2(need)) : 1;
  const notes: string[] = [];
  if (need > 1 && part.postNorm) {
    notes.push(`post-norm blocks: no residual rescaling (each sum is renormalised by a LayerNorm); max |x| ${residualMaxAbs.toExponential(3)}, largest norm sum of squares ${residualNormSumSq.toExponential(3)} exceed ${RESIDUAL_LIMIT}`);
  } else if (residualScale !== 1) {
    notes.push(
      `residual stream rescaled by ${residualScale} (max |x| ${residualMaxAbs.toExponential(3)}, largest norm sum of squares ${residualNormSumSq.toExponential(3)}): ` +
        'embeddings and every branch output are multiplied by it, residual norms use eps x scale^2 (norms are scale-invariant)',
    );
  } else {
    notes.push(`no residual rescaling needed (max |x| ${residualMaxAbs.toPrecision(4)}, largest norm sum of squares ${residualNormSumSq.toPrecision(4)} < ${RESIDUAL_LIMIT})`);
  }
  const overflow: RangeSite[] = [];
  const resSet = new Set(residual);
  const ks = part.kernels.map((k) => {
    let m = 0;
    for (const id of k.nodes) {
      const scaled = resSet.has(id) ? maxAbs[id]! * residualScale : maxAbs[id]!;
      let v = scaled;
      if (g.nodes[id]!.op === 'rmsnorm' || g.nodes[id]!.op === 'layernorm') {
        const s = k.residualNorms.includes(id) ? sumSq[id]! * residualScale * residualScale : sumSq[id]!;
        v = Math.max(v, s);
      }
      m = Math.max(m, v);
      if (v > FP16_MAX) overflow.push({ kernel: k.name, node: id, op: g.nodes[id]!.op, maxAbs: v });
    }
    return { name: k.name, maxAbs: m, headroom: FP16_MAX / Math.max(m, 1e-30) };
  });
  if (overflow.length > 0) notes.push(`${overflow.length} site(s) would overflow fp16 even after rescaling: ${overflow.slice(0, 5).map((o) => `${o.kernel} node ${o.node} (${o.op}) max ${o.maxAbs.toExponential(3)}`).join('; ')}`);
  return { calibrationTokens: T, residualMaxAbs, residualNormSumSq, residualScale, kernels: ks, overflow, notes };
}
