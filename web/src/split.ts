// The histogram's stacks: by level (`/api/histogram`) or split by any field
// (`/api/histogram?by=`), as one list of series for the chart and its legend.
// Pure, no Vue: unit-tested in tests/split.test.ts.
import type { FieldCount, Histogram, SplitHistogram } from './api'
import { DEFAULT_SPLIT, LEVELS } from './filters'
import { LEVEL_COLOR } from './format'

export interface ChartSeries {
  /** The value (`error`, `eu-west-1`), or `other` / `missing` for the two rests. */
  key: string
  label: string
  color: string
  /** Logs per bucket. */
  counts: number[]
  total: number
  /** `other` (the values not listed) or `missing` (logs without the field). */
  rest?: 'other' | 'missing'
}

export interface Chart {
  from: string
  to: string
  interval: string
  interval_ms: number
  /** Bucket starts, epoch ms. */
  xs: number[]
  /** Bottom of the stack first. */
  series: ChartSeries[]
}

/** Ten colours told apart on light and dark backgrounds (the top values), then the rests' greys. */
export const SPLIT_COLORS = ['#0ea5e9', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#ec4899', '#14b8a6', '#f97316', '#6366f1', '#84cc16']
export const OTHER_COLOR = '#94a3b8'
export const MISSING_COLOR = '#cbd5e1'

export function isSplit(h: Histogram | SplitHistogram): h is SplitHistogram {
  return 'values' in h && Array.isArray((h as SplitHistogram).values)
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0)
}

/** The chart of either answer: levels in their order, or the listed values then `other` and `missing` (when any). */
export function chartOf(h: Histogram | SplitHistogram): Chart {
  const xs = h.buckets.map((b) => b.start_ms)
  const frame = { from: h.from, to: h.to, interval: h.interval, interval_ms: h.interval_ms, xs }
  if (!isSplit(h)) {
    const series = LEVELS.map((l) => {
      const counts = h.buckets.map((b) => b[l])
      return { key: l, label: l, color: LEVEL_COLOR[l], counts, total: sum(counts) }
    })
    return { ...frame, series }
  }
  const series: ChartSeries[] = h.values.map((value, i) => {
    const counts = h.buckets.map((b) => b.counts[value] ?? 0)
    return { key: value, label: value === '' ? '(empty)' : value, color: SPLIT_COLORS[i % SPLIT_COLORS.length], counts, total: sum(counts) }
  })
  const other = h.buckets.map((b) => b.other)
  if (sum(other) > 0) series.push({ key: 'other', label: 'other', color: OTHER_COLOR, counts: other, total: sum(other), rest: 'other' })
  const missing = h.buckets.map((b) => b.missing)
  if (sum(missing) > 0) {
    series.push({ key: 'missing', label: `no ${h.by}`, color: MISSING_COLOR, counts: missing, total: sum(missing), rest: 'missing' })
  }
  return { ...frame, series }
}

/** Whether the histogram is asked with `by=` (level is today's histogram, with its rollups). */
export function splitParam(split: string): string | undefined {
  return split === DEFAULT_SPLIT ? undefined : split
}

export interface SplitOption {
  value: string
  label: string
}

/** What the histogram can be split by: level, service, then the attributes of the matching logs (the current one kept). */
export function splitOptions(fields: readonly FieldCount[], current: string): SplitOption[] {
  const out: SplitOption[] = [
    { value: 'level', label: 'level' },
    { value: 'service', label: 'service' },
  ]
  for (const f of fields) {
    if (f.field && !out.some((o) => o.value === f.field)) out.push({ value: f.field, label: f.field })
  }
  if (current && !out.some((o) => o.value === current)) out.push({ value: current, label: current })
  return out
}
