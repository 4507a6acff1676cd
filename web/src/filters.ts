// Pure filter logic: URL query <-> Filters, time range presets, level parsing.
// No Vue, no DOM: everything here is unit-tested in tests/filters.test.ts.

export const LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const
export type Level = (typeof LEVELS)[number]

export const RANGE_PRESETS = {
  '15m': 15 * 60 * 1000,
  '1h': 60 * 60 * 1000,
  '24h': 24 * 60 * 60 * 1000,
  '7d': 7 * 24 * 60 * 60 * 1000,
} as const
export type RangePreset = keyof typeof RANGE_PRESETS
export const PRESET_KEYS = Object.keys(RANGE_PRESETS) as RangePreset[]
export const DEFAULT_RANGE: RangePreset = '24h'

export const PRESET_LABELS: Record<RangePreset, string> = {
  '15m': 'Last 15 minutes',
  '1h': 'Last hour',
  '24h': 'Last 24 hours',
  '7d': 'Last 7 days',
}

export type Order = 'desc' | 'asc'

export interface Filters {
  /** Query-language text (`service:checkout level:>=error -healthcheck`), sent as `query`. */
  query: string
  /** Case-insensitive substring of the message (the seed's `q`, still honoured in URLs). */
  q: string
  /** Selected levels (empty = all), in canonical order. */
  levels: Level[]
  /** Case-insensitive substring of the service name (empty = all). */
  service: string
  /** A preset relative to "now", or 'custom' with absolute from/to. */
  range: RangePreset | 'custom'
  /** Epoch ms, only meaningful when range === 'custom'; null = unbounded. */
  from: number | null
  to: number | null
  order: Order
  /** Facet fields chosen in the Explorer's sidebar, as API references (`region`, `@level`); empty = the server's choice. */
  facets: string[]
  // How the Explorer shows the search (they change no row, count or facet):
  /** What the histogram is split by, as `/api/histogram?by=` names it: `level` (the default), `service`, an attribute (`@level` for one named like a field). */
  split: string
  /** Attribute keys shown as table columns, in order (at most MAX_COLUMNS). */
  columns: string[]
  /** Long messages wrap (true) or are cut to one line (false, the default). */
  wrap: boolean
}

/** The histogram's split when none is chosen: today's stacked levels. */
export const DEFAULT_SPLIT = 'level'
/** Columns a table (and a saved view) may show at most. */
export const MAX_COLUMNS = 20

export function defaultFilters(): Filters {
  return {
    query: '',
    q: '',
    levels: [],
    service: '',
    range: DEFAULT_RANGE,
    from: null,
    to: null,
    order: 'desc',
    facets: [],
    split: DEFAULT_SPLIT,
    columns: [],
    wrap: false,
  }
}

/** The search alone: what rows, counts and facets depend on (the display fields at their defaults). */
export function searchOnly(f: Filters): Filters {
  return { ...f, facets: [], split: DEFAULT_SPLIT, columns: [], wrap: false }
}

/** The display fields of `from` carried over to `to` (a search cleared keeps its columns and split). */
export function withDisplayOf(to: Filters, from: Filters): Filters {
  return { ...to, facets: from.facets, split: from.split, columns: from.columns, wrap: from.wrap }
}

/** What vue-router (or URLSearchParams collected by key) gives us for one key. */
export type QueryValue = string | null | undefined | (string | null)[]
export type RawQuery = Record<string, QueryValue>

function values(v: QueryValue): string[] {
  if (v == null) return []
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string')
  return [v]
}

function firstValue(v: QueryValue): string | undefined {
  const all = values(v)
  return all.length ? all[0] : undefined
}

const LEVEL_ALIASES: Record<string, Level> = { warning: 'warn', err: 'error', critical: 'fatal', trace: 'debug' }

export function isLevel(s: string): s is Level {
  return (LEVELS as readonly string[]).includes(s)
}

/**
 * Parse levels from `level=error,warn`, repeated `level=` keys, or an array.
 * Case-insensitive, whitespace tolerant, unknown names dropped, deduplicated,
 * returned in canonical (severity) order.
 */
