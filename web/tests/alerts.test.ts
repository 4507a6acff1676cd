import { describe, expect, it, vi } from 'vitest'
import { createApiClient, type KeyStore } from '../src/api'
import {
  alertSummary,
  alertsApi,
  draftFromRule,
  emptyDraft,
  groupText,
  parseLabels,
  previewParams,
  ruleBody,
  ruleTenantChoices,
  wouldFire,
  type AlertRule,
} from '../src/alerts'

function memStore(): KeyStore {
  let k: string | null = null
  return { get: () => k, set: (v) => (k = v) }
}

const RULE: AlertRule = {
  id: 'r1',
  name: 'checkout errors',
  query: 'service:checkout level:>=error',
  window: '5m',
  threshold: 10,
  group_by: ['service', 'region'],
  for: '30s',
  repeat_interval: '4h',
  channels: ['ops-slack'],
  labels: { severity: 'critical', team: 'web' },
  source: 'api',
  read_only: false,
  state: 'firing',
  last_value: 42,
  last_evaluation: '2026-12-01T10:00:00.000000Z',
  groups: [],
  error: null,
}

describe('rule drafts', () => {
  it('round-trip a rule through the form', () => {
    const draft = draftFromRule(RULE)
    expect(draft.groupBy).toBe('service, region')
    expect(draft.labels).toBe('severity=critical\nteam=web')
    const body = ruleBody(draft)
    expect(body.ok).toBe(true)
    if (body.ok) {
      expect(body.value).toEqual({
        name: 'checkout errors',
        query: 'service:checkout level:>=error',
        window: '5m',
        threshold: 10,
        group_by: ['service', 'region'],
        for: '30s',
        repeat_interval: '4h',
        channels: ['ops-slack'],
        labels: { severity: 'critical', team: 'web' },
      })
    }
  })

  it('names the field at fault before asking the server', () => {
    const noName = ruleBody({ ...emptyDraft(), name: ' ' })
    expect(noName.ok ? '' : noName.error.field).toBe('name')
    const negative = ruleBody({ ...emptyDraft(), name: 'x', threshold: '-1' })
    expect(negative.ok ? '' : negative.error.field).toBe('threshold')
    const text = ruleBody({ ...emptyDraft(), name: 'x', threshold: 'ten' })
    expect(text.ok ? '' : text.error.field).toBe('threshold')
    const labels = ruleBody({ ...emptyDraft(), name: 'x', labels: 'severity' })
    expect(labels.ok ? '' : labels.error.field).toBe('labels')
    const fine = ruleBody({ ...emptyDraft(), name: 'x', repeatInterval: ' ', forDuration: '' })
    expect(fine.ok && fine.value.repeat_interval === null && fine.value.for === '0s').toBe(true)
  })

  it('parses labels a line or a comma at a time, including ones named like fields', () => {
    expect(parseLabels('a=1, b = two\n\nfield=x,message=y')).toEqual({
      ok: true,
      value: { a: '1', b: 'two', field: 'x', message: 'y' },
    })
    expect(parseLabels('=x').ok).toBe(false)
  })

  it('names the rule\'s tenant when the dashboard reads as several', () => {
    expect(ruleTenantChoices(null)).toEqual([])
    expect(ruleTenantChoices(['team-a'])).toEqual([])
    expect(ruleTenantChoices(['team-a', 'team-b'])).toEqual(['team-a', 'team-b'])
    const draft = { ...emptyDraft(), name: 'x', tenant: 'team-b' }
    const body = ruleBody(draft)
    expect(body.ok && body.value.tenant).toBe('team-b')
    expect(previewParams(draft).tenant).toBe('team-b')
    const own = ruleBody({ ...emptyDraft(), name: 'x' })
    expect(own.ok && 'tenant' in own.value).toBe(false)
    expect('tenant' in previewParams(emptyDraft())).toBe(false)
    expect(draftFromRule({ ...RULE, tenant: 'team-a' }).tenant).toBe('team-a')
  })

  it('builds preview parameters and verdicts', () => {
    expect(previewParams({ ...emptyDraft(), query: ' level:error ', window: '', groupBy: 'service, ,region' })).toEqual({
      query: 'level:error',
      window: '5m',
      group_by: 'service,region',
    })
    const preview = { from: '', to: '', count: 30, largest_group: 12, groups: [] }
    expect(wouldFire(preview, '10')).toBe(true)
    expect(wouldFire(preview, '12')).toBe(false)
    expect(wouldFire(preview, '')).toBe(null)
    expect(groupText({ service: 'checkout', region: '' })).toBe('service=checkout, region=(none)')
  })
})

describe('alerts client', () => {
  it('lists rules and updates the header summary', async () => {
    const fetch = vi.fn(
      async () => new Response(JSON.stringify({ rules: [RULE], channels: [], firing: 2, evaluation_interval: '30s' })),
    )
    const client = alertsApi(createApiClient({ fetch, keyStore: memStore() }))
    const overview = await client.overview()
    expect(overview.rules[0].name).toBe('checkout errors')
    expect(alertSummary.firing).toBe(2)
    expect((fetch.mock.calls[0] as unknown as [string])[0]).toBe('/api/alerts')
  })

  it('creates, replaces, tests and deletes (204) rules', async () => {
    const answers = [
      new Response(JSON.stringify({ id: 'new' }), { status: 201 }),
      new Response(JSON.stringify({ id: 'r 1' }), { status: 200 }),
      new Response(JSON.stringify({ results: [{ channel: 'c', kind: 'slack', delivery: 'delivered', attempts: 1, error: null }] })),
      new Response(null, { status: 204 }),
    ]
    const fetch = vi.fn(async () => answers.shift() as Response)
    const client = alertsApi(createApiClient({ fetch, keyStore: memStore() }))
    const body = ruleBody({ ...emptyDraft(), name: 'x' })
    if (!body.ok) throw new Error('valid draft')
    expect((await client.createRule(body.value)).id).toBe('new')
    await client.replaceRule('r 1', body.value)
    expect((await client.testRule('r 1'))[0].delivery).toBe('delivered')
    await client.deleteRule('r 1')
    const calls = fetch.mock.calls as unknown as [string, RequestInit][]
    expect(calls.map(([url, init]) => `${init.method} ${url}`)).toEqual([
      'POST /api/alerts/rules',
      'PUT /api/alerts/rules/r%201',
      'POST /api/alerts/rules/r%201/test',
      'DELETE /api/alerts/rules/r%201',
    ])
  })

  it('passes a 400 naming its field on', async () => {
    const fetch = vi.fn(
      async () => new Response(JSON.stringify({ error: 'invalid query', field: 'query' }), { status: 400 }),
    )
    const client = alertsApi(createApiClient({ fetch, keyStore: memStore() }))
    await expect(client.preview({ query: 'level:loud' })).rejects.toMatchObject({ status: 400, field: 'query' })
  })
})
