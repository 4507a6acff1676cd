import { describe, expect, it, vi } from 'vitest'
import {
  API_KEY_STORAGE_KEY,
  ApiError,
  buildQuery,
  createApiClient,
  describeError,
  filenameFrom,
  localStorageKeyStore,
  normalizeMe,
  queryFault,
  signInUrl,
  wsUrl,
  type KeyStore,
} from '../src/api'

function memStore(initial: string | null = null): KeyStore {
  let k = initial
  return { get: () => k, set: (v) => (k = v) }
}

function respond(status: number, body: unknown, statusText = '') {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  return vi.fn(async () => new Response(text, { status, statusText }))
}

describe('buildQuery / wsUrl', () => {
  it('drops empty values and encodes', () => {
    expect(buildQuery({ a: 1, b: undefined, c: '', q: 'a b&c' })).toBe('?a=1&q=a+b%26c')
    expect(buildQuery({})).toBe('')
    expect(buildQuery()).toBe('')
  })
  it('builds ws/wss URLs with the api_key param', () => {
    expect(wsUrl('http://h:8080', '/ws/live', { level: 'error,warn' })).toBe('ws://h:8080/ws/live?level=error%2Cwarn')
    expect(wsUrl('https://h', '/ws/live', {}, 'k 1')).toBe('wss://h/ws/live?api_key=k+1')
  })
})

