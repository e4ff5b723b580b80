// `ristretto audit DIR`: per program, op counts by type, FLOPs, weight bytes, SRAM fit, the device the plan
// gives it and why, and compile-budget use; then the plan's decisions and the fp16 range report.

import { numel, opCounts, type MilProgram, type MilType } from './mil/ast.js';
import { parseMil } from './mil/parse.js';
import type { Bundle, Manifest } from './bundle.js';
import { SRAM_BYTES } from './plan.js';

export interface ProgramAudit {
  name: string;
  bucket: number;
  kind: string;
  layers: number[];
  ops: Record<string, number>;
  flops: number;
  weightBytes: number;
  /** Weights + inputs/outputs + the largest intermediate tensor, in bytes. */
  workingSetBytes: number;
  sramFit: boolean;
  device: string;
  why: string;
  /** 1-based position in the compile order, against the budget. */
  compileIndex: number;
  budget: number;
  /** Program inputs (name, shape, role): x, plus the mask / K/V cache / RoPE inputs of chunked-prefill programs. */
  inputs: { name: string; shape: number[]; role: string }[];
}

export interface AuditReport {
  model: Manifest['model'];
  buckets: number[];
  programs: ProgramAudit[];
  totalPrograms: number;
  budget: number;
  decisions: string[];
  classifier: Manifest['plan']['classifier'];
  decode: Manifest['plan']['decode'];
  prefill: Manifest['plan']['prefill'];
  fp16: Manifest['fp16'];
  io: string[];
  /** Encoder bundles: the mask input, GELU lowering, positions, output. */
  encoder?: Manifest['encoder'];
  /** Decoder bundles with chunked-prefill programs: cache length, mask, RoPE inputs. */
  chunked?: Manifest['chunked'];
}

/** FLOPs, weight bytes and the largest intermediate of one parsed program (counted from declared types). */
export function programCost(p: MilProgram): { ops: Record<string, number>; flops: number; weightBytes: number; largest: number } {
  const f = p.functions[0]!;
  const types = new Map<string, MilType>();
  for (const i of f.inputs) types.set(i.name, i.type);
  let flops = 0;
  let weightBytes = 0;
  let largest = 0;
  const shapeOf = (name: string | undefined): number[] => (name !== undefined ? (types.get(name)?.shape ?? []) : []);
  for (const s of f.body) {
    types.set(s.name, s.type);
    const out = s.type.shape ?? [];
    const n = numel(out);
    const arg = (k: string): string | undefined => {
      const a = s.args.find((x) => x.key === k);
      return a?.value.kind === 'ref' ? a.value.name : undefined;
    };
    if (s.op === 'const') {
      const v = s.attrs.find((a) => a.key === 'val')?.value;
      if (v?.kind === 'blob') weightBytes += numel(v.type.shape!) * (v.type.dtype === 'int8' ? 1 : 2);
      continue;
    }
    largest = Math.max(largest, n * 2);
    switch (s.op) {
      case 'conv': {
        const w = shapeOf(arg('weight'));
        flops += 2 * n * (w[1] ?? 1) * (w[2] ?? 1) * (w[3] ?? 1);
        break;
      }
      case 'matmul': {
        const x = shapeOf(arg('x'));
        const tx = s.args.find((a) => a.key === 'transpose_x');
        const txv = tx?.value.kind === 'ref' && tx.value.name.startsWith('true');
        const K = txv ? x[x.length - 2]! : x[x.length - 1]!;
        flops += 2 * n * K;
        break;
      }
      case 'reduce_sum':
        flops += numel(shapeOf(arg('x')));
        break;
      case 'softmax':
        flops += 5 * n;
        break;
      case 'reshape':
      case 'transpose':
      case 'concat':
      case 'slice_by_size':
      case 'cast':
        break;
      default:
        flops += n;
    }
  }
  return { ops: opCounts(f), flops, weightBytes, largest };
}

export function auditBundle(b: Bundle): AuditReport {
  const m = b.manifest;
  const programs: ProgramAudit[] = m.programs.map((p, i) => {
    const cost = programCost(parseMil(b.texts.get(p.file)!, p.file));
    const io = [...p.inputs, ...p.outputs].reduce((a, x) => a + x.surfaceBytes, 0);
    const ws = cost.weightBytes + io + cost.largest;
    return {
      name: p.name, bucket: p.bucket, kind: p.kind, layers: p.layers, ops: cost.ops, flops: cost.flops,
      weightBytes: cost.weightBytes, workingSetBytes: ws, sramFit: ws <= SRAM_BYTES, device: p.device, why: p.why,
      compileIndex: i + 1, budget: m.plan.budget, inputs: p.inputs.map((x) => ({ name: x.name, shape: x.shape, role: x.role })),
    };
  });
  // One line per distinct surface shape, naming the roles that use it.
  const byShape = new Map<string, { names: Set<string>; x: Manifest['programs'][number]['inputs'][number] }>();
  for (const p of m.programs) {
    for (const x of [...p.inputs, ...p.outputs]) {
      const key = x.shape.join('x');
      const e = byShape.get(key) ?? { names: new Set<string>(), x };
      e.names.add(x.role === 'k' || x.role === 'v' ? `${x.role}_l*` : x.role === 'k_cache' || x.role === 'v_cache' ? `${x.role}_l*` : x.name);
      byShape.set(key, e);
    }
  }
  const io = [...byShape.values()].map(({ names, x }) => `[${x.shape.join(', ')}] fp16 (${[...names].join(', ')}): stride ${x.spatialStride}, ${x.bytes} B -> surface ${x.surfaceBytes} B (${x.surfaceNote})`);
  return {
    model: m.model, buckets: m.buckets, programs, totalPrograms: m.programs.length, budget: m.plan.budget,
    decisions: m.plan.reasons, classifier: m.plan.classifier, decode: m.plan.decode, prefill: m.plan.prefill, fp16: m.fp16, io,
    ...(m.encoder ? { encoder: m.encoder } : {}),
    ...(m.chunked ? { chunked: m.chunked } : {}),
  };
}