export function parseLevels(v: QueryValue): Level[] {
  const seen = new Set<Level>()
  for (const chunk of values(v)) {
    for (const raw of chunk.split(',')) {
      const name = raw.trim().toLowerCase()
      if (!name) continue
      const lvl = isLevel(name) ? name : LEVEL_ALIASES[name]
      if (lvl) seen.add(lvl)
    }
  }
  return LEVELS.filter((l) => seen.has(l))
}

/** RFC 3339 text or epoch milliseconds -> epoch ms; null when invalid/empty. */
export function parseTime(s: string | undefined | null): number | null {
  if (s == null) return null
  const t = s.trim()
  if (!t) return null
  if (/^\d{1,16}$/.test(t)) return Number(t)
  // Browsers accept RFC 3339 with up to 3 fractional digits reliably; trim extra precision.
  const normalized = t.replace(/(\.\d{3})\d+/, '$1').replace(' ', 'T')
  const ms = Date.parse(normalized)
  return Number.isNaN(ms) ? null : ms
}

export function toIso(ms: number): string {
  return new Date(ms).toISOString()
}

function isPreset(s: string | undefined): s is RangePreset {
  return s !== undefined && Object.prototype.hasOwnProperty.call(RANGE_PRESETS, s)
}

/** URL query -> Filters. Anything invalid falls back to the default. */
export function filtersFromQuery(query: RawQuery): Filters {
  const f = defaultFilters()
  f.query = (firstValue(query.query) ?? '').trim()
  f.q = (firstValue(query.q) ?? '').trim()
  f.levels = parseLevels(query.level ?? query.levels)
  f.service = (firstValue(query.service) ?? '').trim()
  const order = firstValue(query.order)
  f.order = order === 'asc' ? 'asc' : 'desc'
  f.facets = parseFacetFields(query.facets)
  f.split = (firstValue(query.split) ?? '').trim() || DEFAULT_SPLIT
  f.columns = parseFacetFields(query.columns).slice(0, MAX_COLUMNS)
  f.wrap = firstValue(query.wrap) === '1'

  const from = parseTime(firstValue(query.from))
  const to = parseTime(firstValue(query.to))
  const range = firstValue(query.range)
  if (from !== null || to !== null) {
    f.range = 'custom'
    f.from = from
    f.to = to
    // A reversed range is almost certainly a typo: swap rather than show nothing.
    if (from !== null && to !== null && from > to) {
      f.from = to
      f.to = from
    }
  } else if (isPreset(range)) {
    f.range = range
  }
  return f
}

/** Filters -> URL query (defaults omitted so URLs stay short). */
export function filtersToQuery(f: Filters): Record<string, string> {
  const out: Record<string, string> = {}
  if (f.query) out.query = f.query
  if (f.q) out.q = f.q
  if (f.levels.length) out.level = f.levels.join(',')
  if (f.service) out.service = f.service
  if (f.range === 'custom') {
    if (f.from !== null) out.from = toIso(f.from)
    if (f.to !== null) out.to = toIso(f.to)
  } else if (f.range !== DEFAULT_RANGE) {
    out.range = f.range
  }
  if (f.order === 'asc') out.order = 'asc'
  if (f.facets.length) out.facets = f.facets.join(',')
  if (f.split !== DEFAULT_SPLIT) out.split = f.split
  if (f.columns.length) out.columns = f.columns.join(',')
  if (f.wrap) out.wrap = '1'
  return out
}

/**
 * `facets=level,region,@level` (or `columns=region,http.status`) -> names,
 * deduplicated in order. Commas separate fields (as in the API's `fields=`),
 * so a key holding one cannot be listed.
 */
export function parseFacetFields(v: QueryValue): string[] {
  const out: string[] = []
  for (const chunk of values(v)) {
    for (const raw of chunk.split(',')) {
      const name = raw.trim()
      if (name && !out.includes(name)) out.push(name)
    }
  }
  return out
}

/** Stable key for "did the filters change?" comparisons. */
export function filtersKey(f: Filters): string {
  const q = filtersToQuery(f)
  return Object.keys(q)
    .sort()
    .map((k) => `${k}=${q[k]}`)
    .join('&')
}

