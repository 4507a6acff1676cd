import { describe, expect, it } from 'vitest'
import {
  DEFAULT_RANGE,
  RANGE_PRESETS,
  defaultFilters,
  filtersFromQuery,
  filtersKey,
  filtersToQuery,
  fromLocalInputValue,
  hasActiveFilters,
  histogramParams,
  parseLevels,
  parseTime,
  queryParams,
  resolveBoundedRange,
  resolveRange,
  searchOnly,
  toLocalInputValue,
  toggleLevel,
  withCustomRange,
  withDisplayOf,
  withPreset,
  type Filters,
} from '../src/filters'

const NOW = Date.parse('2026-11-23T19:30:00.000Z')

describe('parseLevels', () => {
  it('parses comma lists case-insensitively in canonical order', () => {
    expect(parseLevels('ERROR, warn')).toEqual(['warn', 'error'])
  })
  it('accepts repeated keys and arrays, dedupes, drops unknown and empty', () => {
    expect(parseLevels(['error', 'info,error', null as unknown as string, 'bogus', ''])).toEqual(['info', 'error'])
  })
  it('maps common aliases', () => {
    expect(parseLevels('warning,critical')).toEqual(['warn', 'fatal'])
  })
  it('returns [] for nothing', () => {
    expect(parseLevels(undefined)).toEqual([])
    expect(parseLevels(null)).toEqual([])
    expect(parseLevels(',,')).toEqual([])
  })
})

describe('parseTime', () => {
  it('parses RFC 3339 with microseconds', () => {
    expect(parseTime('2026-11-23T19:30:01.123456Z')).toBe(Date.parse('2026-11-23T19:30:01.123Z'))
  })
  it('parses epoch milliseconds', () => {
    expect(parseTime('1790000000000')).toBe(1790000000000)
  })
  it('returns null for junk', () => {
    expect(parseTime('yesterday')).toBeNull()
    expect(parseTime('')).toBeNull()
    expect(parseTime(undefined)).toBeNull()
  })
})

describe('filters <-> URL query', () => {
  it('defaults produce an empty query and parse back to defaults', () => {
    expect(filtersToQuery(defaultFilters())).toEqual({})
    expect(filtersFromQuery({})).toEqual(defaultFilters())
  })

  it('round-trips a preset filter set', () => {
    const f: Filters = { ...defaultFilters(), q: 'time out', levels: ['warn', 'error'], service: 'api', range: '1h' }
    const q = filtersToQuery(f)
    expect(q).toEqual({ q: 'time out', level: 'warn,error', service: 'api', range: '1h' })
    expect(filtersFromQuery(q)).toEqual(f)
  })

  it('round-trips a custom range through URLSearchParams', () => {
    const f: Filters = {
      ...defaultFilters(),
      q: '<script>&x=1',
      levels: ['fatal'],
      range: 'custom',
      from: Date.parse('2026-11-23T19:00:00.000Z'),
      to: Date.parse('2026-11-23T20:00:00.500Z'),
      order: 'asc',
    }
    const sp = new URLSearchParams(filtersToQuery(f))
    expect(sp.get('from')).toBe('2026-11-23T19:00:00.000Z')
    const back = filtersFromQuery(Object.fromEntries(sp.entries()))
    expect(back).toEqual(f)
    expect(filtersKey(back)).toBe(filtersKey(f))
  })

  it('keeps an open-ended custom range', () => {
    const f = filtersFromQuery({ from: '1790000000000' })
    expect(f.range).toBe('custom')
    expect(f.from).toBe(1790000000000)
    expect(f.to).toBeNull()
    expect(filtersToQuery(f)).toEqual({ from: new Date(1790000000000).toISOString() })
  })

  it('from/to win over range; reversed bounds are swapped', () => {
    const f = filtersFromQuery({ range: '15m', from: '2000', to: '1000' })
    expect(f).toMatchObject({ range: 'custom', from: 1000, to: 2000 })
  })

  it('ignores invalid values', () => {
    const f = filtersFromQuery({ range: '3w', level: 'loud', order: 'sideways', from: 'nope' })
    expect(f).toEqual(defaultFilters())
  })

  it('takes the first of repeated scalar keys and trims', () => {
    expect(filtersFromQuery({ q: ['  a ', 'b'], service: [' api '] })).toMatchObject({ q: 'a', service: 'api' })
  })

  it('round-trips the query and the facet fields', () => {
    const f: Filters = {
      ...defaultFilters(),
      query: 'service:"pay ments" AND (a OR -b) "x&y=z#"',
      facets: ['level', '@level', 'http.status', 'my key'],
      range: '7d',
    }
    const sp = new URLSearchParams(filtersToQuery(f))
    expect(sp.get('query')).toBe(f.query)
    expect(sp.get('facets')).toBe('level,@level,http.status,my key')
    const back = filtersFromQuery(Object.fromEntries(sp.entries()))
    expect(back).toEqual(f)
    expect(filtersKey(back)).toBe(filtersKey(f))
    expect(filtersFromQuery({ facets: [' region ,,region', 'level'] }).facets).toEqual(['region', 'level'])
  })

  it('sends the query with every filter', () => {
    const f: Filters = { ...defaultFilters(), query: 'level:>=warn', q: 'x', range: '1h', facets: ['region'] }
    expect(queryParams(f, NOW)).toEqual({ query: 'level:>=warn', q: 'x', from: '2026-11-23T18:30:00.000Z' })
    expect(hasActiveFilters({ ...defaultFilters(), query: 'a' })).toBe(true)
    expect(hasActiveFilters({ ...defaultFilters(), facets: ['a'] })).toBe(false)
  })

  it('hasActiveFilters ignores range and order', () => {
    expect(hasActiveFilters({ ...defaultFilters(), range: '7d', order: 'asc' })).toBe(false)
    expect(hasActiveFilters({ ...defaultFilters(), service: 'x' })).toBe(true)
  })
})

