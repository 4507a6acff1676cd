import { chromium } from 'playwright-core'
const base = process.argv[2], out = process.argv[3]
const pages = process.argv.slice(4)
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless','--no-sandbox','--disable-gpu','--no-first-run','--disable-background-networking','--disable-component-update','--disable-sync','--disable-quic'] })
for (const spec of pages) {
  const [p, scheme, w, h] = spec.split('|')
  const ctx = await browser.newContext({ viewport: { width: Number(w||1280), height: Number(h||800) }, colorScheme: scheme || 'light' })
  const page = await ctx.newPage()
  page.on('console', m => console.log('console:', m.type(), m.text()))
  page.on('pageerror', e => console.log('pageerror:', e.message))
  await page.goto(base + p)
  await page.waitForTimeout(1500)
  const name = `${out}/${p.replace(/[^a-z0-9]+/gi,'_')}_${scheme||'light'}_${w||1280}.png`
  await page.screenshot({ path: name, fullPage: !!process.env.FULL })
  console.log(name)
  await ctx.close()
}
await browser.close()