function human(n: number): string {
  const units = ['', 'K', 'M', 'G', 'T'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(n < 10 && i > 0 ? 2 : 0)}${units[i]}`;
}

export function formatAudit(r: AuditReport): string {
  const out: string[] = [];
  out.push(`ANE bundle: ${r.model.architecture}, ${r.model.numLayers} layers, dim ${r.model.dim}, vocab ${r.model.vocab}${r.model.path ? ` (${r.model.path})` : ''}`);
  out.push(`buckets: ${r.buckets.join(', ')}; compile budget: ${r.totalPrograms} / ${r.budget} programs`);
  out.push('');
  out.push('plan:');
  for (const d of r.decisions) out.push(`  - ${d}`);
  out.push(`  - ${r.prefill.reason}`);
  out.push(`  - ${r.decode.reason}`);
  if (r.encoder) {
    out.push('');
    out.push('encoder:');
    out.push(`  - output: final hidden states ("${r.encoder.output}", [1, ${r.model.dim}, 1, S] fp16), no classifier; pooling, normalisation and quantization on the host`);
    out.push(`  - key-padding mask: program input ${r.encoder.keyMask.input} [1, 1, 1, S] fp16, ${r.encoder.keyMask.keep} keep / ${r.encoder.keyMask.drop} drop, ${r.encoder.keyMask.why}; no causal mask constant`);
    out.push(`  - positions: ${r.encoder.positions}`);
    if (r.encoder.gelu) out.push(`  - GELU: ${r.encoder.gelu}`);
    if (r.encoder.postNorm) out.push('  - post-norm (LayerNorm after each residual add): programs start with the LayerNorm of their input');
  }
  if (r.chunked) {
    const c = r.chunked;
    out.push('');
    out.push('chunked prefill:');
    out.push(`  - chunks of ${c.bucket} tokens (the last padded), prompts up to ${c.maxPrompt} tokens; chunk 1 runs the ordinary bucket-${c.bucket} programs, chunks 2.. the ${c.groups.length} *_chunk program(s) (${c.groups.join(', ')}) plus the ordinary FFN / classifier programs`);
    out.push(`  - K/V cache (cache length ${c.cache}): ${c.cacheWhy}`);
    out.push(`  - mask: program input ${c.mask.input} [${c.mask.shape.join(', ')}] fp16, ${c.mask.keep} keep / ${c.mask.drop} drop: ${c.mask.why}`);
    out.push(`  - RoPE: ${c.ropeWhy}`);
  }
  out.push('');
  out.push('fp16 range:');
  for (const n of r.fp16.notes) out.push(`  - ${n}`);
  for (const k of r.fp16.kernels) out.push(`  - ${k.name}: max |value| ${k.maxAbs.toPrecision(4)} (headroom x${k.headroom.toPrecision(3)} below 65504)`);
  out.push('');
  out.push('IOSurfaces (spatial stride padded to 32, minimum 49,152 bytes):');
  for (const l of r.io) out.push(`  - ${l}`);
  out.push('');
  out.push('programs:');
  for (const p of r.programs) {
    const ops = Object.entries(p.ops).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
    out.push(`  [${p.compileIndex}/${p.budget}] ${p.name} (${p.kind}${p.layers.length ? `, layer ${p.layers.join(',')}` : ''}, bucket ${p.bucket}) -> ${p.device.toUpperCase()}`);
    if (p.inputs.length > 1) out.push(`      inputs: ${p.inputs.map((i) => `${i.name} [${i.shape.join(', ')}]`).join(', ')}`);
    out.push(`      ops: ${ops}`);
    out.push(`      FLOPs ${human(p.flops)}, weights ${human(p.weightBytes)}B, working set ${human(p.workingSetBytes)}B: ${p.sramFit ? 'fits' : 'does NOT fit'} the ~32 MB SRAM`);
    out.push(`      why: ${p.why}`);
  }
  return out.join('\n') + '\n';
}
