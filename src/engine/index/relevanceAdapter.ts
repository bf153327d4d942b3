// The one place the workspace index scores files against a question: the segments' long-lived,
// incremental RelevanceIndex (relevance.ts: exact BM25 over path and content, plus where the
// identifiers a question names are defined). A file is added or replaced when it is read,
// removed when it is gone, and the index is saved with the manifest (toJSON/fromJSON), so a warm
// question neither re-reads nor re-indexes any text. Only terms, postings and definition names
// are kept, never the texts.

import { RelevanceIndex } from '../segments/relevance';

export class WorkspaceRelevance {
  private constructor(private readonly index: RelevanceIndex) {}

  static empty(): WorkspaceRelevance {
    return new WorkspaceRelevance(new RelevanceIndex());
  }

  /** Restores a saved index; throws on anything that is not one (the caller starts empty). */
  static fromJSON(json: string): WorkspaceRelevance {
    return new WorkspaceRelevance(RelevanceIndex.fromJSON(json));
  }

  toJSON(): string {
    return JSON.stringify(this.index.toJSON());
  }

  get size(): number {
    return this.index.size;
  }

  has(path: string): boolean {
    return this.index.has(path);
  }

  /** Adds a file's text, or replaces what was indexed for it. */
  set(path: string, text: string): void {
    this.index.set(path, text);
  }

  remove(path: string): void {
    this.index.remove(path);
  }

  /** Score of every file that matches the question (files not in the map score 0). */
  score(question: string): Map<string, number> {
    return this.index.scoreByPath(question);
  }
}
