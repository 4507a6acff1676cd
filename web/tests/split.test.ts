import { describe, expect, it } from 'vitest'
import type { Histogram, SplitHistogram } from '../src/api'
import { MISSING_COLOR, OTHER_COLOR, SPLIT_COLORS, chartOf, splitOptions, splitParam } from '../src/split'

const frame = { from: '2026-12-07T00:00:00Z', to: '2026-12-07T02:00:00Z', interval: '1h', interval_ms: 3_600_000 }

describe('chartOf', () => {
  it('stacks the levels of the plain histogram in their order', () => {
    const h: Histogram = {
      ...frame,
      buckets: [
        { start: 'a', start_ms: 0, debug: 1, info: 2, warn: 0, error: 3, fatal: 0, total: 6 },
        { start: 'b', start_ms: 3_600_000, debug: 0, info: 4, warn: 1, error: 0, fatal: 0, total: 5 },
      ],
    }
    const c = chartOf(h)
    expect(c.xs).toEqual([0, 3_600_000])
    expect(c.series.map((s) => [s.key, s.counts, s.total])).toEqual([
      ['debug', [1, 0], 1],
      ['info', [2, 4], 6],
      ['warn', [0, 1], 1],
      ['error', [3, 0], 3],
      ['fatal', [0, 0], 0],
    ])
  })

  it('stacks the listed values, then other and missing when there are any', () => {
    const h: SplitHistogram = {
      ...frame,
      by: 'region',
      values: ['eu', 'us'],
      buckets: [
        { start: 'a', start_ms: 0, total: 10, counts: { eu: 5, us: 2 }, other: 1, missing: 2 },
        { start: 'b', start_ms: 3_600_000, total: 3, counts: { eu: 3 }, other: 0, missing: 0 },
      ],
    }
    const c = chartOf(h)
    expect(c.series.map((s) => [s.key, s.label, s.counts, s.rest, s.color])).toEqual([
      ['eu', 'eu', [5, 3], undefined, SPLIT_COLORS[0]],
      ['us', 'us', [2, 0], undefined, SPLIT_COLORS[1]],
      ['other', 'other', [1, 0], 'other', OTHER_COLOR],
      ['missing', 'no region', [2, 0], 'missing', MISSING_COLOR],
    ])
    // The stacks add up to each bucket's total.
    for (let i = 0; i < h.buckets.length; i++) expect(c.series.reduce((n, s) => n + s.counts[i], 0)).toBe(h.buckets[i].total)
  })

  it('leaves out empty rests and names an empty value', () => {
    const h: SplitHistogram = { ...frame, by: 'x', values: [''], buckets: [{ start: 'a', start_ms: 0, total: 1, counts: { '': 1 }, other: 0, missing: 0 }] }
    expect(chartOf(h).series.map((s) => s.label)).toEqual(['(empty)'])
  })
})

describe('split choices', () => {
  it('asks by= for anything but level', () => {
    expect(splitParam('level')).toBeUndefined()
    expect(splitParam('service')).toBe('service')
    expect(splitParam('@level')).toBe('@level')
  })
  it('offers level, service and the attributes, keeping the current one', () => {
    const fields = [
      { field: 'region', count: 5 },
      { field: '@level', count: 1 },
    ]
    expect(splitOptions(fields, 'level').map((o) => o.value)).toEqual(['level', 'service', 'region', '@level'])
    expect(splitOptions([], 'http.status').map((o) => o.value)).toEqual(['level', 'service', 'http.status'])
  })
})
