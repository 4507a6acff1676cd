// Shared by the browser tests: one real OgLogStream server and one headless
// Chromium for the whole suite, and the helpers that wait on them.
//
// Starts `$OGLOGSTREAM_BIN --role all --listen 127.0.0.1:<free port> --data-dir <temp>`
// and drives /usr/bin/chromium (or $CHROMIUM_PATH) with playwright-core.
// Every wait is a condition poll (waitForFunction / locator.waitFor); no fixed sleeps.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const REPO_DIR = path.resolve(WEB_DIR, '..')
// $OGLOGSTREAM_BIN is taken relative to the current directory; the default relative to web/.
const BIN = process.env.OGLOGSTREAM_BIN
  ? path.resolve(process.env.OGLOGSTREAM_BIN)
  : path.resolve(WEB_DIR, '../target/debug/oglogstream')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const SHOTS = path.join(WEB_DIR, 'test-output', 'screenshots')
export const WAIT = 10_000

let server = null
let serverLog = ''
let dataDir = ''
let browser = null
let context = null
/** The server's origin, set by startSuite. */
export let base = ''
/** Messages of every alert()/confirm() a page opened (none may). */
export const dialogs = []

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

function serverOutput() {
  return serverLog.split('\n').slice(-40).join('\n')
}

async function waitForHealth(deadlineMs) {
  const deadline = Date.now() + deadlineMs
  let last = ''
  while (Date.now() < deadline) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(`server exited early (code ${server.exitCode}, signal ${server.signalCode}):\n${serverOutput()}`)
    }
    try {
      const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) })
      if (res.status === 200) return
      last = `HTTP ${res.status}`
    } catch (e) {
      last = e.message
    }
    await new Promise((r) => setTimeout(r, 100)) // poll interval while the server boots
  }
  throw new Error(`/health did not answer 200 within ${deadlineMs} ms (last: ${last}):\n${serverOutput()}`)
}

/**
 * Starts the server (checking it serves the dashboard) and Chromium; `env`
 * adds to the server's environment (settings such as OGLOGSTREAM_UI__TRACE_URL).
 */
export async function startSuite({ env = {} } = {}) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`OgLogStream binary not found at ${BIN} (set OGLOGSTREAM_BIN or run cargo build)`)
  }
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (set CHROMIUM_PATH)`)
  if (!fs.existsSync(path.join(WEB_DIR, 'dist', 'index.html'))) {
    throw new Error('web/dist/index.html is missing: run `npm run build` in web/ first')
  }

  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oglogstream-e2e-'))
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  server = spawn(BIN, ['--role', 'all', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    cwd: REPO_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', ...env },
  })
  const collect = (d) => {
    serverLog += d.toString()
    if (serverLog.length > 200_000) serverLog = serverLog.slice(-100_000)
  }
  server.stdout.on('data', collect)
  server.stderr.on('data', collect)
  await waitForHealth(30_000)

  // The server must serve the dashboard (SPA) itself, on every client-side route.
  for (const p of ['/', '/explorer', '/live', '/context/some-id', '/trace/abc', '/v/k3x9q2mw7h']) {
    // As a browser asks: `/` without `text/html` in Accept answers as
    // Elasticsearch's root (for the shippers' clients).
    const res = await fetch(base + p, { headers: { Accept: 'text/html' } })
    const html = await res.text()
    assert.equal(res.status, 200, `GET ${p} -> ${res.status}: ${html.slice(0, 200)}`)
    assert.match(html, /<div id="app">/, `GET ${p} did not return the dashboard's index.html`)
  }

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
    ],
  })
}

export async function stopSuite() {
  await context?.close().catch(() => {})
  await browser?.close().catch(() => {})
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server.once('exit', r))
    server.kill('SIGTERM')
    const timer = setTimeout(() => server.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
}

export async function postLog(log) {
  const res = await fetch(`${base}/log`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(log),
  })
  const body = await res.text()
  assert.equal(res.status, 202, `POST /log -> ${res.status} ${body}`)
  const json = JSON.parse(body)
  assert.equal(json.status, 'accepted')
  return json
}

/** Posts logs in one /log/bulk request; every one must be accepted. */
export async function postBulk(logs) {
  const res = await fetch(`${base}/log/bulk`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(logs),
  })
  const body = await res.text()
  assert.equal(res.status, 202, `POST /log/bulk -> ${res.status} ${body}`)
  assert.equal(JSON.parse(body).accepted, logs.length, body)
}

/** Polls /api/logs until `params` match exactly `count` logs (stored, not just queued). */
export async function waitForStored(params, count) {
  const deadline = Date.now() + WAIT
  let got = -1
  while (Date.now() < deadline) {
    const res = await fetch(`${base}/api/logs?${new URLSearchParams({ ...params, limit: '1000' })}`)
    if (res.ok) {
      got = (await res.json()).length
      if (got === count) return
    }
    await new Promise((r) => setTimeout(r, 50)) // poll interval while the pipeline stores the batch
  }
  throw new Error(`${JSON.stringify(params)} matched ${got} logs, not ${count}, within ${WAIT} ms`)
}

/** ms since epoch of an RFC 3339 timestamp with any fractional precision. */
export function tsMs(ts) {
  return Date.parse(ts.replace(/(\.\d{3})\d+/, '$1'))
}

/** A page in a fresh browser context (no storage, no cookies), closing the previous one. */
export async function newPage({ colorScheme = 'light' } = {}) {
  await context?.close()
  context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    colorScheme,
    timezoneId: 'UTC',
    locale: 'en-US',
    acceptDownloads: true,
  })
  const page = await context.newPage()
  page.on('dialog', (d) => {
    dialogs.push(d.message())
    void d.dismiss()
  })
  page.on('pageerror', (e) => console.error('[pageerror]', e.message))
  return page
}

/** Texts of every element with this test id, in DOM order. */
export function texts(page, testid) {
  return page.$$eval(`[data-testid="${testid}"]`, (els) => els.map((e) => e.textContent ?? ''))
}

/** Wait until the rows' messages are exactly `expected` (any order, or in order with `ordered`). */
export async function waitForMessages(page, expected, { row = 'log-row', timeout = WAIT, ordered = false } = {}) {
  const want = ordered ? [...expected] : [...expected].sort()
  try {
    await page.waitForFunction(
      ([row, want, ordered]) => {
        const got = Array.from(document.querySelectorAll(`[data-testid="${row}"] [data-testid="log-message"]`)).map(
          (e) => e.textContent ?? '',
        )
        if (!ordered) got.sort()
        return got.length === want.length && got.every((g, i) => g === want[i])
      },
      [row, want, ordered],
      { timeout, polling: 50 },
    )
  } catch (e) {
    const got = await page
      .$$eval(`[data-testid="${row}"] [data-testid="log-message"]`, (els) => els.map((x) => x.textContent))
      .catch(() => [])
    throw new Error(`rows did not become ${JSON.stringify(want)}; last seen ${JSON.stringify(got)} at ${page.url()}\n${e.message}`)
  }
}

export async function waitForQuery(page, key, value) {
  try {
    await page.waitForFunction(([k, v]) => new URL(location.href).searchParams.get(k) === v, [key, value], {
      timeout: WAIT,
    })
  } catch (e) {
    throw new Error(`URL parameter ${key} did not become ${JSON.stringify(value)}; URL is ${page.url()}\n${e.message}`)
  }
}

export async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true })
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) })
}
