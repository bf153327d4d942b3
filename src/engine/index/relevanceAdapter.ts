// The one place the workspace index scores files against a question. It is a long-lived,
// incremental BM25 index (minisearch, with relevance.ts's identifier-aware terms and the same
// options as RelevanceIndex): a file is added or replaced when it is read, removed when it is
// gone, and the index is saved with the manifest (toJSON/fromJSON), so a warm question neither
// re-reads nor re-indexes any text. Only terms and postings are kept, never the texts.

import MiniSearch from 'minisearch';
import { tokenizeForSearch } from '../segments/relevance';

interface SearchDocument {
  id: string;
  path: string;
  content: string;
}

const OPTIONS = { fields: ['path', 'content'], tokenize: tokenizeForSearch, processTerm: (t: string) => t, autoVacuum: true };

export class WorkspaceRelevance {
  private constructor(private readonly search: MiniSearch<SearchDocument>) {}

  static empty(): WorkspaceRelevance {
    return new WorkspaceRelevance(new MiniSearch<SearchDocument>(OPTIONS));
  }

  /** Restores a saved index; throws on anything that is not one (the caller starts empty). */
  static fromJSON(json: string): WorkspaceRelevance {
    return new WorkspaceRelevance(MiniSearch.loadJSON<SearchDocument>(json, OPTIONS));
  }

  toJSON(): string {
    return JSON.stringify(this.search);
  }

  get size(): number {
    return this.search.documentCount;
  }

  has(path: string): boolean {
    return this.search.has(path);
  }

  /** Adds a file's text, or replaces what was indexed for it. */
  set(path: string, text: string): void {
    const doc = { id: path, path, content: text };
    if (this.search.has(path)) this.search.replace(doc);
    else this.search.add(doc);
  }

  remove(path: string): void {
    if (this.search.has(path)) this.search.discard(path);
  }

  /** BM25 score of every file that matches a term of the question (files not in the map score 0). */
  score(question: string): Map<string, number> {
    const scores = new Map<string, number>();
    if (tokenizeForSearch(question).length === 0) return scores;
    for (const hit of this.search.search(question, { combineWith: 'OR', boost: { path: 2 } })) scores.set(hit.id as string, hit.score);
    return scores;
  }
}
