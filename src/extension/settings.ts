// The extension's settings (package.json contributes.configuration, section "freqkv"), read
// into engine requests. Defaults come from the engine's one defaults module (a test checks that
// package.json states the same).

import * as path from 'node:path';
import * as vscode from 'vscode';
import { WORKSPACE_DEFAULTS as D } from '../engine/index/defaults';
import type { AskMode, CacheOptions, GenerateParams, LoadModelParams, WorkspaceSpec } from '../protocol';

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
  segmentCodec: NonNullable<WorkspaceSpec['codec']>;
  maxStoreMB: number;
  /** Seconds a first answer may spend prefilling files not indexed yet. */
  firstAnswerSeconds: number;
  /** Where Download Model fetches from: the Hugging Face hub or a mirror of it. */
  huggingFaceEndpoint: string;
}

export function readSettings(): FreqKvSettings {
  const config = vscode.workspace.getConfiguration('freqkv');
  const capacity = config.get<number>('cache.capacity', D.capacity);
  return {
    modelPath: config.get<string>('modelPath', ''),
    onnxFile: config.get<string>('onnxFile', '').trim(),
    cache: {
      method: config.get<CacheOptions['method']>('cache.method', D.cacheMethod),
      capacity: capacity > 0 ? capacity : undefined,
      sinks: config.get<number>('cache.sinks', D.sinks),
      retain: config.get<number>('cache.retain', D.retain),
    },
    maxNewTokens: config.get<number>('maxNewTokens', D.maxNewTokens),
    temperature: config.get<number>('temperature', D.temperature),
    threads: config.get<number>('threads', D.threads),
    include: config.get<string[]>('include', [...D.include]),
    exclude: config.get<string[]>('exclude', [...D.exclude]),
    maxFileBytes: config.get<number>('maxFileBytes', D.maxFileBytes),
    maxWorkspaceTokens: config.get<number>('maxWorkspaceTokens', D.maxWorkspaceTokens),
    mode: config.get<AskMode>('mode', D.mode),
    segmentCodec: config.get<NonNullable<WorkspaceSpec['codec']>>('segments.codec', D.codec),
    maxStoreMB: config.get<number>('segments.maxStoreMB', D.maxStoreMB),
    firstAnswerSeconds: config.get<number>('firstAnswerSeconds', D.firstAnswerSeconds),
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