describe('range presets', () => {
  it('defines the four presets', () => {
    expect(RANGE_PRESETS).toEqual({ '15m': 900_000, '1h': 3_600_000, '24h': 86_400_000, '7d': 604_800_000 })
    expect(DEFAULT_RANGE).toBe('24h')
  })

  it.each([
    ['15m', 15 * 60_000],
    ['1h', 3_600_000],
    ['24h', 86_400_000],
    ['7d', 7 * 86_400_000],
  ] as const)('%s resolves to now-%d .. open end', (p, ms) => {
    const f = withPreset(defaultFilters(), p)
    expect(resolveRange(f, NOW)).toEqual({ from: NOW - ms, to: null })
    expect(resolveBoundedRange(f, NOW)).toEqual({ from: NOW - ms, to: NOW })
  })

  it('custom ranges resolve to their bounds', () => {
    const f = withCustomRange(defaultFilters(), 2000.7, 1000.2)
    expect(f).toMatchObject({ range: 'custom', from: 1000, to: 2001 })
    expect(resolveRange(f, NOW)).toEqual({ from: 1000, to: 2001 })
  })

  it('withPreset clears custom bounds', () => {
    const f = withPreset(withCustomRange(defaultFilters(), 1, 2), '1h')
    expect(f).toMatchObject({ range: '1h', from: null, to: null })
  })

  it('builds API params', () => {
    const f: Filters = { ...defaultFilters(), q: 'x', levels: ['error', 'fatal'], service: 'api', range: '1h' }
    expect(queryParams(f, NOW)).toEqual({
      level: 'error,fatal',
      service: 'api',
      q: 'x',
      from: '2026-11-23T18:30:00.000Z',
    })
    expect(histogramParams(f, NOW)).toMatchObject({ from: '2026-11-23T18:30:00.000Z', to: '2026-11-23T19:30:00.000Z' })
  })
})

describe('level toggling and datetime-local helpers', () => {
  it('toggles levels keeping canonical order', () => {
    let f = toggleLevel(defaultFilters(), 'fatal')
    f = toggleLevel(f, 'debug')
    expect(f.levels).toEqual(['debug', 'fatal'])
    expect(toggleLevel(f, 'debug').levels).toEqual(['fatal'])
  })

  it('round-trips local input values to the second', () => {
    const ms = new Date(2026, 10, 23, 19, 5, 7).getTime()
    expect(toLocalInputValue(ms)).toBe('2026-11-23T19:05:07')
    expect(fromLocalInputValue('2026-11-23T19:05:07')).toBe(ms)
    expect(fromLocalInputValue('2026-11-23T19:05')).toBe(ms - 7000)
    expect(fromLocalInputValue('garbage')).toBeNull()
    expect(toLocalInputValue(null)).toBe('')
  })
})

describe('how the Explorer shows a search (split, columns, wrap)', () => {
  it('reads and writes split=, columns= and wrap=1, defaults left out', () => {
    const f = filtersFromQuery({ split: 'region', columns: 'region, http.status,region', wrap: '1' })
    expect(f).toMatchObject({ split: 'region', columns: ['region', 'http.status'], wrap: true })
    expect(filtersToQuery(f)).toEqual({ split: 'region', columns: 'region,http.status', wrap: '1' })
    expect(filtersToQuery(filtersFromQuery({ split: 'level', wrap: '0' }))).toEqual({})
  })
  it('does not count as a change of the search', () => {
    const f = filtersFromQuery({ query: 'x', split: 'region', columns: 'a', wrap: '1', facets: 'level' })
    expect(filtersKey(searchOnly(f))).toBe(filtersKey(searchOnly(filtersFromQuery({ query: 'x' }))))
    expect(filtersKey(f)).not.toBe(filtersKey(filtersFromQuery({ query: 'x' })))
  })
  it('is kept when the filters are cleared', () => {
    const f = filtersFromQuery({ query: 'x', split: 'region', columns: 'a', wrap: '1' })
    expect(withDisplayOf(defaultFilters(), f)).toMatchObject({ query: '', split: 'region', columns: ['a'], wrap: true })
  })
})
