// Renders docs/explorer.png (the README's picture) from the real binary:
//
//   cd web && npm run build && node e2e/docs-screenshot.mjs
//
// Seeds a few hundred plausible logs through /log/bulk, opens the Explorer on a
// search with the facet sidebar and one row expanded, and saves 1280x800.

import path from 'node:path'
import { WEB_DIR, base, newPage, postBulk, startSuite, stopSuite, waitForStored } from './support.mjs'

// A small deterministic generator, so the picture only changes when the UI does.
let seed = 42
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
const pick = (xs) => xs[Math.floor(rand() * xs.length)]

const SERVICES = ['checkout', 'payments', 'auth-api', 'web', 'inventory']
const REGIONS = ['eu-west-1', 'eu-west-1', 'us-east-1', 'us-east-1', 'ap-south-1']
const MESSAGES = {
  info: ['order {n} placed', 'GET /api/cart 200 in {n} ms', 'session refreshed for user {n}', 'stock reserved for sku {n}'],
  warn: ['payment retry {n} after timeout', 'slow query on orders ({n} ms)', 'rate limit close for client {n}'],
  error: ['card processor timeout after {n} ms', 'upstream returned 502 for order {n}', 'connection reset by peer (pool {n})'],
  debug: ['cache miss for key cart:{n}', 'healthcheck ok'],
  fatal: ['ledger unavailable, shutting down'],
}
const STATUS = { info: '200', debug: '200', warn: '429', error: pick(['500', '502', '504']), fatal: '503' }

const now = Date.now()
const logs = Array.from({ length: 400 }, (_, i) => {
  const r = rand()
  const level = r < 0.12 ? 'debug' : r < 0.72 ? 'info' : r < 0.86 ? 'warn' : r < 0.985 ? 'error' : 'fatal'
  const service = pick(SERVICES)
  const n = Math.floor(rand() * 9000) + 1000
  return {
    level,
    service,
    message: pick(MESSAGES[level]).replace('{n}', n),
    timestamp: new Date(now - (400 - i) * 200_000 - Math.floor(rand() * 150_000)).toISOString(),
    attributes: {
      region: pick(REGIONS),
      'http.status': level === 'error' ? pick(['500', '502', '504']) : STATUS[level],
      'k8s.pod.name': `${service}-7f${Math.floor(rand() * 4)}c`,
      trace_id: [rand(), rand()].map((x) => Math.floor(x * 2 ** 24).toString(16).padStart(6, '0')).join(''),
    },
  }
})

await startSuite()
try {
  await postBulk(logs)
  await waitForStored({ from: new Date(0).toISOString() }, logs.length)
  const page = await newPage()
  const query = 'level:>=warn -region:ap-south-1'
  await page.goto(`${base}/explorer?query=${encodeURIComponent(query)}&range=24h&facets=level,service,region,http.status,k8s.pod.name`)
  await page.locator('[data-testid="facet"][data-field="http.status"]').waitFor()
  const row = page.locator('[data-testid="log-row"][data-level="error"]').nth(1)
  await row.locator('[aria-expanded]').click({ position: { x: 5, y: 5 } })
  await row.locator('[data-testid="log-details"]').waitFor()
  await page.evaluate(() => window.scrollTo(0, 0))
  await page.screenshot({ path: path.resolve(WEB_DIR, '../docs/explorer.png') })
  console.log('wrote docs/explorer.png')
} finally {
  await stopSuite()
}
