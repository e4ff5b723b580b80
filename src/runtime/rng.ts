// xorshift64* exactly as llama2.c run.c (`random_u32`, `random_f32`), so seeded runs reproduce it.

const MASK = (1n << 64n) - 1n;
const MUL = 0x2545f4914f6cdd1dn;

export class XorShiftRng {
  private state: bigint;
  constructor(seed: number | bigint) {
    this.state = BigInt.asUintN(64, BigInt(seed));
    if (this.state === 0n) throw new RangeError('xorshift64* needs a non-zero seed');
  }

  /** run.c random_u32 */
  nextU32(): number {
    let s = this.state;
    s ^= s >> 12n;
    s = (s ^ (s << 25n)) & MASK;
    s ^= s >> 27n;
    this.state = s;
    return Number(((s * MUL) & MASK) >> 32n);
  }

  /** run.c random_f32: a float32 in [0, 1) */
  nextF32(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }

  /** Opaque state for checkpoints (training resumes must continue the same stream). */
  getState(): bigint {
    return this.state;
  }
  setState(s: bigint): void {
    this.state = BigInt.asUintN(64, s);
  }
}

/** A fresh non-zero seed when the caller gives none. */
export function randomSeed(): number {
  return (Math.floor(Math.random() * 0xffffffff) >>> 0) || 1;
}
