// Errors raised while loading or using a model's tokenizer.

import { FreqKvError } from '../errors';

/** A model folder's tokenizer files are missing, unreadable or not a tokenizer we can build. */
export class TokenizerLoadError extends FreqKvError {}

/** The caller asked for a chat prompt but the model ships no chat template. */
export class NoChatTemplateError extends FreqKvError {}

/** The model's chat template does not parse or fails while rendering. */
export class ChatTemplateError extends FreqKvError {}
