// Reverse-mode autodiff over the model graph: the forward pass runs the very graph the inference
// engine runs (buildGraph + a cross_entropy node), with every intermediate retained; the backward
// walks the nodes in reverse and applies one rule per op. Parameters are looked up by name, so a
// weight used twice (a tied embedding: lookup + classifier) accumulates both gradients.
//
// Rules are generic over Float32Array / Float64Array. The float32 forward runs on the execution
// backends (reference today, WebAssembly later); the float64 forward (finite-difference checks,
// float64 reference comparisons) runs on generic-forward.ts. Both feed the same backward code.

import type { Backend, ExecContext, Value } from '../backends/backend.js';
import { runGraph } from '../backends/backend.js';
import { referenceBackend } from '../backends/reference/index.js';
import { erf } from '../backends/reference/erf.js';
import { f32View } from '../backends/reference/weights.js';
import type { HostTensor } from '../formats/tensor.js';
import { Graph, Sym, type Node } from '../graph/graph.js';
import { buildGraph, modelParams, type ModelConfig } from '../models/index.js';
import { jsGemm, zerosLike, type Arr, type GemmKernels } from './gemm.js';
import { genericForward, logSumExp, ropeRotate, softmaxScores, type TrainValue } from './generic-forward.js';

export type Precision = 'f32' | 'f64';

/** Gradient buffer of input `i` of the node being differentiated (accumulate with +=), or null when none is needed. */
type GradOf = (i: number) => Arr | null;
type Rule = (node: Node, ins: TrainValue[], out: Arr, dy: Arr, grad: GradOf, gemm: GemmKernels) => void;

function F(v: TrainValue | undefined): Arr {
  if (v === undefined || v instanceof Int32Array) throw new Error('backward: expected a float value');
  return v;
}
function I(v: TrainValue | undefined): Int32Array {
  if (!(v instanceof Int32Array)) throw new Error('backward: expected an i32 value');
  return v;
}

/** Adds dy (or dy * other) into g, summing over rows when g is a broadcast row vector. */
function accumulate(g: Arr, dy: Arr, other: Arr | null, gemm?: GemmKernels): void {
  const m = g.length;
  const n = dy.length;
  // same shapes (the common case): no index arithmetic
  if (m === n && (other === null || other.length === n)) {
    if (gemm?.elementwise?.accumulate(g, dy, other) === true) return;
    if (other === null) for (let i = 0; i < n; i++) g[i] += dy[i]!;
    else for (let i = 0; i < n; i++) g[i] += dy[i]! * other[i]!;
    return;
  }
  if (other === null) for (let i = 0; i < n; i++) g[i % m] += dy[i]!;
  else {
    const k = other.length;
    for (let i = 0; i < n; i++) g[i % m] += dy[i]! * other[i % k]!;
  }
}

