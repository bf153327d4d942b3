// A stand-in Hugging Face hub for download tests (not a test file): a real HTTP server on
// 127.0.0.1 that serves model folders from disk in the hub's URL layout, with the listing's
// git and LFS hashes computed from the files. LFS files (*.onnx, *.onnx_data*, *.safetensors) are served
// through a redirect, as the hub does. Behaviours a test can switch on: drop the connection
// after K bytes, ignore Range headers, list a wrong sha256, send slowly. Every request is
// recorded; the server stops itself after `lifetimeMs` even if a test forgets to close it.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { randomDecoderModel } from '../src/builder/randomWeights';
import { hfTensorsOf, writeSafetensors } from '../src/builder/safetensors';
import { toHfConfig, type DecoderConfig } from '../src/engine/model/modelConfig';
import { buildTestModel, tempDir } from './helpers';
import { tinyQwen2 } from './testModels';

export interface HubBehaviour {
  /** Close the socket after this many body bytes of `path`, for the next `times` requests of it. */
  dropAfter?: { path: string; bytes: number; times: number };
  /** Send this many body bytes of `path`, then nothing more (the connection stays open), for the next `times` requests. */
  stallAfter?: { path: string; bytes: number; times: number };
  /** Answer the next `times` requests of `path` with this status (e.g. 503). */
  failWith?: { path: string; status: number; times: number };
  /** Answer every request with 200 and the whole file, whatever its Range header says. */
  ignoreRange?: boolean;
  /** List this sha256 for `path` instead of the real one. */
  wrongSha256?: { path: string; sha256: string };
  /** List this size for `path` (an LFS file) instead of the real one. */
  listedSize?: { path: string; size: number };
  /** Send bodies in chunks of this many bytes with a pause between them. */
  chunkBytes?: number;
  chunkDelayMs?: number;
}

export interface RecordedRequest {
  url: string;
  range: string | undefined;
  status: number;
}

interface ServedFile {
  path: string;
  bytes: Buffer;
  lfs: boolean;
  sha256: string;
  gitOid: string;
}

export interface HubServer {
  endpoint: string;
  behaviour: HubBehaviour;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/**
 * A repo folder as onnx-community lays it out, built by the project's builder from tinyQwen2:
 * onnx/model.onnx + model.onnx_data (fp32) and onnx/model_q4.onnx + model_q4.onnx_data
 * (int4 MatMulNBits), the JSON files, and a README.
 */
export function buildHubRepo(): string {
  // The vocabulary of the tokenizer buildTestModel writes (stories260K's 512 pieces), so any text encodes into the model's range.
  const model = randomDecoderModel({ ...tinyQwen2, vocabSize: 512 }, 11);
  const fp32 = buildTestModel(model, { externalData: 'always' }, tempDir('hub-fp32')).dir;
  const q4 = buildTestModel(model, { weights: 'int4', externalData: 'always', externalDataName: 'model_q4.onnx_data' }, tempDir('hub-q4')).dir;
  const repo = path.join(tempDir('hub'), 'repo');
  fs.cpSync(fp32, repo, { recursive: true });
  fs.copyFileSync(path.join(q4, 'onnx', 'model.onnx'), path.join(repo, 'onnx', 'model_q4.onnx'));
  fs.copyFileSync(path.join(q4, 'onnx', 'model_q4.onnx_data'), path.join(repo, 'onnx', 'model_q4.onnx_data'));
  fs.writeFileSync(path.join(repo, 'README.md'), '# A tiny test model\n');
  return repo;
}

const QWEN_TOKENIZER = path.resolve(__dirname, '..', '..', 'shared', 'formats', 'qwen2.5-coder-instruct');
const QWEN_TOKENIZER_FILES = ['added_tokens.json', 'generation_config.json', 'merges.txt', 'special_tokens_map.json', 'tokenizer_config.json', 'vocab.json'];

/** tinyQwen2 with the Qwen2.5 tokenizer's vocabulary and special tokens. */
export const tinyQwen2WithQwenVocab: DecoderConfig = { ...tinyQwen2, vocabSize: 151936, maxPositionEmbeddings: 256, bosTokenId: 151643, eosTokenId: [151645, 151643] };

/**
 * A repo folder as Hugging Face lays out an original model: config.json, random weights as bf16
 * safetensors (with `shards` > 1, model-0000i-of-0000n.safetensors and model.safetensors.index.json),
 * the Qwen2.5 tokenizer as vocab.json + merges.txt, and a README.
 */
export async function buildSourceRepo(
  options: { config?: DecoderConfig; shards?: number; hfConfig?: Record<string, unknown>; tokenizerDir?: string } = {},
): Promise<string> {
  const { config = tinyQwen2WithQwenVocab, shards = 1, tokenizerDir = QWEN_TOKENIZER } = options;
  const hfConfig = options.hfConfig ?? toHfConfig(config);
  const dir = tempDir('hub-source');
  for (const file of QWEN_TOKENIZER_FILES) fs.copyFileSync(path.join(tokenizerDir, file), path.join(dir, file));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(hfConfig, null, 2));
  fs.writeFileSync(path.join(dir, 'README.md'), '# Tiny random Qwen2\n');
  const tensors = Object.entries(hfTensorsOf(randomDecoderModel(config, 5), 'BF16'));
  if (shards === 1) {
    await writeSafetensors(path.join(dir, 'model.safetensors'), Object.fromEntries(tensors));
    return dir;
  }
  const weightMap: Record<string, string> = {};
  const per = Math.ceil(tensors.length / shards);
  for (let s = 0; s < shards; s++) {
    const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = tensors.slice(s * per, (s + 1) * per);
    for (const [tensor] of part) weightMap[tensor] = name;
    await writeSafetensors(path.join(dir, name), Object.fromEntries(part));
  }
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}

