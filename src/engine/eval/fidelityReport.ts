// The fidelity benchmark's Markdown table and SVG plot (perplexity against cache bytes per
// token of text, one line per method), written by hand: no plotting dependency.

import type { FidelityRow } from './fidelity';

const fmt = (x: number | null, digits: number): string => (x === null || !Number.isFinite(x) ? '–' : x.toFixed(digits));

function settingOf(r: FidelityRow): string {
  if (r.method === 'full') return 'full';
  if (r.method === 'streaming') return 'streaming';
  return `freqkv γ=${r.retain}${r.recent ? ` R=${r.recent}` : ''}`;
}

export function fidelityMarkdown(rows: readonly FidelityRow[], trained: number): string {
  const out: string[] = [];
  const texts = [...new Set(rows.map((r) => r.text))];
  for (const text of texts) {
    const group = rows.filter((r) => r.text === text);
    out.push(`### ${text} (${group[0]!.tokens} tokens)`, '');
    if (text === 'recall-probe') {
      out.push('| method | N | bytes/token | loss, 2nd occurrence | loss without the 1st | recalled (difference) |', '| --- | ---: | ---: | ---: | ---: | ---: |');
      for (const r of group) {
        const diff = r.recallLoss !== null && r.recallLossWithoutFirst !== null ? r.recallLossWithoutFirst - r.recallLoss : null;
        out.push(`| ${settingOf(r)} | ${r.capacity} | ${fmt(r.bytesPerToken, 1)} | ${fmt(r.recallLoss, 3)} | ${fmt(r.recallLossWithoutFirst, 3)} | ${fmt(diff, 3)} |`);
      }
    } else {
      out.push(
        `| method | N | bytes/token | perplexity | perplexity, positions ≥ ${trained} | KL(full‖method), positions < ${trained} | top-1 agreement | compressions |`,
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      );
      for (const r of group) {
        out.push(`| ${settingOf(r)} | ${r.capacity} | ${fmt(r.bytesPerToken, 1)} | ${fmt(r.perplexity, 3)} | ${fmt(r.perplexityBeyond, 3)} | ${fmt(r.kl, 4)} | ${fmt(r.top1, 3)} | ${r.compressions} |`);
      }
    }
    out.push('');
  }
  return out.join('\n');
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22', '#000000', '#aec7e8'];

/** Perplexity (y) against bytes per token (x, log scale) for one text; one polyline per method setting. */
export function fidelitySvg(rows: readonly FidelityRow[], text: string): string {
  const all = rows.filter((r) => r.text === text && r.perplexity !== null && r.bytesPerToken > 0);
  // Points far above the rest (the full cache past its trained context) would flatten the chart: noted, not drawn.
  const floor = Math.min(...all.map((r) => r.perplexity!));
  const group = all.filter((r) => r.perplexity! <= 2 * floor);
  const offChart = all.filter((r) => r.perplexity! > 2 * floor);
  const W = 720;
  const H = 440;
  const m = { left: 70, right: 200, top: 40, bottom: 55 };
  const xs = group.map((r) => Math.log2(r.bytesPerToken));
  const ys = group.map((r) => r.perplexity!);
  const x0 = Math.floor(Math.min(...xs));
  const x1 = Math.ceil(Math.max(...xs));
  const yMin = Math.min(...ys);
  const yMax = Math.max(...ys);
  const pad = (yMax - yMin) * 0.05 || 0.5;
  const y0 = yMin - pad;
  const y1 = yMax + pad;
  const px = (x: number): number => m.left + ((x - x0) / (x1 - x0 || 1)) * (W - m.left - m.right);
  const py = (y: number): number => H - m.bottom - ((y - y0) / (y1 - y0)) * (H - m.top - m.bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - 60}" y="22" text-anchor="middle" font-size="14">Perplexity vs cache bytes per token: ${escapeXml(text)}</text>`,
    `<line x1="${m.left}" y1="${H - m.bottom}" x2="${W - m.right}" y2="${H - m.bottom}" stroke="black"/>`,
    `<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${H - m.bottom}" stroke="black"/>`,
    `<text x="${(m.left + W - m.right) / 2}" y="${H - 15}" text-anchor="middle">average cache bytes per token of text (log scale)</text>`,
    `<text x="18" y="${(m.top + H - m.bottom) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(m.top + H - m.bottom) / 2})">perplexity</text>`,
  ];
  for (let x = x0; x <= x1; x++) {
    parts.push(`<line x1="${px(x)}" y1="${H - m.bottom}" x2="${px(x)}" y2="${H - m.bottom + 5}" stroke="black"/>`);
    parts.push(`<text x="${px(x)}" y="${H - m.bottom + 18}" text-anchor="middle">${2 ** x}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const y = y0 + ((y1 - y0) * i) / 5;
    parts.push(`<line x1="${m.left - 5}" y1="${py(y)}" x2="${m.left}" y2="${py(y)}" stroke="black"/>`);
    parts.push(`<text x="${m.left - 8}" y="${py(y) + 4}" text-anchor="end">${y.toFixed(2)}</text>`);
  }
  const series = [...new Set(group.map(settingOf))];
  series.forEach((name, i) => {
    const color = COLORS[i % COLORS.length]!;
    const points = group.filter((r) => settingOf(r) === name).sort((a, b) => a.bytesPerToken - b.bytesPerToken);
    const coords = points.map((r) => `${px(Math.log2(r.bytesPerToken)).toFixed(1)},${py(r.perplexity!).toFixed(1)}`);
    if (coords.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${coords.join(' ')}"/>`);
    for (const r of points) {
      parts.push(`<circle cx="${px(Math.log2(r.bytesPerToken)).toFixed(1)}" cy="${py(r.perplexity!).toFixed(1)}" r="4" fill="${color}"><title>${escapeXml(`${name} N=${r.capacity}: ppl ${r.perplexity!.toFixed(3)}, ${r.bytesPerToken.toFixed(1)} B/token`)}</title></circle>`);
    }
    const ly = m.top + 10 + i * 20;
    parts.push(`<line x1="${W - m.right + 15}" y1="${ly}" x2="${W - m.right + 40}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<text x="${W - m.right + 46}" y="${ly + 4}">${escapeXml(name)}</text>`);
  });
  offChart.forEach((r, i) => {
    parts.push(`<text x="${m.left + 10}" y="${m.top + 12 + i * 16}" fill="#555">off the chart: ${escapeXml(settingOf(r))} N=${r.capacity}, perplexity ${r.perplexity!.toFixed(2)} at ${r.bytesPerToken.toFixed(1)} B/token</text>`);
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * A metric of StreamingLLM at `bytes` per token, interpolated linearly in log(bytes) between
 * the two streaming budgets around it; null outside the measured streaming range.
 */
export function streamingAt(rows: readonly FidelityRow[], text: string, bytes: number, metric: (r: FidelityRow) => number | null): number | null {
  const points = rows
    .filter((r) => r.text === text && r.method === 'streaming' && metric(r) !== null)
    .map((r) => [Math.log(r.bytesPerToken), metric(r)!] as const)
    .sort((a, b) => a[0] - b[0]);
  const x = Math.log(bytes);
  for (let i = 0; i + 1 < points.length; i++) {
    const [xa, ya] = points[i]!;
    const [xb, yb] = points[i + 1]!;
    if (x >= xa && x <= xb) return xb === xa ? ya : ya + ((x - xa) / (xb - xa)) * (yb - ya);
  }
  return null;
}

/** FreqKV against StreamingLLM at equal bytes: each FreqKV row next to streaming interpolated at its bytes per token. */
export function equalBytesMarkdown(rows: readonly FidelityRow[]): string {
  const out: string[] = [
    '### FreqKV against StreamingLLM at equal bytes',
    '',
    'Streaming perplexity and KL interpolated linearly in log(bytes per token) between the two streaming budgets around each FreqKV row ("–": outside the streaming range). Negative Δ: FreqKV is better.',
    '',
    '| text | FreqKV setting | N | bytes/token | FreqKV ppl | streaming ppl | Δ ppl | FreqKV KL | streaming KL | Δ KL |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  let wins = 0;
  let compared = 0;
  for (const r of rows) {
    if (r.method !== 'freqkv' || r.text === 'recall-probe') continue;
    const sp = streamingAt(rows, r.text, r.bytesPerToken, (s) => s.perplexity);
    const sk = streamingAt(rows, r.text, r.bytesPerToken, (s) => s.kl);
    const dp = sp !== null && r.perplexity !== null ? r.perplexity - sp : null;
    const dk = sk !== null && r.kl !== null ? r.kl - sk : null;
    if (dp !== null) {
      compared++;
      if (dp < 0) wins++;
    }
    out.push(`| ${r.text} | ${settingOf(r)} | ${r.capacity} | ${fmt(r.bytesPerToken, 1)} | ${fmt(r.perplexity, 3)} | ${fmt(sp, 3)} | ${fmt(dp, 3)} | ${fmt(r.kl, 4)} | ${fmt(sk, 4)} | ${fmt(dk, 4)} |`);
  }
  out.push('', `FreqKV has the lower perplexity in ${wins} of the ${compared} rows that fall inside the streaming range.`, '');
  return out.join('\n');
}
