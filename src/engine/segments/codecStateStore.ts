// The codec state (RVQ codebooks) a segment store's segments were encoded with, saved next to
// them: DIR/v1/codecs/rvq-<key>.state, where <key> hashes the model identity (modelIdentity.ts)
// and the calibration settings, so another model or other RVQ parameters get their own file.
// loadOrCalibrateCodecState loads and checks it; when it is missing, corrupt or made for another
// shape it calibrates anew (calibrateRvq on texts the model samples itself, seeded, so the
// codebooks are the same on every machine for the same model) and writes the file atomically
// (temp file, then rename). A store that cannot be written keeps the codebooks in memory for this
// run and says so in `warnings`. `signal` stops a calibration between tokens, chunks and k-means
// stages (IngestCancelledError); the state file is written only once the codebooks are complete.
// The codebooks' fingerprint goes into the segment cache's settings id (workspaceSegmentCache.ts),
// so recalibrating invalidates the segments made before.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DecoderSession } from '../model/decoderSession';
import type { ModelFolder } from '../model/modelFolder';
import type { CodecName } from './codec';
import { calibrateRvq, codecNeedsState, parseCodecState, RVQ_DEFAULTS, sampleCalibrationTexts, serializeCodecState, type CodecState, type RvqParameters } from './codecs/index';
import { CodecStateError } from './codecs/errors';
import { modelIdentity } from './modelIdentity';

export interface CodecCalibrationSettings extends RvqParameters {
  /** Calibration texts the model samples (default 8) and their length in tokens (default 192, at most the context): enough for the 8192 sub-vectors fitted per layer and kind on stories260K. */
  texts: number;
  textLength: number;
  seed: number;
  /** Lloyd iterations per stage and sub-vectors fitted per layer and kind. */
  iterations: number;
  maxSamples: number;
}

export const CODEC_CALIBRATION_DEFAULTS: CodecCalibrationSettings = { ...RVQ_DEFAULTS, texts: 8, textLength: 192, seed: 1, iterations: 8, maxSamples: 8192 };

export interface LoadedCodecState {
  /** Undefined for codecs that need none (float32, int8). */
  state: CodecState | undefined;
  /** Whether the codebooks were calibrated in this call (false: loaded from the store, or none needed). */
  calibrated: boolean;
  /** The state file (undefined without a store or for codecs without state). */
  file: string | undefined;
  /** Whether the state is saved in the store. */
  persisted: boolean;
  calibrationMs: number;
  warnings: string[];
}

/** The state file's path for this model and settings. */
export function codecStatePath(storeDir: string, folder: ModelFolder, settings: CodecCalibrationSettings): string {
  const key = createHash('sha256').update(JSON.stringify({ model: modelIdentity(folder), ...settings })).digest('hex').slice(0, 32);
  return path.join(storeDir, 'v1', 'codecs', `rvq-${key}.state`);
}

/**
 * The codec state `codec` needs: loaded from `storeDir` if it holds a good one for this model,
 * else calibrated on the model (and saved when the store can be written).
 */
export async function loadOrCalibrateCodecState(
  session: DecoderSession,
  folder: ModelFolder,
  storeDir: string | undefined,
  codec: CodecName,
  options: Partial<CodecCalibrationSettings> & { onCalibrating?: () => void; signal?: AbortSignal } = {},
): Promise<LoadedCodecState> {
  if (!codecNeedsState(codec)) return { state: undefined, calibrated: false, file: undefined, persisted: false, calibrationMs: 0, warnings: [] };
  const { onCalibrating, signal, ...given } = options;
  const settings: CodecCalibrationSettings = { ...CODEC_CALIBRATION_DEFAULTS, ...given };
  const warnings: string[] = [];
  const file = storeDir === undefined ? undefined : codecStatePath(storeDir, folder, settings);
  if (file !== undefined && fs.existsSync(file)) {
    try {
      const state = parseCodecState(fs.readFileSync(file));
      checkFits(state, folder, settings);
      return { state, calibrated: false, file, persisted: true, calibrationMs: 0, warnings };
    } catch (error) {
      if (!(error instanceof CodecStateError) && !isFsError(error)) throw error;
      warnings.push(`The saved RVQ codebooks ${file} were unusable (${(error as Error).message}); they were recalibrated, and segments encoded with the old ones will be rebuilt.`);
    }
  }

  onCalibrating?.();
  const started = performance.now();
  const context = folder.config.maxPositionEmbeddings;
  const texts = await sampleCalibrationTexts(session, { count: settings.texts, length: Math.min(settings.textLength, context), seed: settings.seed, bos: folder.bosTokenId, signal });
  const rvq = await calibrateRvq(session, texts, {
    subDim: settings.subDim,
    stages: settings.stages,
    entries: settings.entries,
    scale: settings.scale,
    scaleBits: settings.scaleBits,
    seed: settings.seed,
    iterations: settings.iterations,
    maxSamples: settings.maxSamples,
    signal,
  });
  const state: CodecState = { codec: 'rvq', rvq };
  const calibrationMs = performance.now() - started;
  let persisted = false;
  if (file !== undefined) {
    const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(temp, serializeCodecState(state));
      fs.renameSync(temp, file);
      persisted = true;
    } catch (error) {
      if (!isFsError(error)) throw error;
      try {
        fs.rmSync(temp, { force: true });
      } catch {
        // Nothing was written there.
      }
      warnings.push(`The RVQ codebooks could not be saved in ${path.dirname(file)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); they are kept in memory for this run and will be calibrated again next time. Make the store writable or pass another --store.`);
    }
  }
  return { state, calibrated: true, file, persisted, calibrationMs, warnings };
}

/** Throws CodecStateError unless the saved codebooks have this model's shape and these parameters. */
function checkFits(state: CodecState, folder: ModelFolder, settings: CodecCalibrationSettings): void {
  const b = state.rvq;
  const { numLayers, headDim } = folder.config;
  const same = b.numLayers === numLayers && b.headDim === headDim && b.subDim === settings.subDim && b.stages === settings.stages && b.entries === settings.entries && b.scale === settings.scale && b.scaleBits === settings.scaleBits;
  if (!same) {
    throw new CodecStateError(
      `they are ${b.numLayers} layers × head_dim ${b.headDim}, ${b.stages} stages of ${b.entries} entries over sub-vectors of ${b.subDim}, where this model and settings need ${numLayers} × ${headDim}, ${settings.stages} of ${settings.entries} over ${settings.subDim}`,
    );
  }
}

function isFsError(error: unknown): boolean {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}
