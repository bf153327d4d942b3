// The tokenizer of a model folder: Hugging Face's tokenizer.json run by @huggingface/tokenizers,
// the special tokens of tokenizer_config.json, the chat template rendered by @huggingface/jinja
// the way transformers renders it, and a streaming detokenizer for generated ids.

import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Tokenizer } from '@huggingface/tokenizers' with { 'resolution-mode': 'import' };
import type { Template } from '@huggingface/jinja' with { 'resolution-mode': 'import' };
import { ChatTemplateError, NoChatTemplateError, TokenizerLoadError } from './errors';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface EncodeOptions {
  /** Add what the tokenizer's post-processor adds (BOS for Llama, nothing for Qwen). Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave out special tokens such as <s> or <|im_end|>. Default false, as in transformers. */
  skipSpecialTokens?: boolean;
}

/** Turns generated ids into text piece by piece; the pieces concatenate to decode(allIds). */
export interface StreamDecoder {
  /** Adds one id and returns the text that became final with it (often '', never half a character). */
  push(id: number): string;
  /** Returns whatever text is still held back; call once after the last id. */
  flush(): string;
}

/** The contents of a model folder's tokenizer files, already parsed. */
export interface TokenizerFiles {
  tokenizerJson: object;
  tokenizerConfig?: object;
  /** The text of chat_template.jinja; it wins over tokenizer_config.json's chat_template. */
  chatTemplateFile?: string;
}

/** The special-token fields of tokenizer_config.json that transformers passes to chat templates. */
const SPECIAL_TOKEN_KEYS = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
] as const;

const REPLACEMENT_CHARACTER = '\uFFFD';

export class ModelTokenizer {
  /** The id of tokenizer_config.json's bos_token, if it names one. */
  readonly bosTokenId: number | undefined;
  /** The id of tokenizer_config.json's eos_token; callers may add generation_config.json's list. */
  readonly eosTokenIds: number[];
  /** One more than the largest token id, i.e. how many rows an embedding for this tokenizer needs. */
  readonly vocabSize: number;
  readonly hasChatTemplate: boolean;

  private readonly tokenizer: Tokenizer;
  private readonly chatTemplateSource: string | undefined;
  private readonly chatTemplateOrigin: string;
  private readonly templateVariables: Record<string, unknown>;
  private readonly TemplateClass: typeof Template;
  private compiledTemplate: Template | undefined;

