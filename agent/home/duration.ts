// Human durations and sizes as they appear in config and on the command line: "14d", "24h", "50M".

const UNITS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const SIZES: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Parses "90s", "30m", "24h", "14d", "2w" into milliseconds; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,9})([smhdw])$/.exec(text.trim().toLowerCase());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = UNITS[m[2] ?? ''];
  return unit === undefined || n <= 0 ? undefined : n * unit;
}

/** Parses "512", "64K", "50M", "1G" into bytes; undefined when it is not one. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d{1,12})([kmg]?)b?$/.exec(text.trim().toLowerCase());
  if (!m) return undefined;
  const unit = SIZES[m[2] ?? ''];
  const n = Number(m[1]);
  return unit === undefined || n <= 0 ? undefined : n * unit;
}
