import { describe, expect, it } from 'vitest'
import { CONTEXT_MAX, contextFromQuery, contextParams, contextToQuery, widen } from '../src/context'

describe('context page URL state', () => {
  it('defaults to 20 each side of the same service', () => {
    const s = contextFromQuery({})
    expect(s).toEqual({ before: 20, after: 20, scope: 'service', query: '' })
    expect(contextToQuery(s)).toEqual({})
    expect(contextParams(s)).toEqual({ before: 20, after: 20, scope: undefined, query: undefined })
  })

  it('round-trips through URLSearchParams', () => {
    const s = { before: 60, after: 0, scope: 'all' as const, query: 'region:"eu west" -level:debug' }
    const sp = new URLSearchParams(contextToQuery(s))
    expect(contextFromQuery(Object.fromEntries(sp.entries()))).toEqual(s)
    expect(contextParams(s)).toEqual({ before: 60, after: 0, scope: 'all', query: 'region:"eu west" -level:debug' })
  })

  it('keeps counts within the API bounds and ignores junk', () => {
    expect(contextFromQuery({ before: '9999', after: '-3', scope: 'everything' })).toEqual({
      before: CONTEXT_MAX,
      after: 20,
      scope: 'service',
      query: '',
    })
    expect(contextFromQuery({ before: '1e3', after: ' 7 ' })).toMatchObject({ before: 20, after: 7 })
  })

  it('widens one side by a step, up to the bound', () => {
    const s = contextFromQuery({ before: '490' })
    expect(widen(s, 'before').before).toBe(CONTEXT_MAX)
    expect(widen(s, 'after').after).toBe(40)
  })
})
