// The facet sidebar rendered (Vue's server renderer, no browser): id-like
// fields are named on one line as buttons, not listed with values, and every
// facet offers "chart this field".
import { describe, expect, it } from 'vitest'
import { createSSRApp, h } from 'vue'
import { renderToString } from 'vue/server-renderer'
import FacetSidebar from '../src/components/FacetSidebar.vue'
import type { Facets } from '../src/api'

function render(facets: Facets): Promise<string> {
  return renderToString(
    createSSRApp({ render: () => h(FacetSidebar, { facets, fields: [], query: '', loading: false, error: null, custom: false }) }),
  )
}

const FACETS: Facets = {
  total: 30,
  approximate: false,
  facets: [{ field: 'tier', values: [{ value: 'gold', count: 15 }], other: 15, distinct: 2 }],
  id_like: [
    { field: 'request_id', distinct: 29 },
    { field: 'session', distinct: 30 },
  ],
}

describe('FacetSidebar', () => {
  it('names the id-like fields as buttons and lists no values for them', async () => {
    const html = await render(FACETS)
    const named = [...html.matchAll(/data-testid="id-field" data-field="([^"]+)"/g)].map((m) => m[1])
    expect(named).toEqual(['request_id', 'session'])
    const facets = [...html.matchAll(/data-testid="facet" data-field="([^"]+)"/g)].map((m) => m[1])
    expect(facets).toEqual(['tier'])
  })
  it('shows no id line when there are none, and a chart button per facet', async () => {
    const html = await render({ ...FACETS, id_like: [] })
    expect(html).not.toContain('data-testid="id-fields"')
    expect(html.match(/data-testid="facet-chart"/g)).toHaveLength(1)
  })
})
