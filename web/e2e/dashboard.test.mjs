// Browser tests for the dashboard against the REAL OgLogStream binary.
//
//   cd web && npm run build && OGLOGSTREAM_BIN=../target/debug/oglogstream npm run test:e2e
//
// Starts `$OGLOGSTREAM_BIN --role all --listen 127.0.0.1:<free port> --data-dir <temp>`,
// posts logs over HTTP and drives headless Chromium (/usr/bin/chromium, or
// $CHROMIUM_PATH) with playwright-core. Screenshots go to web/test-output/screenshots/.
// Every wait is a condition poll (waitForFunction / locator.waitFor); no fixed sleeps.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  WAIT,
  base,
  dialogs,
  newPage,
  postBulk,
  postLog,
  shot,
  startSuite,
  stopSuite,
  texts,
  tsMs,
  waitForMessages,
  waitForQuery,
} from './support.mjs'
import { searchSuite } from './search.mjs'
import { patternsSuite } from './patterns.mjs'

// ------------------------------------------------------------------ data

const XSS = '<script>alert(1)</script><b>bold</b>'
const OLD = [
  { level: 'info', service: 'checkout', message: 'order 1001 placed', attributes: { order_id: '1001' } },
  { level: 'warn', service: 'checkout', message: 'payment retry timeout for order 1002', attributes: {} },
  { level: 'error', service: 'payments', message: 'card processor timeout', attributes: { processor: 'acme' } },
  { level: 'debug', service: 'auth-api', message: 'token refreshed for user 7' },
  { level: 'info', service: 'web', message: XSS, attributes: { path: '/x', note: '<i>not italic</i>' } },
]
const NEW = [
  { level: 'fatal', service: 'payments', message: 'ledger unavailable, shutting down' },
  { level: 'info', service: 'auth-api', message: 'login ok for user 9' },
]
const ALL = [...OLD, ...NEW].map((l) => l.message)
const msgs = (pred) => [...OLD, ...NEW].filter(pred).map((l) => l.message)
/** First whole second after the OLD batch; every NEW log is at or after it. */
let boundaryMs = 0

// ------------------------------------------------------------------ lifecycle

before(async () => {
  await startSuite()

  let lastOld = 0
  for (const l of OLD) lastOld = Math.max(lastOld, tsMs((await postLog(l)).timestamp))
  boundaryMs = Math.floor(lastOld / 1000) * 1000 + 1000
  // Let the wall clock pass the boundary (< 1 s) so the NEW batch is strictly later.
  while (Date.now() < boundaryMs + 20) await new Promise((r) => setTimeout(r, 10))
  for (const l of NEW) {
    const r = await postLog(l)
    assert.ok(tsMs(r.timestamp) >= boundaryMs, `server timestamp ${r.timestamp} should be after the boundary`)
  }
})

after(stopSuite)

// ------------------------------------------------------------------ tests

