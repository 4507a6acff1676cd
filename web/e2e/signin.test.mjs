// Browser test of sign-in against the REAL OgLogStream binary and a REAL
// OpenID Connect provider (oidc-provider, tests/clients/oidc_provider.mjs):
// the dashboard sends the browser to the provider's login page, lands back
// signed in as the right user with the right role, hides what the role may
// not do (a viewer is refused an editor action; saved views change only for
// their owner or an editor), and signs out of both.
//
//   cd web && npm run build && OGLOGSTREAM_BIN=../target/debug/oglogstream node --test e2e/signin.test.mjs
//
// Needs tests/clients/node_modules (scripts/install-test-deps.sh). Every wait
// is a condition poll (waitForURL / locator.waitFor); no fixed sleeps.

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
const CLIENTS_DIR = path.resolve(WEB_DIR, '../tests/clients')
const BIN = process.env.OGLOGSTREAM_BIN
  ? path.resolve(process.env.OGLOGSTREAM_BIN)
  : path.resolve(WEB_DIR, '../target/debug/oglogstream')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const SHOTS = path.join(WEB_DIR, 'test-output', 'screenshots')
const WAIT = 20_000

const processes = []
let workDir = ''
let base = ''
let issuer = ''
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

/** Starts a child process, keeping its output for failures. */
function start(command, args, options) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
  child.output = ''
  const keep = (d) => {
    child.output = (child.output + d.toString()).slice(-20_000)
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  processes.push(child)
  return child
}

async function until(what, check, child) {
  const deadline = Date.now() + WAIT
  let last = ''
  for (;;) {
    try {
      if (await check()) return
    } catch (e) {
      last = e.message
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${last})\n${child?.output ?? ''}`)
    await new Promise((r) => setTimeout(r, 100)) // poll interval while it starts
  }
}

before(async () => {
  for (const [what, file] of [
    ['the OgLogStream binary (set OGLOGSTREAM_BIN or run cargo build)', BIN],
    ['Chromium (set CHROMIUM_PATH)', CHROMIUM],
    ['web/dist/index.html (npm run build)', path.join(WEB_DIR, 'dist', 'index.html')],
    ['oidc-provider (scripts/install-test-deps.sh)', path.join(CLIENTS_DIR, 'node_modules', 'oidc-provider')],
  ]) {
    if (!fs.existsSync(file)) throw new Error(`missing ${what}: ${file}`)
  }
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oglogstream-signin-'))
  const [port, providerPort] = [await freePort(), await freePort()]
  base = `http://127.0.0.1:${port}`
  issuer = `http://127.0.0.1:${providerPort}`

  const provider = start(
    'node',
    [
      'oidc_provider.mjs',
      JSON.stringify({
        port: providerPort,
        keys: [{ kty: 'RSA', kid: 'e2e' }],
        clients: [
          {
            client_id: 'oglogstream',
            client_secret: 'e2e-client-secret',
            redirect_uris: [`${base}/auth/callback`],
            post_logout_redirect_uris: [`${base}/`],
          },
        ],
        users: { victor: { groups: ['devs'] }, alice: { groups: ['sre'] } },
      }),
    ],
    { cwd: CLIENTS_DIR },
  )
  await until('the provider', async () => (await fetch(`${issuer}/.well-known/openid-configuration`)).ok, provider)

  const config = path.join(workDir, 'oglogstream.toml')
  fs.writeFileSync(
    config,
    `
[auth]
session_secret = "e2e-session-secret-0123456789abcdef"

[auth.oidc]
issuer = "${issuer}"
client_id = "oglogstream"
client_secret = "e2e-client-secret"
redirect_url = "${base}/auth/callback"
scopes = ["openid", "profile", "email", "groups"]
roles = { viewer = ["devs"], editor = ["sre"], admin = ["platform"] }
`,
  )
  const server = start(BIN, ['--role', 'all', '--listen', `127.0.0.1:${port}`, '--data-dir', path.join(workDir, 'data'), '--config', config], {
    cwd: workDir,
    env: { ...process.env, NO_COLOR: '1' },
  })
  await until('the server', async () => (await fetch(`${base}/health`)).status === 200, server)

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  })
})

after(async () => {
  await browser?.close().catch(() => {})
  for (const child of processes) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
  }
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true })
})

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true })
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) })
}

