// The query bar rendered (Vue's server renderer, no browser): a refused query
// is shown under the bar with the faulty character marked.
import { describe, expect, it } from 'vitest'
import { createSSRApp, h } from 'vue'
import { renderToString } from 'vue/server-renderer'
import QueryBar from '../src/components/QueryBar.vue'
import type { QueryFault } from '../src/api'

async function render(query: string, fault: QueryFault | null): Promise<string> {
  return renderToString(createSSRApp({ render: () => h(QueryBar, { query, fault }) }))
}

/** The text of the element carrying `data-testid="<id>"` (no nested tags in these). */
function textOf(html: string, id: string): string | null {
  const m = new RegExp(`data-testid="${id}"[^>]*>([^<]*)<`).exec(html)
  return m ? m[1] : null
}

describe('QueryBar error rendering', () => {
  it('marks the character at the reported column', async () => {
    const html = await render('service:checkout level:loud', { message: 'unknown level "loud"', position: 24 })
    expect(html).toContain('data-testid="query-error"')
    expect(html).toContain('data-position="24"')
    expect(html).toContain('role="alert"')
    expect(textOf(html, 'query-error-mark')).toBe('l')
    // The text before the mark is the query up to column 23.
    expect(html).toMatch(/At column 24: <\/span>service:checkout level:<mark[^>]*>l<\/mark>oud<\/p>/)
    expect(html).toContain('aria-invalid="true"')
    expect(html).toContain('aria-describedby="query-error"')
  })

  it('counts columns in characters and marks the end when the query stops early', async () => {
    const emoji = await render('😀 (a', { message: 'expected )', position: 3 })
    expect(textOf(emoji, 'query-error-mark')).toBe('(')
    const end = await render('level:', { message: 'expected a value after level:', position: 7 })
    expect(textOf(end, 'query-error-mark')).toBe('\u00a0')
  })

  it('escapes the query and the message', async () => {
    const html = await render('<b>x</b>:', { message: '<i>bad</i>', position: 1 })
    expect(html).not.toContain('<b>')
    expect(html).not.toContain('<i>bad')
    expect(html).toContain('&lt;i&gt;bad&lt;/i&gt;')
  })

  it('shows no error without a fault, and only the message without a position', async () => {
    const clean = await render('level:error', null)
    expect(clean).not.toContain('query-error')
    expect(clean).toContain('aria-invalid="false"')
    const noPos = await render('x', { message: 'too slow', position: null })
    expect(noPos).toContain('too slow')
    expect(noPos).not.toContain('query-error-mark')
  })
})
