// The chart of an answer's cache rows against the tokens it generated, drawn as an SVG polyline
// with DOM calls (no markup strings), the capacity as a dashed line at the top. A cache that
// grows without compressing rises to the capacity; FreqKV then shows a saw-tooth below it.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 300;
const HEIGHT = 80;

export interface CachePoint {
  /** Tokens generated so far in the answer (0 after the prompt). */
  generated: number;
  cacheRows: number;
}

/** Scales points into the chart box: x = tokens generated, y = rows (0 at the bottom, capacity at the top). */
export function chartPoints(points: readonly CachePoint[], capacity: number): string {
  if (points.length === 0) return '';
  const maxX = Math.max(1, ...points.map((p) => p.generated));
  const maxY = Math.max(1, capacity, ...points.map((p) => p.cacheRows));
  return points.map((p) => `${((p.generated / maxX) * WIDTH).toFixed(1)},${(HEIGHT - (p.cacheRows / maxY) * HEIGHT).toFixed(1)}`).join(' ');
}

export class CacheChart {
  readonly svg: SVGSVGElement;
  private points: CachePoint[] = [];
  private readonly line: SVGPolylineElement;

  constructor() {
    this.svg = document.createElementNS(SVG, 'svg');
    this.svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    this.svg.setAttribute('class', 'cache-chart');
    this.svg.setAttribute('role', 'img');
    this.svg.setAttribute('aria-label', 'Cache rows against tokens generated');
    const top = document.createElementNS(SVG, 'line');
    top.setAttribute('x1', '0');
    top.setAttribute('x2', String(WIDTH));
    top.setAttribute('y1', '0.5');
    top.setAttribute('y2', '0.5');
    top.setAttribute('class', 'capacity');
    this.line = document.createElementNS(SVG, 'polyline');
    this.line.setAttribute('class', 'rows');
    this.svg.append(top, this.line);
  }

  get size(): number {
    return this.points.length;
  }

  add(point: CachePoint, capacity: number): void {
    // One point per token count: the last statistics of a step win.
    if (this.points.at(-1)?.generated === point.generated) this.points.pop();
    this.points.push(point);
    this.line.setAttribute('points', chartPoints(this.points, capacity));
  }
}
