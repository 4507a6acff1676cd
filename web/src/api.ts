// Typed client for the OgLogStream HTTP API, plus API-key handling.
// Framework-free: fetch and storage are injectable so tests can mock them.

import type { Level, Params } from './filters'
import { LEVELS } from './filters'
import { normalizePatterns, type PatternsAnswer } from './patterns'

export interface LogEntry {
  id: string
  timestamp: string
  level: Level
  message: string
  service: string
  attributes: Record<string, string>
  /** The OpenTelemetry trace and span the log was written in, when the shipper sent them. */
  trace_id: string | null
  span_id: string | null
}

export type LevelCounts = Record<Level, number>

export interface Stats {
  total_logs: number
  logs_by_level: LevelCounts
  logs_by_service: Record<string, number>
}

export interface HistogramBucket extends LevelCounts {
  start: string
  start_ms: number
  total: number
}

export interface Histogram {
  from: string
  to: string
  interval: string
  interval_ms: number
  buckets: HistogramBucket[]
}

/** `/api/histogram?by=`: each bucket's counts of the top values, the rest and the logs without the field. */
export interface SplitHistogram {
  from: string
  to: string
  interval: string
  interval_ms: number
  by: string
  /** The values counted apart, most logs first. */
  values: string[]
  buckets: SplitBucket[]
}

export interface SplitBucket {
  start: string
  start_ms: number
  total: number
  counts: Record<string, number>
  other: number
  missing: number
}

/** `GET /api/ui`: the dashboard's settings from the server's `[ui]` section. */
export interface UiSettings {
  /** A tracing UI's address with `{trace_id}` in it (`ui.trace_url`), or null. */
  trace_url: string | null
}

export interface ServiceCount {
  service: string
  count: number
}

export interface NewLog {
  level: Level
  message: string
  service?: string
  attributes?: Record<string, string>
}

export interface PostLogResult {
  status: string
  id: string
  timestamp: string
}

/** One page of /api/logs and the token for the next (the `X-Next-Cursor` header), if any. */
export interface LogPage {
  rows: LogEntry[]
  nextCursor: string | null
}

export interface FacetValue {
  value: string
  count: number
}

export interface Facet {
  /** As the API names it: `level`, `service`, an attribute key, `@level` for the attribute `level`. */
  field: string
  values: FacetValue[]
  /** Matching logs having this field with a value not listed. */
  other: number
  distinct: number
}

/** A field left out of the default facets because nearly every log has a value of its own (request ids). */
export interface IdLikeField {
  field: string
  distinct: number
}

export interface Facets {
  total: number
  /** Counts come from a sample and are scaled. */
  approximate: boolean
  facets: Facet[]
  /** Id-like fields, listed by name only (asked for by name, each is answered as a facet). */
  id_like: IdLikeField[]
}

export interface FieldCount {
  field: string
  count: number
}

export interface LogContext {
  log: LogEntry
  /** Oldest first. */
  before: LogEntry[]
  /** Oldest first. */
  after: LogEntry[]
}

export type ExportFormat = 'ndjson' | 'csv'

export type Role = 'viewer' | 'editor' | 'admin'

/** `GET /auth/me`: who the dashboard acts as, and what it may do. */
export interface Me {
  signedIn: boolean
  /** Sign-in with the organisation's provider is configured. */
  signInAvailable: boolean
  name: string | null
  role: Role | null
  /** `session` (signed in), `key` (an API key) or `anonymous` (open access). */
  credential: 'session' | 'key' | 'anonymous' | null
  tenants: string[] | null
  /** Whose logs the dashboard reads (tenancy on), or `enabled: false`. */
  tenancy: Tenancy
  /** Sent as X-CSRF-Token with every change made with the session cookie. */
  csrfToken: string | null
  /** `logs.read`, `alerts.write`, `views.write`, `audit.read`, ... */
  permissions: Record<string, boolean>
}

export interface Tenancy {
  enabled: boolean
  defaultTenant: string | null
  /** The tenants this dashboard's reads act for; null when it names none it may read. */
  readsAs: string[] | null
  /** Why it reads none (no tenant named, or one it may not read). */
  error: string | null
}

