// A small seeded PRNG whose whole state is one 32-bit number (mulberry32), so training checkpoints
// can store it exactly and a resumed run draws the same numbers as an uninterrupted one.

export class Rng {
  private s: number;
  /** A cached second Box-Muller normal (part of the state). */
  private spare: number | null = null;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  getState(): { s: number; spare: number | null } {
    return { s: this.s, spare: this.spare };
  }

  setState(st: { s: number; spare: number | null }): void {
    this.s = st.s >>> 0;
    this.spare = st.spare;
  }
}
