// Builds the WebAssembly kernels (src/backends/wasm/assembly, AssemblyScript) twice:
//   dist/wasm/kernels-simd.wasm     --enable simd
//   dist/wasm/kernels-relaxed.wasm  --enable simd,relaxed-simd (ASC_FEATURE_RELAXED_SIMD selects code paths)
// Both import one shared memory (threads, importMemory, sharedMemory, maximumMemory 65536 pages = 4 GiB) so a
// later phase can run them in worker threads; --runtime stub and no static data: the host owns the layout.
import asc from 'assemblyscript/asc';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'src/backends/wasm/assembly/index.ts');
const outDir = path.join(root, 'dist/wasm');
fs.mkdirSync(outDir, { recursive: true });

const common = [
  '--runtime', 'stub', '-O3', '--noAssert',
  '--enable', 'threads', '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536',
];
const variants = [
  ['kernels-simd.wasm', ['--enable', 'simd']],
  ['kernels-relaxed.wasm', ['--enable', 'simd', '--enable', 'relaxed-simd']],
];

for (const [name, flags] of variants) {
  const out = path.join(outDir, name);
  const { error, stderr } = await asc.main([entry, '-o', out, ...common, ...flags]);
  if (error) {
    process.stderr.write(stderr.toString());
    console.error(`build-wasm: ${name} failed: ${error.message}`);
    process.exit(1);
  }
  console.log(`build-wasm: ${path.relative(root, out)} (${fs.statSync(out).size} bytes)`);
}
