// BM25 over a few text fields of many documents, with documents added, replaced and removed one
// at a time and no document text kept: only the inverted index (term → document → count).
//
// It scores exactly as minisearch's search does (k = 1.2, b = 0.7, d = 0.5; a field's length is
// its number of distinct terms; query terms combined with OR, a repeated term counted again, the
// sum multiplied by the number of distinct query terms the document matches), so
// rankings did not change when it replaced minisearch here. minisearch removes a document
// without its text only lazily (discard, then an asynchronous vacuum), and until then its
// document frequencies count removed documents, which can make scores wrong or negative after
// edits; this index counts only live documents when it scores, and drops the removed ones'
// entries from every posting list it reads (and from all of them when it is saved).

const K = 1.2;
const B = 0.7;
const D = 0.5;

interface DocumentEntry {
  /** Internal number: a replaced document gets a new one, so stale postings are told apart. */
  id: number;
  /** Distinct terms per field. */
  lengths: number[];
}

export interface Bm25IndexJson {
  fields: string[];
  /** [key, distinct terms per field], in insertion order; postings refer to positions in this list. */
  documents: [string, number[]][];
  /** Per field: [term, [document position, count, document position, count, …]]. */
  postings: [string, number[]][][];
}

export class Bm25Index {
  private readonly documents = new Map<string, DocumentEntry>();
  /** Live document number → key. */
  private readonly keys = new Map<number, string>();
  /** Per field: term → document number → occurrences. */
  private readonly postings: Map<string, Map<number, number>>[];
  /** Per field: sum of the live documents' lengths. */
  private readonly totalLengths: number[];
  private nextId = 0;
  /** Documents removed since the last sweep of every posting list. */
  private removedSinceSweep = 0;

  constructor(
    readonly fields: readonly string[],
    private readonly tokenize: (text: string) => string[],
  ) {
    this.postings = fields.map(() => new Map());
    this.totalLengths = fields.map(() => 0);
  }

  get size(): number {
    return this.documents.size;
  }

  has(key: string): boolean {
    return this.documents.has(key);
  }

  /** Adds a document (its fields' texts, in `fields` order), replacing any under the same key. */
  set(key: string, texts: readonly string[]): void {
    this.remove(key);
    const id = this.nextId++;
    const lengths = this.fields.map((_, f) => {
      const counts = new Map<string, number>();
      for (const term of this.tokenize(texts[f] ?? '')) counts.set(term, (counts.get(term) ?? 0) + 1);
      for (const [term, count] of counts) {
        let posting = this.postings[f]!.get(term);
        if (!posting) this.postings[f]!.set(term, (posting = new Map()));
        posting.set(id, count);
      }
      this.totalLengths[f]! += counts.size;
      return counts.size;
    });
    this.documents.set(key, { id, lengths });
    this.keys.set(id, key);
  }

  /** Removes a document; its postings are dropped as they are next read. False if it was not there. */
  remove(key: string): boolean {
    const entry = this.documents.get(key);
    if (!entry) return false;
    entry.lengths.forEach((length, f) => (this.totalLengths[f]! -= length));
    this.documents.delete(key);
    this.keys.delete(entry.id);
    // Terms no question asks for keep a removed document's postings until a sweep: one once as
    // many documents were removed as are left (so the cost per removal stays constant).
    if (++this.removedSinceSweep > Math.max(64, this.documents.size)) this.sweep();
    return true;
  }

  /** Drops the postings of removed documents from every term. */
  private sweep(): void {
    for (const byTerm of this.postings) {
      for (const [term, posting] of byTerm) {
        for (const id of posting.keys()) if (!this.keys.has(id)) posting.delete(id);
        if (posting.size === 0) byTerm.delete(term);
      }
    }
    this.removedSinceSweep = 0;
  }