export const BACKWARD: Partial<Record<Node['op'], Rule>> = {
  embedding(node, ins, _out, dy, grad) {
    const g = grad(0);
    if (g === null) return;
    const ids = I(ins[1]);
    const D = node.shape[1]!;
    for (let t = 0; t < ids.length; t++) {
      const o = ids[t]! * D;
      for (let j = 0; j < D; j++) g[o + j] += dy[t * D + j]!;
    }
  },
  // Y = X W^T:  dX = dY W,  dW = dY^T X  (as GEMMs, so a fast kernel can take them).
  matmul(node, ins, _out, dy, grad, gemm) {
    const x = F(ins[0]);
    const w = F(ins[1]);
    const [T, N] = node.shape as [number, number];
    const K = x.length / T;
    const gx = grad(0);
    if (gx !== null) gemm.nn(T, K, N, dy, w, gx);
    const gw = grad(1);
    if (gw !== null) gemm.tn(N, K, T, dy, x, gw);
  },
  add(_node, _ins, _out, dy, grad, gemm) {
    const ga = grad(0);
    if (ga !== null) accumulate(ga, dy, null, gemm);
    const gb = grad(1);
    if (gb !== null) accumulate(gb, dy, null, gemm);
  },
  mul(_node, ins, _out, dy, grad, gemm) {
    const a = F(ins[0]);
    const b = F(ins[1]);
    const ga = grad(0);
    if (ga !== null) accumulate(ga, dy, b, gemm);
    const gb = grad(1);
    if (gb !== null) accumulate(gb, dy, a, gemm);
  },
  // y = x * inv * w per group of G, inv = (mean(x^2) + eps)^-1/2:
  // dx = inv * dy * w - x * inv^3 / G * sum(dy * w * x);  dw += dy * x * inv.
  rmsnorm(node, ins, _out, dy, grad, gemm) {
    const x = F(ins[0]);
    const w = F(ins[1]);
    const eps = (node as Node<'rmsnorm'>).attrs.eps;
    const G = w.length;
    const gx = grad(0);
    const gw = grad(1);
    if (gemm.elementwise?.rmsnorm(x, w, dy, eps, gx, gw) === true) return;
    for (let base = 0; base < x.length; base += G) {
      let ss = 0;
      for (let i = 0; i < G; i++) ss += x[base + i]! * x[base + i]!;
      const inv = 1 / Math.sqrt(ss / G + eps);
      if (gw !== null) for (let i = 0; i < G; i++) gw[i] += dy[base + i]! * x[base + i]! * inv;
      if (gx !== null) {
        let dot = 0;
        for (let i = 0; i < G; i++) dot += dy[base + i]! * w[i]! * x[base + i]!;
        const c = (inv * inv * inv * dot) / G;
        for (let i = 0; i < G; i++) gx[base + i] += inv * dy[base + i]! * w[i]! - x[base + i]! * c;
      }
    }
  },
  layernorm(node, ins, _out, dy, grad) {
    const x = F(ins[0]);
    const w = F(ins[1]);
    const eps = (node as Node<'layernorm'>).attrs.eps;
    const D = w.length;
    const gx = grad(0);
    const gw = grad(1);
    const gb = grad(2);
    const xhat = new Float64Array(D);
    for (let base = 0; base < x.length; base += D) {
      let mean = 0;
      for (let i = 0; i < D; i++) mean += x[base + i]!;
      mean /= D;
      let v = 0;
      for (let i = 0; i < D; i++) v += (x[base + i]! - mean) ** 2;
      const inv = 1 / Math.sqrt(v / D + eps);
      let mg = 0;
      let mgx = 0;
      for (let i = 0; i < D; i++) {
        xhat[i] = (x[base + i]! - mean) * inv;
        const g = dy[base + i]! * w[i]!;
        mg += g;
        mgx += g * xhat[i]!;
        if (gw !== null) gw[i] += dy[base + i]! * xhat[i]!;
        if (gb !== null) gb[i] += dy[base + i]!;
      }
      mg /= D;
      mgx /= D;
      if (gx !== null) for (let i = 0; i < D; i++) gx[base + i] += inv * (dy[base + i]! * w[i]! - mg - xhat[i]! * mgx);
    }
  },
  // A rotation's transpose is the inverse rotation; dims past rotaryDim pass through.
  rope(node, ins, _out, dy, grad, gemm) {
    const gx = grad(0);
    if (gx === null) return;
    const tmp = (dy instanceof Float32Array ? gemm.zeros?.(dy.length) : null) ?? zerosLike(dy, dy.length);
    tmp.set(dy);
    ropeRotate(node as Node<'rope'>, dy, I(ins[1]), tmp, -1);
    if (gemm.elementwise?.accumulate(gx, tmp, null) === true) return;
    for (let i = 0; i < tmp.length; i++) gx[i] += tmp[i]!;
  },
  // o = sum_j p_j v_j, p = softmax(scale * q.k_j) over j <= pos (causal):
  // dv_j += p_j do;  ds_j = p_j (do.v_j - do.o);  dq += scale sum_j ds_j k_j;  dk_j += scale ds_j q.
  attention(node, ins, out, dy, grad, gemm) {
    const q = F(ins[0]);
    const k = F(ins[1]);
    const v = F(ins[2]);
    const pos = I(ins[3]);
    const { nHeads, nKvHeads, headDim: hd, causal, scale } = (node as Node<'attention'>).attrs;
    const T = node.shape[0]!;
    const kW = nKvHeads * hd;
    const S = k.length / kW;
    const qW = nHeads * hd;
    const group = nHeads / nKvHeads;
    const gq = grad(0);
    const gk = grad(1);
    const gv = grad(2);
    if (gemm.attentionBackward?.({ T, S, nHeads, nKvHeads, headDim: hd, causal, scale }, q, k, v, out, dy, pos, gq, gk, gv) === true) return;
    const p = new Float64Array(S);
    const ds = new Float64Array(S);
    for (let t = 0; t < T; t++) {
      const last = causal ? pos[t]! : S - 1;
      for (let h = 0; h < nHeads; h++) {
        const qo = t * qW + h * hd;
        const ko = Math.floor(h / group) * hd;
        softmaxScores(q, k, qo, ko, kW, hd, last, scale, p);
        let doo = 0;
        for (let i = 0; i < hd; i++) doo += dy[qo + i]! * out[qo + i]!;
        for (let j = 0; j <= last; j++) {
          const vo = j * kW + ko;
          let dp = 0;
          for (let i = 0; i < hd; i++) dp += dy[qo + i]! * v[vo + i]!;
          ds[j] = p[j]! * (dp - doo) * scale;
          if (gv !== null) {
            const pj = p[j]!;
            for (let i = 0; i < hd; i++) gv[vo + i] += pj * dy[qo + i]!;
          }
        }
        if (gq !== null) {
          for (let i = 0; i < hd; i++) {
            let acc = 0;
            for (let j = 0; j <= last; j++) acc += ds[j]! * k[j * kW + ko + i]!;
            gq[qo + i] += acc;
          }
        }
        if (gk !== null) {
          for (let j = 0; j <= last; j++) {
            const d = ds[j]!;
            const o = j * kW + ko;
            for (let i = 0; i < hd; i++) gk[o + i] += d * q[qo + i]!;
          }
        }
      }
    }
  },
  silu(_node, ins, _out, dy, grad, gemm) {
    const g = grad(0);
    if (g === null) return;
    const x = F(ins[0]);
    if (gemm.elementwise?.silu(x, dy, g) === true) return;
    for (let i = 0; i < x.length; i++) {
      const s = 1 / (1 + Math.exp(-x[i]!));
      g[i] += dy[i]! * s * (1 + x[i]! * (1 - s));
    }
  },
  gelu_tanh(_node, ins, _out, dy, grad) {
    const g = grad(0);
    if (g === null) return;
    const x = F(ins[0]);
    const c = Math.sqrt(2 / Math.PI);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      const th = Math.tanh(c * (v + 0.044715 * v * v * v));
      g[i] += dy[i]! * (0.5 * (1 + th) + 0.5 * v * (1 - th * th) * c * (1 + 3 * 0.044715 * v * v));
    }
  },
  gelu_erf(_node, ins, _out, dy, grad) {
    const g = grad(0);
    if (g === null) return;
    const x = F(ins[0]);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      g[i] += dy[i]! * (0.5 * (1 + erf(v / Math.SQRT2)) + (v * Math.exp(-0.5 * v * v)) / Math.sqrt(2 * Math.PI));
    }
  },
  slice_rows(node, _ins, _out, dy, grad) {
    const g = grad(0);
    if (g === null) return;
    const C = node.shape[1]!;
    const o = (node as Node<'slice_rows'>).attrs.start * C;
    for (let i = 0; i < dy.length; i++) g[o + i] += dy[i]!;
  },
  slice_cols(node, _ins, _out, dy, grad) {
    const g = grad(0);
    if (g === null) return;
    const { start, count } = (node as Node<'slice_cols'>).attrs;
    const T = node.shape[0]!;
    const C = g.length / T;
    for (let t = 0; t < T; t++) for (let i = 0; i < count; i++) g[t * C + start + i] += dy[t * count + i]!;
  },
  // d loss / d logits = (softmax - onehot(target)) / n for counted rows.
  cross_entropy(_node, ins, _out, dy, grad, gemm) {
    const g = grad(0);
    if (g === null) return;
    const x = F(ins[0]);
    const tgt = I(ins[1]);
    const T = tgt.length;
    const V = x.length / T;
    let cnt = 0;
    for (let t = 0; t < T; t++) if (tgt[t]! >= 0) cnt++;
    if (cnt === 0) return;
    const s = dy[0]! / cnt;
    if (gemm.crossEntropyBackward?.(x, tgt, s, g) === true) return;
    for (let t = 0; t < T; t++) {
      const y = tgt[t]!;
      if (y < 0) continue;
      const o = t * V;
      const lse = logSumExp(x, o, V);
      for (let i = 0; i < V; i++) g[o + i] += s * Math.exp(x[o + i]! - lse);
      g[o + y] -= s;
    }
  },
};

