// `ristretto encode` / `ristretto decode` as users run them (spawned), on every kind of tokenizer the engine reads:
// llama2.c tokenizer.bin (size read to EOF), an HF folder / tokenizer.json, and GGUF vocabularies. Expected ids
// come from the references only: reference/tokenizer-cases.json (HF tokenizers, SentencePiece) and llama.cpp's
// vocab test vectors (gguf/vocab/*.inp/.out).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { modelsDir, repoRoot, tempDir } from './helpers/models.js';

const CLI = path.join(repoRoot, 'dist/src/cli/main.js');
const dir = modelsDir();

function run(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, input });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Case {
  text: string;
  ids: number[];
  decoded: string;
  sentencepiece_ids?: number[];
}

function cases(prefix: string): Case[] {
  const j = JSON.parse(fs.readFileSync(path.join(dir!, 'reference/tokenizer-cases.json'), 'utf8')) as { cases: Record<string, Case[]> };
  const key = Object.keys(j.cases).find((k) => k.startsWith(prefix));
  assert.ok(key, prefix);
  return j.cases[key];
}

const tmp = tempDir('ristretto-cli-tok-');
let n = 0;
/** Writes texts as JSONL (one JSON string per line) and returns the path. */
function jsonl(texts: readonly string[]): string {
  const p = path.join(tmp, `in${n++}.jsonl`);
  fs.writeFileSync(p, texts.map((s) => JSON.stringify(s)).join('\n') + '\n');
  return p;
}

/** `encode --in` over `texts`: one {"ids"} line per text, in order. */
function encodeAll(tokenizer: string, texts: readonly string[], flags: string[] = []): number[][] {
  const r = run(['encode', '--tokenizer', tokenizer, ...flags, '--in', jsonl(texts)]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.equal(lines.pop(), '');
  assert.equal(lines.length, texts.length);
  return lines.map((l) => (JSON.parse(l) as { ids: number[] }).ids);
}

function decodeJson(tokenizer: string, ids: readonly number[], flags: string[] = []): string {
  const r = run(['decode', '--tokenizer', tokenizer, '--json', ...flags, ids.join(',')]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { text: string }).text;
}

/** The inputs and expected ids of a llama.cpp vocab test (`.inp` / `.out`). */
function ggmlVectors(gguf: string): { texts: string[]; ids: number[][] } {
  const sep = '\n__ggml_vocab_test__\n';
  const inp = fs.readFileSync(gguf + '.inp', 'utf8');
  const texts = inp.slice(0, -sep.length).split(sep);
  const ids = fs.readFileSync(gguf + '.out', 'utf8').slice(0, -1).split('\n').map((l) => (l.trim() === '' ? [] : l.trim().split(' ').map(Number)));
  assert.equal(texts.length, ids.length);
  return { texts, ids };
}

test('encode/decode: llama2.c tok512.bin and the Llama 2 tokenizer.bin (vocab size read to EOF)', (t) => {
  if (dir === null) return t.skip('shared/models not found: skipping CLI tokenizer runs');
  const tok512 = path.join(dir, 'llama2c/tok512.bin');
  const cs = cases('tok512');
  // run.c semantics: special-token text stays text unless --parse-special (then it is HF's parse).
  const plain = encodeAll(tok512, cs.map((c) => c.text), ['--add-special-tokens']);
  cs.forEach((c, i) => {
    const expected = /<\/?s>/.test(c.text) ? c.sentencepiece_ids! : c.ids;
    assert.deepEqual(plain[i], expected, JSON.stringify(c.text));
  });
  const parsed = encodeAll(tok512, cs.map((c) => c.text), ['--add-special-tokens', '--parse-special']);
  cs.forEach((c, i) => assert.deepEqual(parsed[i], c.ids, `--parse-special ${JSON.stringify(c.text)}`));
  // Default: no BOS.
  const one = run(['encode', '--tokenizer', tok512, 'Hello world']);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout, JSON.stringify({ ids: cs.find((c) => c.text === 'Hello world')!.ids.slice(1) }) + '\n');
  // Decode round trip (BOS dropped by default, kept as text with --keep-special).
  for (const c of cs.slice(0, 8)) assert.equal(decodeJson(tok512, plain[cs.indexOf(c)]!), c.text);
  assert.ok(decodeJson(tok512, [1, 346, 306, 414], ['--keep-special']).startsWith('<s>'));
  const d = run(['decode', '--tokenizer', tok512, '1', '346', '306', '414', '263', '304', '341']);
  assert.equal(d.code, 0, d.stderr);
  assert.equal(d.stdout, 'Hello world\n');

  const llama2 = path.join(dir, 'llama2c/tokenizer.bin');
  const l2 = cases('llama2 32000');
  const got = encodeAll(llama2, l2.map((c) => c.text), ['--add-special-tokens']);
  l2.forEach((c, i) => assert.deepEqual(got[i], c.ids, JSON.stringify(c.text)));
  l2.forEach((c) => assert.equal(decodeJson(llama2, c.ids), c.decoded));
});

