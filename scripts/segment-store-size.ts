// What a real workspace costs in the segment store at a real model's shape (default
// Qwen2.5-0.5B, 48 blocks of [2 heads, rows, 64]): the git-tracked text files of a repository
// are tokenized with the model's tokenizer as segment texts; a file of T tokens is stored with
// L = min(T, capacity − 1) rows (a longer file is FreqKV-compressed while it is prefilled) and
// K = storedCoefficientRows(L) coefficients. Bytes per block come from the real codecs
// (blocks of up to 4 rows encoded, sizes linear in rows beyond; rvq with random codebooks of the
// default shape, whose size does not depend on their values). Usage:
//   node scripts/run-ts.js scripts/segment-store-size.ts --out DIR [--repo .]
//       [--tokenizer ../shared/formats/qwen2.5-coder-instruct] [--config bench/configs/qwen2.5-0.5b.json]
//       [--capacity 32768] [--workspace-tokens 200000] [--paths src,test (git pathspecs; default all)]

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parseHfConfig } from '../src/engine/model/modelConfig';
import type { SegmentCodec } from '../src/engine/segments/codec';
import { Float32Codec, Int8Codec, RVQ_DEFAULTS, RvqCodec } from '../src/engine/segments/codecs';
import { STORED_COEFFICIENTS, storedCoefficientRows } from '../src/engine/segments/segmentBuilder';
import { SEGMENT_FORMAT_VERSION, type SegmentHeader } from '../src/engine/segments/segmentFile';
import { ModelTokenizer } from '../src/engine/tokenizer/modelTokenizer';
import { segmentText } from '../src/engine/workspace/prompt';