/** The model's training graph: its forward graph (no KV cache, logits for every row) plus cross_entropy. */
export function buildLossGraph(config: ModelConfig, seqLen: number): Graph {
  const g = buildGraph(config, { seqLen, cacheLen: null, logits: 'all' });
  const lid = g.outputs.get('logits');
  if (lid === undefined) throw new Error('the model graph has no logits output');
  const ln = g.node(lid);
  const logits = new Sym(g, lid, ln.shape, ln.type);
  const targets = g.add('input', [], { name: 'targets', shape: [seqLen], type: 'i32' }, 'targets');
  g.output('loss', g.add('cross_entropy', [logits, targets], {} as Record<string, never>));
  return g;
}

export interface TrainGraphOptions {
  precision?: Precision;
  /** Forward execution backends for the float32 path (the reference backend is appended). */
  backends?: readonly Backend[];
  gemm?: GemmKernels;
  /** Reuse the weight tensors handed to the backends across forwards until weightsChanged() (a
   *  backend that copies weights, like wasm, then uploads them once per optimizer step, not per
   *  sequence). Off by default: callers that edit parameters in place must call weightsChanged(). */
  cacheWeights?: boolean;
}

/**
 * One compiled training step for a sequence length: forward (retaining activations) and backward
 * for one sequence, accumulating parameter gradients by name.
 */
