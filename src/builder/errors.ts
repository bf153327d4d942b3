// Errors raised while reading model weights from disk.

import { FreqKvError } from '../engine/errors';

/** A llama2.c checkpoint whose header or size does not match its layout. */
export class CheckpointFormatError extends FreqKvError {}

/** A safetensors file that cannot be parsed: bad header, truncated data, overlapping tensors. */
export class SafetensorsFormatError extends FreqKvError {}

/** A tensor stored in a dtype the reader does not convert. */
export class UnsupportedDtypeError extends FreqKvError {}

/** A tensor the model needs is in none of the model's files. */
export class MissingTensorError extends FreqKvError {}

/** A tensor whose shape differs from what config.json implies. */
export class TensorShapeError extends FreqKvError {}

/** A model folder without the files a Hugging Face model needs (config.json, weights). */
export class ModelFolderError extends FreqKvError {}
