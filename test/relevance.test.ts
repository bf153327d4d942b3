// Definition-aware relevance on real files: what each language's files define, which names a
// question refers to, the ranking of an implementation above the test that calls it (a small web
// framework written to a temp folder, and this repository itself), persistence and incremental
// updates of the index, and the rows the segmented cache gives the implementation on the embedded
// model.

import * as fs from 'node:fs';
import * as path from 'node:path';
import MiniSearch from 'minisearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine';
import { Bm25Index } from '../src/engine/segments/bm25Index';
import { definitionKey, extractDefinitions } from '../src/engine/segments/definitions';
import { isTestPath, questionNames, RelevanceIndex, RelevanceIndexFormatError, tokenizeForSearch } from '../src/engine/segments/relevance';
import { WorkspaceSegmentCache } from '../src/engine/segments/workspaceSegmentCache';
import { ingestDirectory } from '../src/engine/workspace/ingest';
import type { IncludedFile } from '../src/engine/workspace/types';
import { EMBEDDED_MODEL, tempDir } from './helpers';
import { CONTENT_TYPE_QUESTION, IMPLEMENTATION, TYPE_TEST, writeWebFramework } from './webFrameworkFixture';

const REPO_ROOT = path.resolve(__dirname, '..');

function ranked(scores: Map<string, number>): string[] {
  return [...scores].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([p]) => p);
}

let framework: IncludedFile[];
beforeAll(async () => {
  const root = tempDir('web-framework');
  writeWebFramework(root);
  framework = (await ingestDirectory(root)).files;
});

