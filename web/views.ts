// The page templates (templates/web/*.hbs, compiled once) and the small pure functions that turn
// store rows into what the templates show: dates, sizes, challenge wording, the activity chart.
// Templates only ever use {{ }}: every value from a message is escaped by handlebars.

import Handlebars from 'handlebars';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ChallengeState } from '../agent/store/store.js';

export type Render = (page: string, data: Record<string, unknown>) => string;

/** Compiles every template in `dir`; `layout.hbs` is registered as the partial `layout`, and
 * `_name.hbs` as the partial `name`. */
export function loadTemplates(dir: string): Render {
  const hb = Handlebars.create();
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  const pages = new Map<string, Handlebars.TemplateDelegate>();
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.hbs')) continue;
    const name = basename(file, '.hbs');
    const text = readFileSync(join(dir, file), 'utf8');
    // Raw output would let mail content through unescaped; refuse such a template outright.
    if (text.includes('{{{') || text.includes('{{&')) throw new Error(`template ${file} uses unescaped output`);
    if (name === 'layout') hb.registerPartial('layout', text);
    else if (name.startsWith('_')) hb.registerPartial(name.slice(1), text);
    else pages.set(name, hb.compile(text, { strict: false, noEscape: false }));
  }
  return (page, data) => {
    const t = pages.get(page);
    if (!t) throw new Error(`no template ${page}`);
    return t(data);
  };
}

export function fmtTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function fmtSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 ** 2).toFixed(1)} MB`;
}

export function challengeText(state: ChallengeState, note: string): { text: string; cls: string } {
  switch (state) {
    case 'sent':
      return { text: 'challenge sent', cls: 'sent' };
    case 'pending':
      return { text: 'challenge pending', cls: 'sent' };
    case 'sending':
      return { text: 'challenge being sent', cls: 'sent' };
    case 'suppressed':
      return { text: note ? `suppressed: ${note}` : 'challenge suppressed', cls: 'suppressed' };
    case 'failed':
      return { text: note ? `challenge failed: ${note}` : 'challenge failed', cls: 'failed' };
    case 'none':
      return { text: note ? `no challenge: ${note}` : 'no challenge', cls: 'suppressed' };
  }
}

/** Strips characters that reorder or hide text (bidi controls, zero-width marks) so a subject
 * cannot make the row around it read differently; escaping is handlebars' job. */
export function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, '');
}

// ---- the activity chart

export const SERIES = [
  { kind: 'delivered', label: 'delivered' },
  { kind: 'held', label: 'held' },
  { kind: 'released', label: 'released' },
  { kind: 'confirmed', label: 'confirmed' },
  { kind: 'deleted', label: 'deleted' },
  { kind: 'expired', label: 'expired' },
  { kind: 'dropped', label: 'dropped' },
  { kind: 'challenged', label: 'requests sent' },
  { kind: 'suppressed', label: 'requests not sent' },
] as const;

export interface Chart {
  readonly width: number;
  readonly height: number;
  readonly max: number;
  readonly gridlines: readonly { readonly y: number; readonly label: string }[];
  readonly days: readonly {
    readonly x: number;
    readonly label: string;
    readonly showLabel: boolean;
    readonly bars: readonly { readonly x: number; readonly y: number; readonly h: number; readonly cls: string; readonly title: string }[];
  }[];
  readonly legend: readonly { readonly label: string; readonly cls: string; readonly total: number; readonly x: number; readonly y: number; readonly ty: number }[];
}

/** The last `days` days (ending today, UTC days as the store counts them) as grouped bars. */
export function activityChart(rows: readonly { day: string; kind: string; n: number }[], today: number, days = 30): Chart {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(`${r.day} ${r.kind}`, (counts.get(`${r.day} ${r.kind}`) ?? 0) + r.n);
  const dayList: string[] = [];
  for (let i = days - 1; i >= 0; i--) dayList.push(new Date(today - i * 86_400_000).toISOString().slice(0, 10));
  let max = 1;
  for (const d of dayList) for (const s of SERIES) max = Math.max(max, counts.get(`${d} ${s.kind}`) ?? 0);
  const top = niceCeil(max);
  const left = 36;
  const plotH = 160;
  const topPad = 10;
  const slot = 40;
  const barW = 4;
  const width = left + days * slot + 8;
  const gridlines = [0, 0.5, 1].map((f) => ({ y: topPad + plotH - f * plotH, label: String(Math.round(f * top)) }));
  const out = dayList.map((day, i) => {
    const x = left + i * slot;
    const bars = SERIES.map((s, j) => {
      const n = counts.get(`${day} ${s.kind}`) ?? 0;
      const h = n === 0 ? 0 : Math.max(1, (n / top) * plotH);
      return { x: x + 3 + j * barW, y: round(topPad + plotH - h), h: round(h), cls: `bar-${s.kind}`, title: `${day}: ${n} ${s.label}` };
    });
    return { x: x + slot / 2, label: day.slice(5), showLabel: i % 5 === (days - 1) % 5, bars };
  });
  const legend = SERIES.map((s, j) => ({
    label: s.label,
    cls: `bar-${s.kind}`,
    total: dayList.reduce((sum, d) => sum + (counts.get(`${d} ${s.kind}`) ?? 0), 0),
    x: left + (j % 5) * 170,
    y: 200 + Math.floor(j / 5) * 18,
    ty: 209 + Math.floor(j / 5) * 18,
  }));
  return { width, height: topPad + plotH + 70, max: top, gridlines, days: out, legend };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function niceCeil(n: number): number {
  if (n <= 4) return 4;
  const mag = 10 ** Math.floor(Math.log10(n));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * mag >= n) return f * mag;
  return 10 * mag;
}
