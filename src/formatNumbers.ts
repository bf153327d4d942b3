// Numbers for people, shared by the status bar and the webview: bytes in decimal units
// (1 kB = 1000 bytes), counts with thousands separators, ratios with one decimal. No imports,
// so both the extension host and the browser bundle use it.

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '? B';
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 999.95 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio) || ratio <= 0) return '–×';
  return `${ratio.toFixed(1)}×`;
}

/** 12345 → "12,345"; fractions rounded to `digits`. */
export function formatCount(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '?';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Milliseconds as "850 ms" or "12.3 s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${formatCount(ms / 1000, 1)} s`;
}

/** "1 file", "3 files". */
export function plural(count: number, noun: string): string {
  return `${formatCount(count)} ${noun}${count === 1 ? '' : 's'}`;
}
