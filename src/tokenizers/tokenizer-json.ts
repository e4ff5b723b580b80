// HF `tokenizer.json` (+ optional `tokenizer_config.json`) parsing.
//
// `detectTokenizerJsonKind` classifies a file (load.ts `tokenizerFromJson` dispatches on it). The SentencePiece-BPE
// kind (model BPE with byte_fallback / "▁" normalizer or Metaspace, no ByteLevel component: Llama 2, Mistral,
// Gemma 3) is built here into a `SentencePieceBPEConfig`. Every unknown or unsupported component is an
// UnsupportedError naming the component.

import { FormatError, UnsupportedError } from '../errors.js';
import { parsePostProcessor } from './post-processor.js';
import { EOS_LIKE_TOKENS } from './tokenizer.js';
import { addedTokensFromJson } from './added-tokens.js';
import type { SplitBehavior } from './pretokenize.js';
import type { MetaspaceSpec, NormalizerStep, PreTokenizerSpec, SentencePieceBPEConfig } from './sentencepiece-bpe.js';

export type TokenizerJsonKind = 'sentencepiece-bpe' | 'byte-level-bpe' | 'wordpiece' | 'unigram';

type Obj = Record<string, unknown>;
const FILE = 'tokenizer.json';

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeOf(v: unknown): string {
  return isObj(v) && typeof v['type'] === 'string' ? (v['type'] as string) : String(v);
}

/** True if any nested component object has `type` === t. */
function hasComponent(v: unknown, t: string): boolean {
  if (Array.isArray(v)) return v.some((x) => hasComponent(x, t));
  if (!isObj(v)) return false;
  if (v['type'] === t) return true;
  for (const k of ['normalizers', 'pretokenizers', 'processors', 'decoders']) if (k in v && hasComponent(v[k], t)) return true;
  return false;
}

/** Which implementation a tokenizer.json needs (`file` names it in errors). */
export function detectTokenizerJsonKind(json: unknown, file = FILE): TokenizerJsonKind {
  if (!isObj(json) || !isObj(json['model'])) throw new FormatError({ file, where: 'model', expected: 'an object', found: isObj(json) ? typeof json['model'] : typeof json });
  const model = json['model'];
  const type = model['type'] ?? (isObj(model['vocab']) && 'merges' in model ? 'BPE' : undefined);
  switch (type) {
    case 'WordPiece':
      return 'wordpiece';
    case 'Unigram':
      return 'unigram';
    case 'BPE':
      if (hasComponent(json['pre_tokenizer'], 'ByteLevel') || hasComponent(json['decoder'], 'ByteLevel') || hasComponent(json['post_processor'], 'ByteLevel')) {
        return 'byte-level-bpe';
      }
      return 'sentencepiece-bpe';
    default:
      throw new UnsupportedError(`${file}: model type ${JSON.stringify(type)} is not supported`);
  }
}

// ---------------------------------------------------------------------- SentencePiece-BPE

function parseNormalizer(n: unknown, out: NormalizerStep[], where: string): void {
  if (n === null || n === undefined) return;
  const t = typeOf(n);
  const o = n as Obj;
  switch (t) {
    case 'Sequence': {
      const list = o['normalizers'];
      if (!Array.isArray(list)) throw new FormatError({ file: FILE, where: `${where}.normalizers`, expected: 'an array', found: typeof list });
      list.forEach((x, i) => parseNormalizer(x, out, `${where}.normalizers[${i}]`));
      return;
    }
    case 'Prepend':
      if (typeof o['prepend'] !== 'string') throw new FormatError({ file: FILE, where: `${where}.prepend`, expected: 'a string', found: typeof o['prepend'] });
      out.push({ type: 'prepend', prepend: o['prepend'] });
      return;
    case 'Replace': {
      const p = o['pattern'];
      if (!isObj(p) || typeof p['String'] !== 'string') throw new UnsupportedError(`${FILE}: ${where}: Replace normalizer with pattern ${JSON.stringify(p)} (only String patterns are supported)`);
      if (typeof o['content'] !== 'string') throw new FormatError({ file: FILE, where: `${where}.content`, expected: 'a string', found: typeof o['content'] });
      if (p['String'] === '') throw new UnsupportedError(`${FILE}: ${where}: Replace normalizer with an empty pattern`);
      out.push({ type: 'replace', from: p['String'], to: o['content'] });
      return;
    }
    default:
      throw new UnsupportedError(`${FILE}: ${where}: normalizer ${t} is not supported for SentencePiece-BPE tokenizers`);
  }
}

