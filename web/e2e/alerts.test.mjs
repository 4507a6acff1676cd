// Browser test of the Alerts page against the REAL OgLogStream binary: a rule
// created in the form (with its live preview) fires on logs posted over HTTP,
// a local HTTP receiver gets the notification, the page shows the state, the
// value and the delivery, the header shows the firing indicator, and editing
// the rule resolves it.
//
//   cd web && npm run build && OGLOGSTREAM_BIN=../target/debug/oglogstream node --test e2e/alerts.test.mjs
//
// Every wait is a condition poll (waitForFunction / locator.waitFor); no fixed sleeps.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
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
const SHOTS = path.join(WEB_DIR, 'test-output', 'screenshots')
const WAIT = 20_000

let server = null
let serverLog = ''
let dataDir = ''
let base = ''
let browser = null
let receiver = null
const received = []

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

async function until(what, check, within = WAIT) {
  const deadline = Date.now() + within
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${serverLog.split('\n').slice(-20).join('\n')}`)
    await new Promise((r) => setTimeout(r, 100)) // poll interval
  }
}

async function api(method, p, body) {
  const res = await fetch(base + p, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

before(async () => {
  for (const [what, file] of [
    ['the OgLogStream binary (set OGLOGSTREAM_BIN or run cargo build)', BIN],
    ['Chromium (set CHROMIUM_PATH)', CHROMIUM],
    ['web/dist/index.html (npm run build)', path.join(WEB_DIR, 'dist', 'index.html')],
  ]) {
    if (!fs.existsSync(file)) throw new Error(`missing ${what}: ${file}`)
  }
  receiver = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      received.push(JSON.parse(body))
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok')
    })
  })
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r))

  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oglogstream-e2e-alerts-'))
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  server = spawn(BIN, ['--role', 'all', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    cwd: dataDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', OGLOGSTREAM_ALERTS__EVALUATION_INTERVAL: '1s', FLUSH_TIMEOUT: '50ms' },
  })
  const collect = (d) => {
    serverLog = (serverLog + d.toString()).slice(-100_000)
  }
  server.stdout.on('data', collect)
  server.stderr.on('data', collect)
  await until('/health', async () => {
    try {
      return (await fetch(`${base}/health`)).status === 200
    } catch {
      return false
    }
  })
  const channel = await api('POST', '/api/alerts/channels', {
    name: 'e2e-hook',
    kind: 'webhook',
    url: `http://127.0.0.1:${receiver.address().port}/hook`,
  })
  assert.equal(channel.status, 201, JSON.stringify(channel.body))
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  })
})

after(async () => {
  await browser?.close().catch(() => {})
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once('exit', r))
    server.kill('SIGTERM')
    await exited
  }
  receiver?.close()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

test('a rule made in the Alerts page fires, notifies, shows in the header and resolves when edited', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const dialogs = []
  page.on('dialog', (d) => {
    dialogs.push(d.message())
    void d.dismiss()
  })
  const errors = []
  page.on('pageerror', (e) => errors.push(e.message))

  await page.goto(`${base}/alerts`)
  await page.getByText('No alert rules yet').waitFor({ timeout: WAIT })
  assert.equal(await page.getByTestId('alert-indicator').count(), 0, 'nothing fires yet')

  const logs = [1, 2, 3].map((n) => JSON.stringify({ level: 'error', service: 'e2e', message: `boom ${n}` })).join('\n')
  const posted = await fetch(`${base}/log/bulk`, { method: 'POST', headers: { 'Content-Type': 'application/x-ndjson' }, body: logs })
  assert.equal(posted.status, 202)
  // Counted by service: the channel made above is in the audit log too (open access audits its changes).
  await until('the logs to be stored', async () => (await api('GET', '/api/stats')).body.logs_by_service?.e2e === 3)

  await page.getByTestId('new-rule').click()
  await page.getByTestId('rule-name').fill('e2e errors')
  // A query the language refuses: the preview says why.
  await page.getByTestId('rule-query').fill('service:e2e level:loud')
  await page.getByTestId('preview-error').waitFor({ timeout: WAIT })
  assert.match(await page.getByTestId('preview-error').innerText(), /loud/)
  await page.getByTestId('rule-query').fill('service:e2e level:>=error')
  await page.getByTestId('rule-window').fill('1m')
  await page.getByTestId('rule-threshold').fill('2')
  await page.getByTestId('rule-group-by').fill('service')
  await page.waitForFunction(() => document.querySelector('[data-testid="preview-count"]')?.textContent?.trim() === '3', null, {
    timeout: WAIT,
  })
  assert.equal(await page.getByTestId('preview-verdict').innerText(), 'would fire')
  // The checkbox is visually hidden inside its chip: click the chip, as people do.
  await page.locator('label', { has: page.getByTestId('rule-channel-e2e-hook') }).click()
  assert.equal(await page.getByTestId('rule-channel-e2e-hook').isChecked(), true)
  fs.mkdirSync(SHOTS, { recursive: true })
  await page.screenshot({ path: path.join(SHOTS, 'alerts-form.png'), fullPage: true })
  await page.getByTestId('rule-save').click()
  await page.getByTestId('rule-form').waitFor({ state: 'detached', timeout: WAIT })

  const row = page.locator('[data-testid="alert-rule"][data-rule-name="e2e errors"]')
  await page.waitForFunction(
    () => document.querySelector('[data-testid="alert-rule"][data-rule-name="e2e errors"]')?.getAttribute('data-state') === 'firing',
    null,
    { timeout: WAIT },
  )
  assert.equal(await row.getByTestId('rule-last-value').innerText(), '3')
  assert.match(await row.getByTestId('rule-group').first().innerText(), /service=e2e: 3/)
  await page.getByTestId('alert-indicator').waitFor({ timeout: WAIT })
  assert.match(await page.getByTestId('alert-indicator').innerText(), /1 firing/)
  await until('the webhook notification', () => received.length >= 1)
  assert.equal(received[0].status, 'firing')
  assert.equal(received[0].alerts[0].labels.alertname, 'e2e errors')
  await page.waitForFunction(
    () => document.querySelector('[data-testid="notification"][data-status="firing"]')?.getAttribute('data-delivery') === 'delivered',
    null,
    { timeout: WAIT },
  )
  await page.screenshot({ path: path.join(SHOTS, 'alerts-firing.png'), fullPage: true })

  // Raising the threshold resolves it: the receiver and the page say so.
  await row.getByTestId('rule-edit').click()
  assert.equal(await page.getByTestId('rule-name').inputValue(), 'e2e errors')
  await page.getByTestId('rule-threshold').fill('100')
  await page.getByTestId('rule-save').click()
  await page.waitForFunction(
    () => document.querySelector('[data-testid="alert-rule"][data-rule-name="e2e errors"]')?.getAttribute('data-state') === 'inactive',
    null,
    { timeout: WAIT },
  )
  await until('the resolved notification', () => received.length >= 2)
  assert.equal(received[1].status, 'resolved')
  await page.getByTestId('alert-indicator').waitFor({ state: 'detached', timeout: WAIT })
  await page.locator('[data-testid="notification"][data-status="resolved"]').first().waitFor({ timeout: WAIT })

  // Delete asks twice, in the page (no browser dialog).
  await row.getByTestId('rule-delete').click()
  await row.getByTestId('rule-delete').click()
  await row.waitFor({ state: 'detached', timeout: WAIT })
  assert.deepEqual(dialogs, [])
  assert.deepEqual(errors, [])
  await page.close()
})
