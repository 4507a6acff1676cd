// The Explorer's Patterns tab, the pure part (no Vue, no DOM): the answer of
// /api/patterns, the query term that filters by a pattern (`pattern:"…"`) or
// excludes it, a pattern's level mix and its sparkline's points.
import { LEVELS, type Level } from './filters'
import { addTerm, quote, splitTopLevel } from './querylang'

/** One item of /api/patterns. */
export interface PatternItem {
  /** Literal text with `<_>` where messages vary. */
  pattern: string
  count: number
  levels: Partial<Record<Level, number>>
  services: Record<string, number>
  first_seen: string
  last_seen: string
  example_id: string
  /** [ms since the epoch, count] per step of the answer's `step_ms`, steps with logs only. */
  samples: [number, number][]
}

export interface PatternsAnswer {
  patterns: PatternItem[]
  /** Logs mined. */
  logs: number
  /** More logs matched than were mined (the newest were). */
  truncated: boolean
  step_ms: number
}

export function normalizePatterns(raw: Partial<PatternsAnswer> | null | undefined): PatternsAnswer {
  const list = Array.isArray(raw?.patterns) ? raw.patterns : []
  return {
    patterns: list.map((p) => ({
      pattern: String(p.pattern ?? ''),
      count: Number(p.count ?? 0),
      levels: p.levels && typeof p.levels === 'object' ? p.levels : {},
      services: p.services && typeof p.services === 'object' ? p.services : {},
      first_seen: String(p.first_seen ?? ''),
      last_seen: String(p.last_seen ?? ''),
      example_id: String(p.example_id ?? ''),
      samples: Array.isArray(p.samples) ? p.samples.map((s) => [Number(s[0]), Number(s[1])] as [number, number]) : [],
    })),
    logs: Number(raw?.logs ?? 0),
    truncated: raw?.truncated === true,
    step_ms: Number(raw?.step_ms ?? 0),
  }
}

/** `pattern:"…"`, or `-pattern:"…"` to exclude the pattern's logs. */
export function patternTerm(template: string, exclude = false): string {
  return `${exclude ? '-' : ''}pattern:${quote(template)}`
}

/** Whether the query filters by this pattern (`included`) or leaves it out (`excluded`). */
export function patternState(query: string, template: string): 'included' | 'excluded' | null {
  const top = splitTopLevel(query.trim())
  if (top.hasOr || !top.balanced) return null
  for (const t of top.tokens) {
    if (t.kind !== 'term') continue
    if (t.text === patternTerm(template)) return 'included'
    if (t.text === patternTerm(template, true) || t.text === `NOT ${patternTerm(template)}`) return 'excluded'
  }
  return null
}

/**
 * What a click on a pattern's Filter (or Exclude) control does to the query:
 * add the term; the same click again removes it; the other control swaps it.
 */
export function togglePattern(query: string, template: string, exclude = false): string {
  const q = query.trim()
  const wanted = patternTerm(template, exclude)
  const top = splitTopLevel(q)
  if (top.hasOr || !top.balanced) return addTerm(q, wanted)
  const forms = new Set([patternTerm(template), patternTerm(template, true), `NOT ${patternTerm(template)}`])
  const at = top.tokens.findIndex((t) => t.kind === 'term' && forms.has(t.text))
  if (at < 0) return addTerm(q, wanted)
  let from = top.tokens[at].start
  let to = top.tokens[at].end
  if (top.tokens[at - 1]?.kind === 'and') from = top.tokens[at - 1].start
  else if (top.tokens[at + 1]?.kind === 'and') to = top.tokens[at + 1].end
  const without = `${q.slice(0, from).trimEnd()} ${q.slice(to).trimStart()}`.trim()
  const wasExcluded = top.tokens[at].text !== patternTerm(template)
  return wasExcluded === exclude ? without : addTerm(without, wanted)
}

/** A pattern's levels as shares of its count, in level order, empty levels left out. */
export function levelMix(item: Pick<PatternItem, 'levels' | 'count'>): { level: Level; count: number; percent: number }[] {
  const total = LEVELS.reduce((sum, l) => sum + (item.levels[l] ?? 0), 0) || item.count || 1
  return LEVELS.filter((l) => (item.levels[l] ?? 0) > 0).map((l) => ({
    level: l,
    count: item.levels[l] ?? 0,
    percent: ((item.levels[l] ?? 0) * 100) / total,
  }))
}

/** The pattern text cut into literal pieces and `<_>` placeholders, to style them apart. */
export function patternPieces(pattern: string): { text: string; placeholder: boolean }[] {
  const out: { text: string; placeholder: boolean }[] = []
  pattern.split('<_>').forEach((piece, index) => {
    if (index > 0) out.push({ text: '<_>', placeholder: true })
    if (piece) out.push({ text: piece, placeholder: false })
  })
  return out
}

/**
 * SVG polyline points for a sparkline of `samples` over [fromMs, toMs) in
 * steps of `stepMs`, `width` x `height`: every step, the empty ones at zero,
 * the tallest step touching the top.
 */
export function sparklinePoints(samples: [number, number][], fromMs: number, toMs: number, stepMs: number, width: number, height: number): string {
  if (!(stepMs > 0) || !(toMs > fromMs)) return ''
  const steps = Math.max(1, Math.ceil((toMs - fromMs) / stepMs))
  const counts = new Array<number>(steps).fill(0)
  for (const [time, count] of samples) {
    const at = Math.floor((time - fromMs) / stepMs)
    if (at >= 0 && at < steps) counts[at] += count
  }
  const peak = Math.max(1, ...counts)
  const x = (i: number) => (steps === 1 ? width / 2 : (i * width) / (steps - 1))
  const y = (c: number) => height - (c * height) / peak
  return counts.map((c, i) => `${round(x(i))},${round(y(c))}`).join(' ')
}

function round(n: number): number {
  return Math.round(n * 10) / 10
}
