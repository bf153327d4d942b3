// The one wire protocol between the extension host, the engine worker and the webview
// (docs/architecture.md, "Layers": one typed map of { name: [request, response] } shared by all sides).
// Types only, plus two tiny helpers: nothing here imports vscode, the DOM or the engine's
// runtime, so every side can import it. Statistics keep the names of GenerationStats.

import type { GenerationStats } from './engine/generate/stats';
import type { StopReason } from './engine/generate/generator';
import type { SamplingOptions } from './engine/generate/sampler';
import type { CacheOptions } from './engine/kv/createCompressor';
import type { PriorTurn } from './engine/workspace/prompt';
import type { SkippedFile } from './engine/workspace/types';

export type { GenerationStats, StopReason, SamplingOptions, CacheOptions, PriorTurn };

// ---- extension host ⇄ engine worker ---------------------------------------------------------

export interface LoadModelParams {
  modelDir: string;
  onnxFile?: string;
  threads?: number;
}

export interface ModelInfo {
  modelDir: string;
  modelType: string;
  contextLength: number;
  vocabSize: number;
}

export interface GenerateParams {
  /** Text to continue, encoded with the model's special tokens. */
  prompt: string;
  maxNewTokens: number;
  sampling: SamplingOptions;
  seed?: number;
  stopStrings?: string[];
  cache?: CacheOptions;
  prefillChunkSize?: number;
}

/** One workspace file as the extension read it: its workspace-relative path and text. */
export interface FileText {
  path: string;
  text: string;
}

export type AskMode = 'segmented' | 'sequential';

/**
 * The workspace a segmented ask and background indexing work on: local folders the worker reads
 * itself (it stats every file and reads only changed ones), the extension's rules, and where the
 * index lives. The index is kept in the worker between requests.
 */
export interface WorkspaceSpec {
  /** Local folders; in a multi-root workspace each path is prefixed with its folder's name. */
  roots: { dir: string; prefix?: string }[];
  include?: string[];
  exclude?: string[];
  maxFileBytes?: number;
  /** Where segments and the index are stored; undefined keeps them in the worker's memory only. */
  storeDir?: string;
  /** The store's size cap in bytes. */
  maxStoreBytes?: number;
  /** Names the workspace in the store (its folders' paths). */
  workspaceId: string;
  /** How stored segments are encoded (default int8). */
  codec?: 'float32' | 'int8' | 'rvq';
  cache?: CacheOptions;
  prefillChunkSize?: number;
}

/** Ask About Workspace: the worker builds the prompt (chat template, file headers) and generates. */
export interface AskParams extends Omit<GenerateParams, 'prompt'> {
  question: string;
  /**
   * segmented (default): the workspace index answers first from the relevant files and indexes
   * the rest in the background; sequential: one pass over `files`, the paper's FreqKV.
   */
  mode?: AskMode;
  /** Segmented: the workspace. */
  workspace?: WorkspaceSpec;
  /** Sequential: the files as the extension read them. */
  files?: FileText[];
  /** Segmented: the most tokens of the most relevant files (0: no limit). */
  maxWorkspaceTokens?: number;
  /** Segmented: seconds of prefill a first answer may spend on files not indexed yet. */
  firstAnswerSeconds?: number;
  /**
   * The conversation's earlier turns, oldest first: they go into the prompt after the files and
   * before the question (segmented: in the question's suffix, which is prefilled per question;
   * the stored file segments stay as they are).
   */
  history?: PriorTurn[];
}

/** Background indexing, as the worker posts it (also when it stops). */
export interface IndexStatus {
  state: 'indexing' | 'paused' | 'done' | 'failed';
  filesDone: number;
  filesTotal: number;
  tokensDone: number;
  tokensTotal: number;
  /** Of the workspace's tokens, indexed (0–100). */
  percent: number;
  tokensPerSecond: number;
  /** Why it stopped (failed, or the store cannot be written). */
  message?: string;
}


