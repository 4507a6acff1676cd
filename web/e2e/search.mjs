// Browser tests of the query language features (issue 12): the query bar and
// its errors, facets (include, exclude, fields), attribute filters, the
// context page and export. Registered by dashboard.test.mjs so they share its
// server and browser; every search is scoped to services these tests own.

import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import {
  WAIT,
  base,
  dialogs,
  newPage,
  postBulk,
  postLog,
  shot,
  texts,
  waitForMessages,
  waitForQuery,
  waitForStored,
} from './support.mjs'

// Values and keys that need quoting in a query: spaces, quotes, `*`, `:`, and
// an attribute named like the built-in field `level`.
const SHOP = [
  { level: 'info', message: 'cart viewed', attributes: { region: 'eu west', 'http.status': '200', note: 'say "hi" * now: ok' } },
  { level: 'warn', message: 'cart slow', attributes: { region: 'eu west', 'http.status': '200', 'my key': 'a:b' } },
  { level: 'error', message: 'payment declined', attributes: { region: 'us-east-1', 'http.status': '502', level: 'shadow' } },
  { level: 'error', message: 'payment timeout', attributes: { region: 'us-east-1', 'http.status': '504' } },
  { level: 'info', message: 'checkout complete', attributes: { region: 'ap*south', 'http.status': '200' } },
  { level: 'debug', message: 'cache warm', attributes: { region: 'ap-south', 'http.status': '200' } },
].map((l) => ({ ...l, service: 'shop' }))
const shop = (pred) => SHOP.filter(pred).map((l) => l.message)

// Context: `ctx i` every second, `noise i` half a second after each, an hour
// ahead of now so no other test's log falls after them.
const CTX_T0 = Date.now() + 3_600_000
const CTX = Array.from({ length: 9 }, (_, i) => [
  { level: 'info', service: 'ctx', message: `ctx ${i}`, timestamp: new Date(CTX_T0 + i * 1000).toISOString() },
  { level: 'info', service: 'noise', message: `noise ${i}`, timestamp: new Date(CTX_T0 + i * 1000 + 500).toISOString() },
]).flat()

/** Clicks a facet control and waits for the query it must write and the rows it must show. */
async function clickFacet(page, field, value, control, query, rows) {
  const row = page.locator(`[data-testid="facet"][data-field="${field}"] [data-testid="facet-value"]`)
  const target = row.and(page.locator(`[data-value="${value.replace(/["\\]/g, '\\$&')}"]`)).locator(`[data-testid="facet-${control}"]`)
  await target.click()
  await waitForQuery(page, 'query', query)
  await waitForMessages(page, rows)
}

