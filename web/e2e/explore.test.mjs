// Browser tests of the Explorer's issue-25 parts against the REAL binary:
// a trace id leads to the trace's logs across services with a waterfall of
// its spans (and out to the tracing UI of ui.trace_url); the histogram splits
// by any field; attribute columns; a saved view survives a reload, opens by
// its short link in a new browser context and becomes an alert rule.
//
//   cd web && npm run build && OGLOGSTREAM_BIN=../target/debug/oglogstream node --test e2e/explore.test.mjs
//
// One server for the whole file (started with OGLOGSTREAM_UI__TRACE_URL).
// Every wait is a condition poll (waitForFunction / locator.waitFor); no fixed sleeps.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { WAIT, base, newPage, postBulk, shot, startSuite, stopSuite, texts, waitForMessages, waitForQuery, waitForStored } from './support.mjs'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const OTHER_TRACE = '0af7651916cd43dd8448eb211c80319c'
const TRACE_URL = 'https://tempo.example/explore?traceId={trace_id}'
// Two days old: older than the Explorer's default 24 hours, found all the same.
const START = Date.now() - 2 * 86_400_000
const at = (ms) => new Date(START + ms).toISOString()

/** One request through three services, oldest first; span s1 is the gateway's, around the others. */
const TRACE_LOGS = [
  { ms: 0, service: 'gateway', span: 'a1a1a1a1a1a1a1a1', level: 'info', message: 'gateway: GET /checkout' },
  { ms: 100, service: 'checkout', span: 'b2b2b2b2b2b2b2b2', level: 'info', message: 'checkout: cart loaded' },
  { ms: 400, service: 'checkout', span: 'b2b2b2b2b2b2b2b2', level: 'info', message: 'checkout: charging card' },
  { ms: 500, service: 'payments', span: 'c3c3c3c3c3c3c3c3', level: 'error', message: 'payments: card declined' },
  { ms: 700, service: 'payments', span: 'c3c3c3c3c3c3c3c3', level: 'warn', message: 'payments: retry scheduled' },
  { ms: 900, service: 'gateway', span: 'a1a1a1a1a1a1a1a1', level: 'info', message: 'gateway: 402 in 900 ms' },
]
const REGIONS = ['eu-west-1', 'us-east-1', 'ap-south-1']

before(async () => {
  await startSuite({ env: { OGLOGSTREAM_UI__TRACE_URL: TRACE_URL } })
  await postBulk([
    ...TRACE_LOGS.map((l) => ({
      level: l.level,
      service: l.service,
      message: l.message,
      timestamp: at(l.ms),
      attributes: { trace_id: TRACE, span_id: l.span },
    })),
    // Another trace at the same time, which the trace page must leave out.
    { level: 'info', service: 'gateway', message: 'gateway: GET /health', timestamp: at(50), attributes: { trace_id: OTHER_TRACE, span_id: 'd4d4d4d4d4d4d4d4' } },
    // Recent logs with a region to split and show as a column.
    ...Array.from({ length: 12 }, (_, i) => ({
      level: i % 4 === 0 ? 'error' : 'info',
      service: 'shop',
      message: `shop: order ${i} ${'placed '.repeat(i === 0 ? 40 : 1)}`.trim(),
      attributes: { region: REGIONS[i % 3] },
    })),
    // A request id on every log: a value of its own each, so not a facet by default.
    ...Array.from({ length: 25 }, (_, i) => ({
      level: 'info',
      service: 'ids',
      message: `ids: request ${i}`,
      attributes: { request_id: `req-${String(i).padStart(4, '0')}`, tier: i % 2 ? 'gold' : 'free' },
    })),
  ])
  await waitForStored({ query: `trace_id:${TRACE}` }, TRACE_LOGS.length)
  await waitForStored({ query: 'service:ids' }, 25)
  await waitForStored({ query: 'service:shop' }, 12)
})

after(stopSuite)

