// Scores every file against a question: BM25 over its path and its content (bm25Index.ts), plus
// what the file defines. A question that names an identifier (`res.type`, `allocateRows`,
// "Content-Type", "apply top-p") is most likely about the file that defines it, not the files
// that mention it most (a test file calls what it tests over and over), so a file defining a
// name the question names gets a boost of up to DEFINITION_WEIGHT times the best BM25 score,
// the more the rarer that name is among the workspace's definitions. Test files get a mild
// down-weight unless the question is about tests.
//
// The index is long-lived and incremental: set(path, text) adds or replaces a file, remove(path)
// drops it; no file's text is kept (only the inverted index, and each file's definitions as
// lower-case keys). toJSON() / RelevanceIndex.fromJSON() persist it.

import { FreqKvError } from '../errors';
import { Bm25Index, type Bm25IndexJson } from './bm25Index';
import { definitionKey, extractDefinitions } from './definitions';

export interface ScoredDocument {
  path: string;
  text: string;
}

/** A relevance index that cannot be read back (another version, or not one at all). */
export class RelevanceIndexFormatError extends FreqKvError {}

/** Path matches count this many times a content match. */
const PATH_BOOST = 2;
/** A file defining a name only it defines, named outright in the question, gets about this many times the best BM25 score on top of its own. */
const DEFINITION_WEIGHT = 2;
/** Test files' score is multiplied by this when the question does not ask about tests. */
const TEST_WEIGHT = 0.7;
/** How strongly a question names an identifier: written as code, several words joined, or one plain word. */
const CODE_NAME = 1;
const JOINED_WORDS = 0.8;
const MEMBER_NAME = 0.6;
const PLAIN_WORD = 0.3;
/** A question's name found inside a longer defined name counts this share of a whole match; names shorter than MIN_PART_LENGTH are not looked for inside others. */
const PART_OF_NAME = 0.5;
const MIN_PART_LENGTH = 6;
/** A file named in the question (its file name, with or without the extension) counts as a name written as code; shorter names are not looked for. */
const MIN_FILE_NAME_LENGTH = 4;
/** A file's matches after its best count this share each. */
const OTHER_MATCHES = 0.3;
const FORMAT_VERSION = 1;

/** Lower-case terms: whole words, and the parts of camelCase / snake_case / kebab-case identifiers. */
export function tokenizeForSearch(text: string): string[] {
  const terms: string[] = [];
  for (const word of text.split(/[^\p{L}\p{N}_]+/u)) {
    if (word === '') continue;
    terms.push(word.toLowerCase());
    const parts = identifierParts(word);
    if (parts.length > 1) for (const part of parts) terms.push(part.toLowerCase());
  }
  return terms;
}

function identifierParts(word: string): string[] {
  return word.split(/_+|(?<=[\p{Ll}\p{N}])(?=\p{Lu})|(?<=\p{Lu})(?=\p{Lu}\p{Ll})/u).filter((p) => p !== '');
}

/** Whether a path looks like a test: under test/, tests/, __tests__/, spec/ …, or named *.test.*, *.spec.*, *_test.*, test_*.py, *Test(s).java|cs|kt. */
export function isTestPath(p: string): boolean {
  const parts = p.toLowerCase().split('/');
  const name = parts.pop() ?? '';
  if (parts.some((d) => /^(?:tests?|__tests__|spec|specs|e2e|testing|testdata)$/.test(d))) return true;
  return /\.(?:test|spec|e2e)\.[^.]+$|_(?:test|spec)\.[^.]+$|^test_[^/]+\.py$/.test(name) || /(?:Tests?|Spec)\.(?:java|kt|cs|scala|swift)$/.test(p.split('/').pop() ?? '');
}

/** English words that carry no name: never a definition on their own nor part of a joined one. */
const STOP_WORDS = new Set(
  'a an and any are as at be been but by can could do does did each for from had has have how i if in into is it its me my no not of on one or our so that the their them then there these they this those to up us was we were what when where which while who whom why will with would you your about after all also before between both during just more most only other over same should some such than through under until very'.split(' '),
);
const ASKS_ABOUT_PROJECT = /\b(?:this|the|whole) (?:project|repo|repository|codebase|code base|workspace|library|package|extension)\b|\boverview\b/i;
const ASKS_ABOUT_TESTS = /^(?:tests?|tested|testing|specs?|vitest|jest|mocha|pytest|unittest|e2e|fixtures?)$/i;

