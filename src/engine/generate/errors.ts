// Errors a generation request can end with before any token is produced.

import { FreqKvError } from '../errors';

/** The prompt is empty and the model has no BOS token to start from. */
export class EmptyPromptError extends FreqKvError {}

/** The prompt has more tokens than the cache can hold. */
export class ContextOverflowError extends FreqKvError {}

/** A request arrived while another one was running on the same engine. */
export class EngineBusyError extends FreqKvError {}

/** A request asked for something impossible (a negative token count, a bad sampling value). */
export class InvalidRequestError extends FreqKvError {}