/** One row of `GET /api/tenants` (admins): a tenant's stored logs. */
export interface TenantVolume {
  tenant: string
  logs: number
  logs_24h: number
}

function normalizeTenancy(raw: unknown): Tenancy {
  const t = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {}
  return {
    enabled: t.enabled === true,
    defaultTenant: typeof t.default_tenant === 'string' ? t.default_tenant : null,
    readsAs: Array.isArray(t.reads_as) ? t.reads_as.map(String) : null,
    error: typeof t.error === 'string' ? t.error : null,
  }
}

export function normalizeMe(raw: Record<string, unknown>): Me {
  const role = raw.role === 'viewer' || raw.role === 'editor' || raw.role === 'admin' ? raw.role : null
  const credential =
    raw.credential === 'session' || raw.credential === 'key' || raw.credential === 'anonymous' ? raw.credential : null
  const permissions: Record<string, boolean> = {}
  if (raw.permissions && typeof raw.permissions === 'object') {
    for (const [k, v] of Object.entries(raw.permissions as Record<string, unknown>)) permissions[k] = v === true
  }
  return {
    signedIn: raw.signed_in === true,
    signInAvailable: raw.sign_in === true,
    name: typeof raw.name === 'string' ? raw.name : null,
    role,
    credential,
    tenants: Array.isArray(raw.tenants) ? raw.tenants.map(String) : null,
    tenancy: normalizeTenancy(raw.tenancy),
    csrfToken: typeof raw.csrf_token === 'string' ? raw.csrf_token : null,
    permissions,
  }
}

/** `/auth/login?return_to=…` for the page the browser is on (a path of ours only). */
export function signInUrl(path: string): string {
  const back = path.startsWith('/') && !path.startsWith('//') && !path.startsWith('/auth/') ? path : '/'
  return `/auth/login?return_to=${encodeURIComponent(back)}`
}

export type ApiErrorKind = 'http' | 'network' | 'parse' | 'unauthorized'

export class ApiError extends Error {
  readonly status: number
  readonly kind: ApiErrorKind
  readonly field?: string
  /** 1-based character column of the fault in a `query` (400 answers). */
  readonly position?: number
  readonly path: string

  constructor(opts: {
    message: string
    status: number
    kind: ApiErrorKind
    path: string
    field?: string
    position?: number
  }) {
    super(opts.message)
    this.name = 'ApiError'
    this.status = opts.status
    this.kind = opts.kind
    this.path = opts.path
    this.field = opts.field
    this.position = opts.position
  }
}

/** A query the server refused to parse: its message and the column of the fault. */
export interface QueryFault {
  message: string
  position: number | null
}

/** The query error in `e`, if `e` is the server refusing the `query` parameter. */
export function queryFault(e: unknown): QueryFault | null {
  if (!(e instanceof ApiError) || e.status !== 400 || e.field !== 'query') return null
  // Shown under the query bar, with the column marked: the server's prefix and suffix would repeat both.
  const message = e.message.replace(/^query parameter query: /, '').replace(/ \(at column \d+\)$/, '')
  return { message: message || e.message, position: e.position ?? null }
}

export function isAbortError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { name?: string }).name === 'AbortError'
}

