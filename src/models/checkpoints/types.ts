// What a checkpoint loader produces: the typed model config, and for every model parameter
// the tensor that holds it in the file (names, layouts and tied weights resolved here, once).

import { RistrettoError } from '../../errors.js';
import type { TensorSource } from '../../formats/tensor.js';
import type { ModelConfig } from '../index.js';

export type CheckpointFormat = 'llama2c' | 'gguf' | 'safetensors';

export interface CheckpointPlan {
  format: CheckpointFormat;
  architecture: string;
  config: ModelConfig;
  source: TensorSource;
  /** model parameter name -> tensor name in `source` */
  tensorFor: Map<string, string>;
  /** Parameters stored as [in, out] in the file (HF GPT-2's Conv1D), transposed to [out, in] at load. */
  transposed: Set<string>;
  /** Special ids the checkpoint declares (null when it declares none). */
  bosId: number | null;
  eosIds: number[];
}

/** Fails with the parameter and file when a parameter's tensor is missing or has the wrong shape. */
export function checkPlan(plan: Omit<CheckpointPlan, 'config'>, params: Map<string, number[]>): void {
  const infos = new Map(plan.source.list().map((t) => [t.name, t]));
  for (const [param, shape] of params) {
    const name = plan.tensorFor.get(param);
    const info = name === undefined ? undefined : infos.get(name);
    if (info === undefined) {
      throw new RistrettoError('CONFIG', `${plan.source.path}: the ${plan.architecture} model needs tensor "${name ?? param}" (parameter ${param}), which the file lacks`);
    }
    const fileShape = plan.transposed.has(param) ? [...shape].reverse() : shape;
    if (info.shape.length !== fileShape.length || info.shape.some((d, i) => d !== fileShape[i])) {
      throw new RistrettoError('CONFIG', `${plan.source.path}: tensor "${name}" has shape [${info.shape.join(', ')}], the config implies [${fileShape.join(', ')}]`);
    }
  }
}
