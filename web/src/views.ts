// Saved views (`/api/views`): a name over the Explorer's state (query, range,
// columns, split, order, wrapping), opened by a short link `/v/<id>`.
// The mapping between a view and the Explorer's filters is pure and
// unit-tested in tests/views.test.ts; the client takes the app's API client.

import type { ApiClient, Me } from './api'
import {
  DEFAULT_SPLIT,
  LEVELS,
  MAX_COLUMNS,
  PRESET_KEYS,
  defaultFilters,
  toIso,
  type Filters,
  type Order,
  type RangePreset,
} from './filters'
import { addTerm, formatValue, quote } from './querylang'

/** A relative range (`{"last": "24h"}`) or an absolute one (RFC 3339, from < to). */
export type ViewRange = { last: string } | { from: string; to: string }

/** What POST and PUT take. */
export interface ViewBody {
  name: string
  query: string
  range: ViewRange
  columns: string[]
  split_by: string | null
  order: Order
  wrap: boolean
}

/** A view as the server answers it. */
export interface SavedView extends ViewBody {
  id: string
  owner: string
  tenant: string
  created: string
  updated: string
}

export const MAX_VIEW_NAME = 100

/** The dashboard's short link of a view. */
export function viewPath(id: string): string {
  return `/v/${encodeURIComponent(id)}`
}

export function viewLink(origin: string, id: string): string {
  return `${origin}${viewPath(id)}`
}

// ---------------------------------------------------------------- Explorer -> view