/** Human description of an error, suitable for an error banner. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.kind === 'network') return `Could not reach the server (${e.message}).`
    if (e.kind === 'unauthorized' && e.field === 'X-Scope-OrgID')
      return 'Choose a tenant at the top: this key may read any tenant, and the server needs to know which.'
    if (e.kind === 'unauthorized')
      return 'The server answered 401: sign in, or enter an API key with the “API key” button at the top.'
    const where = e.field ? ` (field “${e.field}”)` : ''
    return e.status ? `Server answered ${e.status}: ${e.message}${where}` : e.message
  }
  if (e instanceof Error) return e.message
  return String(e)
}

// ---------------------------------------------------------------- API key

export const API_KEY_STORAGE_KEY = 'oglogstream.apiKey'

export interface KeyStore {
  get(): string | null
  set(key: string | null): void
}

/** Key store backed by localStorage; falls back to memory when unavailable. */
export function localStorageKeyStore(storage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>): KeyStore {
  let memory: string | null = null
  const s =
    storage ??
    (() => {
      try {
        return globalThis.localStorage
      } catch {
        return undefined
      }
    })()
  return {
    get() {
      try {
        return s ? s.getItem(API_KEY_STORAGE_KEY) : memory
      } catch {
        return memory
      }
    },
    set(key) {
      memory = key
      try {
        if (!s) return
        if (key) s.setItem(API_KEY_STORAGE_KEY, key)
        else s.removeItem(API_KEY_STORAGE_KEY)
      } catch {
        /* private mode etc.: memory only */
      }
    },
  }
}

// ---------------------------------------------------------------- helpers

/** `{a: 1, b: undefined, c: ''}` -> `?a=1` (empty and undefined values dropped). */
export function buildQuery(params?: Params): string {
  if (!params) return ''
  const sp = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === '') continue
    sp.set(k, String(v))
  }
  const s = sp.toString()
  return s ? `?${s}` : ''
}

/** WebSocket URL for a path on the page's origin (http->ws, https->wss). */
export function wsUrl(
  origin: string,
  path: string,
  params?: Params,
  apiKey?: string | null,
  tenant?: string | null,
): string {
  const u = new URL(path, origin)
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:'
  const all: Params = { ...(params ?? {}) }
  if (apiKey) all.api_key = apiKey
  // Browsers cannot set X-Scope-OrgID on a WebSocket: the server reads `tenant`.
  if (tenant) all.tenant = tenant
  u.search = buildQuery(all)
  return u.toString()
}

function zeroCounts(): LevelCounts {
  return { debug: 0, info: 0, warn: 0, error: 0, fatal: 0 }
}

function normalizeLog(raw: Partial<LogEntry>): LogEntry {
  return {
    id: String(raw.id ?? ''),
    timestamp: String(raw.timestamp ?? ''),
    level: (raw.level ?? 'info') as Level,
    message: raw.message == null ? '' : String(raw.message),
    service: raw.service == null ? '' : String(raw.service),
    attributes: raw.attributes && typeof raw.attributes === 'object' ? raw.attributes : {},
    trace_id: typeof raw.trace_id === 'string' && raw.trace_id ? raw.trace_id : null,
    span_id: typeof raw.span_id === 'string' && raw.span_id ? raw.span_id : null,
  }
}

export function normalizeStats(raw: Partial<Stats>): Stats {
  const byLevel = zeroCounts()
  for (const l of LEVELS) byLevel[l] = Number(raw.logs_by_level?.[l] ?? 0)
  return {
    total_logs: Number(raw.total_logs ?? 0),
    logs_by_level: byLevel,
    logs_by_service: raw.logs_by_service ?? {},
  }
}

function normalizeHistogram(raw: Partial<Histogram>): Histogram {
  const buckets = (raw.buckets ?? []).map((b) => {
    const out: HistogramBucket = {
      ...zeroCounts(),
      start: String(b.start ?? ''),
      start_ms: typeof b.start_ms === 'number' ? b.start_ms : Date.parse(String(b.start)),
      total: 0,
    }
    for (const l of LEVELS) out[l] = Number(b[l] ?? 0)
    out.total = typeof b.total === 'number' ? b.total : LEVELS.reduce((s, l) => s + out[l], 0)
    return out
  })
  return {
    from: String(raw.from ?? ''),
    to: String(raw.to ?? ''),
    interval: String(raw.interval ?? ''),
    interval_ms: Number(raw.interval_ms ?? 0),
    buckets,
  }
}