/** What a segmented ask put in the cache: every file at the rows it got, and what was dropped. */
export interface SegmentReport {
  files: { path: string; tokens: number; storedRows: number; rows: number; score: number }[];
  dropped: { path: string; tokens: number; reason: string }[];
  /** Files not in the cache because they are not indexed yet (most relevant first). */
  notIndexed: { path: string; tokens: number }[];
  /** The least relevant files past maxWorkspaceTokens. */
  overTokenLimit: { path: string; tokens: number }[];
  /** Every file and folder of the workspace left out (binary, ignored, too large, …), with why; also on a warm ask whose refresh looked at changed paths only. */
  skipped: SkippedFile[];
  filesIndexed: number;
  filesTotal: number;
  /** Segments prefilled in this ask (new or changed files) and found stored. */
  built: number;
  reused: number;
  /** Whether the segments are on disk. */
  persisted: boolean;
  /** Refresh (stat, read changed files) and prefill for the answer. */
  updateMs: number;
  assembleMs: number;
  warnings: string[];
}

/** Summarize File: the worker builds the summary prompt for one file and generates. */
export interface SummarizeParams extends Omit<GenerateParams, 'prompt'> {
  file: FileText;
}

export interface GenerationResult {
  reason: StopReason;
  text: string;
  stats: GenerationStats;
  /** Non-fatal notes from the engine (e.g. a capacity past the trained context). */
  warnings: string[];
  /** A segmented ask's cache contents. */
  segments?: SegmentReport;
}

export interface StatsReply {
  /** The model loaded in the worker, if any. */
  model: ModelInfo | null;
  /** Whether a generation is running now. */
  busy: boolean;
  /** The statistics of the running generation, or of the last one; null before the first. */
  stats: GenerationStats | null;
}

/**
 * Every request the worker serves: name → [request params, response].
 * One engine request (loadModel, generate, ask, summarize, clearCache) runs at a time; another
 * engine request that arrives meanwhile is refused at once with an EngineBusyError reply (not
 * queued), and the running one is not touched. Background indexing is not an engine request: an
 * engine request pre-empts it (between chunks) and it resumes afterwards. `cancel`, `getStats`,
 * `countTokens`, `startIndexing`, `stopIndexing` and `workspaceChanged` are answered at any time.
 */
export interface WorkerRequests {
  loadModel: [LoadModelParams, ModelInfo];
  generate: [GenerateParams, GenerationResult];
  ask: [AskParams, GenerationResult];
  summarize: [SummarizeParams, GenerationResult];
  /** Tokens of a text with the loaded model's tokenizer (no special tokens); answered at any time. */
  countTokens: [{ text: string }, { tokens: number }];
  /** Stops the running request, if any (in every phase, codebook calibration included); `cancelled` says whether there was one. */
  cancel: [Record<string, never>, { cancelled: boolean }];
  /** Starts (or resumes) indexing the workspace in the background when the engine is idle; progress comes as `index` messages. */
  startIndexing: [WorkspaceSpec, { started: boolean }];
  /** Pauses background indexing (what is indexed is kept; startIndexing resumes). */
  stopIndexing: [Record<string, never>, { stopped: boolean }];
  /** A file watcher's changed, created or deleted paths: the next refresh reads only those. */
  workspaceChanged: [{ paths: string[] }, { pending: number }];
  /** Forgets the statistics and the workspace's index: its manifest and the segments no other workspace uses. */
  clearCache: [Partial<Pick<WorkspaceSpec, 'storeDir' | 'workspaceId' | 'codec' | 'cache' | 'roots'>>, { cleared: true; removedSegments: number; failures: string[] }];
  getStats: [Record<string, never>, StatsReply];
}

export type WorkerRequestName = keyof WorkerRequests;
export type ParamsOf<K extends WorkerRequestName> = WorkerRequests[K][0];
export type ResultOf<K extends WorkerRequestName> = WorkerRequests[K][1];

/** What a running generation streams, in order: prefill progress, tokens, then done. */
export type EngineEvent =
  /** A segmented ask brings the stored segments up to date before it assembles the cache. */
  | { kind: 'segments'; filesDone: number; filesTotal: number; built: number; tokensPrefilled: number; stats: GenerationStats }
  | { kind: 'prefill'; tokensDone: number; tokensTotal: number; stats: GenerationStats }
  | { kind: 'token'; text: string; stats: GenerationStats }
  | { kind: 'done'; reason: StopReason; text: string; stats: GenerationStats };

/** An error as it crosses a thread boundary: the engine's class name and its message. */
export interface ProtocolError {
  /** e.g. ModelNotFoundError, EngineBusyError, NoModelLoadedError, WorkerCrashedError. */
  name: string;
  message: string;
}

