// The ANE bundle: compile a loaded model into MIL programs + weight blobs + manifest (with the plan),
// write it to a directory, and load it back (parsing every .mil and resolving BLOBFILE constants).
//
//   DIR/manifest.json        model, buckets, programs (inputs/outputs, shapes, IOSurface sizes), weights, plan
//   DIR/<program>.mil        one MIL program per (program group, bucket)
//   DIR/weights/*.bin        weight blobs (one tensor per file, shared by all buckets)

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RistrettoError } from '../errors.js';
import { readTensorAsF32 } from '../formats/dtypes/index.js';
import type { HostTensor } from '../formats/tensor.js';
import { archInfo, buildGraph, type ModelConfig } from '../models/index.js';
import { buildEncoderGraph, type EncoderConfig } from '../models/encoders.js';
import { buildBlob } from './blob.js';
import { GELU_ERF_RATIONAL, lowerProgram, MASK_VALUE, type GeluErfLowering, type IoDesc, type LoweredProgram, type NormLowering, type RopeTable, type WeightRegistry } from './lower-ane.js';
import { SPEC_OPS } from './mil/ast.js';
import { emitProgram } from './mil/emit.js';
import { MilInterpreter } from './mil/interp.js';
import { parseMil } from './mil/parse.js';
import { calibrateFp16, type Fp16Report } from './passes/calibrate.js';
import { partitionGraph, type Partition } from './passes/partition.js';
import { ioSurface, makePlan, type Plan } from './plan.js';

export const BUNDLE_FORMAT = 'ristretto-ane-bundle';

export interface CompileOptions {
  buckets: number[];
  norm?: NormLowering;
  /** 0: split attention/FFN programs; N: N layers per program; undefined: the plan decides. */
  layersPerProgram?: number;
  maxLayersPerProgram?: number;
  budget?: number;
  /** Token ids for the fp16 range calibration (default: a fixed pseudo-random sequence). */
  calibrationIds?: number[];
  /** Override the residual scale the fp16 guard picks. */
  residualScale?: number;
  /** Override of the classifier's 16M-element ANE limit. */
  classifierLimit?: number;
  /** Recorded in the manifest. */
  modelPath?: string;
  /** Compile as an encoder (output = final hidden states, key-padding mask input). Default: BERT configs and
   *  bidirectional Qwen3 (is_causal false). */
  encoder?: boolean;
  /** gelu_erf lowering (default: the rational erf-GELU; 'tanh': the tanh approximation). */
  geluErf?: GeluErfLowering;
  /** Decoders: the longest prompt the ANE prefill serves through chunked-prefill programs (default: the trained
   *  context, at most 2048; 0 or at most the largest bucket: no chunked-prefill programs). */
  context?: number;
}

/** Encoders compile by default: BERT, and Qwen3 with is_causal false (pplx-embed). */
export function isEncoderConfig(c: ModelConfig | EncoderConfig): boolean {
  return c.model_type === 'bert' || (c.model_type === 'qwen3' && !c.is_causal);
}

export interface CompileSource {
  config: ModelConfig | EncoderConfig;
  architecture: string;
  /** Parameter by (HF) name. */
  parameter: (name: string) => HostTensor | undefined;
}

export interface ManifestIo extends IoDesc {
  dtype: 'fp16';
  spatialStride: number;
  bytes: number;
  surfaceBytes: number;
  surfaceNote: string;
}

export interface ManifestProgram {
  name: string;
  file: string;
  bucket: number;
  group: string;
  kind: LoweredProgram['kind'];
  kernels: string[];
  layers: number[];
  device: 'ane';
  why: string;
  inputs: ManifestIo[];
  outputs: ManifestIo[];
  weights: string[];
  /** Chunked-prefill variant of `group` (K/V cache, mask and RoPE inputs); absent on the ordinary programs. */
  chunk?: { cache: number };
}

/** How the host drives the chunked-prefill programs (decoder bundles whose plan has them). */
export interface ChunkManifest {
  bucket: number;
  cache: number;
  maxPrompt: number;
  /** Program groups with a chunked variant; the others (FFN, classifier) run their ordinary program at `bucket`. */
  groups: string[];
  mask: { input: 'chunk_mask'; shape: [1, 1, number, number]; keep: 0; drop: number; why: string };
  /** RoPE rows the host passes as rope_cos / rope_sin [1, 1, headDim, bucket] (null: the model has no RoPE). */
  rope: RopeTable | null;
  ropeWhy: string;
  cacheWhy: string;
}