function normalizeSplitHistogram(raw: Partial<SplitHistogram>): SplitHistogram {
  const count = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0)
  return {
    from: String(raw.from ?? ''),
    to: String(raw.to ?? ''),
    interval: String(raw.interval ?? ''),
    interval_ms: Number(raw.interval_ms ?? 0),
    by: String(raw.by ?? ''),
    values: Array.isArray(raw.values) ? raw.values.map(String) : [],
    buckets: (Array.isArray(raw.buckets) ? raw.buckets : []).map((b) => {
      const counts: Record<string, number> = {}
      for (const [k, v] of Object.entries(b.counts ?? {})) counts[k] = count(v)
      return {
        start: String(b.start ?? ''),
        start_ms: typeof b.start_ms === 'number' ? b.start_ms : Date.parse(String(b.start)),
        total: count(b.total),
        counts,
        other: count(b.other),
        missing: count(b.missing),
      }
    }),
  }
}

// ---------------------------------------------------------------- client

export interface ApiClientOptions {
  fetch?: typeof fetch
  keyStore?: KeyStore
  /** Prefix for every path; '' = same origin. */
  baseUrl?: string
  /** Called whenever the server answers 401 (sign in, or show the API-key prompt). */
  onUnauthorized?: (err: ApiError) => void
  /** The session's CSRF token, sent as X-CSRF-Token on every change (signed-in sessions). */
  csrfToken?: () => string | null
  /** The tenant(s) chosen in the dashboard (`team-a` or `team-a|team-b`), sent as X-Scope-OrgID. */
  tenant?: () => string | null
}

export interface RequestOptions {
  params?: Params
  method?: string
  body?: unknown
  signal?: AbortSignal
}

export type ApiClient = ReturnType<typeof createApiClient>

