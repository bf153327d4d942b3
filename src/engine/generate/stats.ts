// The statistics every layer reports, with the same names in engine events, the CLI's JSON,
// the webview and the status bar (see docs/architecture.md, "Statistics every layer reports").

export interface GenerationStats {
  promptTokens: number;
  generatedTokens: number;
  /** Tokens the model has read or written in this request (prompt + generated). */
  tokensSeen: number;
  cacheRows: number;
  cacheCapacity: number;
  cacheBytes: number;
  compressions: number;
  /** Time spent compressing the cache (inside prefillMs and decodeMs). */
  compressMs: number;
  /** The highest slot position fed to the model so far; at most capacity − 1 with a compressor. */
  maxPosition: number;
  /** tokensSeen / cacheRows: how many tokens each cache row stands for. */
  effectiveRatio: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  timeToFirstTokenMs: number;
  prefillMs: number;
  decodeMs: number;
}

export function emptyStats(capacity: number): GenerationStats {
  return {
    promptTokens: 0,
    generatedTokens: 0,
    tokensSeen: 0,
    cacheRows: 0,
    cacheCapacity: capacity,
    cacheBytes: 0,
    compressions: 0,
    compressMs: 0,
    maxPosition: -1,
    effectiveRatio: 1,
    prefillTokensPerSecond: 0,
    decodeTokensPerSecond: 0,
    timeToFirstTokenMs: 0,
    prefillMs: 0,
    decodeMs: 0,
  };
}