export function searchSuite() {
  describe('search: query language, facets, context, export', { timeout: 120_000 }, () => {
    before(async () => {
      await postBulk([...SHOP, ...CTX])
      await waitForStored({ query: 'service:(shop OR ctx OR noise)', from: new Date(0).toISOString() }, SHOP.length + CTX.length)
    })

    test('typing a query, the syntax help, and a bad query pointing at its column', async () => {
      const page = await newPage()
      await page.goto(`${base}/explorer`)
      await page.locator('[data-testid="log-row"]').first().waitFor({ timeout: WAIT })

      // "/" focuses the bar; Enter applies what was typed.
      await page.keyboard.press('/')
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'query-input')
      await page.keyboard.type('service:shop level:>=error')
      await page.keyboard.press('Enter')
      await waitForQuery(page, 'query', 'service:shop level:>=error')
      await waitForMessages(page, shop((l) => l.level === 'error'))

      // The help popover is keyboard reachable, and an example fills the bar.
      await page.focus('[data-testid="query-help-button"]')
      await page.keyboard.press('Enter')
      const help = page.locator('[data-testid="query-help"]')
      await help.waitFor({ timeout: WAIT })
      assert.equal(await page.getAttribute('[data-testid="query-help-button"]', 'aria-expanded'), 'true')
      assert.match(await help.textContent(), /level:>=warn/)
      await help.getByRole('button', { name: 'Use http.status:>=500' }).click()
      await help.waitFor({ state: 'detached', timeout: WAIT })
      assert.equal(await page.inputValue('[data-testid="query-input"]'), 'http.status:>=500')
      await page.keyboard.press('End')
      await page.keyboard.type(' service:shop')
      await page.keyboard.press('Enter')
      await waitForMessages(page, shop((l) => Number(l.attributes['http.status']) >= 500))

      // A query the server cannot read: 400 with the column, shown under the bar.
      await page.fill('[data-testid="query-input"]', 'service:shop level:loud')
      await page.press('[data-testid="query-input"]', 'Enter')
      const error = page.locator('[data-testid="query-error"]')
      await error.waitFor({ timeout: WAIT })
      assert.equal(await error.getAttribute('data-position'), '20')
      assert.match(await error.textContent(), /unknown level "loud"/)
      assert.equal(await page.textContent('[data-testid="query-error-mark"]'), 'l')
      assert.match(await page.textContent('[data-testid="query-error-text"]'), /service:shop level:loud$/)
      assert.equal(await page.getAttribute('[data-testid="query-input"]', 'aria-invalid'), 'true')
      assert.equal(await page.locator('[data-testid="log-row"]').count(), 0)
      await shot(page, 'query-error')

      // Past the end: the mark sits after the last character.
      await page.fill('[data-testid="query-input"]', 'region:(a OR b')
      await page.press('[data-testid="query-input"]', 'Enter')
      await page.waitForSelector('[data-testid="query-error"][data-position="15"]', { timeout: WAIT })

      // Fixing it clears the error.
      await page.fill('[data-testid="query-input"]', 'service:shop level:error')
      await page.press('[data-testid="query-input"]', 'Enter')
      await waitForMessages(page, shop((l) => l.level === 'error'))
      assert.equal(await error.count(), 0)
      assert.deepEqual(dialogs, [])
    })

    test('facets: counts, a click filters, a second control excludes, fields can be added', async () => {
      const page = await newPage()
      await page.goto(`${base}/explorer?query=${encodeURIComponent('service:shop')}`)
      await waitForMessages(page, shop(() => true))
      const region = page.locator('[data-testid="facet"][data-field="region"]')
      await region.waitFor({ timeout: WAIT })
      const counts = await region
        .locator('[data-testid="facet-value"]')
        .evaluateAll((els) => els.map((e) => [e.getAttribute('data-value'), e.getAttribute('data-count')]))
      assert.deepEqual(counts, [
        ['eu west', '2'],
        ['us-east-1', '2'],
        ['ap*south', '1'],
        ['ap-south', '1'],
      ])
      await shot(page, 'facets')

      // `*` in a value is quoted, so it is literal: only `ap*south`, not `ap-south`.
      await clickFacet(page, 'region', 'ap*south', 'include', 'service:shop region:"ap*south"', ['checkout complete'])
      assert.equal(
        await region.locator('[data-value="ap*south"] [data-testid="facet-include"]').getAttribute('aria-pressed'),
        'true',
      )
      // The same click again removes it.
      await clickFacet(page, 'region', 'ap*south', 'include', 'service:shop', shop(() => true))

      // Exclusion, with a space in the value.
      await clickFacet(page, 'region', 'eu west', 'exclude', 'service:shop -region:"eu west"', shop((l) => l.attributes.region !== 'eu west'))
      await clickFacet(page, 'region', 'eu west', 'exclude', 'service:shop', shop(() => true))

      // Quotes, `*` and `:` in a value; a key with a space; an attribute named `level`.
      await clickFacet(page, 'note', 'say "hi" * now: ok', 'include', 'service:shop note:"say \\"hi\\" * now: ok"', ['cart viewed'])
      await clickFacet(page, 'note', 'say "hi" * now: ok', 'include', 'service:shop', shop(() => true))
      await clickFacet(page, 'my key', 'a:b', 'include', 'service:shop "my key":"a:b"', ['cart slow'])
      await clickFacet(page, 'my key', 'a:b', 'include', 'service:shop', shop(() => true))
      await clickFacet(page, 'level', 'info', 'exclude', 'service:shop -level:info', shop((l) => l.level !== 'info'))
      await clickFacet(page, '@level', 'shadow', 'include', 'service:shop -level:info @level:shadow', ['payment declined'])
      await clickFacet(page, '@level', 'shadow', 'include', 'service:shop -level:info', shop((l) => l.level !== 'info'))
      // An excluded value stays listed (it no longer occurs) so it can be switched back.
      await clickFacet(page, 'level', 'info', 'exclude', 'service:shop', shop(() => true))

      // Hide a facet, then add it back from the fields list (/api/fields).
      await page.locator('[data-testid="facet"][data-field="note"] [data-testid="facet-remove"]').click()
      await page.waitForFunction(() => new URL(location.href).searchParams.get('facets')?.split(',').includes('region'), null, {
        timeout: WAIT,
      })
      await page.locator('[data-testid="facet"][data-field="note"]').waitFor({ state: 'detached', timeout: WAIT })
      assert.ok(!new URL(page.url()).searchParams.get('facets').split(',').includes('note'))
      await page.waitForSelector('[data-testid="add-facet"] option[value="note"]', { state: 'attached', timeout: WAIT })
      await page.selectOption('[data-testid="add-facet"]', 'note')
      await page.locator('[data-testid="facet"][data-field="note"]').waitFor({ timeout: WAIT })
      assert.ok(new URL(page.url()).searchParams.get('facets').split(',').includes('note'))
    })

    test('a row expands to its attributes, each a filter', async () => {
      const page = await newPage()
      await page.goto(`${base}/explorer?query=${encodeURIComponent('service:shop')}`)
      await waitForMessages(page, shop(() => true))
      const row = page.locator('[data-testid="log-row"]', { hasText: 'payment timeout' })
      await row.locator('[aria-expanded]').click({ position: { x: 5, y: 5 } })
      await row.locator('[data-testid="attribute"][data-key="http.status"] [data-testid="attribute-filter"]').click()
      await waitForQuery(page, 'query', 'service:shop http.status:504')
      await waitForMessages(page, ['payment timeout'])
      // Shared as a link, the search comes back as it was.
      await page.goto(page.url())
      await waitForMessages(page, ['payment timeout'])
      assert.equal(await page.inputValue('[data-testid="query-input"]'), 'service:shop http.status:504')
    })

    test('"Show context" opens a linkable page with the log between its neighbours', async () => {
      const page = await newPage()
      await page.goto(`${base}/explorer?query=${encodeURIComponent('service:ctx "ctx 4"')}`)
      await waitForMessages(page, ['ctx 4'])
      const row = page.locator('[data-testid="log-row"]').first()
      await row.locator('[aria-expanded]').click({ position: { x: 5, y: 5 } })
      await row.locator('[data-testid="context-link"]').click()
      await page.waitForURL(/\/context\/[^/?]+$/, { timeout: WAIT })
      const contextUrl = page.url()

      const ctx = (i) => `ctx ${i}`
      const noise = (i) => `noise ${i}`
      const listed = () =>
        page.$$eval('[data-testid="context-list"] [data-testid="log-message"]', (els) => els.map((e) => e.textContent))
      const waitForList = async (want) => {
        try {
          await page.waitForFunction(
            (want) =>
              JSON.stringify(
                Array.from(document.querySelectorAll('[data-testid="context-list"] [data-testid="log-message"]')).map(
                  (e) => e.textContent,
                ),
              ) === JSON.stringify(want),
            want,
            { timeout: WAIT, polling: 50 },
          )
        } catch (e) {
          throw new Error(`context did not become ${JSON.stringify(want)}: ${JSON.stringify(await listed())}\n${e.message}`)
        }
      }

      // Same service by default: oldest first, the log highlighted in the middle.
      await waitForList([0, 1, 2, 3, 4, 5, 6, 7, 8].map(ctx))
      assert.equal(await page.textContent('[data-testid="context-log"] [data-testid="log-message"]'), 'ctx 4')
      assert.equal(await page.getAttribute('[data-testid="context-log"]', 'aria-current'), 'true')
      await page.locator('[data-testid="context-start"]').waitFor()
      await page.locator('[data-testid="context-end"]').waitFor()
      await shot(page, 'context')

      // Every service, narrowed by a query: the neighbours interleave.
      await page.click('[data-testid="context-scope-all"]')
      await waitForQuery(page, 'scope', 'all')
      await page.fill('[data-testid="query-input"]', 'service:(ctx OR noise) -"noise 2"')
      await page.press('[data-testid="query-input"]', 'Enter')
      await waitForQuery(page, 'query', 'service:(ctx OR noise) -"noise 2"')
      const interleaved = [ctx(0), noise(0), ctx(1), noise(1), ctx(2), ctx(3), noise(3), ctx(4), noise(4), ctx(5), noise(5), ctx(6), noise(6), ctx(7), noise(7), ctx(8), noise(8)]
      await waitForList(interleaved)

      // The link is the page: open it afresh.
      const shared = page.url()
      const fresh = await newPage()
      await fresh.goto(shared)
      await fresh.waitForFunction(
        (n) => document.querySelectorAll('[data-testid="context-list"] [data-testid="log-message"]').length === n,
        interleaved.length,
        { timeout: WAIT },
      )
      assert.deepEqual(
        await fresh.$$eval('[data-testid="context-list"] [data-testid="log-message"]', (els) => els.map((e) => e.textContent)),
        interleaved,
      )
      assert.ok(shared.startsWith(contextUrl.split('?')[0]))
      assert.equal(await fresh.getAttribute('[data-testid="context-scope-all"]', 'aria-pressed'), 'true')

      // An unknown id says so.
      await fresh.goto(`${base}/context/no-such-log`)
      await fresh.getByText('No such log').waitFor({ timeout: WAIT })
    })

    test('export downloads the current search as CSV and NDJSON', async () => {
      const page = await newPage()
      const query = 'service:shop level:error'
      await page.goto(`${base}/explorer?query=${encodeURIComponent(query)}&order=asc`)
      await waitForMessages(page, shop((l) => l.level === 'error'))

      const download = async (format) => {
        const [file] = await Promise.all([page.waitForEvent('download', { timeout: WAIT }), page.click(`[data-testid="export-${format}"]`)])
        assert.match(file.suggestedFilename(), new RegExp(`\\.${format}$`))
        return fs.readFileSync(await file.path(), 'utf8')
      }

      const csv = await download('csv')
      const lines = csv.trimEnd().split(/\r?\n/)
      assert.equal(lines[0], 'timestamp,level,service,message,id,attributes')
      assert.equal(lines.length, 3, csv)
      assert.match(lines[1], /^[^,]+,error,shop,payment declined,[^,]+,"\{.*""region"":""us-east-1"".*\}"$/)
      assert.match(lines[2], /^[^,]+,error,shop,payment timeout,[^,]+,"\{.*""http.status"":""504"".*\}"$/)

      const ndjson = await download('ndjson')
      const rows = ndjson.trimEnd().split('\n').map((l) => JSON.parse(l))
      assert.deepEqual(
        rows.map((r) => [r.level, r.service, r.message, r.attributes.region]),
        [
          ['error', 'shop', 'payment declined', 'us-east-1'],
          ['error', 'shop', 'payment timeout', 'us-east-1'],
        ],
      )

      // With an API key the dashboard fetches the file itself (a link cannot send the key) and
      // hands it over as a Blob: the same file. (This server needs no key; it ignores the header.)
      const fetched = []
      page.on('request', (r) => {
        if (new URL(r.url()).pathname === '/api/export') fetched.push(r.headers().authorization ?? null)
      })
      await page.evaluate(() => localStorage.setItem('oglogstream.apiKey', 'e2e-key'))
      assert.equal(await download('ndjson'), ndjson)
      assert.deepEqual(fetched, ['Bearer e2e-key'])
    })

    test('live accepts the query, and says when it cannot read one', async () => {
      const page = await newPage()
      await page.goto(`${base}/live?query=${encodeURIComponent('service:live-q -skip')}`)
      await page.waitForSelector('[data-testid="live-status"][data-status="open"]', { timeout: WAIT })
      await postLog({ level: 'info', service: 'live-q', message: 'skip this one' })
      await postLog({ level: 'info', service: 'other', message: 'another service' })
      await postLog({ level: 'info', service: 'live-q', message: 'keep this one' })
      await waitForMessages(page, ['keep this one'], { row: 'live-row' })
      assert.deepEqual(await texts(page, 'log-message'), ['keep this one'])

      await page.fill('[data-testid="query-input"]', 'service:live-q level:(info OR loud)')
      await page.press('[data-testid="query-input"]', 'Enter')
      await page.waitForSelector('[data-testid="query-error"][data-position="31"]', { timeout: WAIT })
      assert.equal(await page.textContent('[data-testid="query-error-mark"]'), 'l')
      await page.waitForSelector('[data-testid="live-status"][data-status="stopped"]', { timeout: WAIT })
    })
  })
}