/** The names a question may refer to, as definition keys, each with how clearly it names them (0 … 1). */
export function questionNames(question: string): Map<string, number> {
  const names = new Map<string, number>();
  const add = (name: string, weight: number): void => {
    const key = definitionKey(name);
    if (key.length < 2 || (names.get(key) ?? 0) >= weight) return;
    names.set(key, weight);
  };
  // Runs of words between sentence punctuation: n-grams do not cross a comma or a question mark.
  for (const clause of question.split(/[,;?!"]+|\.(?:\s|$)|:\s/)) {
    const words: string[] = [];
    for (const match of clause.matchAll(/`?([\p{L}\p{N}_$]+(?:(?:\.|::|->|-)[\p{L}\p{N}_$]+)*)(`|\(\))?/gu)) {
      const token = match[1]!;
      const pieces = token.split(/\.|::|->|-/).flatMap(identifierParts);
      const written = match[2] !== undefined || /\p{Ll}\p{Lu}|_|\.|::|->/u.test(token) || /\p{Lu}.*\p{Lu}/u.test(token);
      if (pieces.length > 1 || written) add(token, written ? CODE_NAME : JOINED_WORDS);
      const member = token.split(/\.|::|->/);
      if (member.length > 1) add(member[member.length - 1]!, MEMBER_NAME);
      words.push(...pieces.map((p) => p.toLowerCase()));
    }
    for (let i = 0; i < words.length; i++) {
      if (STOP_WORDS.has(words[i]!)) continue;
      if (words[i]!.length >= 3) add(words[i]!, PLAIN_WORD);
      for (let n = 2; n <= 3 && i + n <= words.length; n++) {
        const gram = words.slice(i, i + n);
        if (gram.some((w) => STOP_WORDS.has(w))) break;
        add(gram.join(''), JOINED_WORDS);
      }
    }
  }
  return names;
}

/** The fields BM25 scores, and how much a match in each counts. */
const SEARCH_FIELDS = ['path', 'content'];
const FIELD_BOOSTS = [PATH_BOOST, 1];

export interface RelevanceIndexJson {
  version: number;
  search: Bm25IndexJson;
  /** Path → the keys of the names it defines. */
  definitions: Record<string, string[]>;
}

/** Files scored against questions, kept up to date file by file. */
export class RelevanceIndex {
  private search: Bm25Index;
  /** Path → definition keys, in the order files were first added. */
  private readonly definitions = new Map<string, string[]>();
  /** Definition key → the paths defining it. */
  private readonly definers = new Map<string, Set<string>>();
  /** Lower-case file name, and file name without its extension → the paths with it. */
  private readonly fileNames = new Map<string, Set<string>>();

  /** An index of `documents`; `score` answers in their order. */
  constructor(documents: readonly ScoredDocument[] = []) {
    this.search = new Bm25Index(SEARCH_FIELDS, tokenizeForSearch);
    for (const d of documents) this.set(d.path, d.text);
  }

  /** Reads back what toJSON() wrote (an object or its JSON text). */
  static fromJSON(json: string | RelevanceIndexJson): RelevanceIndex {
    let parsed: unknown;
    try {
      parsed = typeof json === 'string' ? JSON.parse(json) : json;
    } catch (error) {
      throw new RelevanceIndexFormatError(`The relevance index is not valid JSON (${(error as Error).message}); delete it and it will be rebuilt from the files.`);
    }
    const data = parsed as Partial<RelevanceIndexJson> | null;
    if (data === null || typeof data !== 'object' || data.version !== FORMAT_VERSION || typeof data.definitions !== 'object' || data.definitions === null || typeof data.search !== 'object') {
      throw new RelevanceIndexFormatError(`The relevance index is not one this version writes (expected version ${FORMAT_VERSION}); delete it and it will be rebuilt from the files.`);
    }
    const index = new RelevanceIndex();
    try {
      index.search = Bm25Index.fromJSON(data.search as Bm25IndexJson, SEARCH_FIELDS, tokenizeForSearch);
    } catch (error) {
      throw new RelevanceIndexFormatError(`The relevance index's search data cannot be read (${(error as Error).message}); delete it and it will be rebuilt from the files.`);
    }
    for (const [path, keys] of Object.entries(data.definitions)) {
      if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string') || !index.search.has(path)) {
        throw new RelevanceIndexFormatError(`The relevance index's definitions of ${path} do not match its search data; delete it and it will be rebuilt from the files.`);
      }
      index.addDefinitions(path, keys);
    }
    if (index.definitions.size !== index.search.size) {
      throw new RelevanceIndexFormatError(`The relevance index lists ${index.definitions.size} files with definitions but ${index.search.size} in its search data; delete it and it will be rebuilt from the files.`);
    }
    return index;
  }

  /** Everything needed to score again without the files' text (JSON.stringify-able). */
  toJSON(): RelevanceIndexJson {
    return { version: FORMAT_VERSION, search: this.search.toJSON(), definitions: Object.fromEntries(this.definitions) };
  }

  get size(): number {
    return this.definitions.size;
  }

  /** The files indexed, in the order they were first added (the order of `score`). */
  paths(): string[] {
    return [...this.definitions.keys()];
  }

  has(path: string): boolean {
    return this.definitions.has(path);
  }

  /** Adds a file or replaces what was indexed for it. */
  set(path: string, text: string): void {
    this.search.set(path, [path, text]);
    this.removeDefinitions(path);
    this.addDefinitions(path, [...new Set(extractDefinitions(path, text).map(definitionKey))]);
  }

  /** Drops a file; false if it was not indexed. */
  remove(path: string): boolean {
    if (!this.search.remove(path)) return false;
    this.removeDefinitions(path);
    this.definitions.delete(path);
    for (const name of RelevanceIndex.fileNamesOf(path)) {
      const paths = this.fileNames.get(name);
      paths?.delete(path);
      if (paths?.size === 0) this.fileNames.delete(name);
    }
    return true;
  }

  /** Every file's score (0 when nothing matches), in the order of paths(). */
  score(question: string): number[] {
    const scores = this.scoreByPath(question);
    return this.paths().map((p) => scores.get(p) ?? 0);
  }

  /** Path → score of the files that match at all (higher is more relevant). */
  scoreByPath(question: string): Map<string, number> {
    const scores = new Map<string, number>();
    if (tokenizeForSearch(question).length === 0 || this.size === 0) return scores;
    const bm25 = this.search.score(question, FIELD_BOOSTS);
    let best = 0;
    for (const v of bm25.values()) best = Math.max(best, v);
    // Definitions: each name the question refers to, weighted by how clearly it does and by how
    // rare it is among definitions; a name of several words or written as code that is part of a
    // longer defined name ("llama2c checkpoint" → readLlama2cCheckpoint) counts PART_OF_NAME.
    // A file's evidence is its best match plus a share of the rest, so that many weak matches
    // (parts of long names) do not add up to one exact name.
    const defined = new Map<string, { best: number; sum: number }>();
    const rarest = Math.log(1 + this.size);
    const credit = (paths: ReadonlySet<string>, weight: number): void => {
      const value = (weight * Math.log(1 + this.size / paths.size)) / rarest;
      for (const p of paths) {
        const d = defined.get(p) ?? { best: 0, sum: 0 };
        defined.set(p, { best: Math.max(d.best, value), sum: d.sum + value });
      }
    };
    const names = questionNames(question);
    for (const [key, weight] of names) {
      const paths = this.definers.get(key);
      if (paths) credit(paths, weight);
    }
    const parts = [...names].filter(([key, weight]) => weight >= JOINED_WORDS && key.length >= MIN_PART_LENGTH);
    if (parts.length > 0) {
      for (const [key, paths] of this.definers) {
        let weight = 0;
        for (const [name, w] of parts) if (key.length > name.length && key.includes(name)) weight = Math.max(weight, PART_OF_NAME * w);
        if (weight > 0) credit(paths, weight);
      }
    }
    // A file the question names ("what does checksum.ts check?"), by its name alone, unless the
    // word is also a name the code defines ("res.type" is a method, and test/res.type.js its
    // test): then the definitions above say where it lives.
    const named = new Set<string>();
    for (const word of question.toLowerCase().match(/[\p{L}\p{N}_.-]+/gu) ?? []) {
      const name = word.replace(/^[.-]+|[.-]+$/g, '');
      const paths = this.fileNames.get(name);
      if (paths && !this.definers.has(definitionKey(name))) for (const p of paths) named.add(p);
    }
    // A question about the whole project ("what does this project do?") names its README.
    if (ASKS_ABOUT_PROJECT.test(question)) for (const p of this.fileNames.get('readme') ?? []) if (!p.includes('/')) named.add(p);
    if (named.size > 0) credit(named, CODE_NAME);
    const aboutTests = question.split(/[^\p{L}\p{N}]+/u).some((w) => ASKS_ABOUT_TESTS.test(w));
    const scale = best > 0 ? best : 1;
    for (const p of new Set([...bm25.keys(), ...defined.keys()])) {
      const d = defined.get(p);
      const definition = d ? 1 - Math.exp(-(d.best + OTHER_MATCHES * (d.sum - d.best))) : 0;
      let score = (bm25.get(p) ?? 0) + DEFINITION_WEIGHT * scale * definition;
      if (!aboutTests && isTestPath(p)) score *= TEST_WEIGHT;
      if (score > 0) scores.set(p, score);
    }
    return scores;
  }

  /** The definition keys indexed for a file (for tests and diagnostics). */
  definitionsOf(path: string): readonly string[] | undefined {
    return this.definitions.get(path);
  }

  /** The names a question may call a file by: "checksum.ts" and "checksum" for src/codecs/checksum.ts. */
  private static fileNamesOf(path: string): string[] {
    const base = path.slice(path.lastIndexOf('/') + 1).toLowerCase();
    const dot = base.lastIndexOf('.');
    return [...new Set([base, dot > 0 ? base.slice(0, dot) : base])].filter((name) => name.length >= MIN_FILE_NAME_LENGTH);
  }

  private addDefinitions(path: string, keys: string[]): void {
    if (!this.definitions.has(path)) {
      for (const name of RelevanceIndex.fileNamesOf(path)) {
        let paths = this.fileNames.get(name);
        if (!paths) this.fileNames.set(name, (paths = new Set()));
        paths.add(path);
      }
    }
    this.definitions.set(path, keys);
    for (const key of keys) {
      let paths = this.definers.get(key);
      if (!paths) this.definers.set(key, (paths = new Set()));
      paths.add(path);
    }
  }

  private removeDefinitions(path: string): void {
    for (const key of this.definitions.get(path) ?? []) {
      const paths = this.definers.get(key);
      paths?.delete(path);
      if (paths?.size === 0) this.definers.delete(key);
    }
  }
}
