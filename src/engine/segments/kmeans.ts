// Seeded k-means (Lloyd's algorithm) over float32 points, for residual-VQ codebooks.
// Initialisation by k-means++ (Arthur & Vassilvitskii 2007: each new centre is a point drawn
// with probability proportional to its squared distance to the nearest centre so far) or by
// distinct random points; then a fixed number of assign/update iterations. An emptied cluster
// takes the point currently farthest from its centre, so every entry stays in use.
// Deterministic for a seed: all randomness comes from createRng(seed), sums run in float64.

import { createRng } from '../random';

export interface KmeansOptions {
  /** Centres wanted (the codebook size). */
  clusters: number;
  /** Lloyd iterations after initialisation (default 12). */
  iterations?: number;
  seed?: number;
  init?: 'kmeans++' | 'random';
}

export interface KmeansResult {
  /** [clusters, dim] row-major. */
  centroids: Float32Array;
  /** The nearest centre of every point after the last update. */
  assignments: Int32Array;
  /** Mean squared distance of the points to their nearest centre. */
  meanSquaredError: number;
}

/** The index of the row of `codebook` ([entries, dim]) nearest to x[offset … offset + dim), and its squared distance. */
export function nearestEntry(codebook: Float32Array, entries: number, dim: number, x: Float32Array, offset: number, out: { index: number; distance: number }, hint = -1): void {
  let best = 0;
  let bestDistance = Infinity;
  // Starting from a likely answer (the previous assignment) lets the partial sums below stop
  // early for most entries; ties still go to the lowest index, so the result does not depend on it.
  if (hint >= 0 && hint < entries) {
    best = hint;
    bestDistance = 0;
    for (let d = 0; d < dim; d++) {
      const diff = x[offset + d]! - codebook[hint * dim + d]!;
      bestDistance += diff * diff;
    }
  }
  for (let e = 0; e < entries; e++) {
    if (e === hint) continue;
    const base = e * dim;
    let s = 0;
    // Partial sums in blocks of four channels, stopping once they pass the best so far.
    let d = 0;
    for (; d + 3 < dim && s < bestDistance; d += 4) {
      const d0 = x[offset + d]! - codebook[base + d]!;
      const d1 = x[offset + d + 1]! - codebook[base + d + 1]!;
      const d2 = x[offset + d + 2]! - codebook[base + d + 2]!;
      const d3 = x[offset + d + 3]! - codebook[base + d + 3]!;
      s += d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
    }
    for (; d < dim && s < bestDistance; d++) {
      const diff = x[offset + d]! - codebook[base + d]!;
      s += diff * diff;
    }
    if (s < bestDistance || (s === bestDistance && e < best)) {
      bestDistance = s;
      best = e;
    }
  }
  out.index = best;
  out.distance = bestDistance;
}

/** k-means of `points` ([n, dim] row-major). With fewer distinct points than clusters, some centres repeat. */
export function kmeans(points: Float32Array, dim: number, options: KmeansOptions): KmeansResult {
  const { clusters } = options;
  const iterations = options.iterations ?? 12;
  if (!Number.isInteger(dim) || dim < 1 || points.length % dim !== 0) throw new RangeError(`kmeans: ${points.length} floats are not whole points of ${dim} dims`);
  if (!Number.isInteger(clusters) || clusters < 1) throw new RangeError(`kmeans: need at least 1 cluster (got ${clusters})`);
  const n = points.length / dim;
  if (n === 0) throw new RangeError('kmeans: no points');
  const random = createRng(options.seed ?? 0);
  const centroids = new Float32Array(clusters * dim);
  const distances = new Float64Array(n);
  const assignments = new Int32Array(n);
  const nearest = { index: 0, distance: 0 };

  // Initialisation.
  if (options.init === 'random') {
    // A random order of the points (Fisher–Yates on indices); cycle if n < clusters.
    const order = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    for (let c = 0; c < clusters; c++) centroids.set(points.subarray(order[c % n]! * dim, (order[c % n]! + 1) * dim), c * dim);
  } else {
    const first = Math.floor(random() * n);
    centroids.set(points.subarray(first * dim, (first + 1) * dim), 0);
    let total = 0;
    for (let i = 0; i < n; i++) {
      distances[i] = squaredDistance(points, i * dim, centroids, 0, dim);
      total += distances[i]!;
    }
    for (let c = 1; c < clusters; c++) {
      let chosen = 0;
      if (total > 0) {
        let target = random() * total;
        chosen = n - 1;
        for (let i = 0; i < n; i++) {
          target -= distances[i]!;
          if (target < 0) {
            chosen = i;
            break;
          }
        }
      } else {
        chosen = Math.floor(random() * n); // every point coincides with a centre already
      }
      centroids.set(points.subarray(chosen * dim, (chosen + 1) * dim), c * dim);
      total = 0;
      for (let i = 0; i < n; i++) {
        const d = squaredDistance(points, i * dim, centroids, c * dim, dim);
        if (d < distances[i]!) distances[i] = d;
        total += distances[i]!;
      }
    }
  }

  // Lloyd iterations: assign, then move every centre to the mean of its points.
  const sums = new Float64Array(clusters * dim);
  const counts = new Int32Array(clusters);
  let first = true;
  const assign = (): number => {
    let total = 0;
    for (let i = 0; i < n; i++) {
      nearestEntry(centroids, clusters, dim, points, i * dim, nearest, first ? -1 : assignments[i]!);
      assignments[i] = nearest.index;
      distances[i] = nearest.distance;
      total += nearest.distance;
    }
    first = false;
    return total / n;
  };
  let mse = assign();
  for (let iteration = 0; iteration < iterations; iteration++) {
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const c = assignments[i]!;
      counts[c]!++;
      for (let d = 0; d < dim; d++) sums[c * dim + d] = sums[c * dim + d]! + points[i * dim + d]!;
    }
    for (let c = 0; c < clusters; c++) {
      if (counts[c]! > 0) {
        for (let d = 0; d < dim; d++) centroids[c * dim + d] = sums[c * dim + d]! / counts[c]!;
        continue;
      }
      // Empty: take the farthest point from its centre (ties: the first), then count it as served.
      let far = -1;
      let farDistance = 0;
      for (let i = 0; i < n; i++) {
        if (distances[i]! > farDistance) {
          farDistance = distances[i]!;
          far = i;
        }
      }
      if (far < 0) continue; // every point sits on a centre: nothing to gain
      centroids.set(points.subarray(far * dim, (far + 1) * dim), c * dim);
      distances[far] = 0;
    }
    mse = assign();
  }
  return { centroids, assignments, meanSquaredError: mse };
}

function squaredDistance(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) {
    const diff = a[aOffset + d]! - b[bOffset + d]!;
    s += diff * diff;
  }
  return s;
}