export interface Manifest {
  format: typeof BUNDLE_FORMAT;
  version: 1;
  target: 'ane';
  model: { path: string | null; architecture: string; config: ModelConfig | EncoderConfig; dim: number; vocab: number; numLayers: number; kvDim: number };
  buckets: number[];
  norm: NormLowering;
  residualScale: number;
  prologue: { device: 'cpu'; ops: string[]; why: string };
  programs: ManifestProgram[];
  weightFiles: { file: string; shape: number[]; source: string; bytes: number }[];
  cpuClassifier: { weight: string; vocab: number; dim: number } | null;
  plan: Plan;
  fp16: Fp16Report;
  /** Encoder bundles (absent for decoders): how the host feeds and reads the programs. */
  encoder?: EncoderManifest;
  /** Decoder bundles with chunked-prefill programs. */
  chunked?: ChunkManifest;
}

export interface EncoderManifest {
  /** The output program's output: final hidden states [1, dim, 1, S] (no classifier). */
  output: 'hidden';
  postNorm: boolean;
  keyMask: { input: 'key_mask'; shape: [1, 1, 1, 'S']; keep: 0; drop: number; why: string };
  gelu: string | null;
  positions: string;
}

export interface Bundle {
  manifest: Manifest;
  /** .mil texts by file name. */
  texts: Map<string, string>;
  /** Weight blobs by relative path (weights/x.bin). */
  blobs: Map<string, Uint8Array>;
}

function calibrationIds(V: number, n: number): number[] {
  let s = 12345;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % V;
  });
}

function withSurface(io: IoDesc): ManifestIo {
  const s = ioSurface(io.shape);
  return { ...io, dtype: 'fp16', spatialStride: s.stride, bytes: s.bytes, surfaceBytes: s.surfaceBytes, surfaceNote: s.note };
}