describe('OgLogStream dashboard', { timeout: 120_000 }, () => {
  test('overview shows per-level counts, histogram and services', async () => {
    const page = await newPage()
    await page.goto(`${base}/`)
    await page.waitForFunction(() => document.querySelector('[data-testid="total-count"]')?.textContent?.trim() === '7', null, {
      timeout: WAIT,
    })
    const count = async (l) => (await page.textContent(`[data-testid="level-count-${l}"]`)).trim()
    assert.equal(await count('info'), '3')
    assert.equal(await count('warn'), '1')
    assert.equal(await count('error'), '1')
    assert.equal(await count('debug'), '1')
    assert.equal(await count('fatal'), '1')
    await page.waitForSelector('[data-testid="histogram"] canvas', { timeout: WAIT })
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="top-service"]').length === 4, null, {
      timeout: WAIT,
    })
    const top = await texts(page, 'top-service')
    assert.match(top[0], /checkout|payments|auth-api/)
    await shot(page, 'overview')
  })

  test('explorer lists the logs; messages render as literal text', async () => {
    const page = await newPage()
    await page.goto(`${base}/explorer`)
    await waitForMessages(page, ALL)

    // (e) HTML in a message is text, never markup.
    const xssRow = page.locator('[data-testid="log-row"]', { hasText: '<script>alert(1)</script>' })
    assert.equal(await xssRow.count(), 1)
    assert.equal(await xssRow.locator('[data-testid="log-message"]').textContent(), XSS)
    assert.equal(await page.locator('[data-testid="log-table"] b').count(), 0, 'no <b> element may be created')
    assert.equal(await page.locator('[data-testid="log-table"] script').count(), 0)

    // Expanding (Enter on the focused row) shows the full message and attributes, still as text.
    await xssRow.locator('[aria-expanded]').focus()
    await page.keyboard.press('Enter')
    await xssRow.locator('[data-testid="log-details"]').waitFor({ timeout: WAIT })
    assert.equal(await xssRow.locator('[data-testid="log-full-message"]').textContent(), XSS)
    const attrs = await xssRow.locator('[data-testid="log-attributes"]').textContent()
    assert.ok(attrs.includes('<i>not italic</i>'), attrs)
    assert.equal(await xssRow.locator('b, i, script').count(), 0)
    // Click collapses again.
    await xssRow.locator('[aria-expanded]').click({ position: { x: 5, y: 5 } })
    await xssRow.locator('[data-testid="log-details"]').waitFor({ state: 'detached', timeout: WAIT })
    assert.deepEqual(dialogs, [], 'no alert() may have run')
    await shot(page, 'explorer')
  })

  test('each filter narrows the table and is written to the URL', async () => {
    const page = await newPage()
    await page.goto(`${base}/explorer`)
    await waitForMessages(page, ALL)

    // the query bar (Enter applies): a word, then a phrase (case-insensitive)
    await page.fill('[data-testid="query-input"]', 'timeout')
    await page.press('[data-testid="query-input"]', 'Enter')
    await waitForQuery(page, 'query', 'timeout')
    await waitForMessages(page, msgs((l) => /timeout/i.test(l.message)))
    await page.fill('[data-testid="query-input"]', '"TIMEOUT FOR"')
    await page.click('[data-testid="query-submit"]')
    await waitForMessages(page, ['payment retry timeout for order 1002'])
    await page.fill('[data-testid="query-input"]', '')
    await page.press('[data-testid="query-input"]', 'Enter')
    await waitForMessages(page, ALL)

    // level (multi-select)
    await page.click('[data-testid="level-filter-error"]')
    await waitForQuery(page, 'level', 'error')
    await waitForMessages(page, msgs((l) => l.level === 'error'))
    await page.click('[data-testid="level-filter-fatal"]')
    await waitForQuery(page, 'level', 'error,fatal')
    await waitForMessages(page, msgs((l) => l.level === 'error' || l.level === 'fatal'))
    assert.equal(await page.getAttribute('[data-testid="level-filter-fatal"]', 'aria-pressed'), 'true')
    await page.click('[data-testid="level-filter-error"]')
    await page.click('[data-testid="level-filter-fatal"]')
    await waitForMessages(page, ALL)

    // service (picker populated from /api/services)
    await page.waitForSelector('[data-testid="service-filter"] option[value="payments"]', { state: 'attached', timeout: WAIT })
    await page.selectOption('[data-testid="service-filter"]', 'payments')
    await waitForQuery(page, 'service', 'payments')
    await waitForMessages(page, msgs((l) => l.service === 'payments'))
    await page.selectOption('[data-testid="service-filter"]', '')
    await waitForMessages(page, ALL)

    // time range: a custom "from" between the two batches, then back to a preset
    await page.click('[data-testid="range-custom"]')
    const local = new Date(boundaryMs).toISOString().slice(0, 19) // context timezone is UTC
    await page.fill('[data-testid="range-from"]', local)
    await page.fill('[data-testid="range-to"]', '')
    await page.click('[data-testid="range-apply"]')
    await waitForQuery(page, 'from', new Date(boundaryMs).toISOString())
    await waitForMessages(page, NEW.map((l) => l.message))
    await page.click('[data-testid="range-preset-15m"]')
    await waitForQuery(page, 'range', '15m')
    await waitForMessages(page, ALL)
    assert.equal(new URL(page.url()).searchParams.get('from'), null)

    // clicking a level badge / a service in a row filters by it
    await page.locator('[data-testid="log-row"][data-level="warn"] [data-testid="level-badge"]').click()
    await waitForQuery(page, 'level', 'warn')
    await waitForMessages(page, msgs((l) => l.level === 'warn'))
    await page.click('[data-testid="clear-filters"]')
    await waitForMessages(page, ALL)
    await page.locator('[data-testid="service-cell"]', { hasText: 'auth-api' }).first().click()
    await waitForQuery(page, 'service', 'auth-api')
    await waitForMessages(page, msgs((l) => l.service === 'auth-api'))
  })

  test('a shared URL restores every filter', async () => {
    const page = await newPage()
    const from = new Date(boundaryMs).toISOString()
    await page.goto(`${base}/explorer?query=user&level=info,debug&service=auth-api&from=${encodeURIComponent(from)}`)
    await waitForMessages(page, ['login ok for user 9'])
    assert.equal(await page.inputValue('[data-testid="query-input"]'), 'user')
    assert.equal(await page.getAttribute('[data-testid="level-filter-info"]', 'aria-pressed'), 'true')
    assert.equal(await page.getAttribute('[data-testid="level-filter-debug"]', 'aria-pressed'), 'true')
    assert.equal(await page.getAttribute('[data-testid="level-filter-error"]', 'aria-pressed'), 'false')
    assert.equal(await page.inputValue('[data-testid="service-filter"]'), 'auth-api')
    assert.equal(await page.getAttribute('[data-testid="range-custom"]', 'aria-pressed'), 'true')
    // Chromium shows a datetime-local value without `:00` seconds (it failed
    // once when the boundary fell on a whole minute): compare the instant.
    const wholeMinute = (v) => v.replace(/:00$/, '')
    assert.equal(wholeMinute(await page.inputValue('[data-testid="range-from"]')), wholeMinute(from.slice(0, 19)))

    // Same filters with a preset range instead: the older debug log is back. The seed's `q`
    // still works in old links and shows as a removable chip.
    await page.goto(`${base}/explorer?q=user&level=info,debug&service=auth-api&range=1h`)
    await waitForMessages(page, ['login ok for user 9', 'token refreshed for user 7'])
    assert.equal(await page.getAttribute('[data-testid="range-preset-1h"]', 'aria-pressed'), 'true')
    assert.match(await page.textContent('[data-testid="q-chip"]'), /message contains “user”/)
  })

  test('live page shows new logs within 2 s, honours filters and pause', async () => {
    const page = await newPage()
    await page.goto(`${base}/live?level=error,fatal`)
    await page.waitForSelector('[data-testid="live-status"][data-status="open"]', { timeout: WAIT })
    await page.waitForSelector('[data-testid="empty-state"]', { timeout: WAIT })

    await postLog({ level: 'info', service: 'live-test', message: 'filtered out by level' })
    const t0 = Date.now()
    await postLog({ level: 'error', service: 'live-test', message: `live ${XSS}` })
    await waitForMessages(page, [`live ${XSS}`], { row: 'live-row', timeout: 2000 })
    assert.ok(Date.now() - t0 <= 2000)
    assert.equal(await page.locator('[data-testid="live-row"] b').count(), 0)
    assert.match(await page.textContent('[data-testid="live-rate"]'), /logs\/s/)

    // Pause holds new rows back; resume shows them.
    await page.click('[data-testid="pause-button"]')
    await postLog({ level: 'fatal', service: 'live-test', message: 'arrived while paused' })
    await page.waitForFunction(
      () => /1 new/.test(document.querySelector('[data-testid="pause-button"]')?.textContent ?? ''),
      null,
      { timeout: WAIT },
    )
    assert.equal(await page.locator('[data-testid="live-row"]').count(), 1)
    await page.click('[data-testid="pause-button"]')
    await waitForMessages(page, [`live ${XSS}`, 'arrived while paused'], { row: 'live-row' })
    assert.deepEqual(dialogs, [])
    await shot(page, 'live')
  })

  test('dark theme toggle is applied and remembered', async () => {
    const page = await newPage()
    await page.goto(`${base}/explorer`)
    await waitForMessages(page, await currentAll())
    assert.equal(await page.evaluate(() => document.documentElement.classList.contains('dark')), false)
    await page.click('[data-testid="theme-toggle"]')
    await page.waitForFunction(() => document.documentElement.classList.contains('dark'), null, { timeout: WAIT })
    await page.reload()
    await page.waitForFunction(() => document.documentElement.classList.contains('dark'), null, { timeout: WAIT })
    await waitForMessages(page, await currentAll())
    await shot(page, 'explorer-dark')
  })

  test('prefers-color-scheme: dark is followed by default', async () => {
    const page = await newPage({ colorScheme: 'dark' })
    await page.goto(`${base}/`)
    await page.waitForFunction(() => document.documentElement.classList.contains('dark'), null, { timeout: WAIT })
  })

  test('dragging over the histogram narrows the time range', async () => {
    const page = await newPage()
    await page.goto(`${base}/explorer?range=1h`)
    await waitForMessages(page, await currentAll())
    const over = page.locator('[data-testid="histogram"] .u-over')
    await over.waitFor({ timeout: WAIT })
    const box = await over.boundingBox()
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2)
    await page.mouse.down()
    await page.mouse.move(box.x + box.width * 0.75, box.y + box.height / 2, { steps: 5 })
    await page.mouse.move(box.x + box.width - 1, box.y + box.height / 2, { steps: 5 })
    await page.mouse.up()
    await page.waitForFunction(
      () => {
        const sp = new URL(location.href).searchParams
        return sp.has('from') && sp.has('to') && !sp.has('range')
      },
      null,
      { timeout: WAIT },
    )
    const sp = new URL(page.url()).searchParams
    const from = Date.parse(sp.get('from'))
    const to = Date.parse(sp.get('to'))
    assert.ok(from < to, `${sp.get('from')} < ${sp.get('to')}`)
    assert.ok(to - from <= 60 * 60 * 1000, 'the selection is narrower than the hour shown')
    assert.equal(await page.getAttribute('[data-testid="range-custom"]', 'aria-pressed'), 'true')
    await waitForMessages(page, await currentAll())
  })

  test('scrolling down loads the next pages on the cursor', async () => {
    const name = (i) => `bulk ${String(i).padStart(3, '0')}`
    const t0 = Date.now() - 60_000
    await postBulk(
      Array.from({ length: 230 }, (_, i) => ({
        level: 'debug',
        service: 'bulk',
        message: name(i),
        timestamp: new Date(t0 + i).toISOString(),
      })),
    )
    const page = await newPage()
    const asked = []
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/api/logs') asked.push(new URL(r.url()).searchParams)
    })
    await page.goto(`${base}/explorer?query=service:bulk&order=asc`)
    await waitForMessages(
      page,
      Array.from({ length: 100 }, (_, i) => name(i)),
      { ordered: true },
    )
    // The list's end comes into view: the next pages load by themselves, each row once, in order.
    await page.locator('[data-testid="rows-shown"]').scrollIntoViewIfNeeded()
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-row"]').length >= 200, null, { timeout: WAIT })
    await page.locator('[data-testid="rows-shown"]').scrollIntoViewIfNeeded()
    await page.locator('[data-testid="end-of-results"]').waitFor({ timeout: WAIT })
    await waitForMessages(
      page,
      Array.from({ length: 230 }, (_, i) => name(i)),
      { ordered: true },
    )
    const pages = asked.filter((p) => p.get('query') === 'service:bulk')
    assert.equal(pages.length, 3, pages.map(String).join('\n'))
    assert.equal(pages[0].get('cursor'), null)
    for (const p of pages.slice(1)) {
      assert.ok(p.get('cursor'), `a later page asks by cursor: ${p}`)
      assert.equal(p.get('offset'), null)
    }
    assert.equal(await page.locator('[data-testid="load-more"]').count(), 0)
  })
})

searchSuite()
patternsSuite()

/** Messages of every log now stored (the live test added some). */
async function currentAll() {
  const res = await fetch(`${base}/api/logs?limit=1000`)
  return (await res.json()).map((l) => l.message)
}
