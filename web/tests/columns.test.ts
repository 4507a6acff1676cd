import { describe, expect, it } from 'vitest'
import { addableColumns, tableGrid, withColumn, withoutColumn } from '../src/columns'
import { MAX_COLUMNS, defaultFilters } from '../src/filters'

describe('columns', () => {
  it('adds a column once, at the end, and removes it', () => {
    const f = withColumn(withColumn(defaultFilters(), 'region'), 'http.status')
    expect(f.columns).toEqual(['region', 'http.status'])
    expect(withColumn(f, 'region')).toBe(f)
    expect(withColumn(f, ' ')).toBe(f)
    expect(withColumn(f, 'a,b')).toBe(f)
    expect(withoutColumn(f, 'region').columns).toEqual(['http.status'])
  })
  it('stops at the most a table shows', () => {
    let f = defaultFilters()
    for (let i = 0; i < MAX_COLUMNS + 3; i++) f = withColumn(f, `k${i}`)
    expect(f.columns).toHaveLength(MAX_COLUMNS)
  })
  it('offers the fields not shown yet', () => {
    expect(addableColumns([{ field: 'region' }, { field: 'a,b' }, { field: 'zone' }], ['zone'])).toEqual(['region'])
  })
  it('gives each column a track between the service and the message', () => {
    expect(tableGrid(0)).toBe('11.5rem 4rem 10rem minmax(0, 1fr)')
    expect(tableGrid(2)).toBe('11.5rem 4rem 10rem repeat(2, minmax(4rem, 10rem)) minmax(0, 1fr)')
  })
})