export function compileBundle(src: CompileSource, opts: CompileOptions): Bundle {
  const cfg = src.config;
  const encoder = opts.encoder ?? isEncoderConfig(cfg);
  if (!encoder && cfg.model_type === 'bert') throw new RistrettoError('INVALID_ARGUMENT', 'compile: BERT is an encoder (no LM head); it compiles as an encoder only');
  const graphFor = (S: number): Partition =>
    partitionGraph(encoder ? buildEncoderGraph(cfg as EncoderConfig, S, 1) : buildGraph(cfg as ModelConfig, { seqLen: S, cacheLen: null, logits: 'all' }));
  const probe = graphFor(1);
  const g0 = probe.graph;
  const D = g0.node(probe.residual0).shape[1]!;
  const V = encoder ? cfg.vocab_size : g0.node(probe.kernels[probe.kernels.length - 1]!.output).shape[1]!;
  const L = probe.numLayers;
  const kvDim = probe.kernels.find((k) => k.kv)?.kv ? g0.node(probe.kernels.find((k) => k.kv)!.kv!.k).shape[1]! : D;
  const plan = makePlan({
    architecture: src.architecture, numLayers: L, dim: D, vocab: V, buckets: opts.buckets,
    budget: opts.budget, layersPerProgram: opts.layersPerProgram, maxLayersPerProgram: opts.maxLayersPerProgram,
    classifierLimit: opts.classifierLimit, encoder, postNorm: probe.postNorm,
    maxPrompt: encoder ? undefined : (opts.context ?? Math.min(archInfo(cfg as ModelConfig).maxPositions, 2048)) || undefined,
  });
  const headOnCpu = plan.classifier.device === 'cpu';
  const weight = (name: string): HostTensor => {
    const t = src.parameter(name);
    if (t === undefined) throw new RistrettoError('NOT_FOUND', `compile: weight "${name}" is missing`);
    return t;
  };
  const f32cache = new Map<string, Float32Array>();
  const param = (name: string): Float32Array => {
    let v = f32cache.get(name);
    if (v === undefined) {
      v = readTensorAsF32(weight(name));
      f32cache.set(name, v);
    }
    return v;
  };

  // fp16 range guard on the smallest bucket.
  const calPart = graphFor(plan.buckets[0]!);
  const calIds = Int32Array.from(opts.calibrationIds ?? calibrationIds(V, plan.buckets[0]!));
  const fp16 = calibrateFp16(calPart, weight, calIds);
  if (calPart.postNorm && opts.residualScale !== undefined && opts.residualScale !== 1) {
    throw new RistrettoError('INVALID_ARGUMENT', 'compile: post-norm blocks (BERT) take no residual scale: each residual add sums the branch with a LayerNorm output, not the scaled stream');
  }
  const residualScale = opts.residualScale ?? fp16.residualScale;
  if (opts.residualScale !== undefined && opts.residualScale !== fp16.residualScale) fp16.notes.push(`residual scale overridden to ${opts.residualScale}`);
  const norm = opts.norm ?? 'pow';

  const files: WeightRegistry = new Map();
  const texts = new Map<string, string>();
  const programs: ManifestProgram[] = [];
  for (const S of plan.buckets) {
    const part = S === plan.buckets[0] ? calPart : graphFor(S);
    const byName = new Map(part.kernels.map((k) => [k.name, k]));
    for (const grp of plan.groups) {
      const ks = grp.kernels.map((n) => {
        const k = byName.get(n);
        if (k === undefined) throw new Error(`compile: the partition has no kernel ${n}`);
        return k;
      });
      const name = `${grp.name}_s${S}`;
      const low = lowerProgram({ part, S, opts: { norm, residualScale, headOnCpu, geluErf: opts.geluErf }, param, files }, ks, name);
      const text = emitProgram(low.program);
      for (const s of low.program.functions[0]!.body) {
        if (!SPEC_OPS.includes(s.op)) throw new Error(`compile: emitted op ${s.op} is not one the ANE spec lists`);
      }
      const file = `${name}.mil`;
      texts.set(file, text);
      const why = grp.kind === 'output'
        ? `final ${probe.postNorm ? 'LayerNorm' : 'norm'} at bucket ${S}: returns the final hidden states [1, ${D}, 1, ${S}] (no classifier); pooling, normalisation and quantization run on the host`
        : grp.kind === 'classifier'
        ? (headOnCpu ? `final norm only: ${plan.classifier.reason}` : plan.classifier.reason)
        : `prefill of ${grp.kind === 'layers' ? `layer(s) ${grp.layers.join(', ')} (attention + FFN fused)` : `layer ${grp.layers[0]} ${grp.kind}`} at bucket ${S}: ${plan.prefill.reason.split(':')[0]}`;
      programs.push({
        name, file, bucket: S, group: grp.name, kind: low.kind, kernels: low.kernels, layers: low.layers, device: 'ane', why,
        inputs: low.inputs.map(withSurface), outputs: low.outputs.map(withSurface), weights: low.weightFiles,
      });
    }
  }
  // Chunked-prefill variants of the attention-holding groups at the largest bucket (after every ordinary program,
  // so the compile order keeps the ordinary programs first).
  let chunked: ChunkManifest | undefined;
  if (plan.chunked !== null) {
    const { bucket: S, cache: C } = plan.chunked;
    const part = S === plan.buckets[0] ? calPart : graphFor(S);
    const byName = new Map(part.kernels.map((k) => [k.name, k]));
    let rope: RopeTable | null = null;
    for (const grp of plan.groups.filter((g) => plan.chunked!.groups.includes(g.name))) {
      const ks = grp.kernels.map((n) => byName.get(n)!);
      const name = `${grp.name}_s${S}_chunk`;
      const low = lowerProgram({ part, S, opts: { norm, residualScale, headOnCpu, geluErf: opts.geluErf }, param, files, chunk: { cache: C } }, ks, name);
      for (const s of low.program.functions[0]!.body) {
        if (!SPEC_OPS.includes(s.op)) throw new Error(`compile: emitted op ${s.op} is not one the ANE spec lists`);
      }
      if (low.chunk?.rope) rope = low.chunk.rope;
      const file = `${name}.mil`;
      texts.set(file, emitProgram(low.program));
      const what = grp.kind === 'layers' ? `layer(s) ${grp.layers.join(', ')} (attention + FFN fused)` : `layer ${grp.layers[0]} attention`;
      programs.push({
        name, file, bucket: S, group: grp.name, kind: low.kind, kernels: low.kernels, layers: low.layers, device: 'ane',
        why: `chunked prefill of ${what}: chunks 2.. of prompts longer than ${S} tokens (up to ${plan.chunked.maxPrompt}); inputs: x [1, ${D}, 1, ${S}], per layer the K/V cache [1, ${kvDim}, 1, ${C}] of the previous chunks, chunk_mask [1, 1, ${S}, ${C + S}]${low.chunk?.rope ? `, rope_cos / rope_sin [1, 1, ${low.chunk.rope.headDim}, ${S}]` : ''}; outputs the chunk's K/V for the host to append to its cache; one program serves every chunk offset`,
        inputs: low.inputs.map(withSurface), outputs: low.outputs.map(withSurface), weights: low.weightFiles, chunk: { cache: C },
      });
    }
    chunked = {
      bucket: S, cache: C, maxPrompt: plan.chunked.maxPrompt, groups: plan.chunked.groups,
      mask: {
        input: 'chunk_mask', shape: [1, 1, S, C + S], keep: 0, drop: MASK_VALUE,
        why: `row i (the chunk's token at position offset + i), column j < ${C}: cache slot j, kept iff j < offset; column ${C} + j: the chunk's token j, kept iff j <= i (causal); added to the scores [1, H, ${S}, ${C + S}] before the softmax, so one program serves every offset; ${MASK_VALUE} rather than -inf (finite: no fp16 overflow, no inf - inf; exp underflows to exactly 0)`,
      },
      rope,
      ropeWhy: rope === null
        ? 'no RoPE: positions enter through the host-side prologue (learned position embeddings at offset..offset+n-1)'
        : `RoPE rows as inputs rope_cos / rope_sin [1, 1, ${rope.headDim}, ${S}]: the host computes cos / sin of (offset + s) x invFreq (fp16) per chunk; baked tables are position-specific, and slicing a [context]-long baked table by an offset needs a runtime slice_by_size begin, which the spec's kernels never use`,
      cacheWhy: `per layer k_cache_l<n> / v_cache_l<n> [1, ${kvDim}, 1, ${C}] fp16 (post-RoPE K, V; ${C} columns = ${C / S} chunks of ${S}): columns 0..offset-1 hold the previous chunks, the rest zero and masked; reshaped to [1, KVH, hd, ${C}] and concatenated before the chunk's own K/V along the key axis; the chunk's K/V outputs [1, ${kvDim}, 1, ${S}] are appended by the host`,
    };
  }
  let cpuClassifier: Manifest['cpuClassifier'] = null;
  if (headOnCpu) {
    const cls = calPart.kernels[calPart.kernels.length - 1]!;
    const head = calPart.graph.node(calPart.graph.node(cls.output).inputs[1]!);
    const pname = (head.attrs as { name: string }).name;
    const file = `weights/cpu_head_${pname.replace(/[^A-Za-z0-9_]+/g, '_')}.bin`;
    files.set(file, { values: () => param(pname), shape: [V, D], source: `${pname} (CPU classifier, fp16)` });
    cpuClassifier = { weight: file, vocab: V, dim: D };
  }
  const blobs = new Map<string, Uint8Array>();
  const weightFiles: Manifest['weightFiles'] = [];
  for (const [file, w] of files) {
    const bytes = buildBlob([{ values: w.values() }]).bytes;
    blobs.set(file, bytes);
    weightFiles.push({ file, shape: w.shape, source: w.source, bytes: bytes.length });
  }
  const manifest: Manifest = {
    format: BUNDLE_FORMAT,
    version: 1,
    target: 'ane',
    model: { path: opts.modelPath ?? null, architecture: src.architecture, config: cfg, dim: D, vocab: V, numLayers: L, kvDim },
    buckets: plan.buckets,
    norm,
    residualScale,
    prologue: {
      device: 'cpu',
      ops: calPart.prologue.map((id) => calPart.graph.node(id).op),
      why: `embedding lookups (a gather) run on the CPU${residualScale !== 1 ? `, scaled by the residual scale ${residualScale}` : ''}; the result enters the first program as [1, ${D}, 1, S] fp16`,
    },
    programs,
    weightFiles,
    cpuClassifier,
    plan,
    fp16,
    ...(chunked ? { chunked } : {}),
  };
  if (encoder) {
    const gelu = g0.nodes.find((n) => n.op === 'gelu_erf' || n.op === 'gelu_tanh');
    manifest.encoder = {
      output: 'hidden',
      postNorm: probe.postNorm,
      keyMask: {
        input: 'key_mask', shape: [1, 1, 1, 'S'], keep: 0, drop: MASK_VALUE,
        why: `added to the attention scores of every head and query; ${MASK_VALUE} rather than -inf: finite, so no fp16 overflow and no inf - inf in the softmax, and exp(${MASK_VALUE} + score - max) is exactly 0 in fp16 and fp32, so pad keys get exactly zero weight (softmax over the text's keys is unchanged)`,
      },
      gelu: gelu === undefined ? null : gelu.op === 'gelu_tanh' ? 'gelu_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))'
        : (opts.geluErf ?? 'rational') === 'rational'
          ? `gelu_erf (no erf on the ANE): x sigmoid(x (a + b x^2) / (1 + c x^2)), a = ${GELU_ERF_RATIONAL.a}, b = ${GELU_ERF_RATIONAL.b}, c = ${GELU_ERF_RATIONAL.c} (x^2 formed from x / 256); max error 5.6e-5 vs exact GELU (tanh form: 4.7e-4)`
          : 'gelu_erf approximated by the tanh form (max error 4.7e-4)',
      positions: probe.prologue.some((id) => g0.node(id).op === 'embedding' && g0.node(g0.node(id).inputs[1]!).op === 'input' && g0.node(g0.node(id).inputs[1]!).name === 'positions')
        ? 'absolute position embeddings 0..n-1 looked up on the host (prologue); token types 0'
        : 'RoPE tables baked for positions 0..S-1: with right padding, the text\'s tokens are at cumsum(mask) - 1 = 0..n-1',
    };
  }
  return { manifest, texts, blobs };
}

