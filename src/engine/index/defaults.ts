// The defaults of Ask About Workspace and the workspace index, defined once: the CLI's options,
// the worker's requests, the extension's settings (settings.ts) and package.json's
// contributes.configuration all take them from here (a test checks package.json against it).

export const WORKSPACE_DEFAULTS = {
  /** The most tokens an answer may have. */
  maxNewTokens: 256,
  /** Sampling temperature of an answer; 0 is greedy. */
  temperature: 0,
  /** Glob patterns of workspace files read. */
  include: ['**/*'] as readonly string[],
  /** Glob patterns of workspace files left out (besides .gitignore and generated files). */
  exclude: ['**/node_modules/**', '**/dist/**', '**/out/**', '**/*.min.js', '**/*.lock', '**/package-lock.json'] as readonly string[],
  /** Files larger than this many bytes are left out without being read. */
  maxFileBytes: 1_000_000,
  /** The most tokens of the most relevant files one answer draws on; 0: no limit. Applied after relevance. */
  maxWorkspaceTokens: 500_000,
  /** segmented (the index) or sequential (one pass over every file per question). */
  mode: 'segmented' as 'segmented' | 'sequential',
  /** How stored segments are encoded. */
  codec: 'int8' as 'float32' | 'int8' | 'rvq',
  /** The segment store's size cap in MB. */
  maxStoreMB: 4096,
  /** Cache policy, sinks and γ of an answer. */
  cacheMethod: 'freqkv' as 'freqkv' | 'streaming' | 'full',
  sinks: 4,
  retain: 0.5,
  /** Cache rows; 0: the model's trained context. */
  capacity: 0,
  /** onnxruntime intra-op threads; 0: onnxruntime's default. */
  threads: 0,
  /**
   * The time a first answer may spend prefilling files that are not indexed yet, in seconds: the
   * first-answer budget in tokens is this times the measured prefill tokens/s.
   */
  firstAnswerSeconds: 60,
  /** The most files one workspace index lists; files past it are left out with a warning. */
  maxFiles: 200_000,
} as const;

export type WorkspaceDefaults = typeof WORKSPACE_DEFAULTS;