  private constructor(
    tokenizer: Tokenizer,
    config: Record<string, unknown>,
    chatTemplate: { source: string | undefined; origin: string },
    TemplateClass: typeof Template,
  ) {
    this.tokenizer = tokenizer;
    this.TemplateClass = TemplateClass;
    this.chatTemplateSource = chatTemplate.source;
    this.chatTemplateOrigin = chatTemplate.origin;
    this.hasChatTemplate = chatTemplate.source !== undefined;

    const tokenText = (key: string): string | undefined => specialTokenContent(config[key]);
    const bos = tokenText('bos_token');
    this.bosTokenId = bos === undefined ? undefined : tokenizer.token_to_id(bos);
    const eos = tokenText('eos_token');
    const eosId = eos === undefined ? undefined : tokenizer.token_to_id(eos);
    this.eosTokenIds = eosId === undefined ? [] : [eosId];

    let maxId = -1;
    for (const id of tokenizer.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    // transformers renders templates with its special_tokens_map (string contents only) next to
    // the messages, so templates can write {{ bos_token }}.
    const variables: Record<string, unknown> = {};
    for (const key of SPECIAL_TOKEN_KEYS) {
      const text = tokenText(key);
      if (text !== undefined) variables[key] = text;
    }
    const additional = config['additional_special_tokens'];
    if (Array.isArray(additional)) {
      variables['additional_special_tokens'] = additional
        .map(specialTokenContent)
        .filter((t): t is string => t !== undefined);
    }
    this.templateVariables = variables;
  }

  /**
   * Loads tokenizer.json (required), tokenizer_config.json and chat_template.jinja (both
   * optional) from a model folder.
   */
  static async fromFolder(dir: string): Promise<ModelTokenizer> {
    const tokenizerPath = path.join(dir, 'tokenizer.json');
    const tokenizerText = await readOptionalText(tokenizerPath);
    if (tokenizerText === undefined) {
      throw new TokenizerLoadError(
        `The model folder ${dir} has no tokenizer.json. A model folder needs the Hugging Face ` +
          'tokenizer.json next to its model; copy it from the model\'s repository or re-run the conversion.',
      );
    }
    const tokenizerJson = parseJsonFile(tokenizerPath, tokenizerText);
    const configPath = path.join(dir, 'tokenizer_config.json');
    const configText = await readOptionalText(configPath);
    const tokenizerConfig = configText === undefined ? undefined : parseJsonFile(configPath, configText);
    const chatTemplateFile = await readOptionalText(path.join(dir, 'chat_template.jinja'));
    return ModelTokenizer.fromFiles({ tokenizerJson, tokenizerConfig, chatTemplateFile }, dir);
  }

  /** Builds a tokenizer from already-parsed files, e.g. straight from a converter. */
  static async fromFiles(files: TokenizerFiles, origin = 'the given tokenizer files'): Promise<ModelTokenizer> {
    const { Tokenizer: TokenizerClass } = await import('@huggingface/tokenizers');
    const { Template: TemplateClass } = await import('@huggingface/jinja');
    if (!isPlainObject(files.tokenizerJson)) {
      throw new TokenizerLoadError(`tokenizer.json in ${origin} is not a JSON object; re-download or re-convert the model.`);
    }
    const rawConfig = files.tokenizerConfig ?? {};
    if (!isPlainObject(rawConfig)) {
      throw new TokenizerLoadError(`tokenizer_config.json in ${origin} is not a JSON object; re-download or re-convert the model.`);
    }
    // tokenizers.js cleans up spaces before punctuation unless told otherwise, while
    // transformers has defaulted to leaving the decoded text alone since v4.45; both Llama and
    // Qwen configs say false, and the streaming decoder relies on decoding being local.
    const config = {
      ...rawConfig,
      clean_up_tokenization_spaces: rawConfig['clean_up_tokenization_spaces'] ?? false,
    };
    let tokenizer: Tokenizer;
    try {
      tokenizer = new TokenizerClass(files.tokenizerJson, config);
    } catch (error) {
      throw new TokenizerLoadError(
        `tokenizer.json in ${origin} describes a tokenizer this engine cannot build ` +
          `(${errorMessage(error)}); re-download it, or re-convert the model.`,
      );
    }
    keepByteOrderMarks(tokenizer.decoder);
    const chatTemplate =
      files.chatTemplateFile !== undefined
        ? { source: files.chatTemplateFile, origin: `chat_template.jinja in ${origin}` }
        : { source: inlineChatTemplate(rawConfig['chat_template']), origin: `tokenizer_config.json in ${origin}` };
    return new ModelTokenizer(tokenizer, config, chatTemplate, TemplateClass);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /** Ids the tokenizer does not know (models often pad their embedding) decode to nothing, as in Rust tokenizers. */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const known = ids.filter((id) => this.tokenizer.id_to_token(id) !== undefined);
    // tokenizers.js rejects an empty id list instead of returning ''.
    if (known.length === 0) return '';
    return this.tokenizer.decode(known, { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  /**
   * Renders the chat template with the messages and the special tokens as variables, as
   * transformers' apply_chat_template(tokenize=False) does.
   */
  applyChatTemplate(messages: readonly ChatMessage[], opts: { addGenerationPrompt: boolean }): string {
    const template = this.chatTemplate();
    try {
      return template.render({
        ...this.templateVariables,
        messages: messages.map(({ role, content }) => ({ role, content })),
        add_generation_prompt: opts.addGenerationPrompt,
      });
    } catch (error) {
      throw new ChatTemplateError(
        `The chat template from ${this.chatTemplateOrigin} failed to render: ${errorMessage(error)}. ` +
          'Check the messages (roles must alternate as the template expects) or fix the template.',
      );
    }
  }

  createStreamDecoder(opts: DecodeOptions = {}): StreamDecoder {
    return new WindowedStreamDecoder((ids) => this.decode(ids, opts));
  }

  private chatTemplate(): Template {
    if (this.compiledTemplate !== undefined) return this.compiledTemplate;
    if (this.chatTemplateSource === undefined) {
      throw new NoChatTemplateError(
        'This model has no chat template (neither chat_template.jinja nor a chat_template in ' +
          'tokenizer_config.json), so it cannot format a conversation. Use plain text completion, ' +
          'or add the chat template of the model\'s instruct version as chat_template.jinja.',
      );
    }
    try {
      this.compiledTemplate = new this.TemplateClass(this.chatTemplateSource);
    } catch (error) {
      throw new ChatTemplateError(
        `The chat template from ${this.chatTemplateOrigin} does not parse (${errorMessage(error)}); ` +
          'replace it with the template from the model\'s repository.',
      );
    }
    return this.compiledTemplate;
  }
}

/**
 * Streaming detokenization over a sliding window of ids.
 *
 * Decoding only the new ids would be wrong twice over: a character spelled by several
 * byte-fallback (or byte-level) tokens would come out as U+FFFD halves, and decoders treat the
 * first token specially (Llama's Strip drops the dummy-prefix space of the first piece, the
 * Metaspace decoder does the same per token). So each push decodes a window that starts with
 * ids whose text was already emitted (`prefixText`) and emits what the window's text adds to
 * it. Whatever the decoder does to the window's first token it then does to `prefixText`
 * alike, as long as that first part decodes to at least one character; the window only moves
 * forward to chunks that do. Text ending in U+FFFD is held back because the next byte may
 * complete the character. If a decoder ever rewrites text behind the window, the decoder
 * falls back to decoding from the first id, which is always right.
 */
class WindowedStreamDecoder implements StreamDecoder {
  private readonly ids: number[] = [];
  /** The window starts here; ids before it never influence new text. */
  private windowStart = 0;
  /** Ids before this have been emitted. */
  private emittedUpTo = 0;
  /** decode(ids[windowStart, emittedUpTo)), the part of the window already emitted. */
  private prefixText = '';

  constructor(private readonly decode: (ids: readonly number[]) => string) {}

  push(id: number): string {
    this.ids.push(id);
    return this.advance(false);
  }

  flush(): string {
    return this.advance(true);
  }

  private advance(final: boolean): string {
    if (this.emittedUpTo === this.ids.length) return '';
    let text = this.decode(this.ids.slice(this.windowStart));
    if (!text.startsWith(this.prefixText)) {
      // Only a decoder that is not local to the window gets here; restart the window at 0.
      const emitted = this.decode(this.ids.slice(0, this.emittedUpTo));
      this.windowStart = 0;
      this.prefixText = emitted;
      text = this.decode(this.ids);
    }
    if (!final && text.endsWith(REPLACEMENT_CHARACTER)) return '';
    const delta = text.slice(this.prefixText.length);
    const chunk = this.ids.slice(this.emittedUpTo);
    const chunkText = this.decode(chunk);
    if (chunkText.length > 0) {
      this.windowStart = this.emittedUpTo;
      this.prefixText = chunkText;
    } else {
      this.prefixText = text;
    }
    this.emittedUpTo = this.ids.length;
    return delta;
  }
}

/**
 * tokenizers.js 0.2.0's ByteFallback decoder turns bytes into text with a default TextDecoder,
 * which swallows a U+FEFF at the start of every run of byte pieces, so "a\uFEFFb" (or a source
 * file that starts with a byte order mark) decodes without it. Rust tokenizers keeps it. This
 * swaps in a decoder with ignoreBOM (which, despite its name, keeps the mark); the checks keep
 * it a no-op if a later version changes those internals.
 */
function keepByteOrderMarks(decoder: unknown): void {
  if (!isObjectLike(decoder)) return;
  const config = decoder['config'];
  const type = isObjectLike(config) ? config['type'] : undefined;
  if (type === 'Sequence' && Array.isArray(decoder['decoders'])) {
    for (const inner of decoder['decoders']) keepByteOrderMarks(inner);
  } else if (type === 'ByteFallback' && decoder['text_decoder'] instanceof TextDecoder) {
    decoder['text_decoder'] = new TextDecoder('utf-8', { ignoreBOM: true });
  }
}

/** Objects and functions (tokenizers.js decoders are callable) whose fields we may read. */
function isObjectLike(value: unknown): value is Record<string, unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null;
}

/** The text of a special token as tokenizer_config.json writes it: a string or an AddedToken object. */
function specialTokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (isPlainObject(value) && typeof value['content'] === 'string') return value['content'];
  return undefined;
}

/** tokenizer_config.json's chat_template: a string, or a list of named templates of which transformers uses "default". */
function inlineChatTemplate(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    for (const entry of value) {
      if (isPlainObject(entry) && entry['name'] === 'default' && typeof entry['template'] === 'string') {
        return entry['template'];
      }
    }
  }
  return undefined;
}

async function readOptionalText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TokenizerLoadError(`Cannot read ${file} (${errorMessage(error)}); check the file's permissions.`);
  }
}

function parseJsonFile(file: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TokenizerLoadError(
      `${file} is not valid JSON (${errorMessage(error)}). The file is probably truncated or a Git LFS ` +
        'pointer; re-download the model or re-run the conversion.',
    );
  }
  if (!isPlainObject(value)) {
    throw new TokenizerLoadError(`${file} does not hold a JSON object; re-download the model or re-run the conversion.`);
  }
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