export function createApiClient(opts: ApiClientOptions = {}) {
  const keyStore = opts.keyStore ?? localStorageKeyStore()
  const baseUrl = opts.baseUrl ?? ''
  const doFetch: typeof fetch = opts.fetch ?? ((...args) => globalThis.fetch(...args))

  function authHeaders(accept: string): Record<string, string> {
    const headers: Record<string, string> = { Accept: accept }
    const key = keyStore.get()
    if (key) headers.Authorization = `Bearer ${key}`
    const tenant = opts.tenant?.()
    if (tenant) headers['X-Scope-OrgID'] = tenant
    return headers
  }

  async function send(path: string, ro: RequestOptions, accept: string): Promise<Response> {
    const url = `${baseUrl}${path}${buildQuery(ro.params)}`
    const headers = authHeaders(accept)
    const method = ro.method ?? 'GET'
    const csrf = opts.csrfToken?.()
    if (csrf && method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf
    let body: string | undefined
    if (ro.body !== undefined) {
      headers['Content-Type'] = 'application/json'
      body = JSON.stringify(ro.body)
    }

    let res: Response
    try {
      res = await doFetch(url, { method, headers, body, signal: ro.signal, credentials: 'same-origin' })
    } catch (e) {
      if (isAbortError(e)) throw e
      throw new ApiError({
        message: e instanceof Error ? e.message : String(e),
        status: 0,
        kind: 'network',
        path,
      })
    }
    if (!res.ok) throw await errorFrom(res, path)
    return res
  }

  /** The ApiError for a non-2xx answer, from its JSON body `{"error", "field", "position"}` when it has one. */
  async function errorFrom(res: Response, path: string): Promise<ApiError> {
    const text = await res.text().catch(() => '')
    let json: unknown = undefined
    try {
      json = text ? JSON.parse(text) : undefined
    } catch {
      json = undefined
    }
    const obj = (json && typeof json === 'object' ? json : {}) as {
      error?: unknown
      field?: unknown
      message?: unknown
      position?: unknown
    }
    const msg =
      (typeof obj.error === 'string' && obj.error) ||
      (typeof obj.message === 'string' && obj.message) ||
      (text && text.length < 300 ? text.trim() : '') ||
      res.statusText ||
      'request failed'
    const err = new ApiError({
      message: msg,
      status: res.status,
      kind: res.status === 401 ? 'unauthorized' : 'http',
      path,
      field: typeof obj.field === 'string' ? obj.field : undefined,
      position: typeof obj.position === 'number' && obj.position >= 1 ? obj.position : undefined,
    })
    if (res.status === 401) opts.onUnauthorized?.(err)
    return err
  }

  async function requestWithHeaders<T>(path: string, ro: RequestOptions = {}): Promise<{ json: T; headers: Headers }> {
    const res = await send(path, ro, 'application/json')
    const text = await res.text().catch(() => '')
    let json: unknown = undefined
    if (text) {
      try {
        json = JSON.parse(text)
      } catch {
        json = undefined
      }
    }

    if (json === undefined) {
      throw new ApiError({
        message: text ? 'The server sent a response that is not JSON' : 'The server sent an empty response',
        status: res.status,
        kind: 'parse',
        path,
      })
    }
    return { json: json as T, headers: res.headers }
  }

  async function request<T>(path: string, ro: RequestOptions = {}): Promise<T> {
    return (await requestWithHeaders<T>(path, ro)).json
  }

  function logRows(raw: unknown, path: string): LogEntry[] {
    if (!Array.isArray(raw)) {
      throw new ApiError({ message: 'Expected a JSON array of logs', status: 200, kind: 'parse', path })
    }
    return raw.map((r) => normalizeLog(r as Partial<LogEntry>))
  }

  return {
    request,
    keyStore,

    async logs(params: Params, signal?: AbortSignal): Promise<LogEntry[]> {
      return logRows(await request<unknown>('/api/logs', { params, signal }), '/api/logs')
    },

    /** One page of /api/logs with the cursor for the next one. */
    async logsPage(params: Params, signal?: AbortSignal): Promise<LogPage> {
      const { json, headers } = await requestWithHeaders<unknown>('/api/logs', { params, signal })
      return { rows: logRows(json, '/api/logs'), nextCursor: headers.get('X-Next-Cursor') || null }
    },

    async facets(params: Params, signal?: AbortSignal): Promise<Facets> {
      return normalizeFacets(await request<Partial<Facets>>('/api/facets', { params, signal }))
    },

    async fields(params: Params, signal?: AbortSignal): Promise<FieldCount[]> {
      const raw = await request<unknown>('/api/fields', { params, signal })
      if (!Array.isArray(raw)) return []
      return raw.map((r) => ({ field: String((r as FieldCount).field ?? ''), count: Number((r as FieldCount).count ?? 0) }))
    },

    async context(id: string, params: Params, signal?: AbortSignal): Promise<LogContext> {
      const path = `/api/logs/${encodeURIComponent(id)}/context`
      const raw = await request<Partial<Record<keyof LogContext, unknown>>>(path, { params, signal })
      if (!raw.log || typeof raw.log !== 'object') {
        throw new ApiError({ message: 'Expected {"log", "before", "after"}', status: 200, kind: 'parse', path })
      }
      return {
        log: normalizeLog(raw.log as Partial<LogEntry>),
        before: Array.isArray(raw.before) ? logRows(raw.before, path) : [],
        after: Array.isArray(raw.after) ? logRows(raw.after, path) : [],
      }
    },

    /** Same-origin URL of /api/export for these params (a plain link downloads it without an API key). */
    exportUrl(format: ExportFormat, params: Params): string {
      return `${baseUrl}/api/export${buildQuery({ ...params, format })}`
    },

    /**
     * /api/export fetched with the API key (a link cannot send the
     * Authorization header): the whole file as a Blob, with its file name.
     */
    async exportBlob(format: ExportFormat, params: Params, signal?: AbortSignal): Promise<{ blob: Blob; filename: string }> {
      const accept = format === 'csv' ? 'text/csv' : 'application/x-ndjson'
      const res = await send('/api/export', { params: { ...params, format }, signal }, accept)
      const filename = filenameFrom(res.headers.get('Content-Disposition')) ?? `oglogstream-export.${format}`
      return { blob: await res.blob(), filename }
    },

    async stats(params: Params, signal?: AbortSignal): Promise<Stats> {
      return normalizeStats(await request<Partial<Stats>>('/api/stats', { params, signal }))
    },

    async histogram(params: Params, signal?: AbortSignal): Promise<Histogram> {
      return normalizeHistogram(await request<Partial<Histogram>>('/api/histogram', { params, signal }))
    },

    /** /api/histogram?by=<field>: the buckets split by a field's top values. */
    async splitHistogram(params: Params, signal?: AbortSignal): Promise<SplitHistogram> {
      return normalizeSplitHistogram(await request<Partial<SplitHistogram>>('/api/histogram', { params, signal }))
    },

    /** The dashboard's settings (`[ui]`); a server without `/api/ui` has none. */
    async ui(signal?: AbortSignal): Promise<UiSettings> {
      try {
        const raw = await request<Partial<UiSettings>>('/api/ui', { signal })
        return { trace_url: typeof raw.trace_url === 'string' && raw.trace_url ? raw.trace_url : null }
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return { trace_url: null }
        throw e
      }
    },

    /** /api/patterns: the matching logs' messages grouped into templates. */
    async patterns(params: Params, signal?: AbortSignal): Promise<PatternsAnswer> {
      return normalizePatterns(await request<Partial<PatternsAnswer>>('/api/patterns', { params, signal }))
    },

    async services(params: Params, signal?: AbortSignal): Promise<ServiceCount[]> {
      const raw = await request<unknown>('/api/services', { params, signal })
      if (!Array.isArray(raw)) return []
      return raw
        .map((r) => ({ service: String((r as ServiceCount).service ?? ''), count: Number((r as ServiceCount).count ?? 0) }))
        .sort((a, b) => b.count - a.count || a.service.localeCompare(b.service))
    },

    postLog(log: NewLog, signal?: AbortSignal): Promise<PostLogResult> {
      return request<PostLogResult>('/log', { method: 'POST', body: log, signal })
    },

    health(signal?: AbortSignal): Promise<{ status: string }> {
      return request<{ status: string }>('/health', { signal })
    },

    /** Admins: every tenant holding logs, with its volume (in all and over the last 24 h). */
    async tenants(signal?: AbortSignal): Promise<TenantVolume[]> {
      const out = await request<{ tenants?: unknown }>('/api/tenants', { signal })
      return (Array.isArray(out.tenants) ? out.tenants : []).map((t: Record<string, unknown>) => ({
        tenant: String(t.tenant ?? ''),
        logs: Number(t.logs ?? 0),
        logs_24h: Number(t.logs_24h ?? 0),
      }))
    },

    /** Who the dashboard acts as (a session, a key, or open access). */
    async me(signal?: AbortSignal): Promise<Me> {
      return normalizeMe(await request<Record<string, unknown>>('/auth/me', { signal }))
    },

    /** Ends the session here; where to send the browser next (the provider's sign-out, or `/`). */
    async logout(): Promise<string> {
      const out = await request<{ redirect?: unknown }>('/auth/logout', { method: 'POST' })
      return typeof out.redirect === 'string' && out.redirect ? out.redirect : '/'
    },
  }
}

function normalizeFacets(raw: Partial<Facets>): Facets {
  const facets = Array.isArray(raw.facets) ? raw.facets : []
  return {
    total: Number(raw.total ?? 0),
    approximate: raw.approximate === true,
    facets: facets.map((f) => ({
      field: String(f.field ?? ''),
      values: (Array.isArray(f.values) ? f.values : []).map((v) => ({ value: String(v.value ?? ''), count: Number(v.count ?? 0) })),
      other: Number(f.other ?? 0),
      distinct: Number(f.distinct ?? 0),
    })),
    id_like: (Array.isArray(raw.id_like) ? raw.id_like : [])
      .map((f) => ({ field: String(f?.field ?? ''), distinct: Number(f?.distinct ?? 0) }))
      .filter((f) => f.field !== ''),
  }
}

/** The file name of `Content-Disposition: attachment; filename="…"`. */
export function filenameFrom(disposition: string | null): string | null {
  if (!disposition) return null
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition)
  if (!m) return null
  try {
    return decodeURIComponent(m[1]).replace(/[\\/]/g, '_')
  } catch {
    return m[1]
  }
}

export { normalizeLog }
