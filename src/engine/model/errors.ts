// Errors raised while reading a model's config.json.

import { FreqKvError } from '../errors';

/** The model uses an architecture or a feature (such as a rope scaling type) that the engine does not run. */
export class UnsupportedModelError extends FreqKvError {}

/** config.json is missing a field, or a field has an impossible value. */
export class ModelConfigError extends FreqKvError {}
