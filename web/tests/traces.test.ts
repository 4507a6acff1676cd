import { describe, expect, it } from 'vitest'
import type { LogEntry } from '../src/api'
import { formatMicros, shortId, timestampMicros, traceLinkOut, traceParams, tracePath, waterfall } from '../src/traces'

function log(id: string, timestamp: string, service: string, span: string | null, level: LogEntry['level'] = 'info'): LogEntry {
  return { id, timestamp, level, message: `m ${id}`, service, attributes: {}, trace_id: 'abc', span_id: span }
}

describe('trace search and links', () => {
  it('asks for every log of the trace, oldest first, with no time range', () => {
    expect(traceParams('4bf92f3577b34da6a3ce929d0e0e4736')).toEqual({ query: 'trace_id:4bf92f3577b34da6a3ce929d0e0e4736', order: 'asc' })
  })
  it('quotes an id the language would read otherwise', () => {
    expect(traceParams('a b:"c"').query).toBe('trace_id:"a b:\\"c\\""')
  })
  it('fills the tracing UI template, URL-encoded, and links nothing without one', () => {
    expect(traceLinkOut('https://tempo.example/explore?traceId={trace_id}', 'ab12')).toBe('https://tempo.example/explore?traceId=ab12')
    expect(traceLinkOut('https://j.example/trace/{trace_id}?x={trace_id}', 'a/b c')).toBe('https://j.example/trace/a%2Fb%20c?x=a%2Fb%20c')
    expect(traceLinkOut(null, 'ab12')).toBeNull()
    expect(traceLinkOut('https://x/{trace_id}', '')).toBeNull()
  })
  it('makes the page path and a short label', () => {
    expect(tracePath('a/b')).toBe('/trace/a%2Fb')
    expect(shortId('4bf92f3577b34da6a3ce929d0e0e4736')).toBe('4bf92f35…')
    expect(shortId('short')).toBe('short')
  })
})

describe('timestampMicros', () => {
  it('keeps the microseconds the API writes', () => {
    expect(timestampMicros('2026-12-07T07:00:00.000250Z') - timestampMicros('2026-12-07T07:00:00.000000Z')).toBe(250)
    expect(timestampMicros('2026-12-07T07:00:01Z')).toBe(Date.parse('2026-12-07T07:00:01Z') * 1000)
    expect(timestampMicros('2026-12-07T08:00:00.5+01:00')).toBe(Date.parse('2026-12-07T07:00:00Z') * 1000 + 500_000)
    expect(Number.isNaN(timestampMicros('yesterday'))).toBe(true)
  })
})

describe('waterfall', () => {
  const logs = [
    log('4', '2026-12-07T07:00:00.900000Z', 'payments', 's3', 'error'),
    log('1', '2026-12-07T07:00:00.000000Z', 'gateway', 's1'),
    log('2', '2026-12-07T07:00:00.100000Z', 'checkout', 's2'),
    log('3', '2026-12-07T07:00:00.400000Z', 'checkout', 's2'),
    log('5', '2026-12-07T07:00:01.000000Z', 'gateway', 's1'),
    log('6', '2026-12-07T07:00:00.500000Z', 'checkout', null),
  ]
  const w = waterfall(logs)

  it('spans the trace from its first log to its last', () => {
    expect(w.duration).toBe(1_000_000)
    expect(w.unspanned).toBe(1)
  })
  it('draws one bar per span from its first to its last log, in time order, labelled with its services', () => {
    expect(w.spans.map((s) => [s.spanId, s.services, s.logs, s.start, s.end])).toEqual([
      ['s1', ['gateway'], 2, 0, 1_000_000],
      ['s2', ['checkout'], 2, 100_000, 400_000],
      ['s3', ['payments'], 1, 900_000, 900_000],
    ])
    expect(w.spans[0]).toMatchObject({ left: 0, width: 100 })
    expect(w.spans[1].left).toBeCloseTo(10)
    expect(w.spans[1].width).toBeCloseTo(30)
  })
  it('keeps a one-log span visible', () => {
    expect(w.spans[2].width).toBeGreaterThan(0)
    expect(w.spans[2].left + w.spans[2].width).toBeLessThanOrEqual(100)
  })
  it('lists every service of a span shared across services', () => {
    const shared = waterfall([log('a', '2026-12-07T07:00:00Z', 'a', 'x'), log('b', '2026-12-07T07:00:01Z', 'b', 'x')])
    expect(shared.spans).toHaveLength(1)
    expect(shared.spans[0].services).toEqual(['a', 'b'])
  })
  it('handles no logs and a trace of one instant', () => {
    expect(waterfall([]).spans).toEqual([])
    const one = waterfall([log('a', '2026-12-07T07:00:00Z', 'a', 'x')])
    expect(one.spans[0]).toMatchObject({ left: 0, width: 100, start: 0, end: 0 })
  })
})

describe('formatMicros', () => {
  it('reads like a person would say it', () => {
    expect(formatMicros(850)).toBe('850 µs')
    expect(formatMicros(12_500)).toBe('12.5 ms')
    expect(formatMicros(250_000)).toBe('250 ms')
    expect(formatMicros(3_200_000)).toBe('3.20 s')
    expect(formatMicros(125_000_000)).toBe('2 min 5 s')
  })
})
