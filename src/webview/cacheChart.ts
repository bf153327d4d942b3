// The panel's chart of cache size over time: cache rows against tokens seen for the current
// answer, drawn as an SVG polyline with DOM calls (no markup strings). A compressed cache
// shows a saw-tooth under the capacity line while tokens seen keeps growing.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 300;
const HEIGHT = 80;

export interface CachePoint {
  tokensSeen: number;
  cacheRows: number;
}

/** Scales points into the chart box: x = tokens seen, y = rows (0 at the bottom, capacity at the top). */
export function chartPoints(points: readonly CachePoint[], capacity: number): string {
  if (points.length === 0) return '';
  const maxX = Math.max(1, ...points.map((p) => p.tokensSeen));
  const maxY = Math.max(1, capacity, ...points.map((p) => p.cacheRows));
  return points.map((p) => `${((p.tokensSeen / maxX) * WIDTH).toFixed(1)},${(HEIGHT - (p.cacheRows / maxY) * HEIGHT).toFixed(1)}`).join(' ');
}

export class CacheChart {
  private points: CachePoint[] = [];
  private capacity = 1;
  private readonly line: SVGPolylineElement;

  constructor(container: HTMLElement) {
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    svg.setAttribute('class', 'cache-chart');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', 'Cache rows against tokens seen');
    const top = document.createElementNS(SVG, 'line');
    top.setAttribute('x1', '0');
    top.setAttribute('x2', String(WIDTH));
    top.setAttribute('y1', '0.5');
    top.setAttribute('y2', '0.5');
    top.setAttribute('class', 'capacity');
    this.line = document.createElementNS(SVG, 'polyline');
    this.line.setAttribute('class', 'rows');
    svg.append(top, this.line);
    container.append(svg);
  }

  reset(): void {
    this.points = [];
    this.line.setAttribute('points', '');
  }

  add(point: CachePoint, capacity: number): void {
    this.capacity = capacity;
    this.points.push(point);
    this.line.setAttribute('points', chartPoints(this.points, this.capacity));
  }
}
