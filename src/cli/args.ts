// Small helpers for reading numeric command-line options with errors that say what is wrong.

import { FreqKvError } from '../engine/errors';

/** A command-line option is missing, unknown or malformed. */
export class UsageError extends FreqKvError {}

export function intOption(value: string | undefined, name: string, fallback: number, min = -Infinity): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number${min > -Infinity ? ` of at least ${min}` : ''} (got '${value}').`);
  return n;
}

export function floatOption(value: string | undefined, name: string, fallback: number, check: (n: number) => boolean, rule: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UsageError(`--${name} must be ${rule} (got '${value}').`);
  return n;
}
