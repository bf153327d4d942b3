// Scores every file against a question with BM25 (minisearch), over its path and its content.
// Identifiers are split at camelCase and snake_case boundaries as well as kept whole, so
// "runGeneration" in a question matches "run generation" and the identifier itself.

import MiniSearch from 'minisearch';

export interface ScoredDocument {
  path: string;
  text: string;
}

/** Lower-case terms: whole words, and the parts of camelCase / snake_case / kebab-case identifiers. */
export function tokenizeForSearch(text: string): string[] {
  const terms: string[] = [];
  for (const word of text.split(/[^\p{L}\p{N}_]+/u)) {
    if (word === '') continue;
    terms.push(word.toLowerCase());
    const parts = word.split(/_+|(?<=[\p{Ll}\p{N}])(?=\p{Lu})|(?<=\p{Lu})(?=\p{Lu}\p{Ll})/u).filter((p) => p !== '');
    if (parts.length > 1) for (const part of parts) terms.push(part.toLowerCase());
  }
  return terms;
}

/** Builds the index once; `score` then answers each question. */
export class RelevanceIndex {
  private readonly search: MiniSearch<{ id: number; path: string; content: string }>;

  constructor(private readonly documents: readonly ScoredDocument[]) {
    this.search = new MiniSearch({ fields: ['path', 'content'], tokenize: tokenizeForSearch, processTerm: (t) => t });
    this.search.addAll(documents.map((d, id) => ({ id, path: d.path, content: d.text })));
  }

  /** BM25 score of every document (0 when no term matches), in the documents' order. */
  score(question: string): number[] {
    const scores = new Array<number>(this.documents.length).fill(0);
    if (tokenizeForSearch(question).length === 0) return scores;
    for (const hit of this.search.search(question, { combineWith: 'OR', boost: { path: 2 } })) scores[hit.id as number] = hit.score;
    return scores;
  }
}
