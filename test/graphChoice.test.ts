// Which graph a model folder loads when it holds several (as onnx-community folders do), and the
// element types the folder check accepts: copies of ../shared/formats/optimum-qwen2-tiny (six
// Optimum exports), graphs of it with an edited signature, and a folder Download Model fetched
// from the stand-in hub.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeOnnxModel, inspectModelFolder } from '../src/engine/model/modelFolder';
import { ModelNotFoundError, UnsupportedModelError } from '../src/engine/model/errors';
import { downloadModel } from '../src/engine/model/download';
import { MANIFEST, readManifest } from '../src/engine/model/download/folderState';
import { SHARED, tempDir } from './helpers';
import { buildHubRepo, startHubServer, type HubServer } from './hubServer';

const FOLDER = path.join(SHARED, 'formats', 'optimum-qwen2-tiny');
const ALL_GRAPHS = ['model.onnx', 'model_fp16.onnx', 'model_q4.onnx', 'model_q4f16.onnx', 'model_slim.onnx', 'model_slim_q4.onnx'];
const work = tempDir('graphs');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** A copy of the optimum folder with only these graphs in onnx/. */
function folderWith(graphs: string[]): string {
  const dir = fs.mkdtempSync(path.join(work, 'f-'));
  for (const file of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) fs.copyFileSync(path.join(FOLDER, file), path.join(dir, file));
  fs.mkdirSync(path.join(dir, 'onnx'));
  for (const graph of graphs) fs.copyFileSync(path.join(FOLDER, 'onnx', graph), path.join(dir, 'onnx', graph));
  return dir;
}

const chosen = (dir: string, onnxFile?: string): { file: string; choice: string } => {
  const folder = inspectModelFolder(dir, { onnxFile });
  return { file: path.relative(dir, folder.onnxPath).split(path.sep).join('/'), choice: folder.graphChoice };
};

describe('choosing the graph of a folder that holds several', () => {
  it('nothing chosen: model.onnx first, then the documented order, not the order of names', () => {
    const all = folderWith(ALL_GRAPHS);
    expect(inspectModelFolder(all).graphFiles).toEqual(ALL_GRAPHS.map((g) => `onnx/${g}`));
    expect(chosen(all)).toEqual({ file: 'onnx/model.onnx', choice: 'default' });
    // Without model.onnx: q4 (float32 inputs and outputs) before fp16, which sorts first by name.
    expect(chosen(folderWith(ALL_GRAPHS.filter((g) => g !== 'model.onnx')))).toEqual({ file: 'onnx/model_q4.onnx', choice: 'default' });
    expect(chosen(folderWith(['model_fp16.onnx', 'model_q4f16.onnx']))).toEqual({ file: 'onnx/model_q4f16.onnx', choice: 'default' });
  });

  it('--onnx-file / freqkv.onnxFile names it, in DIR/onnx or relative to DIR', () => {
    const all = folderWith(ALL_GRAPHS);
    expect(chosen(all, 'model_q4f16.onnx')).toEqual({ file: 'onnx/model_q4f16.onnx', choice: 'requested' });
    expect(chosen(all, 'onnx/model_fp16.onnx')).toEqual({ file: 'onnx/model_fp16.onnx', choice: 'requested' });
    expect(chosen(all, ' model_slim.onnx ')).toEqual({ file: 'onnx/model_slim.onnx', choice: 'requested' });
    expect(inspectModelFolder(all, { onnxFile: 'model_fp16.onnx' }).signature).toMatchObject({ kvElementType: 'float16', logitsElementType: 'float16' });
  });

  it('a named graph that is missing: the error lists the graphs there and what to do', () => {
    const dir = folderWith(['model_q4.onnx', 'model_fp16.onnx']);
    expect(() => inspectModelFolder(dir, { onnxFile: 'model_q4f16.onnx' })).toThrow(ModelNotFoundError);
    expect(() => inspectModelFolder(dir, { onnxFile: 'model_q4f16.onnx' })).toThrow(
      /has no graph model_q4f16\.onnx .*Graphs in the folder: onnx\/model_fp16\.onnx, onnx\/model_q4\.onnx; name one of them with --onnx-file \(or the freqkv\.onnxFile setting\)/,
    );
    const empty = folderWith([]);
    expect(() => inspectModelFolder(empty, { onnxFile: 'model.onnx' })).toThrow(/holds no \.onnx file at all/);
    expect(() => inspectModelFolder(empty)).toThrow(/has no onnx\/model\.onnx/);
  });

  it('one graph is loaded whatever its name; several with no standard name are an error, not a guess', () => {
    expect(chosen(folderWith(['model_slim_q4.onnx']))).toEqual({ file: 'onnx/model_slim_q4.onnx', choice: 'only' });
    const two = folderWith(['model_slim.onnx', 'model_slim_q4.onnx']);
    expect(() => inspectModelFolder(two)).toThrow(/holds several graphs and none has a standard name .*onnx\/model_slim\.onnx, onnx\/model_slim_q4\.onnx; name one with --onnx-file/);
    expect(chosen(two, 'model_slim.onnx').file).toBe('onnx/model_slim.onnx');
  });

  it('the graph freqkv-download.json records is loaded; a name given still wins; a recorded graph that is gone is an error', () => {
    const dir = folderWith(ALL_GRAPHS);
    fs.writeFileSync(path.join(dir, MANIFEST), JSON.stringify({ repo: 'onnx-community/x', variant: 'q4f16', onnxFile: 'onnx/model_q4f16.onnx', files: [] }));
    expect(chosen(dir)).toEqual({ file: 'onnx/model_q4f16.onnx', choice: 'downloaded' });
    expect(chosen(dir, 'model_q4.onnx')).toEqual({ file: 'onnx/model_q4.onnx', choice: 'requested' });
    fs.rmSync(path.join(dir, 'onnx', 'model_q4f16.onnx'));
    expect(() => inspectModelFolder(dir)).toThrow(/freqkv-download\.json says Download Model fetched onnx\/model_q4f16\.onnx, but it is missing\. Graphs in the folder: .*run 'Download Model' again/);
  });
});