export function writeBundle(b: Bundle, dir: string): void {
  fs.mkdirSync(path.join(dir, 'weights'), { recursive: true });
  for (const [file, text] of b.texts) fs.writeFileSync(path.join(dir, file), text);
  for (const [file, bytes] of b.blobs) fs.writeFileSync(path.join(dir, file), bytes);
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(b.manifest, null, 2) + '\n');
}

export function readBundle(dir: string): Bundle {
  const mpath = path.join(dir, 'manifest.json');
  if (!fs.existsSync(mpath)) throw new RistrettoError('NOT_FOUND', `${dir}: no manifest.json (not an ANE bundle; create one with ristretto compile)`);
  const manifest = JSON.parse(fs.readFileSync(mpath, 'utf8')) as Manifest;
  if (manifest.format !== BUNDLE_FORMAT) throw new RistrettoError('FORMAT', `${mpath}: format is ${JSON.stringify(manifest.format)}, expected ${BUNDLE_FORMAT}`);
  const texts = new Map<string, string>();
  for (const p of manifest.programs) texts.set(p.file, fs.readFileSync(path.join(dir, p.file), 'utf8'));
  const blobs = new Map<string, Uint8Array>();
  for (const w of manifest.weightFiles) blobs.set(w.file, new Uint8Array(fs.readFileSync(path.join(dir, w.file))));
  return { manifest, texts, blobs };
}

/** A bundle ready to execute: every program parsed from its text, constants resolved from the blobs. */
export interface LoadedBundle {
  bundle: Bundle;
  manifest: Manifest;
  programs: Map<string, MilInterpreter>;
}

export function loadBundle(b: Bundle | string): LoadedBundle {
  const bundle = typeof b === 'string' ? readBundle(b) : b;
  const resolve = (p: string): Uint8Array => {
    const rel = p.replace(/^@model_path\//, '');
    const bytes = bundle.blobs.get(rel);
    if (bytes === undefined) throw new Error(`weight file ${rel} is not in the bundle`);
    return bytes;
  };
  const programs = new Map<string, MilInterpreter>();
  for (const p of bundle.manifest.programs) {
    const text = bundle.texts.get(p.file);
    if (text === undefined) throw new RistrettoError('NOT_FOUND', `bundle: program file ${p.file} is missing`);
    programs.set(p.name, new MilInterpreter(parseMil(text, p.file), resolve, p.file));
  }
  return { bundle, manifest: bundle.manifest, programs };
}