test('encode/decode: HF folders (stories260K-hf, tiny-gpt2) and a tokenizer.json path', (t) => {
  if (dir === null) return t.skip('shared/models not found: skipping CLI tokenizer runs');
  // The HF reference adds what the post-processor adds and parses special-token text.
  const hf = path.join(dir, 'hf/stories260K-hf');
  const cs = cases('tok512');
  const got = encodeAll(hf, cs.map((c) => c.text), ['--add-special-tokens', '--parse-special']);
  cs.forEach((c, i) => assert.deepEqual(got[i], c.ids, JSON.stringify(c.text)));
  const gpt2 = cases('gpt2');
  for (const tok of [path.join(dir, 'tiny-gpt2'), path.join(dir, 'tiny-gpt2/tokenizer.json')]) {
    const ids = encodeAll(tok, gpt2.map((c) => c.text), ['--parse-special']);
    gpt2.forEach((c, i) => assert.deepEqual(ids[i], c.ids, JSON.stringify(c.text)));
  }
  for (const c of gpt2) assert.equal(decodeJson(path.join(dir, 'tiny-gpt2'), c.ids, ['--keep-special']), c.decoded, JSON.stringify(c.text));
});

test('encode: GGUF vocabularies reproduce llama.cpp test vectors (gpt-2, llama-spm)', (t) => {
  if (dir === null) return t.skip('shared/models not found: skipping CLI tokenizer runs');
  for (const name of ['ggml-vocab-gpt-2.gguf', 'ggml-vocab-llama-spm.gguf']) {
    const gguf = path.join(dir, 'gguf/vocab', name);
    const { texts, ids } = ggmlVectors(gguf);
    const got = encodeAll(gguf, texts);
    texts.forEach((s, i) => assert.deepEqual(got[i], ids[i], `${name} vector ${i} ${JSON.stringify(s)}`));
    texts.forEach((s, i) => {
      if (i % 5 === 0) assert.equal(decodeJson(gguf, ids[i]!), s, `${name} decode ${i}`);
    });
  }
});

test('encode --in from stdin; bad JSONL lines are reported by number and nothing is printed; usage errors', (t) => {
  if (dir === null) return t.skip('shared/models not found: skipping CLI tokenizer runs');
  const tok = path.join(dir, 'llama2c/tok512.bin');
  const ok = run(['encode', '--tokenizer', tok, '--in', '-'], '"Hello world"\r\n\n"Hi"\n');
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.trim().split('\n').length, 2);
  const bad = path.join(tmp, 'bad.jsonl');
  fs.writeFileSync(bad, '"fine"\n42\n"also fine"\n{"text": 1\n');
  const r = run(['encode', '--tokenizer', tok, '--in', bad]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /2 bad lines/);
  assert.match(r.stderr, /line 2: expected a JSON string, got number/);
  assert.match(r.stderr, /line 4: not valid JSON/);
  assert.equal(run(['encode', 'Hello']).code, 2, 'missing --tokenizer');
  assert.equal(run(['encode', '--tokenizer', tok]).code, 2, 'no text');
  assert.equal(run(['encode', '--tokenizer', tok, '--in', bad, 'x']).code, 2, 'text and --in');
  assert.equal(run(['encode', '--tokenizer', path.join(tmp, 'missing.bin'), 'x']).code, 1);
  const big = run(['decode', '--tokenizer', tok, '512']);
  assert.equal(big.code, 2);
  assert.match(big.stderr, /outside the vocabulary \(size 512\)/);
  assert.equal(run(['decode', '--tokenizer', tok, '1,x']).code, 2);
  const help = run(['encode', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--add-special-tokens/);
});
