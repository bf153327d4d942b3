// Types shared by workspace ingestion, its file sources (node fs here; VS Code's API in the
// extension) and the prompt builder.

export type SkipReason =
  | 'always-skipped' // .git, node_modules
  | 'gitignore'
  | 'excluded' // an exclude glob
  | 'not-included' // no include glob matches
  | 'generated' // build folders, lockfiles, minified files, a "generated" header
  | 'too-large' // over the byte limit; never read
  | 'binary' // a NUL byte in the first 8 KB
  | 'not-utf8'
  | 'empty'
  | 'symlink-loop'
  | 'symlink-outside' // a link that leaves the workspace
  | 'unreadable'
  | 'token-budget'; // the workspace token budget was spent

/** A file a source offers: its workspace-relative path (forward slashes), size, and a reader. */
export interface SourceFile {
  kind: 'file';
  path: string;
  size: number;
  /** Last modification time (ms since the epoch), when the source knows it: an unchanged size and time mean an unchanged file. */
  mtimeMs?: number;
  /** Reads at most `maxBytes` bytes from the start of the file. */
  read(maxBytes: number): Promise<Uint8Array>;
}

/** Something the source itself left out (a pruned folder ends with '/'). */
export interface SourceSkip {
  kind: 'skipped';
  path: string;
  reason: SkipReason;
}

export type SourceEntry = SourceFile | SourceSkip;

export interface IncludedFile {
  path: string;
  text: string;
  tokens: number;
}

export interface SkippedFile {
  path: string;
  reason: SkipReason;
}

export interface IngestProgress {
  filesSeen: number;
  filesIncluded: number;
  tokens: number;
}

export interface IngestResult {
  files: IncludedFile[];
  skipped: SkippedFile[];
  filesSeen: number;
  totalTokens: number;
  totalBytes: number;
}
