// The extension's settings (package.json contributes.configuration, section "freqkv"), read
// into engine requests. Defaults here match package.json.

import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AskMode, AskParams, CacheOptions, GenerateParams, LoadModelParams } from '../protocol';

export interface FreqKvSettings {
  modelPath: string;
  /** The graph of the model folder to load (e.g. model_q4f16.onnx); empty: the folder's default. */
  onnxFile: string;
  cache: CacheOptions;
  maxNewTokens: number;
  temperature: number;
  threads: number;
  include: string[];
  exclude: string[];
  maxFileBytes: number;
  /** Ask About Workspace adds files until this many tokens; 0: no limit. */
  maxWorkspaceTokens: number;
  mode: AskMode;
  segmentCodec: NonNullable<AskParams['codec']>;
  maxStoreMB: number;
  /** Where Download Model fetches from: the Hugging Face hub or a mirror of it. */
  huggingFaceEndpoint: string;
}

export function readSettings(): FreqKvSettings {
  const config = vscode.workspace.getConfiguration('freqkv');
  const capacity = config.get<number>('cache.capacity', 0);
  return {
    modelPath: config.get<string>('modelPath', ''),
    onnxFile: config.get<string>('onnxFile', '').trim(),
    cache: {
      method: config.get<CacheOptions['method']>('cache.method', 'freqkv'),
      capacity: capacity > 0 ? capacity : undefined,
      sinks: config.get<number>('cache.sinks', 4),
      retain: config.get<number>('cache.retain', 0.5),
    },
    maxNewTokens: config.get<number>('maxNewTokens', 256),
    temperature: config.get<number>('temperature', 0),
    threads: config.get<number>('threads', 0),
    include: config.get<string[]>('include', ['**/*']),
    exclude: config.get<string[]>('exclude', []),
    maxFileBytes: config.get<number>('maxFileBytes', 1_000_000),
    maxWorkspaceTokens: config.get<number>('maxWorkspaceTokens', 500_000),
    mode: config.get<AskMode>('mode', 'segmented'),
    segmentCodec: config.get<NonNullable<AskParams['codec']>>('segments.codec', 'int8'),
    maxStoreMB: config.get<number>('segments.maxStoreMB', 4096),
    huggingFaceEndpoint: config.get<string>('huggingFaceEndpoint', 'https://huggingface.co').trim() || 'https://huggingface.co',
  };
}

/** The model to load: the setting, or the embedded model shipped in the extension. */
export function modelToLoad(settings: FreqKvSettings, extensionPath: string): LoadModelParams {
  const modelDir = settings.modelPath.trim() !== '' ? settings.modelPath : path.join(extensionPath, 'models', 'stories260K');
  return { modelDir, onnxFile: settings.onnxFile !== '' ? settings.onnxFile : undefined, threads: settings.threads > 0 ? settings.threads : undefined };
}

/** The generation options every request takes from the settings. */
export function generationSettings(settings: FreqKvSettings): Omit<GenerateParams, 'prompt'> {
  return { maxNewTokens: settings.maxNewTokens, sampling: { temperature: settings.temperature }, cache: settings.cache };
}