async function api(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

async function legend(page) {
  return page.$$eval('[data-testid="legend-item"]', (els) => els.map((e) => e.getAttribute('data-value')))
}

async function waitForLegend(page, values) {
  try {
    await page.waitForFunction(
      (want) => {
        const got = Array.from(document.querySelectorAll('[data-testid="legend-item"]')).map((e) => e.getAttribute('data-value'))
        return want.every((v) => got.includes(v))
      },
      values,
      { timeout: WAIT, polling: 50 },
    )
  } catch (e) {
    throw new Error(`legend did not show ${JSON.stringify(values)}; it shows ${JSON.stringify(await legend(page))}\n${e.message}`)
  }
}

describe('the Explorer: traces, split, columns, views', { timeout: 120_000 }, () => {
  test('a trace id leads to every log of the trace across services, with a bar per span', async () => {
    const page = await newPage()
    await page.goto(`${base}/explorer?range=7d&query=${encodeURIComponent('service:gateway')}`)
    await waitForMessages(page, ['gateway: GET /checkout', 'gateway: GET /health', 'gateway: 402 in 900 ms'])
    const row = page.locator('[data-testid="log-row"]', { hasText: 'gateway: GET /checkout' })
    await row.locator('[data-testid="trace-link"]').click()
    await page.waitForURL(`${base}/trace/${TRACE}`, { timeout: WAIT })

    // Exactly the trace's logs, from all three services, oldest first.
    await waitForMessages(page, TRACE_LOGS.map((l) => l.message), { row: 'trace-log', ordered: true })
    assert.deepEqual(await texts(page, 'span-cell'), TRACE_LOGS.map((l) => l.span))

    // The waterfall: one bar per span, by its first log, labelled with its service.
    await page.locator('[data-testid="span-bar"]').first().waitFor({ timeout: WAIT })
    const bars = await page.$$eval('[data-testid="span-bar"]', (els) =>
      els.map((e) => [e.getAttribute('data-span-id'), e.getAttribute('data-service')]),
    )
    assert.deepEqual(bars, [
      ['a1a1a1a1a1a1a1a1', 'gateway'],
      ['b2b2b2b2b2b2b2b2', 'checkout'],
      ['c3c3c3c3c3c3c3c3', 'payments'],
    ])
    // The gateway's span covers the whole trace; checkout's starts at 100 of 900 ms.
    const widths = await page.$$eval('[data-testid="span-bar"] [style]', (els) => els.map((e) => [parseFloat(e.style.left), parseFloat(e.style.width)]))
    assert.deepEqual(widths[0], [0, 100])
    assert.ok(Math.abs(widths[1][0] - (100 / 900) * 100) < 0.01, `checkout's bar starts at ${widths[1][0]}%`)
    assert.match(await page.textContent('[data-testid="trace-summary"]'), /6 logs from 3 services over 900 ms/)
    await shot(page, 'trace')
  })

  test('with ui.trace_url, the row and the trace page link out to the tracing UI', async () => {
    const expected = TRACE_URL.replace('{trace_id}', TRACE)
    const page = await newPage()
    await page.goto(`${base}/trace/${TRACE}`)
    const out = page.locator('[data-testid="trace-page-out"]')
    await out.waitFor({ timeout: WAIT })
    assert.equal(await out.getAttribute('href'), expected)

    await page.goto(`${base}/explorer?range=7d&query=${encodeURIComponent('"card declined"')}`)
    await waitForMessages(page, ['payments: card declined'])
    await page.locator('[data-testid="log-row"] [aria-expanded]').first().click({ position: { x: 5, y: 5 } })
    const rowOut = page.locator('[data-testid="trace-out"]')
    await rowOut.waitFor({ timeout: WAIT })
    assert.equal(await rowOut.getAttribute('href'), expected)
    assert.match(await page.textContent('[data-testid="log-trace"]'), /span c3c3c3c3c3c3c3c3/)
  })

  test('the histogram splits by an attribute, from the control or "chart this field"', async () => {
    const page = await newPage()
    await page.goto(`${base}/explorer?query=${encodeURIComponent('service:shop')}`)
    await waitForLegend(page, ['debug', 'info', 'warn', 'error', 'fatal'])
    await page.selectOption('[data-testid="split-by"]', 'region', { timeout: WAIT })
    await waitForQuery(page, 'split', 'region')
    await waitForLegend(page, REGIONS)
    assert.ok(!(await legend(page)).includes('error'), 'split by region, the levels are gone from the legend')
    await shot(page, 'split-by-region')

    // "Chart this field" on the service facet.
    await page.locator('[data-testid="facet"][data-field="service"] [data-testid="facet-chart"]').click()
    await waitForQuery(page, 'split', 'service')
    await waitForLegend(page, ['shop'])
    // Level again: the parameter goes.
    await page.selectOption('[data-testid="split-by"]', 'level')
    await page.waitForFunction(() => !new URL(location.href).searchParams.has('split'), null, { timeout: WAIT })
  })

  test('attribute columns and wrapping are chosen and kept in the URL', async () => {
    const page = await newPage()
    await page.goto(`${base}/explorer?query=${encodeURIComponent('service:shop')}`)
    await page.selectOption('[data-testid="add-column"]', 'region', { timeout: WAIT })
    await waitForQuery(page, 'columns', 'region')
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="column-cell"][data-column="region"]').length === 12, null, {
      timeout: WAIT,
    })
    const cells = new Set(await texts(page, 'column-cell'))
    assert.deepEqual([...cells].sort(), [...REGIONS].sort())

    // The long message is cut to one line until wrapping is on.
    const long = page.locator('[data-testid="log-row"]', { hasText: 'order 0 placed' }).locator('[data-testid="log-message"]')
    const oneLine = (await long.boundingBox()).height
    await page.check('[data-testid="wrap-toggle"]')
    await waitForQuery(page, 'wrap', '1')
    await page.waitForFunction(
      (h) => [...document.querySelectorAll('[data-testid="log-message"]')].some((e) => e.getBoundingClientRect().height > h * 1.5),
      oneLine,
      { timeout: WAIT },
    )
    await page.click('[data-testid="column-remove"]')
    await page.waitForFunction(() => !new URL(location.href).searchParams.has('columns'), null, { timeout: WAIT })
  })

  test('an id-like field is named, not listed, and shows its values on request', async () => {
    const page = await newPage()
    await page.goto(`${base}/explorer?query=${encodeURIComponent('service:ids')}`)
    const idField = page.locator('[data-testid="id-field"][data-field="request_id"]')
    await idField.waitFor({ timeout: WAIT })
    await page.locator('[data-testid="facet"][data-field="tier"]').waitFor({ timeout: WAIT })
    assert.equal(await page.locator('[data-testid="facet"][data-field="request_id"]').count(), 0, 'no value list for request_id')
    await idField.click()
    await page.waitForFunction(() => (new URL(location.href).searchParams.get('facets') ?? '').split(',').includes('request_id'), null, {
      timeout: WAIT,
    })
    const facet = page.locator('[data-testid="facet"][data-field="request_id"]')
    await facet.waitFor({ timeout: WAIT })
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid="facet"][data-field="request_id"] [data-testid="facet-value"]').length === 10,
      null,
      { timeout: WAIT },
    )
  })

  test('a saved view survives a reload, opens by its short link elsewhere and becomes an alert rule', async () => {
    const query = 'service:shop level:error'
    let page = await newPage()
    await page.goto(`${base}/explorer?query=${encodeURIComponent(query)}&range=1h&columns=region&split=region`)
    await waitForMessages(page, ['shop: order 0 ' + 'placed '.repeat(40).trim(), 'shop: order 4 placed', 'shop: order 8 placed'])
    await page.click('[data-testid="view-save"]')
    await page.fill('[data-testid="view-name"]', 'Shop errors by region')
    await page.click('[data-testid="view-save-confirm"]')
    const linkBox = page.locator('[data-testid="view-link"]')
    await linkBox.waitFor({ timeout: WAIT })
    const link = await linkBox.inputValue()
    const id = link.match(/\/v\/([a-z0-9]{10})$/)?.[1]
    assert.ok(id, `the short link ${link} ends in /v/<id>`)
    assert.ok(link.startsWith(base), link)

    // Saved on the server as shown.
    const saved = await api('GET', `/api/views/${id}`)
    assert.equal(saved.status, 200, JSON.stringify(saved.body))
    assert.deepEqual(
      { query: saved.body.query, range: saved.body.range, columns: saved.body.columns, split_by: saved.body.split_by, order: saved.body.order },
      { query, range: { last: '1h' }, columns: ['region'], split_by: 'region', order: 'desc' },
    )

    // A reload keeps it open and listed.
    await waitForQuery(page, 'saved', id)
    await page.reload()
    await page.locator(`[data-testid="view-active"][data-view-id="${id}"]`).waitFor({ timeout: WAIT })
    await page.locator(`[data-testid="view-item"][data-view-id="${id}"]`).waitFor({ timeout: WAIT })

    // The short link in a new browser context: the same query, columns and split.
    page = await newPage()
    await page.goto(link)
    await page.waitForURL(/\/explorer\?/, { timeout: WAIT })
    await waitForQuery(page, 'saved', id)
    await page.waitForFunction((q) => document.querySelector('[data-testid="query-input"]')?.value === q, query, { timeout: WAIT })
    await page.locator('[data-testid="column-header"][data-column="region"]').waitFor({ timeout: WAIT })
    assert.equal(await page.inputValue('[data-testid="split-by"]'), 'region')
    await waitForLegend(page, ['eu-west-1'])
    await waitForMessages(page, ['shop: order 0 ' + 'placed '.repeat(40).trim(), 'shop: order 4 placed', 'shop: order 8 placed'])
    await shot(page, 'saved-view')
    // As saved until the Explorer shows something else.
    assert.equal(await page.getByTestId('view-changed').count(), 0)
    await page.selectOption('[data-testid="split-by"]', 'level')
    await page.getByTestId('view-changed').waitFor({ timeout: WAIT })

    // Alert on this view: the rule form, prefilled; saving creates the rule.
    await page.click('[data-testid="view-alert"]')
    await page.waitForURL(`${base}/alerts`, { timeout: WAIT })
    await page.locator('[data-testid="rule-form"]').waitFor({ timeout: WAIT })
    assert.equal(await page.inputValue('[data-testid="rule-name"]'), 'Shop errors by region')
    assert.equal(await page.inputValue('[data-testid="rule-query"]'), query)
    await page.click('[data-testid="rule-save"]')
    await page.locator('[data-testid="alert-rule"][data-rule-name="Shop errors by region"]').waitFor({ timeout: WAIT })
    const overview = await api('GET', '/api/alerts')
    assert.equal(overview.status, 200, JSON.stringify(overview.body))
    const rule = overview.body.rules.find((r) => r.name === 'Shop errors by region')
    assert.ok(rule, JSON.stringify(overview.body.rules))
    assert.equal(rule.query, query)
  })
})
