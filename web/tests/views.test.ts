import { describe, expect, it, vi } from 'vitest'
import { createApiClient, normalizeMe, type KeyStore } from '../src/api'
import { defaultFilters, filtersFromQuery, filtersToQuery, type Filters } from '../src/filters'
import {
  alertFromView,
  durationMs,
  filtersFromView,
  mayChange,
  rangeText,
  searchAsQuery,
  sortViews,
  viewFromFilters,
  viewPath,
  viewsApi,
  type SavedView,
} from '../src/views'
import { prefillFromQuery } from '../src/alerts'

const NOW = Date.parse('2026-12-07T07:00:00.000Z')

function view(over: Partial<SavedView> = {}): SavedView {
  return {
    id: 'k3x9q2mw7h',
    name: 'Checkout errors',
    query: 'service:checkout level:>=error',
    range: { last: '24h' },
    columns: ['region', 'http.status'],
    split_by: 'region',
    order: 'desc',
    wrap: false,
    owner: 'alice',
    tenant: 'default',
    created: '2026-12-07T07:00:00.000000Z',
    updated: '2026-12-07T07:00:00.000000Z',
    ...over,
  }
}

describe('Explorer -> view', () => {
  it('saves the query, relative range, columns, split, order and wrapping', () => {
    const f: Filters = { ...defaultFilters(), query: 'service:checkout', range: '1h', columns: ['region'], split: 'region', order: 'asc', wrap: true }
    expect(viewFromFilters('  Mine ', f, NOW)).toEqual({
      name: 'Mine',
      query: 'service:checkout',
      range: { last: '1h' },
      columns: ['region'],
      split_by: 'region',
      order: 'asc',
      wrap: true,
    })
  })
  it('saves a custom range as absolute instants, an open end as the epoch or now', () => {
    const f: Filters = { ...defaultFilters(), range: 'custom', from: Date.parse('2026-12-01T00:00:00Z'), to: Date.parse('2026-12-02T00:00:00Z') }
    expect(viewFromFilters('x', f, NOW).range).toEqual({ from: '2026-12-01T00:00:00.000Z', to: '2026-12-02T00:00:00.000Z' })
    expect(viewFromFilters('x', { ...f, from: null, to: null }, NOW).range).toEqual({ from: '1970-01-01T00:00:00.000Z', to: '2026-12-07T07:00:00.000Z' })
  })
  it('writes the level chips, the service box and q into the query, as they filter', () => {
    expect(searchAsQuery({ ...defaultFilters(), query: 'a OR b', levels: ['error'] })).toBe('(a OR b) level:error')
    expect(searchAsQuery({ ...defaultFilters(), levels: ['warn', 'error'] })).toBe('level:(warn OR error)')
    expect(searchAsQuery({ ...defaultFilters(), levels: ['debug', 'info', 'warn', 'error', 'fatal'] })).toBe('')
    expect(searchAsQuery({ ...defaultFilters(), service: 'pay' })).toBe('service:*pay*')
    expect(searchAsQuery({ ...defaultFilters(), service: 'pay (eu)' })).toBe('service:~"(?i)pay \\\\(eu\\\\)"')
    expect(searchAsQuery({ ...defaultFilters(), query: 'x', q: 'time "out"' })).toBe('x "time \\"out\\""')
  })
})

describe('view -> Explorer', () => {
  it('opens with the view as the Explorer has it', () => {
    const f = filtersFromView(view(), NOW)
    expect(f).toEqual({ ...defaultFilters(), query: 'service:checkout level:>=error', columns: ['region', 'http.status'], split: 'region' })
  })
  it('round-trips through the Explorer URL', () => {
    const f = filtersFromView(view({ order: 'asc', wrap: true, range: { last: '7d' } }), NOW)
    expect(filtersFromQuery(filtersToQuery(f))).toEqual(f)
    expect(filtersToQuery(f)).toEqual({
      query: 'service:checkout level:>=error',
      range: '7d',
      order: 'asc',
      columns: 'region,http.status',
      split: 'region',
      wrap: '1',
    })
  })
  it('saves back what it opened', () => {
    const v = view({ range: { from: '2026-12-01T00:00:00.000Z', to: '2026-12-02T00:00:00.000Z' } })
    const { id, owner, tenant, created, updated, ...body } = v
    void [id, owner, tenant, created, updated]
    expect(viewFromFilters(v.name, filtersFromView(v, NOW), NOW)).toEqual(body)
  })
  it('takes a split of null as the level, and a duration the presets lack as the range ending now', () => {
    const f = filtersFromView(view({ split_by: null, range: { last: '2h' } }), NOW)
    expect(f.split).toBe('level')
    expect(f).toMatchObject({ range: 'custom', from: NOW - 7_200_000, to: NOW })
  })
  it('reads durations', () => {
    expect(durationMs('15m')).toBe(900_000)
    expect(durationMs('7d')).toBe(604_800_000)
    expect(durationMs('soon')).toBeNull()
    expect(durationMs('0h')).toBeNull()
  })
  it('describes the range', () => {
    expect(rangeText({ last: '24h' })).toBe('last 24h')
    expect(rangeText({ from: '2026-12-01T00:00:00.000Z', to: '2026-12-02T00:00:00Z' })).toBe('2026-12-01 00:00:00Z → 2026-12-02 00:00:00Z')
  })
})