/** Opens `path` of the dashboard in a fresh browser and signs in as `user` on the provider's page. */
async function signIn(user, pathname) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const page = await context.newPage()
  page.on('pageerror', (e) => console.error('[pageerror]', e.message))
  await page.goto(base + pathname)
  // The dashboard finds nobody signed in and sends the browser to the provider.
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/interaction/`), { timeout: WAIT })
  await page.locator('input[name="login"]').fill(user)
  await page.locator('input[name="password"]').fill('any password')
  await page.locator('button[type="submit"]').click()
  await page.waitForURL((url) => url.href === base + pathname, { timeout: WAIT })
  await page.getByTestId('user-name').waitFor({ timeout: WAIT })
  return { context, page }
}

test('a viewer signs in through the provider, sees no editing controls and is refused an editor action', async () => {
  const { context, page } = await signIn('victor', '/alerts')
  assert.equal((await page.getByTestId('user-name').textContent()).trim(), 'victor')
  assert.equal((await page.getByTestId('user-role').textContent()).trim(), 'viewer')
  await page.getByTestId('alerts-page').waitFor()
  await page.getByTestId('alerts-refresh').waitFor()
  assert.equal(await page.getByTestId('new-rule').count(), 0, 'a viewer has no "New rule" button')
  // The editor's action anyway, as the page's own code would send it (cookie and CSRF token):
  const refused = await page.evaluate(async () => {
    const me = await (await fetch('/auth/me')).json()
    const res = await fetch('/api/alerts/channels', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token },
      body: JSON.stringify({ name: 'nope', kind: 'webhook', url: 'http://127.0.0.1:9/hook' }),
    })
    return { status: res.status, body: await res.json() }
  })
  assert.equal(refused.status, 403, JSON.stringify(refused.body))
  assert.equal(refused.body.field, 'alerts.write')
  await shot(page, 'signin-viewer-alerts')
  await context.close()
})

test('saved views: a viewer changes only their own; an editor changes anyone\'s', async () => {
  const viewer = await signIn('victor', '/explorer')
  const editor = await signIn('alice', '/explorer')
  /** Saves what the Explorer shows under `name` through the Views box; the view's id. */
  async function save(page, name) {
    await page.getByTestId('view-save').click()
    await page.getByTestId('view-name').fill(name)
    await page.getByTestId('view-save-confirm').click()
    await page.getByTestId('view-link').waitFor({ timeout: WAIT })
    return (await page.getByTestId('view-link').inputValue()).split('/v/')[1]
  }
  const victors = await save(viewer.page, 'victor sees')
  const alices = await save(editor.page, 'alice sees')
  // Its owner may change it; a viewer may not start alert rules.
  await viewer.page.getByTestId('view-update').waitFor({ timeout: WAIT })
  assert.equal(await viewer.page.getByTestId('view-alert').count(), 0, 'a viewer has no "Alert on this view"')

  // Someone else's view opens for the viewer, without the controls to change it, and the server refuses a change.
  await viewer.page.goto(`${base}/v/${alices}`)
  await viewer.page.locator(`[data-testid="view-active"][data-view-id="${alices}"]`).waitFor({ timeout: WAIT })
  assert.equal(await viewer.page.getByTestId('view-update').count(), 0)
  assert.equal(await viewer.page.getByTestId('view-delete').count(), 0)
  const refused = await viewer.page.evaluate(async (id) => {
    const me = await (await fetch('/auth/me')).json()
    const res = await fetch(`/api/views/${id}`, { method: 'DELETE', headers: { 'X-CSRF-Token': me.csrf_token } })
    return res.status
  }, alices)
  assert.equal(refused, 403)

  // The editor changes the viewer's view: update, then delete.
  await editor.page.goto(`${base}/v/${victors}`)
  await editor.page.locator(`[data-testid="view-active"][data-view-id="${victors}"]`).waitFor({ timeout: WAIT })
  await editor.page.getByTestId('view-update').click()
  await editor.page.getByTestId('view-message').filter({ hasText: 'Updated' }).waitFor({ timeout: WAIT })
  await editor.page.getByTestId('view-delete').click()
  await editor.page.getByTestId('view-delete').click()
  await editor.page.getByTestId('view-message').filter({ hasText: 'Deleted' }).waitFor({ timeout: WAIT })
  const gone = await editor.page.evaluate(async (id) => (await fetch(`/api/views/${id}`)).status, victors)
  assert.equal(gone, 404)
  await viewer.context.close()
  await editor.context.close()
})

test('an editor signs in, may edit, and signs out of the dashboard and the provider', async () => {
  const { context, page } = await signIn('alice', '/alerts')
  assert.equal((await page.getByTestId('user-role').textContent()).trim(), 'editor')
  await page.getByTestId('new-rule').waitFor({ timeout: WAIT })
  await shot(page, 'signin-editor-alerts')

  await page.getByTestId('sign-out').click()
  // The provider asks to confirm ending its own session too.
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/session/end`), { timeout: WAIT })
  await page.getByRole('button', { name: 'Yes, sign me out' }).click()
  // Back on the dashboard, signed out: it sends the browser to sign in again,
  // and the provider asks for a login (its session ended too).
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/interaction/`), { timeout: WAIT })
  await page.locator('input[name="login"]').waitFor()
  const me = await (await context.request.get(`${base}/auth/me`)).json()
  assert.equal(me.signed_in, false)
  const api = await context.request.get(`${base}/api/logs`)
  assert.equal(api.status(), 401)
  await context.close()
})
