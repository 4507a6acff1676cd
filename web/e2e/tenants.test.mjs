// Browser test of tenants in the dashboard against the REAL OgLogStream
// binary with tenancy on: a read key bound to two tenants reads both, the
// header names them, its switcher narrows the Explorer to one (kept across
// a reload, and used by live tail), an admin's Overview lists each
// tenant's volume, and an alert rule made while reading as two tenants
// names the one whose logs it counts.
//
//   cd web && npm run build && OGLOGSTREAM_BIN=../target/debug/oglogstream node --test e2e/tenants.test.mjs
//
// Every wait is a condition poll (waitFor / waitForFunction); no fixed sleeps.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { WAIT, base, newPage, startSuite, stopSuite } from './support.mjs'

const INGEST_KEY = 'e2e-ingest-key-0000001'
const TEAMS_KEY = 'e2e-team-a-and-b-read-key'
const ADMIN_KEY = 'e2e-admin-key-000000001'
const TEAMS_ADMIN_KEY = 'e2e-team-a-and-b-admin-key'

async function until(what, check) {
  const deadline = Date.now() + WAIT
  let last = ''
  for (;;) {
    try {
      const done = await check()
      if (done) return done
    } catch (e) {
      last = e.message
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${last})`)
    await new Promise((r) => setTimeout(r, 100)) // poll interval
  }
}

async function send(tenant, logs) {
  const res = await fetch(`${base}/log/bulk`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${INGEST_KEY}`, 'X-Scope-OrgID': tenant },
    body: JSON.stringify(logs),
  })
  assert.equal(res.status, 202, await res.text())
}

async function stored(tenant) {
  const res = await fetch(`${base}/api/stats`, { headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'X-Scope-OrgID': tenant } })
  return res.ok ? (await res.json()).total_logs : -1
}

/** A page whose dashboard holds `key` (as the key prompt would keep it). */
async function pageWithKey(key) {
  const page = await newPage()
  await page.addInitScript((k) => {
    if (!localStorage.getItem('oglogstream.apiKey')) localStorage.setItem('oglogstream.apiKey', k)
  }, key)
  return page
}

async function messages(page) {
  return page.getByTestId('log-message').allTextContents()
}

before(async () => {
  await startSuite({
    env: {
      OGLOGSTREAM_TENANTS__ENABLED: 'true',
      OGLOGSTREAM_SECURITY__INGEST_KEYS: `["${INGEST_KEY}"]`,
      OGLOGSTREAM_SECURITY__READ_KEYS: `[{key="${TEAMS_KEY}", tenants=["team-a", "team-b"]}]`,
      OGLOGSTREAM_SECURITY__ADMIN_KEYS: `["${ADMIN_KEY}", {key="${TEAMS_ADMIN_KEY}", tenants=["team-a", "team-b"]}]`,
    },
  })
  await send('team-a', [1, 2, 3].map((n) => ({ level: 'info', service: 'shop', message: `team a order ${n}` })))
  await send('team-b', [1, 2].map((n) => ({ level: 'warn', service: 'shop', message: `team b order ${n}` })))
  await send('team-c', [{ level: 'error', service: 'shop', message: 'team c order 1' }])
  await until('every tenant stored', async () =>
    (await stored('team-a')) === 3 && (await stored('team-b')) === 2 && (await stored('team-c')) === 1,
  )

})

after(stopSuite)

