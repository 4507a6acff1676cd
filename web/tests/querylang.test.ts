import { describe, expect, it } from 'vitest'
import {
  activeValues,
  addTerm,
  attribute,
  builtin,
  fieldFromReference,
  fieldKey,
  fieldReference,
  fieldTerm,
  formatValue,
  quote,
  splitAtColumn,
  splitTopLevel,
  termState,
  toggleTerm,
} from '../src/querylang'

describe('quoting values', () => {
  it('leaves plain values bare', () => {
    expect(formatValue('checkout')).toBe('checkout')
    expect(formatValue('eu-west-1')).toBe('eu-west-1')
    expect(formatValue('500')).toBe('500')
    expect(formatValue('api-7f.x/y@z+1')).toBe('api-7f.x/y@z+1')
    expect(formatValue('Zürich')).toBe('Zürich')
  })

  it.each([
    ['two words', '"two words"'],
    ['say "hi"', '"say \\"hi\\""'],
    ['pay*', '"pay*"'], // a bare * would be a wildcard
    ['*', '"*"'], // a bare * would mean "present"
    ['http://x:80/a', '"http://x:80/a"'],
    ['C:\\temp', '"C:\\\\temp"'],
    ['a\\"b', '"a\\\\\\"b"'],
    ['(x)', '"(x)"'],
    ['>=5', '">=5"'],
    ['~x', '"~x"'],
    ['', '""'],
    ['OR', '"OR"'],
    ['tab\there', '"tab\there"'],
  ])('quotes %j as %s', (value, written) => {
    expect(formatValue(value)).toBe(written)
  })

  it('quote escapes only quotes and backslashes', () => {
    expect(quote('a "b" \\ c * :')).toBe('"a \\"b\\" \\\\ c * :"')
  })
})

describe('field keys', () => {
  it('names built-in fields plainly', () => {
    expect(fieldKey(builtin('level'))).toBe('level')
    expect(fieldKey(builtin('service'))).toBe('service')
  })

  it('writes attributes bare when they can be, quoted otherwise', () => {
    expect(fieldKey(attribute('region'))).toBe('region')
    expect(fieldKey(attribute('http.status'))).toBe('http.status')
    expect(fieldKey(attribute('k8s.pod.name'))).toBe('k8s.pod.name')
    expect(fieldKey(attribute('a/b_c-d'))).toBe('a/b_c-d')
    expect(fieldKey(attribute('my key'))).toBe('"my key"')
    expect(fieldKey(attribute('a:b'))).toBe('"a:b"')
    expect(fieldKey(attribute('say"x'))).toBe('"say\\"x"')
    expect(fieldKey(attribute('@timestamp'))).toBe('"@timestamp"')
    // A leading - would read as a negation.
    expect(fieldKey(attribute('-x'))).toBe('"-x"')
  })

  it('marks attributes named like a built-in field with @', () => {
    expect(fieldKey(attribute('level'))).toBe('@level')
    expect(fieldKey(attribute('id'))).toBe('@id')
    expect(fieldKey(attribute('message'))).toBe('@message')
    expect(fieldKey(attribute('Level'))).toBe('Level') // names are case-sensitive
    // `pattern:` is the template term; the attribute needs its @.
    expect(fieldKey(attribute('pattern'))).toBe('@pattern')
  })

  it('round-trips API field references', () => {
    for (const ref of ['level', 'service', 'region', '@level', '@@timestamp', 'my key']) {
      expect(fieldReference(fieldFromReference(ref))).toBe(ref)
    }
    expect(fieldFromReference('@level')).toEqual(attribute('level'))
    expect(fieldFromReference('level')).toEqual(builtin('level'))
    expect(fieldReference(attribute('@timestamp'))).toBe('@@timestamp')
  })
})

describe('terms', () => {
  it('builds include and exclude terms', () => {
    expect(fieldTerm(builtin('service'), 'checkout')).toBe('service:checkout')
    expect(fieldTerm(attribute('region'), 'eu west', true)).toBe('-region:"eu west"')
    expect(fieldTerm(attribute('level'), 'debug')).toBe('@level:debug')
    expect(fieldTerm(attribute('my key'), 'a*b')).toBe('"my key":"a*b"')
  })

  it('appends to a query, grouping a top-level OR', () => {
    expect(addTerm('', 'level:error')).toBe('level:error')
    expect(addTerm('  timeout ', 'level:error')).toBe('timeout level:error')
    expect(addTerm('a OR b', 'c:d')).toBe('(a OR b) c:d')
    expect(addTerm('service:(a OR b)', 'c:d')).toBe('service:(a OR b) c:d')
    expect(addTerm('"x OR y"', 'c:d')).toBe('"x OR y" c:d')
    expect(addTerm('a OR(b)', 'c:d')).toBe('(a OR(b)) c:d')
    // An unbalanced query is kept whole; the server will point at the fault.
    expect(addTerm('"open', 'c:d')).toBe('("open) c:d')
  })
})