/** A copy of the optimum folder holding `graph` with its signature edited. */
function editedGraph(graph: string, edit: (g: onnx.IGraphProto) => void): string {
  const dir = folderWith([]);
  const model = decodeOnnxModel(fs.readFileSync(path.join(FOLDER, 'onnx', graph)));
  edit(model.graph!);
  fs.writeFileSync(path.join(dir, 'onnx', 'model.onnx'), onnx.ModelProto.encode(model).finish());
  return dir;
}

function setType(values: onnx.IValueInfoProto[] | null | undefined, name: string, type: onnx.TensorProto.DataType): void {
  const value = (values ?? []).find((v) => v.name === name);
  if (!value?.type?.tensorType) throw new Error(`no tensor ${name}`);
  value.type.tensorType.elemType = type;
}

describe('element types the folder check accepts', () => {
  it('float32 and float16 logits and KV are accepted as the graphs declare them', () => {
    for (const graph of ALL_GRAPHS) {
      const half = graph.includes('fp16') || graph.includes('q4f16');
      expect(inspectModelFolder(FOLDER, { onnxFile: graph }).signature, graph).toMatchObject({
        kvElementType: half ? 'float16' : 'float32',
        logitsElementType: half ? 'float16' : 'float32',
      });
    }
  });

  it('bfloat16 or undeclared logits, a present type unlike the past, a double cache and int32 ids are refused by name, saying what to do', () => {
    const DataType = onnx.TensorProto.DataType;
    const cases: [string, (g: onnx.IGraphProto) => void, RegExp][] = [
      ['model_fp16.onnx', (g) => setType(g.output, 'logits', DataType.BFLOAT16), /output logits is bfloat16; the engine supports float32 and float16 logits and KV caches\. Choose another export .*--onnx-file or the freqkv\.onnxFile setting/],
      ['model.onnx', (g) => setType(g.output, 'logits', DataType.UNDEFINED), /output logits is of no declared element type/],
      ['model_fp16.onnx', (g) => setType(g.output, 'present.1.value', DataType.FLOAT), /output present\.1\.value is float32 but the past_key_values inputs are float16; .*must match/],
      ['model.onnx', (g) => setType(g.input, 'past_key_values.0.key', DataType.DOUBLE), /input past_key_values\.0\.key is double; the engine supports float32 and float16/],
      ['model.onnx', (g) => setType(g.output, 'present.0.key', DataType.DOUBLE), /output present\.0\.key is double/],
      ['model_q4.onnx', (g) => setType(g.input, 'input_ids', DataType.INT32), /input input_ids is int32; the engine feeds int64 input_ids/],
    ];
    for (const [graph, edit, message] of cases) {
      const dir = editedGraph(graph, edit);
      expect(() => inspectModelFolder(dir), String(message)).toThrow(UnsupportedModelError);
      expect(() => inspectModelFolder(dir)).toThrow(message);
    }
  });
});

describe('a downloaded folder loads the graph it fetched', () => {
  const REPO = 'onnx-community/Tiny-Test-Instruct';
  let hub: HubServer;
  let repoDir: string;
  beforeAll(async () => {
    repoDir = buildHubRepo();
    hub = await startHubServer({ [REPO]: repoDir }, { lifetimeMs: 120_000 });
  });
  afterAll(async () => {
    await hub.close();
  });

  it('the manifest records onnx/model_q4.onnx, which wins over model.onnx added to the folder later', async () => {
    const dest = path.join(fs.mkdtempSync(path.join(work, 'dl-')), 'tiny');
    const result = await downloadModel({ repo: REPO, variant: 'q4', dest, endpoint: hub.endpoint, retries: 0 });
    expect(readManifest(dest)?.onnxFile).toBe('onnx/model_q4.onnx');
    expect(result.onnxFile).toBe(path.join(dest, 'onnx', 'model_q4.onnx'));
    for (const file of ['model.onnx', 'model.onnx_data']) fs.copyFileSync(path.join(repoDir, 'onnx', file), path.join(dest, 'onnx', file));
    expect(chosen(dest)).toEqual({ file: 'onnx/model_q4.onnx', choice: 'downloaded' });
    expect(chosen(dest, 'model.onnx')).toEqual({ file: 'onnx/model.onnx', choice: 'requested' });
  });
});