test('a key bound to two tenants reads both, and the switcher narrows the Explorer to one', async () => {
  const page = await pageWithKey(TEAMS_KEY)
  await page.goto(`${base}/explorer`)
  const current = page.getByTestId('tenant-current')
  await until('the header to name both tenants', async () => (await current.textContent()).trim() === 'team-a|team-b')
  await until('both tenants\' logs', async () => (await messages(page)).length === 5)
  const both = await messages(page)
  assert.ok(both.every((m) => m.startsWith('team a') || m.startsWith('team b')), `${both}`)

  const switcher = page.getByTestId('tenant-switcher')
  const options = await switcher.locator('option').evaluateAll((os) => os.map((o) => o.value))
  assert.deepEqual(options, ['', 'team-a', 'team-b', 'team-a|team-b'])
  await switcher.selectOption('team-b')
  await until('the header to name team-b', async () => (await current.textContent()).trim() === 'team-b')
  await until('team-b\'s logs only', async () => {
    const shown = await messages(page)
    return shown.length === 2 && shown.every((m) => m.startsWith('team b'))
  })

  // Kept across a reload, and used by live tail (sent as tenant= on the WebSocket).
  await page.reload()
  await until('team-b after a reload', async () => (await current.textContent()).trim() === 'team-b')
  await until('team-b\'s logs after a reload', async () => (await messages(page)).length === 2)
  await page.goto(`${base}/live`)
  await page.waitForSelector('[data-testid="live-status"][data-status="open"]', { timeout: WAIT })
  await send('team-a', [{ level: 'info', service: 'shop', message: 'team a live' }])
  await send('team-b', [{ level: 'info', service: 'shop', message: 'team b live' }])
  await until('team-b\'s live line', async () => (await messages(page)).includes('team b live'))
  assert.ok(!(await messages(page)).includes('team a live'), 'live tail shows only the chosen tenant')
})

test('an admin sees every tenant\'s volume on the Overview', async () => {
  const page = await pageWithKey(ADMIN_KEY)
  await page.goto(`${base}/`)
  await page.getByTestId('tenant-volumes').waitFor({ timeout: WAIT })
  await until('three tenants with their counts', async () => {
    const names = await page.getByTestId('tenant-volume-name').allTextContents()
    const counts = await page.getByTestId('tenant-volume-logs').allTextContents()
    const rows = Object.fromEntries(names.map((n, i) => [n.trim(), counts[i].trim()]))
    // The previous test sent one more line to each of team-a and team-b.
    return rows['team-a'] === '4' && rows['team-b'] === '3' && rows['team-c'] === '1' && names.length === 3
  })
  // A reader is refused the same list.
  const refused = await fetch(`${base}/api/tenants`, { headers: { Authorization: `Bearer ${TEAMS_KEY}` } })
  assert.equal(refused.status, 403)
})

test('an alert rule made while reading as two tenants counts the one the form names', async () => {
  const page = await pageWithKey(TEAMS_ADMIN_KEY)
  await page.goto(`${base}/alerts`)
  await page.getByTestId('new-rule').click()
  const tenant = page.getByTestId('rule-tenant')
  await tenant.waitFor({ timeout: WAIT })
  assert.deepEqual(await tenant.locator('option').evaluateAll((os) => os.map((o) => o.value)), ['team-a', 'team-b'])
  await page.getByTestId('rule-name').fill('team b warnings')
  await page.getByTestId('rule-query').fill('level:warn')
  await page.getByTestId('rule-window').fill('1h')
  const count = page.getByTestId('preview-count')
  // team-b sent two warnings, team-a none: the preview counts the chosen one.
  await tenant.selectOption('team-b')
  await until('the preview of team-b', async () => (await count.textContent())?.trim() === '2')
  await tenant.selectOption('team-a')
  await until('the preview of team-a', async () => (await count.textContent())?.trim() === '0')
  await tenant.selectOption('team-b')
  await until('the preview of team-b again', async () => (await count.textContent())?.trim() === '2')
  await page.getByTestId('rule-save').click()
  await page.getByTestId('rule-form').waitFor({ state: 'detached', timeout: WAIT })

  const rules = async (as) => {
    const res = await fetch(`${base}/api/alerts`, { headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'X-Scope-OrgID': as } })
    assert.equal(res.status, 200)
    return (await res.json()).rules.filter((r) => r.name === 'team b warnings')
  }
  const saved = await rules('team-b')
  assert.equal(saved.length, 1)
  assert.equal(saved[0].tenant, 'team-b')
  assert.equal((await rules('team-a')).length, 0, 'the rule is not team-a\'s')
})
