// The model graph: a list of nodes over a small, closed op set (see ops.ts).
// Models build a Graph once per sequence shape; backends execute it, the ANE compiler
// lowers it, and the trainer differentiates it. Nodes are appended in topological order.

import type { OpName, OpAttrs } from './ops.js';
import { checkNode } from './ops.js';

export type ValueType = 'f32' | 'i32';

export interface Node<K extends OpName = OpName> {
  readonly id: number;
  readonly op: K;
  readonly inputs: readonly number[];
  readonly attrs: OpAttrs[K];
  readonly shape: readonly number[];
  readonly type: ValueType;
  /** Optional readable name (parameter, input and state nodes always have one). */
  readonly name?: string;
}

/** A symbolic value while building: the id of the node that produces it, plus its shape. */
export class Sym {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly shape: readonly number[],
    readonly type: ValueType,
  ) {}
}

export class Graph {
  readonly nodes: Node[] = [];
  /** Named outputs: what a run returns. */
  readonly outputs = new Map<string, number>();

  add<K extends OpName>(op: K, inputs: readonly Sym[], attrs: OpAttrs[K], name?: string): Sym {
    for (const s of inputs) {
      if (s.graph !== this) throw new Error(`${op}: an input belongs to another graph`);
    }
    const shapes = inputs.map((s) => s.shape);
    const types = inputs.map((s) => s.type);
    const { shape, type } = checkNode(op, shapes, types, attrs);
    const id = this.nodes.length;
    const node: Node<K> = { id, op, inputs: inputs.map((s) => s.id), attrs, shape, type, name };
    this.nodes.push(node as unknown as Node);
    return new Sym(this, id, shape, type);
  }

  output(name: string, s: Sym): void {
    this.outputs.set(name, s.id);
  }

  node(id: number): Node {
    const n = this.nodes[id];
    if (n === undefined) throw new Error(`graph has no node ${id}`);
    return n;
  }

  /** Count of nodes per op, for audits and tests. */
  opCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const n of this.nodes) counts[n.op] = (counts[n.op] ?? 0) + 1;
    return counts;
  }
}
