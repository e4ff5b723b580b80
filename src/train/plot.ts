// A self-contained SVG loss curve: training loss per step (faint), its moving average, and
// validation loss points. No dependencies; written at every checkpoint and at the end of a run.

export interface LossPoint {
  step: number;
  loss: number;
}

function niceTicks(lo: number, hi: number, n: number): number[] {
  const span = hi - lo || 1;
  const raw = span / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function lossCurveSvg(train: readonly LossPoint[], val: readonly LossPoint[], title = 'training loss'): string {
  const W = 720;
  const H = 420;
  const m = { l: 60, r: 20, t: 36, b: 44 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const all = [...train, ...val].filter((p) => Number.isFinite(p.loss));
  const maxStep = Math.max(1, ...all.map((p) => p.step));
  const minStep = Math.min(maxStep - 1, ...all.map((p) => p.step));
  let lo = Math.min(...all.map((p) => p.loss));
  let hi = Math.max(...all.map((p) => p.loss));
  if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
  if (hi - lo < 1e-6) [lo, hi] = [lo - 0.5, hi + 0.5];
  const pad = (hi - lo) * 0.05;
  lo -= pad;
  hi += pad;
  const x = (s: number): number => m.l + ((s - minStep) / (maxStep - minStep || 1)) * pw;
  const y = (v: number): number => m.t + (1 - (v - lo) / (hi - lo)) * ph;
  const path = (pts: readonly LossPoint[]): string =>
    pts.filter((p) => Number.isFinite(p.loss)).map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join('');
  // Exponential moving average of the training loss.
  const ema: LossPoint[] = [];
  let e = NaN;
  const a = Math.min(0.5, 10 / Math.max(20, train.length));
  for (const p of train) {
    if (!Number.isFinite(p.loss)) continue;
    e = Number.isNaN(e) ? p.loss : e + a * (p.loss - e);
    ema.push({ step: p.step, loss: e });
  }
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  for (const t of niceTicks(lo, hi, 6)) {
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${t}</text>`);
  }
  for (const t of niceTicks(minStep, maxStep, 8)) {
    parts.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${m.t}" y2="${m.t + ph}" stroke="#eee"/>`);
    parts.push(`<text x="${x(t).toFixed(1)}" y="${m.t + ph + 16}" text-anchor="middle">${t}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 8}" text-anchor="middle">step</text>`);
  parts.push(`<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">loss</text>`);
  if (train.length > 0) {
    parts.push(`<path d="${path(train)}" fill="none" stroke="#9ecae1" stroke-width="1"/>`);
    parts.push(`<path d="${path(ema)}" fill="none" stroke="#08519c" stroke-width="2"/>`);
  }
  if (val.length > 0) {
    parts.push(`<path d="${path(val)}" fill="none" stroke="#e6550d" stroke-width="1.5" stroke-dasharray="4 3"/>`);
    for (const p of val) parts.push(`<circle cx="${x(p.step).toFixed(1)}" cy="${y(p.loss).toFixed(1)}" r="3" fill="#e6550d"/>`);
  }
  const lx = m.l + pw - 150;
  parts.push(`<rect x="${lx}" y="${m.t + 8}" width="140" height="50" fill="white" stroke="#ccc"/>`);
  parts.push(`<line x1="${lx + 8}" x2="${lx + 28}" y1="${m.t + 24}" y2="${m.t + 24}" stroke="#08519c" stroke-width="2"/><text x="${lx + 34}" y="${m.t + 28}">train (EMA)</text>`);
  parts.push(`<line x1="${lx + 8}" x2="${lx + 28}" y1="${m.t + 44}" y2="${m.t + 44}" stroke="#e6550d" stroke-width="1.5" stroke-dasharray="4 3"/><text x="${lx + 34}" y="${m.t + 48}">validation</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