  /** Key → BM25 score of every document matching any term of the query (field scores weighted by `boosts`). */
  score(query: string, boosts: readonly number[] = []): Map<string, number> {
    const scores = new Map<number, number>();
    const matched = new Map<number, Set<string>>();
    const n = this.documents.size;
    if (n === 0) return new Map();
    for (const term of this.tokenize(query)) {
      for (let f = 0; f < this.fields.length; f++) {
        const posting = this.postings[f]!.get(term);
        if (!posting) continue;
        for (const id of posting.keys()) if (!this.keys.has(id)) posting.delete(id);
        if (posting.size === 0) {
          this.postings[f]!.delete(term);
          continue;
        }
        const idf = Math.log(1 + (n - posting.size + 0.5) / (posting.size + 0.5));
        const average = this.totalLengths[f]! / n;
        const boost = boosts[f] ?? 1;
        for (const [id, count] of posting) {
          const length = this.documents.get(this.keys.get(id)!)!.lengths[f]!;
          const score = idf * (D + (count * (K + 1)) / (count + K * (1 - B + (B * length) / average)));
          scores.set(id, (scores.get(id) ?? 0) + boost * score);
          let terms = matched.get(id);
          if (!terms) matched.set(id, (terms = new Set()));
          terms.add(term);
        }
      }
    }
    // Times the number of distinct query terms the document matches.
    return new Map([...scores].map(([id, s]) => [this.keys.get(id)!, s * matched.get(id)!.size]));
  }

  toJSON(): Bm25IndexJson {
    const position = new Map<number, number>();
    const documents: [string, number[]][] = [];
    for (const [key, entry] of this.documents) {
      position.set(entry.id, documents.length);
      documents.push([key, entry.lengths]);
    }
    const postings = this.postings.map((byTerm) => {
      const out: [string, number[]][] = [];
      for (const [term, posting] of byTerm) {
        const flat: number[] = [];
        for (const [id, count] of posting) {
          const at = position.get(id);
          if (at !== undefined) flat.push(at, count);
        }
        if (flat.length > 0) out.push([term, flat]);
      }
      return out;
    });
    return { fields: [...this.fields], documents, postings };
  }

  /** Reads back toJSON()'s output; throws a plain Error naming what is wrong (the caller words it for the user). */
  static fromJSON(json: Bm25IndexJson, fields: readonly string[], tokenize: (text: string) => string[]): Bm25Index {
    if (!Array.isArray(json.fields) || json.fields.join('\n') !== fields.join('\n')) throw new Error(`its fields are ${JSON.stringify(json.fields)}, not ${JSON.stringify(fields)}`);
    if (!Array.isArray(json.documents) || !Array.isArray(json.postings) || json.postings.length !== fields.length) throw new Error('its documents or postings are missing');
    const index = new Bm25Index(fields, tokenize);
    for (const doc of json.documents) {
      if (!Array.isArray(doc) || typeof doc[0] !== 'string' || !Array.isArray(doc[1]) || doc[1].length !== fields.length || !doc[1].every((l) => Number.isInteger(l) && l >= 0)) throw new Error(`document entry ${JSON.stringify(doc).slice(0, 80)} is malformed`);
      if (index.documents.has(doc[0])) throw new Error(`document ${doc[0]} is listed twice`);
      const id = index.nextId++;
      index.documents.set(doc[0], { id, lengths: doc[1] });
      index.keys.set(id, doc[0]);
      doc[1].forEach((l, f) => (index.totalLengths[f]! += l));
    }
    json.postings.forEach((byTerm, f) => {
      if (!Array.isArray(byTerm)) throw new Error(`the postings of field ${fields[f]} are malformed`);
      for (const entry of byTerm) {
        const [term, flat] = Array.isArray(entry) ? entry : [];
        if (typeof term !== 'string' || !Array.isArray(flat) || flat.length % 2 !== 0) throw new Error(`a posting of field ${fields[f]} is malformed`);
        const posting = new Map<number, number>();
        for (let i = 0; i < flat.length; i += 2) {
          const [at, count] = [flat[i], flat[i + 1]];
          if (!Number.isInteger(at) || at! < 0 || at! >= index.nextId || !Number.isInteger(count) || count! < 1) throw new Error(`the posting of "${term}" refers to no document`);
          posting.set(at!, count!);
        }
        index.postings[f]!.set(term, posting);
      }
    });
    return index;
  }
}