function parseMetaspace(o: Obj, where: string): MetaspaceSpec {
  const replacement = o['replacement'] ?? '▁';
  if (typeof replacement !== 'string' || replacement.length === 0) throw new FormatError({ file: FILE, where: `${where}.replacement`, expected: 'a non-empty string', found: JSON.stringify(replacement) });
  let scheme = o['prepend_scheme'];
  if (scheme === undefined) scheme = o['add_prefix_space'] === false ? 'never' : 'always';
  if (scheme !== 'always' && scheme !== 'first' && scheme !== 'never') throw new UnsupportedError(`${FILE}: ${where}: Metaspace prepend_scheme ${JSON.stringify(scheme)}`);
  const split = o['split'] ?? true;
  if (typeof split !== 'boolean') throw new FormatError({ file: FILE, where: `${where}.split`, expected: 'a boolean', found: typeof split });
  return { replacement, prependScheme: scheme, split };
}

const SPLIT_BEHAVIORS: readonly string[] = ['Isolated', 'Removed', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

/** Pre-tokenizer steps in order (Metaspace and Split, possibly in a Sequence). */
function parsePreTokenizer(p: unknown, where: string, out: PreTokenizerSpec[]): void {
  if (p === null || p === undefined) return;
  const t = typeOf(p);
  const o = p as Obj;
  switch (t) {
    case 'Metaspace':
      if (out.some((s) => s.type === 'metaspace')) throw new UnsupportedError(`${FILE}: ${where}: more than one Metaspace pre-tokenizer`);
      out.push({ type: 'metaspace', ...parseMetaspace(o, where) });
      return;
    case 'Split': {
      const pat = o['pattern'];
      let pattern: string;
      let regex: boolean;
      if (isObj(pat) && typeof pat['String'] === 'string') [pattern, regex] = [pat['String'], false];
      else if (isObj(pat) && typeof pat['Regex'] === 'string') [pattern, regex] = [pat['Regex'], true];
      else throw new FormatError({ file: FILE, where: `${where}.pattern`, expected: '{String} or {Regex}', found: JSON.stringify(pat) });
      if (pattern === '') throw new UnsupportedError(`${FILE}: ${where}: Split pre-tokenizer with an empty pattern`);
      const behavior = o['behavior'];
      if (typeof behavior !== 'string' || !SPLIT_BEHAVIORS.includes(behavior)) throw new UnsupportedError(`${FILE}: ${where}: Split behavior ${JSON.stringify(behavior)}`);
      out.push({ type: 'split', pattern, regex, behavior: behavior as SplitBehavior, invert: o['invert'] === true });
      return;
    }
    case 'Sequence': {
      const list = o['pretokenizers'];
      if (!Array.isArray(list)) throw new FormatError({ file: FILE, where: `${where}.pretokenizers`, expected: 'an array', found: typeof list });
      list.forEach((x, i) => parsePreTokenizer(x, `${where}.pretokenizers[${i}]`, out));
      return;
    }
    default:
      throw new UnsupportedError(`${FILE}: ${where}: pre_tokenizer ${t} is not supported for SentencePiece-BPE tokenizers`);
  }
}

/** Leading spaces the decoder strips from the decoded text (Strip start / Metaspace prepend). */
function parseDecoder(d: unknown, where: string, replacement: string): number {
  if (d === null || d === undefined) throw new UnsupportedError(`${FILE}: ${where}: a SentencePiece-BPE tokenizer without a decoder is not supported`);
  const t = typeOf(d);
  const o = d as Obj;
  switch (t) {
    case 'Sequence': {
      const list = o['decoders'];
      if (!Array.isArray(list)) throw new FormatError({ file: FILE, where: `${where}.decoders`, expected: 'an array', found: typeof list });
      let strip = 0;
      list.forEach((x, i) => (strip += parseDecoder(x, `${where}.decoders[${i}]`, replacement)));
      return strip;
    }
    case 'Replace': {
      const p = o['pattern'];
      if (!isObj(p) || p['String'] !== replacement || o['content'] !== ' ') {
        throw new UnsupportedError(`${FILE}: ${where}: Replace decoder ${JSON.stringify(p)} -> ${JSON.stringify(o['content'])} (only "${replacement}" -> " " is supported)`);
      }
      return 0;
    }
    case 'ByteFallback':
    case 'Fuse':
      return 0;
    case 'Strip': {
      if (o['content'] !== ' ' || o['stop'] !== 0 || typeof o['start'] !== 'number') {
        throw new UnsupportedError(`${FILE}: ${where}: Strip decoder ${JSON.stringify(o)} (only leading spaces are supported)`);
      }
      return o['start'];
    }
    case 'Metaspace': {
      const m = parseMetaspace(o, where);
      if (m.replacement !== replacement) throw new UnsupportedError(`${FILE}: ${where}: Metaspace decoder replacement ${JSON.stringify(m.replacement)} differs from ${JSON.stringify(replacement)}`);
      return m.prependScheme === 'never' ? 0 : 1;
    }
    default:
      throw new UnsupportedError(`${FILE}: ${where}: decoder ${t} is not supported for SentencePiece-BPE tokenizers`);
  }
}

function tokenName(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObj(v) && typeof v['content'] === 'string') return v['content'];
  return undefined;
}