export type WorkerRequestMessage = {
  [K in WorkerRequestName]: { type: 'request'; id: number; name: K; params: ParamsOf<K> };
}[WorkerRequestName];

export type WorkerResponseMessage =
  | { [K in WorkerRequestName]: { type: 'response'; id: number; name: K; ok: true; result: ResultOf<K> } }[WorkerRequestName]
  | { type: 'response'; id: number; name: WorkerRequestName; ok: false; error: ProtocolError };

/** An event of the generate request `id`. */
export interface WorkerEventMessage {
  type: 'event';
  id: number;
  event: EngineEvent;
}

/** Background indexing progress (no request id: it outlives the request that started it). */
export interface WorkerIndexMessage {
  type: 'index';
  status: IndexStatus;
}

export type WorkerToHostMessage = WorkerResponseMessage | WorkerEventMessage | WorkerIndexMessage;

// ---- extension host ⇄ webview ---------------------------------------------------------------

/** One turn of the chat as the workspace keeps it: the question, its answer, what it read, its statistics. */
export interface ConversationTurn extends PriorTurn {
  /** The files in the question's context and those left out (the last `files` message of the turn). */
  context?: ContextFiles;
  /** The statistics at the end of the answer. */
  stats?: GenerationStats;
  /** How many earlier turns the prompt repeated. */
  earlierTurns?: number;
}

/** What went into a question's context and what was left out, with why. */
export interface ContextFiles {
  included: IncludedFileInfo[];
  skipped: { path: string; reason: string }[];
}

/** Messages the webview posts to the extension: name → payload. */
/** A message with nothing but its type. */
export type NoPayload = Record<never, never>;

export interface WebviewToHost {
  /** The webview has loaded and wants the current state. */
  ready: NoPayload;
  ask: { question: string };
  cancel: NoPayload;
  clearCache: NoPayload;
  /** A file reference in an answer was clicked: open that workspace file (at the 1-based line). */
  openFile: { path: string; line?: number };
  /** A code block's Copy button: put the text on the clipboard. */
  copy: { text: string };
  /** A code block's Insert button: insert the text at the cursor of the last active editor. */
  insert: { text: string };
  /** Start a new conversation: forget the earlier turns (follow-ups no longer see them). */
  newChat: NoPayload;
  /** Open the chat in an editor tab. */
  openInEditor: NoPayload;
}

/** A file in a question's context; a segmented ask adds the rows it got of its stored rows. */
export interface IncludedFileInfo {
  path: string;
  tokens: number;
  rows?: number;
  storedRows?: number;
}

/** Messages the extension posts to the webview: name → payload. */
export interface HostToWebview {
  /** A question was accepted; its context, progress and answer follow, then `done` or answerFailed. */
  answerStarted: { question: string; earlierTurns?: number };
  engineEvent: { event: EngineEvent };
  answerFailed: { error: ProtocolError };
  /** Statistics outside a generation (after Show Cache Statistics, Clear Cache, …). */
  stats: { stats: GenerationStats | null; modelDir: string | null };
  /** The workspace's earlier questions and answers, sent when the panel (re)loads. */
  history: { turns: ConversationTurn[] };
  /** A notice to show above the conversation (e.g. the embedded model cannot answer about code); '' hides it. */
  notice: { text: string };
  /** What went into the running question's context and what was left out, with why. */
  files: ContextFiles;
}

/** The discriminated union of a name → payload map: { type: name, ...payload }. */
export type MessageOf<M> = { [K in keyof M]: { type: K } & M[K] }[keyof M];

export type WebviewToHostMessage = MessageOf<WebviewToHost>;
export type HostToWebviewMessage = MessageOf<HostToWebview>;

/** Turns anything thrown into a ProtocolError (an Error keeps its class name). */
export function toProtocolError(error: unknown): ProtocolError {
  if (error instanceof Error) return { name: error.name || 'Error', message: error.message };
  return { name: 'Error', message: String(error) };
}

/** The Error a client throws for a ProtocolError reply; `name` is the engine's error class. */
export class EngineRequestError extends Error {
  constructor(error: ProtocolError) {
    super(error.message);
    this.name = error.name;
  }
}
