import { describe, expect, it } from 'vitest'
import {
  levelMix,
  normalizePatterns,
  patternPieces,
  patternState,
  patternTerm,
  sparklinePoints,
  togglePattern,
} from '../src/patterns'

const TEMPLATE = 'connection to <_> refused after <_> retries'

describe('pattern terms', () => {
  it('quote the template as the query language reads it', () => {
    expect(patternTerm(TEMPLATE)).toBe('pattern:"connection to <_> refused after <_> retries"')
    expect(patternTerm('say "hi" to C:\\tmp', true)).toBe('-pattern:"say \\"hi\\" to C:\\\\tmp"')
  })

  it('filter, exclude, swap and remove on click', () => {
    const filtered = togglePattern('level:error', TEMPLATE)
    expect(filtered).toBe(`level:error ${patternTerm(TEMPLATE)}`)
    expect(patternState(filtered, TEMPLATE)).toBe('included')
    const excluded = togglePattern(filtered, TEMPLATE, true)
    expect(excluded).toBe(`level:error ${patternTerm(TEMPLATE, true)}`)
    expect(patternState(excluded, TEMPLATE)).toBe('excluded')
    expect(togglePattern(excluded, TEMPLATE, true)).toBe('level:error')
    expect(togglePattern(togglePattern('', TEMPLATE), TEMPLATE)).toBe('')
    expect(patternState('level:error', TEMPLATE)).toBeNull()
  })

  it('keep a top-level OR whole', () => {
    expect(togglePattern('a OR b', TEMPLATE)).toBe(`(a OR b) ${patternTerm(TEMPLATE)}`)
    expect(patternState(`(a OR b) ${patternTerm(TEMPLATE)}`, TEMPLATE)).toBe('included')
  })
})

describe('a pattern row', () => {
  it('mixes levels in level order as shares of the count', () => {
    const mix = levelMix({ count: 4, levels: { error: 1, info: 3 } })
    expect(mix).toEqual([
      { level: 'info', count: 3, percent: 75 },
      { level: 'error', count: 1, percent: 25 },
    ])
  })

  it('marks the placeholders', () => {
    expect(patternPieces('<_> took <_>')).toEqual([
      { text: '<_>', placeholder: true },
      { text: ' took ', placeholder: false },
      { text: '<_>', placeholder: true },
    ])
  })

  it('draws every step, empty ones at zero, the peak at the top', () => {
    // Four steps of 10 ms from 0: counts 0, 2, 0, 4.
    const points = sparklinePoints([[10, 2], [35, 4]], 0, 40, 10, 30, 10)
    expect(points).toBe('0,10 10,5 20,10 30,0')
    expect(sparklinePoints([], 0, 0, 10, 30, 10)).toBe('')
  })

  it('reads the API answer defensively', () => {
    const answer = normalizePatterns({
      patterns: [{ pattern: 'a <_>', count: 2, levels: { info: 2 }, samples: [[0, 2]] } as never],
      logs: 2,
      step_ms: 1000,
    })
    expect(answer.patterns[0].samples).toEqual([[0, 2]])
    expect(answer.truncated).toBe(false)
    expect(normalizePatterns(null).patterns).toEqual([])
  })
})
