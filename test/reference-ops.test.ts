// Reference-backend math that has no library to lean on: erf (exact GELU) against its Taylor series
// and continued fraction, and the op shape checks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { erf } from '../src/backends/reference/erf.js';
import { Graph } from '../src/graph/graph.js';

/** erf by its Maclaurin series (|x| <= 3) or erfc's continued fraction (|x| > 3), in double. */
function erfSeries(x: number): number {
  const ax = Math.abs(x);
  if (ax <= 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // Lentz-free evaluation of erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
  let f = ax;
  for (let k = 60; k >= 1; k--) f = ax + k / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

test('erf matches its series and continued fraction to 1e-13', () => {
  let worst = 0;
  for (let x = -6; x <= 6; x += 0.0137) worst = Math.max(worst, Math.abs(erf(x) - erfSeries(x)));
  assert.ok(worst < 1e-13, `max |erf - series| = ${worst}`);
  assert.equal(erf(0), 0);
});

test('graph ops reject inconsistent shapes with the op and both shapes in the message', () => {
  const g = new Graph();
  const x = g.add('input', [], { name: 'x', shape: [3, 8], type: 'f32' });
  const w = g.add('param', [], { name: 'w', shape: [4, 7] });
  assert.throws(() => g.add('matmul', [x, w], {}), /matmul: x \[3, 8\] and w \[4, 7\] disagree on the inner dimension/);
  const ids = g.add('input', [], { name: 'ids', shape: [3], type: 'f32' });
  const table = g.add('param', [], { name: 't', shape: [10, 8] });
  assert.throws(() => g.add('embedding', [table, ids], {}), /ids must be i32/);
  assert.deepEqual(g.add('matmul', [x, g.add('param', [], { name: 'w2', shape: [5, 8] })], {}).shape, [3, 5]);
});
