// Browser test of tenants in the dashboard against the REAL OgLogStream
// binary with tenancy on: a read key bound to two tenants reads both, the
// header names them, its switcher narrows the Explorer to one (kept across
// a reload, and used by live tail), and an admin's Overview lists each
// tenant's volume.
//
//   cd web && npm run build && OGLOGSTREAM_BIN=../target/debug/oglogstream node --test e2e/tenants.test.mjs
//
// Every wait is a condition poll (waitFor / waitForFunction); no fixed sleeps.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const BIN = process.env.OGLOGSTREAM_BIN
  ? path.resolve(process.env.OGLOGSTREAM_BIN)
  : path.resolve(WEB_DIR, '../target/debug/oglogstream')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const WAIT = 15_000

const INGEST_KEY = 'e2e-ingest-key-0000001'
const TEAMS_KEY = 'e2e-team-a-and-b-read-key'
const ADMIN_KEY = 'e2e-admin-key-000000001'

let server = null
let output = ''
let workDir = ''
let base = ''
let browser = null

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

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
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${last})\n${output.slice(-4000)}`)
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
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: 'UTC' })
  await context.addInitScript((k) => {
    if (!localStorage.getItem('oglogstream.apiKey')) localStorage.setItem('oglogstream.apiKey', k)
  }, key)
  const page = await context.newPage()
  page.on('pageerror', (e) => console.error('[pageerror]', e.message))
  return { context, page }
}

async function messages(page) {
  return page.getByTestId('log-message').allTextContents()
}

before(async () => {
  for (const [what, file] of [
    ['the OgLogStream binary (set OGLOGSTREAM_BIN or run cargo build)', BIN],
    ['Chromium (set CHROMIUM_PATH)', CHROMIUM],
    ['web/dist/index.html (npm run build)', path.join(WEB_DIR, 'dist', 'index.html')],
  ]) {
    if (!fs.existsSync(file)) throw new Error(`missing ${what}: ${file}`)
  }
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oglogstream-tenants-'))
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  server = spawn(BIN, ['--role', 'all', '--listen', `127.0.0.1:${port}`, '--data-dir', path.join(workDir, 'data')], {
    cwd: workDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NO_COLOR: '1',
      OGLOGSTREAM_TENANTS__ENABLED: 'true',
      OGLOGSTREAM_SECURITY__INGEST_KEYS: `["${INGEST_KEY}"]`,
      OGLOGSTREAM_SECURITY__READ_KEYS: `[{key="${TEAMS_KEY}", tenants=["team-a", "team-b"]}]`,
      OGLOGSTREAM_SECURITY__ADMIN_KEYS: `["${ADMIN_KEY}"]`,
    },
  })
  const keep = (d) => {
    output = (output + d.toString()).slice(-20_000)
  }
  server.stdout.on('data', keep)
  server.stderr.on('data', keep)
  await until('the server', async () => (await fetch(`${base}/health`)).status === 200)

  await send('team-a', [1, 2, 3].map((n) => ({ level: 'info', service: 'shop', message: `team a order ${n}` })))
  await send('team-b', [1, 2].map((n) => ({ level: 'warn', service: 'shop', message: `team b order ${n}` })))
  await send('team-c', [{ level: 'error', service: 'shop', message: 'team c order 1' }])
  await until('every tenant stored', async () =>
    (await stored('team-a')) === 3 && (await stored('team-b')) === 2 && (await stored('team-c')) === 1,
  )

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  })
})

after(async () => {
  await browser?.close().catch(() => {})
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server.once('exit', r))
    server.kill('SIGTERM')
    const timer = setTimeout(() => server.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true })
})

test('a key bound to two tenants reads both, and the switcher narrows the Explorer to one', async () => {
  const { context, page } = await pageWithKey(TEAMS_KEY)
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
  await context.close()
})

test('an admin sees every tenant\'s volume on the Overview', async () => {
  const { context, page } = await pageWithKey(ADMIN_KEY)
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
  await context.close()
})
