// Load progress on stderr: a one-line bar on a TTY, a few plain lines otherwise.

import type { LoadProgress } from '../runtime/load-model.js';

export function progressReporter(stream: NodeJS.WriteStream = process.stderr): (e: LoadProgress) => void {
  const tty = stream.isTTY === true;
  let lastPct = -1;
  return (e) => {
    switch (e.type) {
      case 'open':
        stream.write(`[ristretto] loading ${e.path} (${e.format}, ${e.architecture})\n`);
        break;
      case 'tensor': {
        const pct = e.bytesTotal > 0 ? Math.floor((100 * e.bytesLoaded) / e.bytesTotal) : 100;
        if (tty && pct !== lastPct) {
          const w = 30;
          const fill = Math.round((pct / 100) * w);
          stream.write(`\r[ristretto] weights [${'#'.repeat(fill)}${'.'.repeat(w - fill)}] ${pct}% (${e.index + 1}/${e.count})`);
          if (e.index + 1 === e.count) stream.write('\n');
        }
        lastPct = pct;
        break;
      }
      case 'tokenizer':
        stream.write(`[ristretto] tokenizer ${e.path} (${e.kind})\n`);
        break;
      case 'ready':
        stream.write(`[ristretto] ready in ${(e.ms / 1000).toFixed(2)} s: ${(e.parameters / 1e6).toFixed(2)}M parameters, ${(e.weightBytes / 2 ** 20).toFixed(1)} MiB of weights\n`);
        break;
    }
  };
}