const isLfs = (p: string): boolean => /\.onnx(_data(_\d+)?)?$|\.safetensors$/.test(p);

export async function startHubServer(repos: Record<string, string>, options: { revision?: string; lifetimeMs?: number } = {}): Promise<HubServer> {
  const revision = options.revision ?? 'main';
  const served = new Map(Object.entries(repos).map(([repo, dir]) => [repo, readFolder(dir)]));
  const behaviour: HubBehaviour = {};
  const requests: RecordedRequest[] = [];

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const range = req.headers.range;
    const record = (status: number): void => void requests.push({ url: url.pathname + url.search, range, status });
    const notFound = (): void => {
      record(404);
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: 'Repository not found' }));
    };

    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname);
    if (tree) {
      const files = served.get(tree[1] ?? '');
      if (!files || decodeURIComponent(tree[2] ?? '') !== revision) return notFound();
      record(200);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(listing(files, behaviour)));
      return;
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const cdn = /^\/cdn\/([^/]+\/[^/]+)\/([^/]+)\/(.+)$/.exec(url.pathname);
    const match = resolve ?? cdn;
    if (!match) return notFound();
    const files = served.get(match[1] ?? '');
    const file = files?.get(decodeURIComponent(match[3] ?? ''));
    if (!file || decodeURIComponent(match[2] ?? '') !== revision) return notFound();
    if (resolve && file.lfs) {
      record(302);
      res.writeHead(302, { Location: `/cdn/${match[1]}/${match[2]}/${match[3]}` }).end();
      return;
    }
    const fail = behaviour.failWith;
    if (fail && fail.path === file.path && fail.times > 0) {
      fail.times--;
      record(fail.status);
      res.writeHead(fail.status).end();
      return;
    }
    sendFile(file, range, behaviour, res, record);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closed;
  };
  setTimeout(() => void close(), options.lifetimeMs ?? 120_000).unref();
  return { endpoint: `http://127.0.0.1:${port}`, behaviour, requests, close };
}

function sendFile(file: ServedFile, range: string | undefined, behaviour: HubBehaviour, res: http.ServerResponse, record: (status: number) => void): void {
  const size = file.bytes.length;
  let start = 0;
  let status = 200;
  const headers: http.OutgoingHttpHeaders = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes', ETag: `"${file.sha256}"` };
  const from = /^bytes=(\d+)-$/.exec(range ?? '');
  if (from && !behaviour.ignoreRange) {
    start = Number(from[1]);
    if (start >= size) {
      record(416);
      res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      return;
    }
    status = 206;
    headers['Content-Range'] = `bytes ${start}-${size - 1}/${size}`;
  }
  headers['Content-Length'] = size - start;
  record(status);
  res.writeHead(status, headers);

  let limit = size;
  let stall = false;
  const drop = behaviour.dropAfter;
  if (drop && drop.path === file.path && drop.times > 0) {
    drop.times--;
    limit = Math.min(size, start + drop.bytes);
  }
  const stallAt = behaviour.stallAfter;
  if (stallAt && stallAt.path === file.path && stallAt.times > 0) {
    stallAt.times--;
    limit = Math.min(size, start + stallAt.bytes);
    stall = true;
  }
  const chunk = behaviour.chunkBytes ?? 64 * 1024;
  const delay = behaviour.chunkDelayMs ?? 0;
  let offset = start;
  const next = (): void => {
    if (res.destroyed) return;
    if (offset >= limit) {
      if (stall) return; // Headers and some bytes sent, then silence until the client gives up.
      // A pause first, so the client has read every byte sent before the connection dies
      // (a stream that errors drops the chunks it still holds) and the cut is exactly K.
      if (limit < size) setTimeout(() => res.socket?.destroy(), 50);
      else res.end();
      return;
    }
    const end = Math.min(limit, offset + chunk);
    const piece = file.bytes.subarray(offset, end);
    offset = end;
    res.write(piece, () => (delay > 0 ? setTimeout(next, delay) : setImmediate(next)));
  };
  next();
}

function listing(files: Map<string, ServedFile>, behaviour: HubBehaviour): object[] {
  const dirs = new Set<string>();
  const entries: object[] = [];
  for (const file of files.values()) {
    const dir = path.posix.dirname(file.path);
    if (dir !== '.' && !dirs.has(dir)) {
      dirs.add(dir);
      entries.push({ type: 'directory', oid: sha1(dir), size: 0, path: dir });
    }
    if (file.lfs) {
      const sha256 = behaviour.wrongSha256?.path === file.path ? behaviour.wrongSha256.sha256 : file.sha256;
      const size = behaviour.listedSize?.path === file.path ? behaviour.listedSize.size : file.bytes.length;
      const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`;
      entries.push({ type: 'file', oid: gitBlobOid(Buffer.from(pointer)), size, path: file.path, lfs: { oid: sha256, size, pointerSize: pointer.length } });
    } else {
      entries.push({ type: 'file', oid: file.gitOid, size: file.bytes.length, path: file.path });
    }
  }
  return entries;
}

function readFolder(dir: string): Map<string, ServedFile> {
  const files = new Map<string, ServedFile>();
  const walk = (sub: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(rel);
      else {
        const bytes = fs.readFileSync(path.join(dir, rel));
        files.set(rel, { path: rel, bytes, lfs: isLfs(rel), sha256: createHash('sha256').update(bytes).digest('hex'), gitOid: gitBlobOid(bytes) });
      }
    }
  };
  walk('');
  return files;
}

function gitBlobOid(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}
