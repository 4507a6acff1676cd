// The context page's state <-> its URL (pure): /context/<id>?before=20&after=20&scope=all&query=…

import type { Params, RawQuery } from './filters'

export const CONTEXT_DEFAULT = 20
/** The API's bound for `before` and `after`. */
export const CONTEXT_MAX = 500
/** How many more rows "Earlier" and "Later" ask for. */
export const CONTEXT_STEP = 20

export interface ContextState {
  before: number
  after: number
  /** `service`: the log's own service (the API's default); `all`: every service. */
  scope: 'service' | 'all'
  /** Query-language text narrowing both sides. */
  query: string
}

function first(v: RawQuery[string]): string | undefined {
  if (Array.isArray(v)) return v.find((x): x is string => typeof x === 'string')
  return v ?? undefined
}

/** A count in 0..CONTEXT_MAX; anything else is the default. */
function count(v: string | undefined): number {
  if (v === undefined || !/^\d{1,4}$/.test(v.trim())) return CONTEXT_DEFAULT
  return Math.min(CONTEXT_MAX, Number(v))
}

export function contextFromQuery(q: RawQuery): ContextState {
  return {
    before: count(first(q.before)),
    after: count(first(q.after)),
    scope: first(q.scope) === 'all' ? 'all' : 'service',
    query: (first(q.query) ?? '').trim(),
  }
}

/** Defaults omitted so links stay short. */
export function contextToQuery(s: ContextState): Record<string, string> {
  const out: Record<string, string> = {}
  if (s.before !== CONTEXT_DEFAULT) out.before = String(s.before)
  if (s.after !== CONTEXT_DEFAULT) out.after = String(s.after)
  if (s.scope === 'all') out.scope = 'all'
  if (s.query) out.query = s.query
  return out
}

export function contextParams(s: ContextState): Params {
  return { before: s.before, after: s.after, scope: s.scope === 'all' ? 'all' : undefined, query: s.query || undefined }
}

/** One step more on a side, within the API's bound. */
export function widen(s: ContextState, side: 'before' | 'after'): ContextState {
  return { ...s, [side]: Math.min(CONTEXT_MAX, s[side] + CONTEXT_STEP) }
}
