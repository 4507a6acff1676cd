// One trace's logs (the trace page): the search that finds them whatever
// their age, the link out to a tracing UI, and the waterfall of its spans.
// Pure, no Vue, no DOM: unit-tested in tests/traces.test.ts.

import type { LogEntry } from './api'
import type { Params } from './filters'
import { formatValue } from './querylang'

/** Logs a trace page lists at most (ten pages of the API's largest). */
export const MAX_TRACE_LOGS = 10_000
export const TRACE_PAGE = 1000

/**
 * `/api/logs` params for every log of a trace, oldest first. No `from`/`to`:
 * a trace can be older than any preset, and the stores find a trace id by its
 * own index whatever the range (where tenants limit how far back a read may
 * go, the server narrows a read without `from` to that limit instead of
 * refusing it, as it would `from=0`).
 */
export function traceParams(traceId: string): Params {
  return { query: `trace_id:${formatValue(traceId)}`, order: 'asc' }
}

/** The tracing UI's address for a trace: `{trace_id}` in `template` replaced, URL-encoded; null without a template. */
export function traceLinkOut(template: string | null | undefined, traceId: string): string | null {
  if (!template || !traceId) return null
  return template.split('{trace_id}').join(encodeURIComponent(traceId))
}

/** The dashboard's path of a trace page. */
export function tracePath(traceId: string): string {
  return `/trace/${encodeURIComponent(traceId)}`
}

/** An id as a row shows it: its first 8 characters (the whole id is in the link's title). */
export function shortId(id: string): string {
  return id.length > 10 ? `${id.slice(0, 8)}…` : id
}

/** Microseconds since the epoch of an RFC 3339 timestamp (the API writes six fractional digits); NaN if unreadable. */
export function timestampMicros(ts: string): number {
  const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})$/.exec(ts.trim())
  if (!m) return Number.NaN
  const seconds = Date.parse(`${m[1]}${m[3]}`)
  if (Number.isNaN(seconds)) return Number.NaN
  const fraction = Number((m[2] ?? '').slice(0, 6).padEnd(6, '0'))
  return seconds * 1000 + fraction
}

export interface SpanBar {
  spanId: string
  /** The services that logged in this span, in order of their first log. */
  services: string[]
  logs: number
  /** Microseconds after the trace's first log. */
  start: number
  end: number
  /** Where the bar sits on the waterfall, in percent of the trace's duration. */
  left: number
  width: number
}

export interface Waterfall {
  /** The trace's first and last log, microseconds since the epoch. */
  first: number
  last: number
  /** Microseconds from the first log to the last. */
  duration: number
  /** One per span id, by the time of its first log (then by span id). */
  spans: SpanBar[]
  /** Logs without a span id (not on the waterfall). */
  unspanned: number
}

/** A bar is at least this wide, in percent, so a span of one log is still seen. */
const MIN_WIDTH = 0.5

/**
 * The waterfall of a trace's logs: one bar per span id from its first to its
 * last log, placed relative to the trace's first log. Logs may come in any
 * order; unreadable timestamps are left out.
 */
export function waterfall(logs: readonly LogEntry[]): Waterfall {
  const timed = logs
    .map((log) => ({ log, at: timestampMicros(log.timestamp) }))
    .filter((x) => !Number.isNaN(x.at))
    .sort((a, b) => a.at - b.at)
  if (!timed.length) return { first: 0, last: 0, duration: 0, spans: [], unspanned: 0 }
  const first = timed[0].at
  const last = timed[timed.length - 1].at
  const duration = last - first
  const bySpan = new Map<string, { services: string[]; logs: number; start: number; end: number }>()
  let unspanned = 0
  for (const { log, at } of timed) {
    if (!log.span_id) {
      unspanned++
      continue
    }
    const span = bySpan.get(log.span_id) ?? { services: [], logs: 0, start: at - first, end: at - first }
    if (!span.services.includes(log.service)) span.services.push(log.service)
    span.logs++
    span.end = at - first
    bySpan.set(log.span_id, span)
  }
  const spans = [...bySpan.entries()]
    .map(([spanId, s]) => {
      const left = duration > 0 ? (s.start / duration) * 100 : 0
      const width = duration > 0 ? ((s.end - s.start) / duration) * 100 : 100
      return { spanId, ...s, left: Math.min(left, 100 - MIN_WIDTH), width: Math.max(width, MIN_WIDTH) }
    })
    .sort((a, b) => a.start - b.start || (a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : 0))
  return { first, last, duration, spans, unspanned }
}

/** A duration in microseconds as people read it: `850 µs`, `12.5 ms`, `3.20 s`, `2 min 5 s`. */
export function formatMicros(us: number): string {
  if (us < 1000) return `${Math.round(us)} µs`
  if (us < 1_000_000) return `${trim(us / 1000)} ms`
  if (us < 60_000_000) return `${(us / 1_000_000).toFixed(2)} s`
  const seconds = Math.round(us / 1_000_000)
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`
}

function trim(n: number): string {
  return n >= 100 ? String(Math.round(n)) : n.toFixed(1).replace(/\.0$/, '')
}