/** A regular expression matching `text` literally. */
function regexLiteral(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * The Explorer's whole search as one query: a view keeps only `query`, so
 * the level chips, the service box (a substring, any case) and the seed's
 * `q` (a substring of the message) are written into it, meaning the same.
 */
export function searchAsQuery(f: Filters): string {
  let query = f.query.trim()
  if (f.levels.length === 1) query = addTerm(query, `level:${f.levels[0]}`)
  else if (f.levels.length > 1 && f.levels.length < LEVELS.length) query = addTerm(query, `level:(${f.levels.join(' OR ')})`)
  const service = f.service.trim()
  if (service) {
    const bare = formatValue(service) === service && !service.includes('*')
    query = addTerm(query, bare ? `service:*${service}*` : `service:~${quote(`(?i)${regexLiteral(service)}`)}`)
  }
  if (f.q.trim()) query = addTerm(query, quote(f.q.trim()))
  return query
}

/** The Explorer's range as a view keeps it: a preset stays relative; a custom range is absolute (an open end: the epoch, or now). */
export function viewRange(f: Filters, now: number = Date.now()): ViewRange {
  if (f.range !== 'custom') return { last: f.range }
  const to = f.to ?? now
  const from = f.from ?? 0
  return { from: toIso(Math.min(from, to - 1)), to: toIso(to) }
}

/** The body that saves what the Explorer shows under `name`. */
export function viewFromFilters(name: string, f: Filters, now: number = Date.now()): ViewBody {
  return {
    name: name.trim(),
    query: searchAsQuery(f),
    range: viewRange(f, now),
    columns: f.columns.slice(0, MAX_COLUMNS),
    split_by: f.split || DEFAULT_SPLIT,
    order: f.order,
    wrap: f.wrap,
  }
}

// ---------------------------------------------------------------- view -> Explorer

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** `15m`, `24h`, `7d` in milliseconds; null when it is not a duration. */
export function durationMs(text: string): number | null {
  const m = /^(\d+)\s*([smhdw])$/.exec(text.trim())
  if (!m) return null
  const ms = Number(m[1]) * UNIT_MS[m[2]]
  return ms > 0 && Number.isFinite(ms) ? ms : null
}

function isPreset(s: string): s is RangePreset {
  return (PRESET_KEYS as string[]).includes(s)
}

/**
 * The Explorer's filters showing a view. A `last` the Explorer has as a
 * preset stays relative; another duration (a view made with the API, say
 * `last: 2h`) becomes the absolute range ending now.
 */
export function filtersFromView(v: ViewBody, now: number = Date.now()): Filters {
  const f = defaultFilters()
  f.query = v.query
  f.order = v.order === 'asc' ? 'asc' : 'desc'
  f.columns = (v.columns ?? []).slice(0, MAX_COLUMNS)
  f.split = v.split_by || DEFAULT_SPLIT
  f.wrap = v.wrap === true
  const range = v.range as Partial<{ last: string; from: string; to: string }>
  if (typeof range.last === 'string') {
    const last = range.last.trim()
    if (isPreset(last)) f.range = last
    else {
      const ms = durationMs(last)
      if (ms !== null) Object.assign(f, { range: 'custom', from: now - ms, to: now })
    }
  } else if (typeof range.from === 'string' && typeof range.to === 'string') {
    const from = Date.parse(range.from)
    const to = Date.parse(range.to)
    if (!Number.isNaN(from) && !Number.isNaN(to)) Object.assign(f, { range: 'custom', from, to })
  }
  return f
}

/** How a view's range reads in the list: `last 24h` or the two instants. */
export function rangeText(range: ViewRange): string {
  if ('last' in range) return `last ${range.last}`
  return `${range.from.replace('T', ' ').replace(/(:\d{2})(\.\d+)?Z$/, '$1Z')} → ${range.to.replace('T', ' ').replace(/(:\d{2})(\.\d+)?Z$/, '$1Z')}`
}

/**
 * Whether this caller may change or delete the view: its owner, or whoever
 * may change every view (`views.manage` in `/auth/me`: an editor or admin).
 * Before `/auth/me` answers: yes (the server decides, 403 otherwise).
 */
export function mayChange(view: Pick<SavedView, 'owner'>, me: Me | null): boolean {
  if (!me) return true
  if (!me.signedIn) return false
  if (me.permissions['views.manage'] === true) return true
  if (me.permissions['views.manage'] === undefined && (me.role === 'editor' || me.role === 'admin')) return true
  return me.name !== null && me.name === view.owner
}

/** Views sorted as the server lists them: by name (any case), then id. */
export function sortViews(views: SavedView[]): SavedView[] {
  return [...views].sort((a, b) => {
    const an = a.name.toLowerCase()
    const bn = b.name.toLowerCase()
    return an < bn ? -1 : an > bn ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
  })
}

// ---------------------------------------------------------------- client

function normalizeView(raw: Partial<SavedView>): SavedView {
  const range = raw.range && typeof raw.range === 'object' ? raw.range : { last: '24h' }
  return {
    id: String(raw.id ?? ''),
    name: String(raw.name ?? ''),
    query: String(raw.query ?? ''),
    range,
    columns: Array.isArray(raw.columns) ? raw.columns.map(String) : [],
    split_by: typeof raw.split_by === 'string' ? raw.split_by : null,
    order: raw.order === 'asc' ? 'asc' : 'desc',
    wrap: raw.wrap === true,
    owner: String(raw.owner ?? ''),
    tenant: String(raw.tenant ?? ''),
    created: String(raw.created ?? ''),
    updated: String(raw.updated ?? ''),
  }
}

export function viewsApi(api: ApiClient) {
  const path = (id: string) => `/api/views/${encodeURIComponent(id)}`
  return {
    async list(signal?: AbortSignal): Promise<SavedView[]> {
      const raw = await api.request<{ views?: Partial<SavedView>[] }>('/api/views', { signal })
      return sortViews((Array.isArray(raw.views) ? raw.views : []).map(normalizeView))
    },
    async get(id: string, signal?: AbortSignal): Promise<SavedView> {
      return normalizeView(await api.request<Partial<SavedView>>(path(id), { signal }))
    },
    async create(body: ViewBody): Promise<SavedView> {
      return normalizeView(await api.request<Partial<SavedView>>('/api/views', { method: 'POST', body }))
    },
    async replace(id: string, body: ViewBody): Promise<SavedView> {
      return normalizeView(await api.request<Partial<SavedView>>(path(id), { method: 'PUT', body }))
    },
    async remove(id: string): Promise<void> {
      // 204: no body, which the JSON client would call a parse error.
      await api.request<unknown>(path(id), { method: 'DELETE' }).catch((e: unknown) => {
        const err = e as { kind?: string; status?: number }
        if (err.kind === 'parse' && err.status === 204) return
        throw e
      })
    },
  }
}

/** The Alerts page's address with a new rule's form prefilled from a view. */
export function alertFromView(view: Pick<ViewBody, 'name' | 'query'>): { path: string; query: Record<string, string> } {
  return { path: '/alerts', query: { new: '1', name: view.name, query: view.query } }
}