describe('extractDefinitions', () => {
  it('TypeScript / JavaScript: declarations, methods, assigned functions, not imports or calls', () => {
    const ts = [
      'import { type Foo, bar } from "./foo";',
      'import type {',
      '  Baz,',
      '} from "./baz";',
      'export interface SamplingOptions { topP?: number }',
      'export type TokenId = number;',
      'export enum Mode { A }',
      'const THRESHOLDS = [1, 2];',
      'export const applyTopP = (x: number): number => x;',
      'export class Sampler {',
      '  constructor(private readonly options: SamplingOptions) {}',
      '  sample(logits: Float32Array): number {',
      '    if (logits.length > 0) {',
      '      return argmax(logits);',
      '    }',
      '    return 0;',
      '  }',
      '  private async *stream<T>(items: T[]): AsyncGenerator<T> {',
      '    yield* items;',
      '  }',
      '}',
      'export function argmax(x: ArrayLike<number>): number { return 0; }',
      'describe("x", () => {',
      '  it("y", async () => {',
      '    expect(argmax([1])).toBe(0);',
      '  });',
      '});',
    ].join('\n');
    const names = extractDefinitions('src/sampler.ts', ts);
    expect(names).toEqual(expect.arrayContaining(['SamplingOptions', 'TokenId', 'Mode', 'THRESHOLDS', 'applyTopP', 'Sampler', 'sample', 'stream', 'argmax', 'Sampler.sample', 'Sampler.stream']));
    for (const notDefined of ['Foo', 'Baz', 'bar', 'describe', 'it', 'expect', 'if', 'constructor', 'toBe']) expect(names, notDefined).not.toContain(notDefined);

    const js = [
      'var mime = require("mime-types");',
      'var res = module.exports = {};',
      'res.status = function(code){',
      '  this.statusCode = code;',
      '};',
      'res.contentType =',
      'res.type = function contentType(type) {',
      '  return this.set("Content-Type", type);',
      '};',
      'exports.normalizeType = function (type) { return type; };',
      'Router.prototype.handle = function handle(req, res, out) {};',
      'module.exports = { send: function (body) {}, json(obj) { return obj; } };',
    ].join('\n');
    const jsNames = extractDefinitions('lib/response.js', js);
    expect(jsNames).toEqual(expect.arrayContaining(['res', 'status', 'res.status', 'contentType', 'res.contentType', 'type', 'res.type', 'normalizeType', 'handle', 'Router.handle']));
    expect(jsNames).not.toContain('mime');
    expect(jsNames).not.toContain('exports.normalizeType');
  });

  it('Python, Go, Rust, the C family and Ruby', () => {
    const python = ['MAX_ROWS = 4', 'class Sampler(Base):', '    def sample(self, logits):', '        return 0', '', 'async def fetch_file(url):', '    pass'].join('\n');
    expect(extractDefinitions('sampler.py', python)).toEqual(expect.arrayContaining(['MAX_ROWS', 'Sampler', 'sample', 'Sampler.sample', 'fetch_file']));
    const go = ['package web', 'type Response struct {', '\tstatus int', '}', 'func (r *Response) ContentType(t string) *Response {', '\treturn r', '}', 'func NewResponse() *Response { return nil }', 'const maxAge = 10'].join('\n');
    expect(extractDefinitions('response.go', go)).toEqual(expect.arrayContaining(['Response', 'ContentType', 'Response.ContentType', 'NewResponse', 'maxAge']));
    const rust = ['pub struct Sampler { top_p: f32 }', 'pub trait Draw { fn draw(&self) -> u32; }', 'impl Sampler {', '    pub fn apply_top_p(&mut self, p: f32) {}', '}', 'impl Draw for Sampler { fn draw(&self) -> u32 { 0 } }', 'pub enum Mode { A, B }', 'macro_rules! square { ($x:expr) => { $x * $x }; }'].join('\n');
    expect(extractDefinitions('src/sampler.rs', rust)).toEqual(expect.arrayContaining(['Sampler', 'Draw', 'draw', 'apply_top_p', 'Sampler.apply_top_p', 'Mode', 'square']));
    const java = ['public class Response extends Base {', '    private final int status;', '    public Response contentType(String type) throws IOException {', '        if (type == null) {', '            return this;', '        }', '        return set("Content-Type", type);', '    }', '}'].join('\n');
    const javaNames = extractDefinitions('src/main/java/Response.java', java);
    expect(javaNames).toEqual(expect.arrayContaining(['Response', 'contentType', 'Response.contentType']));
    expect(javaNames).not.toContain('set');
    const csharp = ['namespace Web {', '  public sealed class Response {', '    public async Task<Response> ContentTypeAsync(string type) {', '      return this;', '    }', '  }', '}'].join('\n');
    expect(extractDefinitions('Response.cs', csharp)).toEqual(expect.arrayContaining(['Web', 'Response', 'ContentTypeAsync', 'Response.ContentTypeAsync']));
    const cpp = ['#define MAX_ROWS 4', 'struct Cache { int rows; };', 'int Cache::resize(int rows) {', '  if (rows > 0) { return rows; }', '  return 0;', '}', 'static void apply_top_p(float *x, int n) {', '}'].join('\n');
    expect(extractDefinitions('cache.cpp', cpp)).toEqual(expect.arrayContaining(['MAX_ROWS', 'Cache', 'resize', 'Cache.resize', 'apply_top_p']));
    const ruby = ['module Web', '  class Response', '    DEFAULT_TYPE = "text/html"', '    def content_type(type)', '    end', '    def self.build', '    end', '  end', 'end'].join('\n');
    expect(extractDefinitions('response.rb', ruby)).toEqual(expect.arrayContaining(['Web', 'Response', 'DEFAULT_TYPE', 'content_type', 'build']));
  });

  it('text that is not code defines nothing; keys compare camelCase, snake_case and kebab-case alike', () => {
    expect(extractDefinitions('README.md', '# class Sampler\nfunction foo() {}')).toEqual([]);
    expect(extractDefinitions('package.json', '{"main": "function x"}')).toEqual([]);
    expect(definitionKey('contentType')).toBe(definitionKey('Content-Type'));
    expect(definitionKey('content_type')).toBe('contenttype');
    expect(definitionKey('res.type')).toBe('restype');
  });
});

describe('questionNames', () => {
  it('takes identifiers as written, their members, and runs of words joined', () => {
    const names = questionNames(CONTENT_TYPE_QUESTION);
    expect(names.get('restype')).toBe(1);
    expect(names.get('contenttype')).toBe(1);
    expect(names.get('type')).toBeGreaterThan(names.get('pick')!);
    const topP = questionNames('How does the sampler apply top-p?');
    expect(topP.has('applytopp')).toBe(true);
    expect(topP.has('topp')).toBe(true);
    expect(topP.has('sampler')).toBe(true);
    // Stop words neither count alone nor join others, and clauses are not joined across a comma.
    expect(topP.has('the')).toBe(false);
    expect(topP.has('thesampler')).toBe(false);
    expect(questionNames('rows, allocated').has('rowsallocated')).toBe(false);
    expect(questionNames('What does `allocateRows` return?').get('allocaterows')).toBe(1);
    expect(questionNames('what calls decode()?').get('decode')).toBe(1);
  });

  it('tells test paths', () => {
    for (const p of ['test/res.type.js', 'src/__tests__/a.ts', 'pkg/foo_test.go', 'a/b.spec.ts', 'tests/test_sampler.py', 'src/test/java/ResponseTest.java', 'spec/models/user_spec.rb']) expect(isTestPath(p), p).toBe(true);
    for (const p of ['lib/response.js', 'src/engine/generate/sampler.ts', 'src/contest.ts', 'latest/notes.md', 'src/testing.ts']) expect(isTestPath(p), p).toBe(false);
  });
});