export function hasActiveFilters(f: Filters): boolean {
  return f.query !== '' || f.q !== '' || f.levels.length > 0 || f.service !== ''
}

export interface ResolvedRange {
  /** Epoch ms lower bound (inclusive) or null. */
  from: number | null
  /** Epoch ms upper bound (exclusive) or null (open-ended: "until now"). */
  to: number | null
}

/**
 * Resolve the time range against `now`. Presets are open-ended at the top so a
 * log written a moment ago (or with a slightly skewed server clock) still shows.
 */
export function resolveRange(f: Filters, now: number = Date.now()): ResolvedRange {
  if (f.range === 'custom') return { from: f.from, to: f.to }
  return { from: now - RANGE_PRESETS[f.range], to: null }
}

/** Like resolveRange but always bounded (histograms need both ends). */
export function resolveBoundedRange(f: Filters, now: number = Date.now()): { from: number; to: number } {
  const r = resolveRange(f, now)
  const to = r.to ?? now
  const from = r.from ?? to - RANGE_PRESETS[DEFAULT_RANGE]
  return { from, to }
}

export type Params = Record<string, string | number | undefined>

/** Shared filter params (no time range) for /api/logs, /api/stats, /ws/live. */
export function filterParams(f: Filters): Params {
  const p: Params = {}
  if (f.query) p.query = f.query
  if (f.levels.length) p.level = f.levels.join(',')
  if (f.service) p.service = f.service
  if (f.q) p.q = f.q
  return p
}

/** Params for /api/logs and /api/stats. */
export function queryParams(f: Filters, now: number = Date.now()): Params {
  const p = filterParams(f)
  const r = resolveRange(f, now)
  if (r.from !== null) p.from = toIso(r.from)
  if (r.to !== null) p.to = toIso(r.to)
  return p
}

/** Params for /api/histogram. */
export function histogramParams(f: Filters, now: number = Date.now()): Params {
  const p = filterParams(f)
  const r = resolveBoundedRange(f, now)
  p.from = toIso(r.from)
  p.to = toIso(r.to)
  return p
}

/** Narrow to an absolute range (e.g. a histogram drag selection). */
export function withCustomRange(f: Filters, fromMs: number, toMs: number): Filters {
  const a = Math.floor(Math.min(fromMs, toMs))
  const b = Math.ceil(Math.max(fromMs, toMs))
  return { ...f, range: 'custom', from: a, to: b === a ? a + 1 : b }
}

export function withPreset(f: Filters, preset: RangePreset): Filters {
  return { ...f, range: preset, from: null, to: null }
}

export function toggleLevel(f: Filters, level: Level): Filters {
  const set = new Set(f.levels)
  if (set.has(level)) set.delete(level)
  else set.add(level)
  return { ...f, levels: LEVELS.filter((l) => set.has(l)) }
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0')
}

/** Epoch ms -> value for <input type="datetime-local" step="1"> (local time). */
export function toLocalInputValue(ms: number | null): string {
  if (ms === null) return ''
  const d = new Date(ms)
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  )
}

/** <input type="datetime-local"> value (local time) -> epoch ms, or null. */
export function fromLocalInputValue(s: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(s.trim())
  if (!m) return null
  const [, y, mo, d, h, mi, sec, frac] = m
  const date = new Date(
    Number(y),
    Number(mo) - 1,
    Number(d),
    Number(h),
    Number(mi),
    Number(sec ?? 0),
    Number((frac ?? '0').padEnd(3, '0')),
  )
  const ms = date.getTime()
  return Number.isNaN(ms) ? null : ms
}

/** Human label for the range, e.g. "Last hour" or "Nov 23, 19:00:00 → 20:00:00". */
export function rangeLabel(f: Filters): string {
  if (f.range !== 'custom') return PRESET_LABELS[f.range]
  const fmt = (ms: number) =>
    new Date(ms).toLocaleString(undefined, {
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
  const a = f.from !== null ? fmt(f.from) : 'the beginning'
  const b = f.to !== null ? fmt(f.to) : 'now'
  return `${a} → ${b}`
}
