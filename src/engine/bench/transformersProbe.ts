// The speed benchmark's peer: the same work as probeFreqKv with transformers.js
// (@huggingface/transformers, which runs the same onnxruntime-node) on the same model folder.
// It loads the folder with AutoModelForCausalLM.from_pretrained (local files only), prefills
// the same L tokens (one forward pass, or forward passes of `oneForwardLimit` tokens with its
// past_key_values when one pass over L tokens would not fit in memory), then times greedy
// decode steps feeding back past_key_values as its own generate() does. transformers.js keeps
// only a full cache. Loaded lazily so nothing else pays for it.

import * as path from 'node:path';
import { argmax } from '../generate/sampler';
import { ModelTokenizer } from '../tokenizer/modelTokenizer';
import { benchTokens, fullCacheResult, type SpeedProbeResult, type SpeedProbeSpec } from './speedProbe';
import { inspectModelFolder } from '../model/modelFolder';

/** The few parts of transformers.js the probe uses. */
interface TjsTensor {
  dims: number[];
  data: unknown;
}
interface TjsModel {
  (inputs: Record<string, unknown>): Promise<Record<string, TjsTensor>>;
  dispose(): Promise<unknown>;
}
interface TjsCache {
  update(entries: Record<string, TjsTensor>): void;
}
interface Transformers {
  env: { localModelPath: string; allowRemoteModels: boolean; allowLocalModels: boolean };
  AutoModelForCausalLM: { from_pretrained(id: string, options: Record<string, unknown>): Promise<TjsModel> };
  Tensor: new (type: string, data: BigInt64Array, dims: number[]) => TjsTensor;
  DynamicCache: new (entries: Record<string, TjsTensor>) => TjsCache;
}

/**
 * The transformers.js dtype that loads the graph file our engine runs: it names graphs
 * onnx/model{suffix}.onnx, fp32 with no suffix and q8 as "_quantized".
 */
export function transformersDtype(onnxFile: string | undefined): string {
  if (onnxFile === undefined) return 'fp32';
  const match = /^onnx[/\\]model(?:_(\w+))?\.onnx$/.exec(onnxFile);
  if (!match || match[1] === 'fp32') throw new Error(`transformers.js loads only onnx/model*.onnx graphs, not ${onnxFile}; run the transformers.js rows on another graph (--onnx-file) or leave them out (--engines freqkv).`);
  const suffix = match[1];
  return suffix === undefined ? 'fp32' : suffix === 'quantized' ? 'q8' : suffix;
}

/** Default: texts up to 4,096 tokens go through one forward pass. */
export const DEFAULT_ONE_FORWARD_LIMIT = 4096;

export async function probeTransformers(spec: SpeedProbeSpec): Promise<SpeedProbeResult> {
  if (inspectModelFolder(spec.modelDir, { onnxFile: spec.onnxFile }).signature.kvOutputs !== 'present') {
    throw new Error(`transformers.js feeds back present outputs, and ${spec.modelDir}'s graph outputs only new rows (new_key_values); convert it with --kv-outputs present for transformers.js.`);
  }
  const tokenizer = await ModelTokenizer.fromFolder(spec.modelDir);
  const L = spec.contextTokens;
  const ids = benchTokens(tokenizer, spec.text, L);
  const t = (await import('@huggingface/transformers')) as unknown as Transformers;
  const dir = path.resolve(spec.modelDir);
  t.env.localModelPath = `${path.dirname(dir)}${path.sep}`;
  t.env.allowRemoteModels = false;
  t.env.allowLocalModels = true;
  const l0 = performance.now();
  const model = await t.AutoModelForCausalLM.from_pretrained(path.basename(dir), {
    local_files_only: true,
    dtype: transformersDtype(spec.onnxFile),
    device: 'cpu',
    session_options: { intraOpNumThreads: spec.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' },
  });
  const loadMs = performance.now() - l0;
  const limit = spec.oneForwardLimit ?? DEFAULT_ONE_FORWARD_LIMIT;
  const int64 = (values: ArrayLike<number>): TjsTensor => new t.Tensor('int64', BigInt64Array.from(Array.from(values, (v) => BigInt(v))), [1, values.length]);
  const ones = (n: number): TjsTensor => new t.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
  const pastOf = (outputs: Record<string, TjsTensor>): Record<string, TjsTensor> => {
    const entries: Record<string, TjsTensor> = {};
    for (const [name, value] of Object.entries(outputs)) if (name.startsWith('present')) entries[name.replace('present', 'past_key_values')] = value;
    return entries;
  };
  const lastToken = (logits: TjsTensor): number => {
    const vocab = logits.dims.at(-1)!;
    const data = logits.data as Float32Array;
    return argmax(data.subarray(data.length - vocab));
  };

  /** Prefill of `tokens`, then `steps` greedy steps; returns the timings. */
  const run = async (tokens: number[], steps: number): Promise<{ prefillMs: number; ttftMs: number; decodeMs: number }> => {
    const p0 = performance.now();
    let past: TjsCache | undefined;
    let outputs: Record<string, TjsTensor> = {};
    for (let done = 0; done < tokens.length; ) {
      const chunk = tokens.slice(done, done + limit);
      outputs = await model({ input_ids: int64(chunk), attention_mask: ones(done + chunk.length), ...(past ? { past_key_values: past } : {}) });
      done += chunk.length;
      if (past) past.update(pastOf(outputs));
      else past = new t.DynamicCache(pastOf(outputs));
    }
    const prefillMs = performance.now() - p0;
    let token = lastToken(outputs.logits!);
    const ttftMs = performance.now() - p0;
    const d0 = performance.now();
    for (let i = 0; i < steps; i++) {
      outputs = await model({ input_ids: int64([token]), attention_mask: ones(tokens.length + i + 1), past_key_values: past });
      past!.update(pastOf(outputs));
      token = lastToken(outputs.logits!);
    }
    return { prefillMs, ttftMs, decodeMs: performance.now() - d0 };
  };
  try {
    await run(ids.slice(0, 8), 2); // warm-up, as for our engine
    const timing = await run(ids, spec.decodeSteps);
    return fullCacheResult('transformers.js', spec, {
      loadMs,
      prefillMs: timing.prefillMs,
      timeToFirstTokenMs: timing.ttftMs,
      decodeMs: timing.decodeMs,
      capacity: L + spec.decodeSteps + 1,
      prefillMode: L <= limit ? 'one forward pass' : `forward passes of ${limit} tokens with past_key_values`,
    });
  } finally {
    await model.dispose();
  }
}