export class TrainGraph {
  readonly graph: Graph;
  readonly precision: Precision;
  readonly params: Map<string, number[]>;
  private readonly backends: readonly Backend[];
  private readonly gemm: GemmKernels;
  private readonly needsGrad: Uint8Array;
  private readonly lossId: number;
  private readonly cacheWeights: boolean;
  private weightCache = new Map<string, HostTensor>();

  constructor(readonly config: ModelConfig, readonly seqLen: number, o: TrainGraphOptions = {}) {
    this.cacheWeights = o.cacheWeights ?? false;
    this.graph = buildLossGraph(config, seqLen);
    this.precision = o.precision ?? 'f32';
    this.backends = [...(o.backends ?? []), referenceBackend];
    this.gemm = o.gemm ?? jsGemm;
    this.params = modelParams(config);
    this.lossId = this.graph.outputs.get('loss')!;
    this.needsGrad = gradientMask(this.graph);
    for (const n of this.graph.nodes) {
      if (this.needsGrad[n.id] === 1 && n.op !== 'param' && BACKWARD[n.op] === undefined) {
        throw new Error(`op "${n.op}" has no backward rule (node ${n.id})`);
      }
    }
  }

  /** Parameters were updated in place: the next forward hands fresh weight tensors to the backends. */
  weightsChanged(): void {
    this.weightCache = new Map();
  }

  /** Runs the forward pass; returns every node's value (ids/targets: one sequence, positions 0..T-1). */
  forward(params: ReadonlyMap<string, Arr>, ids: Int32Array, targets: Int32Array, retain = true, views = false): TrainValue[] {
    const T = this.seqLen;
    if (ids.length !== T || targets.length !== T) throw new Error(`forward: expected ${T} ids and targets, got ${ids.length} and ${targets.length}`);
    const positions = new Int32Array(T);
    for (let i = 0; i < T; i++) positions[i] = i;
    const inputs: Record<string, Int32Array> = { ids, positions, targets };
    const param = (name: string): Arr => {
      const p = params.get(name);
      if (p === undefined) throw new Error(`parameter "${name}" is missing`);
      return p;
    };
    if (this.precision === 'f64') return forwardGeneric(this.graph, params, inputs, this.gemm);
    const tensors = this.cacheWeights ? this.weightCache : new Map<string, HostTensor>();
    const ctx: ExecContext = {
      weight: (name) => {
        let t = tensors.get(name);
        // a cached tensor is only reused for the same parameter array (another params map: refresh)
        const q = params.get(name);
        if (t !== undefined && (q === undefined || t.data.buffer !== q.buffer || t.data.byteOffset !== q.byteOffset)) t = undefined;
        if (t === undefined) {
          const p = param(name);
          if (!(p instanceof Float32Array)) throw new Error(`parameter "${name}" must be float32 on the f32 path`);
          t = { name, dtype: 'f32', shape: this.params.get(name)!, data: new Uint8Array(p.buffer, p.byteOffset, p.byteLength) };
          tensors.set(name, t);
        }
        return t;
      },
      state: () => {
        throw new Error('training graphs have no state');
      },
      input: (name) => {
        const v = inputs[name];
        if (v === undefined) throw new Error(`graph input "${name}" was not fed`);
        return v;
      },
    };
    const retained: (Value | undefined)[] = new Array(this.graph.nodes.length);
    // views: retained values may stay in a backend's memory until its next run (accumulateGradients reads
    // them before any other run); otherwise they are copies that outlive the run
    const out = runGraph(this.graph, this.backends, ctx, retain ? { retain: retained, retainViews: views } : {});
    if (!retain) {
      const vals: TrainValue[] = new Array(this.graph.nodes.length);
      vals[this.lossId] = out.get('loss')!.data as Float32Array;
      return vals;
    }
    return retained.map((v) => (v === undefined ? (undefined as unknown as TrainValue) : v.kind === 'dense' ? v.data : f32View(v.tensor)!));
  }