describe('RelevanceIndex', () => {
  it('ranks the file that defines what the question names above the test that mentions it most (plain BM25 does not)', () => {
    // The failure it fixes: BM25 over path and content puts the test file first.
    const plain = new MiniSearch({ fields: ['path', 'content'], tokenize: tokenizeForSearch, processTerm: (t: string) => t });
    plain.addAll(framework.map((f, id) => ({ id, path: f.path, content: f.text })));
    const bm25 = plain.search(CONTENT_TYPE_QUESTION, { combineWith: 'OR', boost: { path: 2 } }).map((hit) => framework[hit.id as number]!.path);
    expect(bm25[0]).toBe(TYPE_TEST);
    expect(bm25.indexOf(IMPLEMENTATION)).toBeGreaterThan(1);

    const index = new RelevanceIndex(framework);
    const scores = index.scoreByPath(CONTENT_TYPE_QUESTION);
    const order = ranked(scores);
    expect(order[0]).toBe(IMPLEMENTATION);
    // By a clear margin: the allocation's default 1.5 times the second.
    expect(scores.get(IMPLEMENTATION)!).toBeGreaterThan(1.5 * scores.get(order[1]!)!);
    // The constructor's order, as the segmented cache reads it.
    const list = index.score(CONTENT_TYPE_QUESTION);
    expect(index.paths()).toEqual(framework.map((f) => f.path));
    expect(list[framework.findIndex((f) => f.path === IMPLEMENTATION)]).toBe(scores.get(IMPLEMENTATION));
    expect(index.score('?!')).toEqual(framework.map(() => 0));
  });

  it('scores BM25 as minisearch does (the library it replaced), and exactly the same after edits as a fresh build', () => {
    const reference = new MiniSearch({ fields: ['path', 'content'], tokenize: tokenizeForSearch, processTerm: (t: string) => t });
    reference.addAll(framework.map((f, id) => ({ id, path: f.path, content: f.text })));
    const bm25 = new Bm25Index(['path', 'content'], tokenizeForSearch);
    for (const f of framework) bm25.set(f.path, [f.path, f.text]);
    for (const question of [CONTENT_TYPE_QUESTION, 'send a cookie', 'res res json', 'nothing matches this ?']) {
      const expected = reference.search(question, { combineWith: 'OR', boost: { path: 2 } });
      const got = bm25.score(question, [2, 1]);
      expect(got.size, question).toBe(expected.length);
      for (const hit of expected) expect(got.get(framework[hit.id as number]!.path)!, question).toBeCloseTo(hit.score, 9);
    }
    // Removing and re-adding a document restores the scores to the last bit.
    const before = bm25.score(CONTENT_TYPE_QUESTION, [2, 1]);
    for (const f of framework.slice(0, 3)) bm25.remove(f.path);
    expect(bm25.score(CONTENT_TYPE_QUESTION, [2, 1]).size).toBeLessThan(before.size);
    for (const f of framework.slice(0, 3)) bm25.set(f.path, [f.path, f.text]);
    expect(new Map([...bm25.score(CONTENT_TYPE_QUESTION, [2, 1])].sort())).toEqual(new Map([...before].sort()));
  });

  it('weighs test files down unless the question is about tests', () => {
    const text = 'export function parseRange(header: string) { return header.split("-"); }';
    const index = new RelevanceIndex([
      { path: 'lib/range.ts', text },
      { path: 'test/range.ts', text },
    ]);
    const plain = index.scoreByPath('How does parseRange split the header?');
    expect(plain.get('lib/range.ts')!).toBeGreaterThan(plain.get('test/range.ts')!);
    const aboutTests = index.scoreByPath('Which tests cover parseRange splitting the header?');
    expect(aboutTests.get('lib/range.ts')!).toBeCloseTo(aboutTests.get('test/range.ts')!, 10);
  });

  it('round-trips through JSON with the same scores and definitions, and keeps no file text', () => {
    const index = new RelevanceIndex(framework);
    const json = JSON.stringify(index);
    expect(json).not.toContain('mime.contentType(type) || "application/octet-stream"');
    const back = RelevanceIndex.fromJSON(json);
    expect(back.paths()).toEqual(index.paths());
    for (const p of index.paths()) expect(back.definitionsOf(p)).toEqual(index.definitionsOf(p));
    for (const question of [CONTENT_TYPE_QUESTION, 'How are cookies signed?', 'what does normalizeTypes return']) {
      expect([...back.scoreByPath(question)]).toEqual([...index.scoreByPath(question)]);
    }
    // A read-back index goes on being updated.
    back.set('lib/view.js', 'exports.lookup = function lookup(name) { return name; };');
    expect(ranked(back.scoreByPath('how does lookup find a view'))[0]).toBe('lib/view.js');
    expect(RelevanceIndex.fromJSON(index.toJSON()).size).toBe(framework.length);
  });

  it('refuses what it did not write, saying what to do', () => {
    const good = new RelevanceIndex(framework).toJSON();
    expect(() => RelevanceIndex.fromJSON('{not json')).toThrow(RelevanceIndexFormatError);
    expect(() => RelevanceIndex.fromJSON(JSON.stringify({ ...good, version: 99 }))).toThrow(/delete it and it will be rebuilt/);
    expect(() => RelevanceIndex.fromJSON({ ...good, definitions: { ...good.definitions, 'lib/ghost.js': ['ghost'] } })).toThrow(RelevanceIndexFormatError);
    const { [IMPLEMENTATION]: _dropped, ...fewer } = good.definitions;
    expect(() => RelevanceIndex.fromJSON({ ...good, definitions: fewer })).toThrow(RelevanceIndexFormatError);
    expect(() => RelevanceIndex.fromJSON(JSON.stringify({ ...good, search: { index: 'nope' } }))).toThrow(RelevanceIndexFormatError);
    expect(() => RelevanceIndex.fromJSON(JSON.stringify({ ...good, search: { ...good.search, postings: [[['res', [99, 1]]], []] } }))).toThrow(/refers to no document/);
  });

  it('set and remove leave the index as a fresh build of the same files', () => {
    const edited = `${framework.find((f) => f.path === 'lib/utils.js')!.text}\nexports.contentTypeOf = function contentTypeOf(res) { return res.get("Content-Type"); };\n`;
    const added = { path: 'lib/view.js', text: 'exports.lookup = function lookup(name, root) { return root + "/" + name; };' };
    const incremental = new RelevanceIndex(framework);
    incremental.set('lib/utils.js', edited);
    expect(incremental.remove('test/res.send.js')).toBe(true);
    expect(incremental.remove('test/res.send.js')).toBe(false);
    incremental.set(added.path, added.text);
    incremental.set(TYPE_TEST, framework.find((f) => f.path === TYPE_TEST)!.text);

    const files = [...framework.filter((f) => f.path !== 'test/res.send.js').map((f) => (f.path === 'lib/utils.js' ? { path: f.path, text: edited } : f)), added];
    const fresh = new RelevanceIndex(files);
    expect(incremental.has('test/res.send.js')).toBe(false);
    expect(incremental.has(added.path)).toBe(true);
    expect(incremental.paths().sort()).toEqual(fresh.paths().sort());
    for (const p of fresh.paths()) expect(incremental.definitionsOf(p)).toEqual(fresh.definitionsOf(p));
    for (const question of [CONTENT_TYPE_QUESTION, 'what is contentTypeOf', 'How does the view lookup work?', 'send a cookie']) {
      const a = incremental.scoreByPath(question);
      const b = fresh.scoreByPath(question);
      expect([...a.keys()].sort(), question).toEqual([...b.keys()].sort());
      for (const [p, s] of b) expect(a.get(p)!, `${question}: ${p}`).toBeCloseTo(s, 9);
    }
    // The edit is seen: the new function's file now ranks first for it.
    expect(ranked(incremental.scoreByPath('what is contentTypeOf'))[0]).toBe('lib/utils.js');
    // A file named in the question, removed: no longer scored by its name.
    expect(ranked(incremental.scoreByPath('what does view.js do?'))[0]).toBe(added.path);
    incremental.remove(added.path);
    expect(incremental.scoreByPath('what does view.js do?').has(added.path)).toBe(false);
  });

  it('a question about the whole project ranks the top-level README first', () => {
    const files = [
      { path: 'README.md', text: 'A VS Code extension that answers questions about the open repository.' },
      { path: 'docs/README.md', text: 'Design notes.' },
      { path: 'scripts/ask.ts', text: 'const QUESTION = "What does this project do?"; // asked of this project, the project itself' },
    ];
    const index = new RelevanceIndex(files);
    expect(ranked(index.scoreByPath('What does this project do?'))[0]).toBe('README.md');
    expect(ranked(index.scoreByPath('Give me an overview of the codebase'))[0]).toBe('README.md');
    expect(ranked(index.scoreByPath('what does ask.ts do?'))[0]).toBe('scripts/ask.ts');
  });

  it('a file the question names ranks first, with or without its extension, and after a JSON round trip', () => {
    const files = [
      { path: 'src/codecs/checksum.ts', text: 'export function crc(bytes: Uint8Array): number { return bytes.length; }' },
      { path: 'docs/design.md', text: 'The checksum of every segment is checked when it is read. The checksum covers the header and the blocks; a bad checksum means the segment is rebuilt.' },
      { path: 'src/store.ts', text: 'import { crc } from "./codecs/checksum"; export function read(b: Uint8Array) { return crc(b); }' },
    ];
    const index = new RelevanceIndex(files);
    for (const question of ['What does checksum.ts compute?', 'what does checksum do', 'Explain src/codecs/checksum.ts.']) {
      expect(ranked(index.scoreByPath(question))[0], question).toBe('src/codecs/checksum.ts');
      expect(ranked(RelevanceIndex.fromJSON(JSON.stringify(index)).scoreByPath(question))[0], question).toBe('src/codecs/checksum.ts');
    }
  });
});

