// Display helpers (pure).
import type { Level } from './filters'

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0')
}

/** Parse an RFC 3339 timestamp with any number of fractional digits. */
export function parseTimestamp(ts: string): number {
  return Date.parse(ts.replace(/(\.\d{3})\d+/, '$1'))
}

/** "2026-11-23" and "19:30:01.123" in local time; raw text if unparseable. */
export function splitLocalTime(ts: string): { date: string; time: string } {
  const ms = parseTimestamp(ts)
  if (Number.isNaN(ms)) return { date: '', time: ts }
  const d = new Date(ms)
  return {
    date: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
    time: `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`,
  }
}

export function formatCount(n: number): string {
  return n.toLocaleString()
}

export function formatClock(ms: number): string {
  const d = new Date(ms)
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

/** Tailwind classes for a level badge (light + dark). */
export const LEVEL_BADGE: Record<Level, string> = {
  debug: 'bg-slate-100 text-slate-700 ring-slate-300 dark:bg-slate-800 dark:text-slate-300 dark:ring-slate-600',
  info: 'bg-sky-100 text-sky-800 ring-sky-300 dark:bg-sky-950 dark:text-sky-300 dark:ring-sky-800',
  warn: 'bg-amber-100 text-amber-800 ring-amber-300 dark:bg-amber-950 dark:text-amber-300 dark:ring-amber-800',
  error: 'bg-red-100 text-red-800 ring-red-300 dark:bg-red-950 dark:text-red-300 dark:ring-red-800',
  fatal: 'bg-fuchsia-100 text-fuchsia-800 ring-fuchsia-300 dark:bg-fuchsia-950 dark:text-fuchsia-300 dark:ring-fuchsia-800',
}

/** Chart colours per level (canvas, work on both themes). */
export const LEVEL_COLOR: Record<Level, string> = {
  debug: '#94a3b8',
  info: '#0ea5e9',
  warn: '#f59e0b',
  error: '#ef4444',
  fatal: '#c026d3',
}

/** The curl command that sends a first log to this server. */
export function curlExample(origin: string): string {
  return `curl -X POST ${origin}/log -H 'Content-Type: application/json' -d '{"level":"info","message":"hello","service":"demo"}'`
}