const LEFT_OUT = [/(^|\/)package-lock\.json$/, /\.lock$/, /\.min\.js$/, /(^|\/)(node_modules|dist|out)\//];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      repo: { type: 'string', default: '.' },
      tokenizer: { type: 'string', default: path.join('..', 'shared', 'formats', 'qwen2.5-coder-instruct') },
      config: { type: 'string', default: 'bench/configs/qwen2.5-0.5b.json' },
      capacity: { type: 'string' },
      'workspace-tokens': { type: 'string', default: '200000' },
      paths: { type: 'string', default: '.' },
    },
  });
  if (!values.out) throw new Error('Name the folder the results go to: --out DIR (the file is DIR/segment-store-size.json).');
  const config = parseHfConfig(JSON.parse(fs.readFileSync(values.config, 'utf8')), values.config);
  const { numLayers, numKvHeads: heads, headDim: dim } = config;
  const capacity = Number(values.capacity ?? config.maxPositionEmbeddings);
  const tokenizer = await ModelTokenizer.fromFolder(tokenizerFolder(values.tokenizer));

  // Bytes of one key block and one value block of r rows: encoded for r ≤ 4, linear beyond (from 3 and 4 rows).
  const books = {
    ...RVQ_DEFAULTS,
    numLayers,
    headDim: dim,
    scaleRanges: new Float32Array(numLayers * 4).map((_, i) => (i % 2 === 0 ? -12 : 8)),
    keys: Array.from({ length: numLayers }, () => new Float32Array(RVQ_DEFAULTS.stages * RVQ_DEFAULTS.entries * RVQ_DEFAULTS.subDim).map((_, i) => Math.sin(i))),
    values: Array.from({ length: numLayers }, () => new Float32Array(RVQ_DEFAULTS.stages * RVQ_DEFAULTS.entries * RVQ_DEFAULTS.subDim).map((_, i) => Math.cos(i))),
  };
  const codecs: SegmentCodec[] = [new Float32Codec(), new Int8Codec(), new RvqCodec(books)];
  const blockBytes = (codec: SegmentCodec, rows: number): number => {
    const data = Float32Array.from({ length: heads * rows * dim }, (_, i) => Math.sin(i * 0.37));
    return codec.encode({ rows, numKvHeads: heads, headDim: dim, data }, 'key', 0).length + codec.encode({ rows, numKvHeads: heads, headDim: dim, data }, 'value', 0).length;
  };
  const perLayer = Object.fromEntries(codecs.map((c) => {
    const small = [0, 1, 2, 3, 4].map((r) => blockBytes(c, r));
    const slope = small[4]! - small[3]!;
    return [c.name, (rows: number): number => (rows <= 4 ? small[rows]! : small[4]! + slope * (rows - 4))];
  }));
  // The file around the blocks: magic, header length, the JSON header as the store writes it, SHA-256.
  const fileBytes = (codec: string, rows: number, file = 'src/some/file.ts', tokens = rows): number => {
    const block = perLayer[codec]!(rows) / 2;
    const header: SegmentHeader = { version: SEGMENT_FORMAT_VERSION, model: 'f'.repeat(64), settings: 'f'.repeat(32), path: file, contentHash: 'f'.repeat(64), tokens, rows, sourceRows: rows, numLayers, numKvHeads: heads, headDim: dim, codec: codec as SegmentHeader['codec'], blockBytes: Array.from({ length: 2 * numLayers }, () => Math.round(block)) };
    return 8 + 4 + Buffer.byteLength(JSON.stringify(header)) + numLayers * perLayer[codec]!(rows) + 32;
  };

  const listed = execFileSync('git', ['-C', values.repo, 'ls-files', '-z', '--', ...values.paths.split(',')], { encoding: 'utf8' }).split('\0').filter((f) => f && !LEFT_OUT.some((re) => re.test(f)));
  const files: { path: string; tokens: number; rows: number; kept: number }[] = [];
  for (const rel of listed) {
    const file = path.join(values.repo, rel);
    if (!fs.statSync(file).isFile() || fs.statSync(file).size > 1_000_000) continue;
    const bytes = fs.readFileSync(file);
    if (bytes.includes(0)) continue;
    const tokens = tokenizer.encode(segmentText({ path: rel, text: bytes.toString('utf8') }), { addSpecialTokens: false }).length;
    const rows = Math.min(tokens, capacity - 1);
    files.push({ path: rel, tokens, rows, kept: storedCoefficientRows(rows) });
  }
  const tokens = files.reduce((n, f) => n + f.tokens, 0);
  const workspaceTokens = Number(values['workspace-tokens']);
  const perCodec = Object.fromEntries(codecs.map(({ name }) => {
    const all = files.reduce((n, f) => n + fileBytes(name, f.rows, f.path, f.tokens), 0);
    const kept = files.reduce((n, f) => n + fileBytes(name, f.kept, f.path, f.tokens), 0);
    return [name, {
      bytesPerTokenAllCoefficients: all / tokens,
      bytesPerTokenStored: kept / tokens,
      /** A workspace of --workspace-tokens tokens with this repository's file lengths. */
      workspaceMBAllCoefficients: (all / tokens) * workspaceTokens / 2 ** 20,
      workspaceMBStored: (kept / tokens) * workspaceTokens / 2 ** 20,
      /** Files of 6,000 tokens only: the most the store's fraction saves. */
      workspaceMBStoredLongFiles: (fileBytes(name, storedCoefficientRows(6000)) / 6000) * workspaceTokens / 2 ** 20,
    }];
  }));
  const sorted = files.map((f) => f.tokens).sort((a, b) => a - b);
  const out = {
    what: 'Segment store size of a repository at one model shape, per codec, with all L coefficients and with the K the store keeps',
    command: `node scripts/run-ts.js scripts/segment-store-size.ts ${process.argv.slice(2).join(' ')}`,
    config: path.basename(values.config),
    tokenizer: path.basename(values.tokenizer),
    capacity,
    storedCoefficients: STORED_COEFFICIENTS,
    files: files.length,
    tokens,
    medianFileTokens: sorted[Math.floor(sorted.length / 2)] ?? 0,
    tokensInFilesLongerThanMinRows: files.filter((f) => f.rows > STORED_COEFFICIENTS.minRows).reduce((n, f) => n + f.tokens, 0),
    workspaceTokens,
    codecs: perCodec,
  };
  console.log(JSON.stringify(out, null, 2));
  fs.mkdirSync(values.out, { recursive: true });
  fs.writeFileSync(path.join(values.out, 'segment-store-size.json'), `${JSON.stringify(out, null, 2)}\n`);
}

/**
 * A folder with tokenizer.json: `dir` itself, or for a Qwen2 folder that ships only vocab.json and
 * merges.txt (as ../shared/formats/qwen2.5-coder-instruct does), a temporary one with the Qwen2
 * byte-level BPE tokenizer.json built from them.
 */
function tokenizerFolder(dir: string): string {
  if (fs.existsSync(path.join(dir, 'tokenizer.json'))) return dir;
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, 'vocab.json'), 'utf8')) as Record<string, number>;
  const merges = fs.readFileSync(path.join(dir, 'merges.txt'), 'utf8').split('\n').filter((line) => line.trim() && !line.startsWith('#version'));
  const added = fs.existsSync(path.join(dir, 'added_tokens.json')) ? (JSON.parse(fs.readFileSync(path.join(dir, 'added_tokens.json'), 'utf8')) as Record<string, number>) : {};
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const split = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: Object.entries(added).sort((a, b) => a[1] - b[1]).map(([content, id]) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: split }, behavior: 'Isolated', invert: false }, byteLevel] },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'qwen2-tokenizer-'));
  fs.writeFileSync(path.join(out, 'tokenizer.json'), JSON.stringify(json));
  for (const f of ['tokenizer_config.json', 'config.json']) if (fs.existsSync(path.join(dir, f))) fs.copyFileSync(path.join(dir, f), path.join(out, f));
  return out;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