describe('api client', () => {
  it('GETs logs with query params and normalizes rows', async () => {
    const fetch = respond(200, [
      { id: 'a', timestamp: 't', level: 'info', message: 'm', service: 's' },
      { id: 'b', timestamp: 't', level: 'info', message: 'm', service: 's', trace_id: 'ab12', span_id: 'cd34' },
    ])
    const api = createApiClient({ fetch, keyStore: memStore() })
    const rows = await api.logs({ level: 'info', limit: 10 })
    expect(rows).toEqual([
      { id: 'a', timestamp: 't', level: 'info', message: 'm', service: 's', attributes: {}, trace_id: null, span_id: null },
      { id: 'b', timestamp: 't', level: 'info', message: 'm', service: 's', attributes: {}, trace_id: 'ab12', span_id: 'cd34' },
    ])
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/api/logs?level=info&limit=10')
    expect(init.method).toBe('GET')
    expect((init.headers as Record<string, string>).Authorization).toBeUndefined()
  })

  it('sends the stored key as a Bearer token', async () => {
    const fetch = respond(200, [])
    const api = createApiClient({ fetch, keyStore: memStore('s3cret') })
    await api.logs({})
    const init = (fetch.mock.calls[0] as unknown as [string, RequestInit])[1]
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer s3cret')
  })

  it('POSTs JSON', async () => {
    const fetch = respond(202, { status: 'accepted', id: 'x', timestamp: 't' })
    const api = createApiClient({ fetch, keyStore: memStore() })
    const r = await api.postLog({ level: 'info', message: 'hi', service: 'web' })
    expect(r.id).toBe('x')
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/log')
    expect(init.method).toBe('POST')
    expect((init.headers as Record<string, string>)['Content-Type']).toBe('application/json')
    expect(JSON.parse(init.body as string)).toEqual({ level: 'info', message: 'hi', service: 'web' })
  })

  it('turns JSON error bodies into ApiError with status and field', async () => {
    const api = createApiClient({ fetch: respond(400, { error: 'bad level', field: 'level' }), keyStore: memStore() })
    const err = await api.logs({ level: 'x' }).catch((e) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err).toMatchObject({ status: 400, kind: 'http', message: 'bad level', field: 'level', path: '/api/logs' })
    expect(describeError(err)).toBe('Server answered 400: bad level (field “level”)')
  })

  it('handles non-JSON error bodies', async () => {
    const api = createApiClient({ fetch: respond(502, 'Bad Gateway upstream', 'Bad Gateway'), keyStore: memStore() })
    await expect(api.stats({})).rejects.toMatchObject({ status: 502, message: 'Bad Gateway upstream' })
    const api2 = createApiClient({ fetch: respond(500, '', 'Internal Server Error'), keyStore: memStore() })
    await expect(api2.stats({})).rejects.toMatchObject({ status: 500, message: 'Internal Server Error' })
  })

  it('calls onUnauthorized on 401', async () => {
    const onUnauthorized = vi.fn()
    const api = createApiClient({ fetch: respond(401, { error: 'missing API key' }), keyStore: memStore(), onUnauthorized })
    const err = await api.services({}).catch((e) => e)
    expect(err).toMatchObject({ status: 401, kind: 'unauthorized' })
    expect(onUnauthorized).toHaveBeenCalledTimes(1)
    expect(describeError(err)).toMatch(/401.*API key/)
  })

  it('asks for a tenant, not a key, on a 401 naming X-Scope-OrgID', async () => {
    const body = { error: 'this request needs a tenant: send the header X-Scope-OrgID', field: 'X-Scope-OrgID' }
    const err = await createApiClient({ fetch: respond(401, body), keyStore: memStore() })
      .services({})
      .catch((e) => e)
    expect(err).toMatchObject({ status: 401, kind: 'unauthorized', field: 'X-Scope-OrgID' })
    expect(describeError(err)).toMatch(/Choose a tenant/)
  })

  it('reports network failures as status 0', async () => {
    const fetch = vi.fn(async () => {
      throw new TypeError('Failed to fetch')
    })
    const api = createApiClient({ fetch, keyStore: memStore() })
    const err = await api.health().catch((e) => e)
    expect(err).toMatchObject({ status: 0, kind: 'network' })
    expect(describeError(err)).toBe('Could not reach the server (Failed to fetch).')
  })

  it('passes aborts through untouched', async () => {
    const fetch = vi.fn(async () => {
      throw new DOMException('aborted', 'AbortError')
    })
    const api = createApiClient({ fetch, keyStore: memStore() })
    await expect(api.logs({})).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('rejects malformed success bodies', async () => {
    await expect(createApiClient({ fetch: respond(200, 'oops'), keyStore: memStore() }).stats({})).rejects.toMatchObject({
      kind: 'parse',
    })
    await expect(createApiClient({ fetch: respond(200, { a: 1 }), keyStore: memStore() }).logs({})).rejects.toMatchObject({
      kind: 'parse',
    })
  })

  it('fills missing levels in stats and histogram buckets', async () => {
    const api = createApiClient({
      fetch: respond(200, { total_logs: 2, logs_by_level: { error: 2 }, logs_by_service: { a: 2 } }),
      keyStore: memStore(),
    })
    expect(await api.stats({})).toEqual({
      total_logs: 2,
      logs_by_level: { debug: 0, info: 0, warn: 0, error: 2, fatal: 0 },
      logs_by_service: { a: 2 },
    })
    const h = await createApiClient({
      fetch: respond(200, {
        from: 'a',
        to: 'b',
        interval: '1m',
        interval_ms: 60000,
        buckets: [{ start: '2026-11-23T19:00:00Z', info: 3, error: 1 }],
      }),
      keyStore: memStore(),
    }).histogram({})
    expect(h.buckets[0]).toEqual({
      start: '2026-11-23T19:00:00Z',
      start_ms: Date.parse('2026-11-23T19:00:00Z'),
      debug: 0,
      info: 3,
      warn: 0,
      error: 1,
      fatal: 0,
      total: 4,
    })
  })

  it('sorts services by count', async () => {
    const api = createApiClient({
      fetch: respond(200, [
        { service: 'b', count: 1 },
        { service: 'a', count: 5 },
      ]),
      keyStore: memStore(),
    })
    expect((await api.services({})).map((s) => s.service)).toEqual(['a', 'b'])
  })
})

describe('query language endpoints', () => {
  it('reads a 400 on the query with its position as a QueryFault', async () => {
    const body = { error: 'unknown level "loud": use debug, info, warn, error or fatal', field: 'query', position: 7 }
    const api = createApiClient({ fetch: respond(400, body), keyStore: memStore() })
    const err = await api.logsPage({ query: 'level:loud' }).catch((e) => e)
    expect(err).toMatchObject({ status: 400, field: 'query', position: 7 })
    expect(queryFault(err)).toEqual({ message: body.error, position: 7 })
    // The server's own framing is dropped: the bar says where and what.
    const framed = new ApiError({
      message: 'query parameter query: expected ) (at column 9)',
      status: 400,
      kind: 'http',
      path: '/api/logs',
      field: 'query',
      position: 9,
    })
    expect(queryFault(framed)).toEqual({ message: 'expected )', position: 9 })
    // Other errors are not query faults; a position that is not a column is dropped.
    expect(queryFault(new ApiError({ message: 'x', status: 400, kind: 'http', path: '/', field: 'limit' }))).toBeNull()
    const odd = await createApiClient({ fetch: respond(400, { error: 'e', field: 'query', position: 'x' }), keyStore: memStore() })
      .logs({})
      .catch((e) => e)
    expect(queryFault(odd)).toEqual({ message: 'e', position: null })
    expect(queryFault(new Error('x'))).toBeNull()
  })

  it('returns the next cursor from X-Next-Cursor', async () => {
    const fetch = vi.fn(
      async () =>
        new Response(JSON.stringify([{ id: 'a', timestamp: 't', level: 'info', message: 'm', service: 's' }]), {
          status: 200,
          headers: { 'X-Next-Cursor': 'tok.en', Link: '</api/logs?cursor=tok.en>; rel="next"' },
        }),
    )
    const api = createApiClient({ fetch, keyStore: memStore() })
    const page = await api.logsPage({ query: 'a b', cursor: 'prev', limit: 1 })
    expect(page.nextCursor).toBe('tok.en')
    expect(page.rows.map((r) => r.id)).toEqual(['a'])
    expect((fetch.mock.calls[0] as unknown as [string])[0]).toBe('/api/logs?query=a+b&cursor=prev&limit=1')
    const last = await createApiClient({ fetch: respond(200, []), keyStore: memStore() }).logsPage({})
    expect(last).toEqual({ rows: [], nextCursor: null })
  })

  it('normalizes facets and fields', async () => {
    const api = createApiClient({
      fetch: respond(200, {
        total: 3,
        approximate: false,
        facets: [{ field: '@level', values: [{ value: 'x', count: 2 }, { value: 7 }], other: 1, distinct: 3 }, { field: 'f' }],
      }),
      keyStore: memStore(),
    })
    expect(await api.facets({ fields: '@level,f' })).toEqual({
      total: 3,
      approximate: false,
      facets: [
        { field: '@level', values: [{ value: 'x', count: 2 }, { value: '7', count: 0 }], other: 1, distinct: 3 },
        { field: 'f', values: [], other: 0, distinct: 0 },
      ],
      id_like: [],
    })
    const withIds = createApiClient({
      fetch: respond(200, { total: 30, facets: [], id_like: [{ field: 'request_id', distinct: 29 }, { distinct: 1 }] }),
      keyStore: memStore(),
    })
    expect((await withIds.facets({})).id_like).toEqual([{ field: 'request_id', distinct: 29 }])
    const fields = createApiClient({ fetch: respond(200, [{ field: 'region', count: 4 }]), keyStore: memStore() })
    expect(await fields.fields({})).toEqual([{ field: 'region', count: 4 }])
  })

  it('normalizes a split histogram', async () => {
    const api = createApiClient({
      fetch: respond(200, {
        from: 'f', to: 't', interval: '1h', interval_ms: 3_600_000, by: 'region', values: ['eu'],
        buckets: [{ start: '2026-12-07T00:00:00Z', start_ms: 5, total: 4, counts: { eu: 3 }, other: 0, missing: 1 }, { start: '2026-12-07T01:00:00Z' }],
      }),
      keyStore: memStore(),
    })
    const h = await api.splitHistogram({ by: 'region' })
    expect(h.values).toEqual(['eu'])
    expect(h.buckets).toEqual([
      { start: '2026-12-07T00:00:00Z', start_ms: 5, total: 4, counts: { eu: 3 }, other: 0, missing: 1 },
      { start: '2026-12-07T01:00:00Z', start_ms: Date.parse('2026-12-07T01:00:00Z'), total: 0, counts: {}, other: 0, missing: 0 },
    ])
  })

  it('reads the dashboard settings, none from a server without /api/ui', async () => {
    const set = createApiClient({ fetch: respond(200, { trace_url: 'https://t/{trace_id}' }), keyStore: memStore() })
    expect(await set.ui()).toEqual({ trace_url: 'https://t/{trace_id}' })
    const unset = createApiClient({ fetch: respond(200, { trace_url: null }), keyStore: memStore() })
    expect(await unset.ui()).toEqual({ trace_url: null })
    const old = createApiClient({ fetch: respond(404, { error: 'no route' }), keyStore: memStore() })
    expect(await old.ui()).toEqual({ trace_url: null })
    await expect(createApiClient({ fetch: respond(503, { error: 'x' }), keyStore: memStore() }).ui()).rejects.toThrow()
  })

  it('fetches a context and reports an unknown id as 404', async () => {
    const row = { id: 'x/y', timestamp: 't', level: 'info', message: 'm', service: 's' }
    const fetch = respond(200, { log: row, before: [row], after: [] })
    const api = createApiClient({ fetch, keyStore: memStore() })
    const c = await api.context('x/y', { before: 5, scope: 'all' })
    expect(c.before).toHaveLength(1)
    expect(c.log.id).toBe('x/y')
    expect((fetch.mock.calls[0] as unknown as [string])[0]).toBe('/api/logs/x%2Fy/context?before=5&scope=all')
    const missing = createApiClient({ fetch: respond(404, { error: 'no log with id', field: 'id' }), keyStore: memStore() })
    await expect(missing.context('nope', {})).rejects.toMatchObject({ status: 404, field: 'id' })
  })

  it('builds export links and downloads with the key', async () => {
    const plain = createApiClient({ fetch: respond(200, ''), keyStore: memStore() })
    expect(plain.exportUrl('csv', { query: 'service:"a b"', order: 'asc', limit: undefined })).toBe(
      '/api/export?query=service%3A%22a+b%22&order=asc&format=csv',
    )
    const fetch = vi.fn(
      async () =>
        new Response('{"id":"a"}\n', {
          status: 200,
          headers: { 'Content-Type': 'application/x-ndjson', 'Content-Disposition': 'attachment; filename="logs-1.ndjson"' },
        }),
    )
    const api = createApiClient({ fetch, keyStore: memStore('k') })
    const { blob, filename } = await api.exportBlob('ndjson', { query: 'x' })
    expect(filename).toBe('logs-1.ndjson')
    expect(await blob.text()).toBe('{"id":"a"}\n')
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/api/export?query=x&format=ndjson')
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer k')
  })

  it('reads file names from Content-Disposition', () => {
    expect(filenameFrom('attachment; filename="a b.csv"')).toBe('a b.csv')
    expect(filenameFrom("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.csv")).toBe('résumé.csv')
    expect(filenameFrom('attachment; filename="../../etc/x"')).toBe('.._.._etc_x')
    expect(filenameFrom('attachment')).toBeNull()
    expect(filenameFrom(null)).toBeNull()
  })
})

describe('localStorageKeyStore', () => {
  it('persists, removes, and survives a throwing storage', () => {
    const data = new Map<string, string>()
    const storage = {
      getItem: (k: string) => data.get(k) ?? null,
      setItem: (k: string, v: string) => void data.set(k, v),
      removeItem: (k: string) => void data.delete(k),
    }
    const s = localStorageKeyStore(storage)
    s.set('abc')
    expect(data.get(API_KEY_STORAGE_KEY)).toBe('abc')
    expect(s.get()).toBe('abc')
    s.set(null)
    expect(data.has(API_KEY_STORAGE_KEY)).toBe(false)

    const broken = {
      getItem: () => {
        throw new Error('denied')
      },
      setItem: () => {
        throw new Error('denied')
      },
      removeItem: () => {
        throw new Error('denied')
      },
    }
    const b = localStorageKeyStore(broken)
    b.set('mem')
    expect(b.get()).toBe('mem')
  })
})

describe('sign-in', () => {
  it('sends the session CSRF token with changes only', async () => {
    const fetch = respond(200, { id: 'r' })
    const api = createApiClient({ fetch, keyStore: memStore(), csrfToken: () => 'tok-1' })
    await api.request('/api/alerts/rules', { method: 'POST', body: {} })
    await api.request('/api/alerts')
    const headers = (n: number) => (fetch.mock.calls[n] as unknown as [string, RequestInit])[1].headers as Record<string, string>
    expect(headers(0)['X-CSRF-Token']).toBe('tok-1')
    expect(headers(1)['X-CSRF-Token']).toBeUndefined()
    expect((fetch.mock.calls[0] as unknown as [string, RequestInit])[1].credentials).toBe('same-origin')
  })

  it('sends the chosen tenant as X-Scope-OrgID, and on a WebSocket as tenant=', async () => {
    const fetch = respond(200, {})
    await createApiClient({ fetch, keyStore: memStore(), tenant: () => 'team-a|team-b' }).request('/api/stats')
    await createApiClient({ fetch, keyStore: memStore(), tenant: () => null }).request('/api/stats')
    const headers = (n: number) => (fetch.mock.calls[n] as unknown as [string, RequestInit])[1].headers as Record<string, string>
    expect(headers(0)['X-Scope-OrgID']).toBe('team-a|team-b')
    expect(headers(1)['X-Scope-OrgID']).toBeUndefined()
    expect(wsUrl('http://h', '/ws/live', {}, 'k', 'team-a')).toBe('ws://h/ws/live?api_key=k&tenant=team-a')
  })

  it('reads /auth/me into who we are and what we may do', async () => {
    const fetch = respond(200, {
      signed_in: true,
      sign_in: true,
      name: 'alice',
      role: 'editor',
      credential: 'session',
      tenants: ['team-a', 'team-b'],
      tenancy: { enabled: true, default_tenant: null, reads_as: ['team-a', 'team-b'], error: null },
      csrf_token: 'c',
      permissions: { 'logs.read': true, 'alerts.write': true, 'audit.read': false },
    })
    const me = await createApiClient({ fetch, keyStore: memStore() }).me()
    expect(me).toEqual({
      signedIn: true,
      signInAvailable: true,
      name: 'alice',
      role: 'editor',
      credential: 'session',
      tenants: ['team-a', 'team-b'],
      tenancy: { enabled: true, defaultTenant: null, readsAs: ['team-a', 'team-b'], error: null },
      csrfToken: 'c',
      permissions: { 'logs.read': true, 'alerts.write': true, 'audit.read': false },
    })
    expect(normalizeMe({ role: 'owner', credential: 'x' })).toMatchObject({ role: null, credential: null, signedIn: false })
  })

  it('signs out to where the server says', async () => {
    const fetch = respond(200, { signed_out: true, redirect: 'https://id.example/logout?x=1' })
    expect(await createApiClient({ fetch, keyStore: memStore(), csrfToken: () => 't' }).logout()).toBe(
      'https://id.example/logout?x=1',
    )
    const init = (fetch.mock.calls[0] as unknown as [string, RequestInit])[1]
    expect(init.method).toBe('POST')
    expect((init.headers as Record<string, string>)['X-CSRF-Token']).toBe('t')
  })

  it('returns only to a path of ours after signing in', () => {
    expect(signInUrl('/explorer?query=a b')).toBe('/auth/login?return_to=%2Fexplorer%3Fquery%3Da%20b')
    expect(signInUrl('//evil.example')).toBe('/auth/login?return_to=%2F')
    expect(signInUrl('/auth/logout')).toBe('/auth/login?return_to=%2F')
  })
})