  /** Mean cross-entropy of one sequence (forward only). */
  loss(params: ReadonlyMap<string, Arr>, ids: Int32Array, targets: Int32Array): number {
    return (this.forward(params, ids, targets, false)[this.lossId] as Arr)[0]!;
  }

  /**
   * Forward + backward for one sequence. Adds `seed * d loss / d param` into `grads` (allocated by
   * the caller, one array per parameter name) and returns the sequence's loss.
   */
  accumulateGradients(params: ReadonlyMap<string, Arr>, ids: Int32Array, targets: Int32Array, seed: number, grads: Map<string, Arr>): number {
    const vals = this.forward(params, ids, targets, true, true);
    const loss = vals[this.lossId] as Arr;
    const seedArr = zerosLike(loss, 1);
    seedArr[0] = seed;
    backwardPass(this.graph, vals, new Map([[this.lossId, seedArr]]), grads, this.gemm, this.needsGrad);
    return loss[0]!;
  }
}

/** Which nodes depend on a parameter (and so need a gradient). */
export function gradientMask(graph: Graph): Uint8Array {
  const ng = new Uint8Array(graph.nodes.length);
  for (const n of graph.nodes) {
    if (n.op === 'param') ng[n.id] = 1;
    else if (n.op !== 'input' && n.op !== 'state') ng[n.id] = n.inputs.some((i) => ng[i] === 1) ? 1 : 0;
  }
  return ng;
}

/** Runs every node with the generic (float32/float64) forward; params and inputs by name. */
export function forwardGeneric(graph: Graph, params: ReadonlyMap<string, Arr>, inputs: Record<string, Int32Array>, gemm: GemmKernels = jsGemm): TrainValue[] {
  const vals: TrainValue[] = new Array(graph.nodes.length);
  for (const n of graph.nodes) {
    if (n.op === 'param') {
      const p = params.get((n as Node<'param'>).attrs.name);
      if (p === undefined) throw new Error(`parameter "${(n as Node<'param'>).attrs.name}" is missing`);
      vals[n.id] = p;
    } else if (n.op === 'input') {
      const v = inputs[(n as Node<'input'>).attrs.name];
      if (v === undefined) throw new Error(`graph input "${(n as Node<'input'>).attrs.name}" was not fed`);
      vals[n.id] = v;
    } else vals[n.id] = genericForward(n, n.inputs.map((i) => vals[i]!), gemm);
  }
  return vals;
}

/**
 * Reverse pass over `graph` given every forward value: `seeds` maps node ids to d objective / d value.
 * Parameter gradients are added into `grads` by parameter name (tied uses accumulate).
 */
export function backwardPass(
  graph: Graph, vals: TrainValue[], seeds: ReadonlyMap<number, Arr>, grads: Map<string, Arr>,
  gemm: GemmKernels = jsGemm, needsGrad: Uint8Array = gradientMask(graph),
): void {
  const nodes = graph.nodes;
  const g: (Arr | undefined)[] = new Array(nodes.length);
  for (const [id, s] of seeds) g[id] = s;
  gemm.backwardBegin?.();
  for (let id = nodes.length - 1; id >= 0; id--) {
    const node = nodes[id]!;
    const dy = g[id];
    if (dy === undefined || node.op === 'param') continue;
    g[id] = undefined;
    const rule = BACKWARD[node.op];
    if (rule === undefined) throw new Error(`op "${node.op}" has no backward rule (node ${node.id})`);
    const gradOf: GradOf = (i) => {
      const src = node.inputs[i]!;
      if (needsGrad[src] !== 1) return null;
      const sn = nodes[src]!;
      if (sn.op === 'param') {
        const name = (sn as Node<'param'>).attrs.name;
        const buf = grads.get(name);
        if (buf === undefined) throw new Error(`no gradient buffer for parameter "${name}"`);
        return buf;
      }
      let b = g[src];
      if (b === undefined) {
        const n = (vals[src] as Arr).length;
        // float32 gradients in the kernels' memory when they offer it (no copies into the GEMMs)
        b = (dy instanceof Float32Array ? gemm.zeros?.(n) : null) ?? zerosLike(dy, n);
        g[src] = b;
      }
      return b;
    };
    rule(node, node.inputs.map((i) => vals[i]!), vals[id] as Arr, dy, gradOf, gemm);
  }
}
