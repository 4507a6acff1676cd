// Browser tests of the Explorer's Patterns tab (issue 21): the matching logs
// grouped into templates with their counts, level mix and sparkline; Filter
// and Exclude write `pattern:"…"` into the query and the Logs tab follows.
// Registered by dashboard.test.mjs so they share its server and browser;
// every search is scoped to the service these tests own.

import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { WAIT, base, newPage, postBulk, shot, waitForMessages, waitForQuery, waitForStored } from './support.mjs'

const REFUSED = 'connection to <_> refused after <_> retries'
const LOGIN = 'user <_> logged in from <_>'
const CACHE = 'cache warmed in <_>'
const LOGS = [
  ...Array.from({ length: 6 }, (_, i) => ({
    level: i % 3 === 0 ? 'warn' : 'error',
    message: `connection to 10.0.0.${i + 1} refused after ${i + 2} retries`,
  })),
  ...Array.from({ length: 4 }, (_, i) => ({ level: 'info', message: `user ${100 + i} logged in from 192.168.1.${i}` })),
  ...Array.from({ length: 2 }, (_, i) => ({ level: 'debug', message: `cache warmed in ${15 * (i + 1)}ms` })),
].map((l) => ({ ...l, service: 'patterned' }))
const messages = (prefix) => LOGS.filter((l) => l.message.startsWith(prefix)).map((l) => l.message)

/** The pattern rows as [pattern, count, state]. */
async function patternRows(page) {
  return page.$$eval('[data-testid="pattern"]', (rows) =>
    rows.map((r) => [
      r.getAttribute('data-pattern'),
      r.querySelector('[data-testid="pattern-count"]')?.textContent?.trim(),
      r.getAttribute('data-state'),
    ]),
  )
}

async function waitForPatterns(page, expected) {
  try {
    await page.waitForFunction(
      (want) => {
        const got = Array.from(document.querySelectorAll('[data-testid="pattern"]')).map((r) => [
          r.getAttribute('data-pattern'),
          r.querySelector('[data-testid="pattern-count"]')?.textContent?.trim(),
          r.getAttribute('data-state'),
        ])
        return JSON.stringify(got) === JSON.stringify(want)
      },
      expected,
      { timeout: WAIT, polling: 50 },
    )
  } catch (e) {
    throw new Error(`patterns did not become ${JSON.stringify(expected)}; saw ${JSON.stringify(await patternRows(page))}\n${e.message}`)
  }
}

export function patternsSuite() {
  describe('patterns: the Explorer tab', { timeout: 120_000 }, () => {
    before(async () => {
      await postBulk(LOGS)
      await waitForStored({ query: 'service:patterned', from: new Date(0).toISOString() }, LOGS.length)
    })

    test('templates with counts, level mix and sparkline; Filter and Exclude drive the search', async () => {
      const page = await newPage()
      await page.goto(`${base}/explorer?query=service%3Apatterned&view=patterns`)
      await waitForPatterns(page, [
        [REFUSED, '6', ''],
        [LOGIN, '4', ''],
        [CACHE, '2', ''],
      ])
      const mix = await page.$$eval('[data-pattern="connection to <_> refused after <_> retries"] [data-testid="pattern-levels"] [data-level]', (els) =>
        els.map((e) => [e.getAttribute('data-level'), e.getAttribute('data-count')]),
      )
      assert.deepEqual(mix, [
        ['warn', '2'],
        ['error', '4'],
      ])
      const line = await page.getAttribute('[data-pattern="cache warmed in <_>"] [data-testid="pattern-sparkline"] polyline', 'points')
      assert.ok(line && line.split(' ').length >= 2, `a sparkline: ${line}`)
      await shot(page, 'explorer-patterns')

      // Filter: the query gains the pattern; the Logs tab shows its logs only.
      await page.click(`[data-pattern="${REFUSED}"] [data-testid="pattern-include"]`)
      await waitForQuery(page, 'query', `service:patterned pattern:"${REFUSED}"`)
      assert.equal(new URL(page.url()).searchParams.get('view'), 'patterns', 'the tab stays')
      await waitForPatterns(page, [[REFUSED, '6', 'included']])
      await page.click('[data-testid="view-logs"]')
      await waitForMessages(page, messages('connection to'))

      // Exclude: every other pattern's logs.
      await page.click('[data-testid="view-patterns"]')
      await page.click(`[data-pattern="${REFUSED}"] [data-testid="pattern-exclude"]`)
      await waitForQuery(page, 'query', `service:patterned -pattern:"${REFUSED}"`)
      await waitForPatterns(page, [
        [LOGIN, '4', ''],
        [CACHE, '2', ''],
      ])
      await page.click('[data-testid="view-logs"]')
      await waitForMessages(page, [...messages('user'), ...messages('cache')])
      assert.equal(new URL(page.url()).searchParams.get('view'), null, 'the Logs tab is the default')
    })
  })
}