describe('splitTopLevel', () => {
  it('keeps quotes and parentheses whole and joins NOT to its term', () => {
    const top = splitTopLevel('a "b c" (d OR e) NOT f:"g h" AND -i OR j')
    expect(top.tokens.map((t) => [t.kind, t.text])).toEqual([
      ['term', 'a'],
      ['term', '"b c"'],
      ['term', '(d OR e)'],
      ['term', 'NOT f:"g h"'],
      ['and', 'AND'],
      ['term', '-i'],
      ['or', 'OR'],
      ['term', 'j'],
    ])
    expect(top.balanced).toBe(true)
    expect(top.hasOr).toBe(true)
  })

  it('honours escapes inside quotes', () => {
    const top = splitTopLevel('"a \\" b" c')
    expect(top.tokens.map((t) => t.text)).toEqual(['"a \\" b"', 'c'])
  })

  it('flags unbalanced text', () => {
    expect(splitTopLevel('(a b').balanced).toBe(false)
    expect(splitTopLevel('a) b').balanced).toBe(false)
    expect(splitTopLevel('"a b').balanced).toBe(false)
    expect(splitTopLevel('lower or and').hasOr).toBe(false) // keywords are upper case only
  })
})

describe('toggling facet terms', () => {
  const svc = builtin('service')
  it('adds, removes and swaps', () => {
    let q = toggleTerm('timeout', svc, 'checkout')
    expect(q).toBe('timeout service:checkout')
    expect(termState(q, svc, 'checkout')).toBe('included')
    q = toggleTerm(q, svc, 'checkout', true)
    expect(q).toBe('timeout -service:checkout')
    expect(termState(q, svc, 'checkout')).toBe('excluded')
    q = toggleTerm(q, svc, 'checkout', true)
    expect(q).toBe('timeout')
    expect(termState(q, svc, 'checkout')).toBeNull()
  })

  it('removes a term with the AND that joined it', () => {
    expect(toggleTerm('a AND service:x AND b', svc, 'x')).toBe('a AND b')
    expect(toggleTerm('service:x AND b', svc, 'x')).toBe('b')
    expect(toggleTerm('NOT service:x b', svc, 'x', true)).toBe('b')
  })

  it('quotes the value it toggles', () => {
    const region = attribute('region')
    const q = toggleTerm('', region, 'eu west*')
    expect(q).toBe('region:"eu west*"')
    expect(termState(q, region, 'eu west*')).toBe('included')
    expect(toggleTerm(q, region, 'eu west*')).toBe('')
  })

  it('never guesses inside an OR: it ANDs the term to the whole query', () => {
    expect(toggleTerm('a OR service:x', svc, 'x')).toBe('(a OR service:x) service:x')
    expect(termState('a OR service:x', svc, 'x')).toBeNull()
  })
})

describe('activeValues', () => {
  it('reads back the values fieldTerm wrote, included or excluded', () => {
    const region = attribute('region')
    const q = 'timeout region:eu -region:"eu west" NOT region:"a \\"b\\" \\\\ c" region:x* region:>5 region:(a OR b) @region:z'
    expect(activeValues(q, region)).toEqual([
      { value: 'eu', exclude: false },
      { value: 'eu west', exclude: true },
      { value: 'a "b" \\ c', exclude: true },
    ])
    expect(activeValues('@level:debug level:error', attribute('level'))).toEqual([{ value: 'debug', exclude: false }])
    expect(activeValues('@level:debug level:error', builtin('level'))).toEqual([{ value: 'error', exclude: false }])
    expect(activeValues('"my key":"a:b"', attribute('my key'))).toEqual([{ value: 'a:b', exclude: false }])
  })

  it('finds nothing under a top-level OR or in an unbalanced query', () => {
    expect(activeValues('region:a OR b', attribute('region'))).toEqual([])
    expect(activeValues('region:a "b', attribute('region'))).toEqual([])
  })

  it('round-trips every value through fieldTerm', () => {
    const values = ['plain', 'two words', 'q"uote', 'back\\slash', 'st*r', 'co:lon', '', 'OR', '(p)', 'ünï', '😀']
    for (const v of values) {
      for (const field of [attribute('k'), attribute('my key'), attribute('level'), builtin('service')]) {
        expect(activeValues(`x ${fieldTerm(field, v, true)} y`, field)).toEqual([{ value: v, exclude: true }])
      }
    }
  })
})

describe('error positions', () => {
  it('splits at a 1-based column', () => {
    expect(splitAtColumn('level:loud', 7)).toEqual({ before: 'level:', at: 'l', after: 'oud', offset: 6 })
    expect(splitAtColumn('abc', 1)).toEqual({ before: '', at: 'a', after: 'bc', offset: 0 })
  })

  it('points past the end when the query ended too early', () => {
    expect(splitAtColumn('level:', 7)).toEqual({ before: 'level:', at: '', after: '', offset: 6 })
    expect(splitAtColumn('ab', 99)).toEqual({ before: 'ab', at: '', after: '', offset: 2 })
  })

  it('counts characters, not UTF-16 units', () => {
    // "😀" is two UTF-16 units but one character; column 3 is the "x".
    const s = splitAtColumn('😀 x:', 3)
    expect(s).toEqual({ before: '😀 ', at: 'x', after: ':', offset: 3 })
    expect(splitAtColumn('é😀(', 3).at).toBe('(')
  })

  it('tolerates nonsense positions', () => {
    expect(splitAtColumn('abc', 0).offset).toBe(0)
    expect(splitAtColumn('abc', -4).at).toBe('a')
    expect(splitAtColumn('abc', Number.NaN).at).toBe('a')
  })
})