/** Builds a SentencePieceBPEConfig from a parsed tokenizer.json (+ tokenizer_config.json). */
export function sentencePieceConfigFromTokenizerJson(json: unknown, tokenizerConfig?: unknown): SentencePieceBPEConfig {
  const kind = detectTokenizerJsonKind(json);
  if (kind !== 'sentencepiece-bpe') throw new UnsupportedError(`${FILE}: a ${kind} tokenizer is not a SentencePiece-BPE tokenizer`);
  const j = json as Obj;
  const model = j['model'] as Obj;
  if (model['dropout'] !== null && model['dropout'] !== undefined && model['dropout'] !== 0) throw new UnsupportedError(`${FILE}: model.dropout ${String(model['dropout'])} (BPE dropout)`);
  for (const k of ['continuing_subword_prefix', 'end_of_word_suffix']) {
    if (model[k] !== null && model[k] !== undefined && model[k] !== '') throw new UnsupportedError(`${FILE}: model.${k} ${JSON.stringify(model[k])}`);
  }
  const vocab = model['vocab'];
  if (!isObj(vocab)) throw new FormatError({ file: FILE, where: 'model.vocab', expected: 'an object', found: typeof vocab });

  // Vocabulary plus added tokens.
  const tokens: string[] = [];
  for (const [tok, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 1 << 24) throw new FormatError({ file: FILE, where: `model.vocab[${JSON.stringify(tok)}]`, expected: 'a non-negative integer id', found: String(id) });
    tokens[id] = tok;
  }
  const addedList = j['added_tokens'] ?? [];
  if (!Array.isArray(addedList)) throw new FormatError({ file: FILE, where: 'added_tokens', expected: 'an array', found: typeof addedList });
  addedList.forEach((a, i) => {
    if (!isObj(a) || typeof a['id'] !== 'number' || typeof a['content'] !== 'string') throw new FormatError({ file: FILE, where: `added_tokens[${i}]`, expected: '{id, content}', found: JSON.stringify(a) });
    const id = a['id'];
    if (!Number.isInteger(id) || id < 0 || id > 1 << 24) throw new FormatError({ file: FILE, where: `added_tokens[${i}].id`, expected: 'a non-negative integer', found: String(id) });
    if (tokens[id] !== undefined && tokens[id] !== a['content']) throw new FormatError({ file: FILE, where: `added_tokens[${i}]`, expected: `id ${id} = ${JSON.stringify(tokens[id])} as in model.vocab`, found: JSON.stringify(a['content']) });
    tokens[id] = a['content'];
  });
  const added = addedTokensFromJson(addedList);
  const addedIds = new Map<string, number>();
  for (const a of added) if (!addedIds.has(a.content)) addedIds.set(a.content, a.id);
  for (let i = 0; i < tokens.length; i++) if (tokens[i] === undefined) tokens[i] = ''; // holes: never produced

  const tokenId = (s: string): number | undefined => {
    const v = vocab[s];
    if (typeof v === 'number') return v;
    return addedIds.get(s);
  };

  // Merges: "a b" strings or [a, b] pairs.
  const rawMerges = model['merges'] ?? [];
  if (!Array.isArray(rawMerges)) throw new FormatError({ file: FILE, where: 'model.merges', expected: 'an array', found: typeof rawMerges });
  const merges: [string, string][] = rawMerges.map((m, i) => {
    if (typeof m === 'string') {
      const parts = m.split(' ');
      if (parts.length !== 2) throw new FormatError({ file: FILE, where: `model.merges[${i}]`, expected: '"a b"', found: JSON.stringify(m) });
      return [parts[0]!, parts[1]!];
    }
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    throw new FormatError({ file: FILE, where: `model.merges[${i}]`, expected: '"a b" or ["a", "b"]', found: JSON.stringify(m) });
  });
  for (const [i, [a, b]] of merges.entries()) {
    for (const t of [a, b, a + b]) {
      if (tokenId(t) === undefined) throw new FormatError({ file: FILE, where: `model.merges[${i}]`, expected: `token ${JSON.stringify(t)} in model.vocab`, found: 'no such token' });
    }
  }

  const normalizer: NormalizerStep[] = [];
  parseNormalizer(j['normalizer'], normalizer, 'normalizer');
  const preTokenizers: PreTokenizerSpec[] = [];
  parsePreTokenizer(j['pre_tokenizer'], 'pre_tokenizer', preTokenizers);
  const metaspace = preTokenizers.find((p): p is PreTokenizerSpec & { type: 'metaspace' } => p.type === 'metaspace') ?? null;
  const replacement = metaspace?.replacement ?? '▁';
  const strip = parseDecoder(j['decoder'], 'decoder', replacement);

  const unkName = model['unk_token'];
  const unkId = typeof unkName === 'string' ? (tokenId(unkName) ?? null) : null;

  const cfg = isObj(tokenizerConfig) ? tokenizerConfig : {};
  const pp = parsePostProcessor(j['post_processor'], FILE, tokenId);
  const bosName = tokenName(cfg['bos_token']);
  const eosName = tokenName(cfg['eos_token']);
  let bosId = bosName !== undefined ? (tokenId(bosName) ?? null) : null;
  let eosId = eosName !== undefined ? (tokenId(eosName) ?? null) : null;
  if (bosId === null) bosId = pp?.prefix[0] ?? tokenId('<s>') ?? null;
  if (eosId === null) eosId = pp?.suffix[pp.suffix.length - 1] ?? tokenId('</s>') ?? null;
  let prefix = pp?.prefix ?? [];
  let suffix = pp?.suffix ?? [];
  // transformers' LlamaTokenizerFast rebuilds the template from add_bos_token / add_eos_token.
  if (typeof cfg['add_bos_token'] === 'boolean') prefix = cfg['add_bos_token'] && bosId !== null ? [bosId] : [];
  if (typeof cfg['add_eos_token'] === 'boolean') suffix = cfg['add_eos_token'] && eosId !== null ? [eosId] : [];

  const specialIds = added.filter((a) => a.special).map((a) => a.id);
  const eosIds = new Set<number>(eosId === null ? [] : [eosId]);
  for (const a of added) if (a.special && EOS_LIKE_TOKENS.includes(a.content)) eosIds.add(a.id);
  return {
    name: 'tokenizer.json SentencePiece-BPE',
    tokens,
    merges,
    bosId,
    eosId,
    eosIds: [...eosIds],
    unkId,
    addBos: prefix.length > 0,
    addEos: suffix.length > 0,
    addSpacePrefix: normalizer.some((s) => s.type === 'prepend') || (metaspace !== null && metaspace.prependScheme !== 'never'),
    byteFallback: model['byte_fallback'] === true,
    byteFallbackStage: 'before-merges',
    addedTokens: added,
    specialIds,
    normalizer,
    preTokenizers,
    fuseUnk: model['fuse_unk'] === true,
    ignoreMerges: model['ignore_merges'] === true,
    prefixIds: prefix,
    suffixIds: suffix,
    decodeStripLeadingSpaces: strip,
    spaceSymbol: replacement,
  };
}
