// `ristretto audit DIR`: explain an ANE bundle program by program.

import { parseArgs } from 'node:util';
import { auditBundle, formatAudit } from '../compile/audit.js';
import { readBundle } from '../compile/bundle.js';
import { InvalidArgumentError } from '../errors.js';
import { oneOf } from './args.js';

export const AUDIT_HELP = `Usage: ristretto audit DIR [--output text|json]

  Prints, for every program of an ANE bundle (ristretto compile --target ane): op counts by type, FLOPs,
  weight bytes, SRAM fit, the device the plan gives it and why, and compile-budget use; then the plan's
  decisions (buckets, fusion, classifier, decode), IOSurface sizes and the fp16 range report.
`;

export async function auditCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { output: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(AUDIT_HELP);
    return;
  }
  if (positionals.length !== 1) throw new InvalidArgumentError('audit: give exactly one bundle directory');
  const report = auditBundle(readBundle(positionals[0]!));
  if (oneOf(values, 'output', ['text', 'json'] as const, 'text') === 'json') process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else process.stdout.write(formatAudit(report));
}
