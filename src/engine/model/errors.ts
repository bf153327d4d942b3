// Errors raised while finding, reading and running a model folder.

import { FreqKvError } from '../errors';

/** The model uses an architecture or a feature (such as a rope scaling type) that the engine does not run. */
export class UnsupportedModelError extends FreqKvError {}

/** config.json is missing a field, or a field has an impossible value. */
export class ModelConfigError extends FreqKvError {}

/** A model folder, or a file a model folder needs, does not exist. */
export class ModelNotFoundError extends FreqKvError {}

/** A model file exists but cannot be read: truncated, corrupt, or not an ONNX model at all. */
export class ModelFileCorruptError extends FreqKvError {}

/** The ONNX graph lacks an input or output of the decoder signature, or disagrees with config.json. */
export class ModelSignatureError extends FreqKvError {}

/** onnxruntime refused to load the graph or failed while running it. */
export class ModelRuntimeError extends FreqKvError {}