describe('relevance on this repository', () => {
  it('puts the implementation first, not its test', async () => {
    // This file and the benchmark's questions ask the same questions; they take no part.
    const { files } = await ingestDirectory(REPO_ROOT);
    const index = new RelevanceIndex(files.filter((f) => f.path !== 'test/relevance.test.ts' && f.path !== 'bench/questions/this-repository.json'));
    const cases: [string, string, string][] = [
      ['How does the sampler apply top-p?', 'src/engine/generate/sampler.ts', 'test/sampler.test.ts'],
      ['How does allocateRows share the budget among files?', 'src/engine/segments/allocate.ts', 'test/segments.test.ts'],
      ['How does rotateRows rotate keys to new positions?', 'src/engine/kv/rotary.ts', 'test/rotary.test.ts'],
    ];
    for (const [question, implementation, test] of cases) {
      const order = ranked(index.scoreByPath(question));
      expect(order[0], question).toBe(implementation);
      expect(order.indexOf(test), question).toBeGreaterThan(0);
    }
  });
});

describe('the segmented cache on the web framework (embedded model)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.load({ modelDir: EMBEDDED_MODEL, threads: 1 });
  });
  afterAll(async () => {
    await engine.dispose();
  });

  it('gives the implementation at least half its stored rows, and more than the test file', async () => {
    const storeDir = tempDir('relevance-store');
    const segments = new WorkspaceSegmentCache(engine.session, engine.tokenizer, engine.folder, { codec: 'float32', capacity: 512, sinks: 4, retain: 0.5, recent: 256, storeDir, workspaceId: 'web' });
    await segments.update(framework);
    const assembled = await segments.assemble(CONTENT_TYPE_QUESTION);
    const stored = segments.files.reduce((n, f) => n + f.rows, 0);
    // The budget is short of the files: the allocation decides.
    expect(stored).toBeGreaterThan(assembled.segmentBudget);
    const implementation = assembled.files.find((f) => f.path === IMPLEMENTATION)!;
    const test = assembled.files.find((f) => f.path === TYPE_TEST)!;
    expect(implementation.storedRows).toBeGreaterThan(assembled.segmentBudget / 2);
    expect(implementation.rows).toBeGreaterThanOrEqual(implementation.storedRows / 2);
    expect(implementation.rows).toBeGreaterThan(test.rows);
    // Slots run from least to most relevant: the implementation sits next to the question.
    expect(assembled.files[assembled.files.length - 1]!.path).toBe(IMPLEMENTATION);
    expect(assembled.dropped).toEqual([]);
    fs.rmSync(storeDir, { recursive: true, force: true });
  });
});