describe('who may change a view', () => {
  const me = (role: string, name: string) => normalizeMe({ signed_in: true, role, name, permissions: {} })
  it('its owner and editors or admins; not another viewer', () => {
    expect(mayChange(view(), me('viewer', 'alice'))).toBe(true)
    expect(mayChange(view(), me('viewer', 'bob'))).toBe(false)
    expect(mayChange(view(), me('editor', 'bob'))).toBe(true)
    expect(mayChange(view(), me('admin', 'bob'))).toBe(true)
  })
  it('follows views.manage where the server says it', () => {
    const withPermission = (manage: boolean) =>
      normalizeMe({ signed_in: true, role: 'viewer', name: 'bob', permissions: { 'views.manage': manage } })
    expect(mayChange(view(), withPermission(true))).toBe(true)
    expect(mayChange(view(), withPermission(false))).toBe(false)
    expect(mayChange(view(), normalizeMe({ signed_in: true, role: 'editor', name: 'bob', permissions: { 'views.manage': false } }))).toBe(false)
  })
  it('leaves it to the server before /auth/me answers', () => {
    expect(mayChange(view(), null)).toBe(true)
    expect(mayChange(view(), normalizeMe({ signed_in: false }))).toBe(false)
  })
})

describe('links', () => {
  it('opens by the short link and starts an alert rule from the view', () => {
    expect(viewPath('k3x9q2mw7h')).toBe('/v/k3x9q2mw7h')
    const to = alertFromView(view())
    expect(to).toEqual({ path: '/alerts', query: { new: '1', name: 'Checkout errors', query: 'service:checkout level:>=error' } })
    expect(prefillFromQuery(to.query)).toEqual({ name: 'Checkout errors', query: 'service:checkout level:>=error' })
    expect(prefillFromQuery({})).toBeNull()
  })
  it('lists views by name, any case, then id', () => {
    const sorted = sortViews([view({ id: 'b', name: 'beta' }), view({ id: 'z', name: 'Alpha' }), view({ id: 'a', name: 'alpha' })])
    expect(sorted.map((v) => v.id)).toEqual(['a', 'z', 'b'])
  })
})

describe('views client', () => {
  function memStore(): KeyStore {
    let k: string | null = null
    return { get: () => k, set: (v) => (k = v) }
  }
  it('lists, creates, replaces and deletes with the contract’s methods and paths', async () => {
    const calls: { url: string; method: string; body: unknown }[] = []
    const fetch = vi.fn(async (url: string, init: RequestInit) => {
      calls.push({ url, method: init.method ?? 'GET', body: init.body ? JSON.parse(String(init.body)) : undefined })
      if (init.method === 'DELETE') return new Response(null, { status: 204 })
      if (url.endsWith('/api/views') && !init.method?.startsWith('P')) return new Response(JSON.stringify({ views: [view()] }))
      return new Response(JSON.stringify(view()), { status: init.method === 'POST' ? 201 : 200 })
    })
    const client = viewsApi(createApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, keyStore: memStore() }))
    expect((await client.list()).map((v) => v.id)).toEqual(['k3x9q2mw7h'])
    const body = viewFromFilters('n', defaultFilters(), NOW)
    expect((await client.create(body)).id).toBe('k3x9q2mw7h')
    await client.replace('k3x9q2mw7h', body)
    await client.remove('k3x9q2mw7h')
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      'GET /api/views',
      'POST /api/views',
      'PUT /api/views/k3x9q2mw7h',
      'DELETE /api/views/k3x9q2mw7h',
    ])
    expect(calls[1].body).toEqual(body)
  })
})
