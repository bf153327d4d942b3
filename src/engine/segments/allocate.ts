// Shares a budget of cache rows among files by relevance (docs/workspace-cache.md, "Assembly").
// The most relevant file gets full resolution first, or half the budget if it is longer; when it
// leads the next file by a clear margin (its score at least `clearMargin` times the second's), it
// gets at least half its stored rows too, as long as every other file keeps its minimum.
// Every other file then gets a minimum (a few rows, or all of a shorter segment), so nothing is
// silently dropped; if even the minimums do not fit, the least relevant files are dropped and
// named. Of the rows left, the next most relevant files get full resolution in score order while
// each fits in half of what is left; the rest is shared in proportion to relevance (plus a
// floor, so files that match no term still get some), never more than a file's stored rows.

export interface AllocationInput {
  /** L: rows the file's segment holds at full resolution. */
  storedRows: number;
  /** Relevance (BM25); higher is more relevant. */
  score: number;
}

export interface Allocation {
  /** Rows given to each input file (0 for dropped files), in the input order. */
  rows: number[];
  /** Indices of the files dropped because even their minimum did not fit. */
  dropped: number[];
}

export interface AllocationOptions {
  /** Rows every file gets at least (or its stored rows, if fewer); default 4. */
  minRows?: number;
  /** Share of the remaining budget one file may take at full resolution; default 0.5. */
  fullShare?: number;
  /** Weight every file gets on top of its normalized score (0 … 1); default 0.1. */
  floorWeight?: number;
  /** The most relevant file leads clearly when its score is at least this many times the second's; it then gets at least half its stored rows. Default 1.5. */
  clearMargin?: number;
}

export function allocateRows(files: readonly AllocationInput[], budget: number, options: AllocationOptions = {}): Allocation {
  const minRows = options.minRows ?? 4;
  const fullShare = options.fullShare ?? 0.5;
  const floorWeight = options.floorWeight ?? 0.1;
  const clearMargin = options.clearMargin ?? 1.5;
  const rows = files.map(() => 0);
  const order = files.map((_, i) => i).sort((a, b) => files[b]!.score - files[a]!.score || a - b);
  const total = files.reduce((n, f) => n + f.storedRows, 0);
  if (total <= budget) return { rows: files.map((f) => f.storedRows), dropped: [] };

  let left = Math.max(0, Math.floor(budget));
  // The most relevant file first: full resolution, or a share of the budget if it is longer, or
  // half its rows if it leads clearly and the others' minimums still fit.
  const top = order[0];
  if (top !== undefined && files[top]!.score > 0) {
    const stored = files[top]!.storedRows;
    const second = order[1] === undefined ? 0 : files[order[1]]!.score;
    const othersMinimum = order.slice(1).reduce((n, i) => n + Math.min(minRows, files[i]!.storedRows), 0);
    const half = files[top]!.score >= clearMargin * second ? Math.min(Math.ceil(stored / 2), left - othersMinimum) : 0;
    rows[top] = Math.min(stored, Math.max(Math.min(minRows, stored), Math.floor(fullShare * left), half));
    if (rows[top]! > left) rows[top] = 0;
    left -= rows[top]!;
  }
  // Minimums, most relevant first; what does not fit is dropped.
  const kept: number[] = [];
  const dropped: number[] = [];
  for (const i of order) {
    if (rows[i]! > 0) {
      kept.push(i);
      continue;
    }
    const need = Math.min(minRows, files[i]!.storedRows);
    if (need <= left) {
      rows[i] = need;
      left -= need;
      kept.push(i);
    } else {
      dropped.push(i);
    }
  }
  // Full resolution for the most relevant, while each fits in a share of what is left.
  let open = kept.filter((i) => rows[i]! < files[i]!.storedRows);
  for (const i of [...open]) {
    if (files[i]!.score <= 0) break;
    const extra = files[i]!.storedRows - rows[i]!;
    if (extra > fullShare * left) break;
    rows[i] = files[i]!.storedRows;
    left -= extra;
    open = open.filter((j) => j !== i);
  }
  // The rest in proportion to relevance, water-filled up to each file's stored rows.
  const maxScore = Math.max(0, ...files.map((f) => f.score));
  const weight = (i: number): number => (maxScore > 0 ? files[i]!.score / maxScore : 0) + floorWeight;
  while (left > 0 && open.length > 0) {
    const sum = open.reduce((n, i) => n + weight(i), 0);
    let given = 0;
    for (const i of open) {
      const share = Math.floor((left * weight(i)) / sum);
      const add = Math.min(share, files[i]!.storedRows - rows[i]!);
      rows[i] = rows[i]! + add;
      given += add;
    }
    left -= given;
    open = open.filter((i) => rows[i]! < files[i]!.storedRows);
    if (given === 0) {
      // Shares rounded down to nothing: one row each, most relevant first.
      for (const i of open) {
        if (left === 0) break;
        rows[i] = rows[i]! + 1;
        left--;
      }
      open = open.filter((i) => rows[i]! < files[i]!.storedRows);
    }
  }
  return { rows, dropped };
}
