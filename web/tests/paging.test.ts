import { describe, expect, it } from 'vitest'
import { addPage, nextPageParams, startPaging, type PageOf, type PagerState } from '../src/paging'

type Row = { id: string }
const rows = (...ids: string[]): Row[] => ids.map((id) => ({ id }))

/** A server that pages `all` by cursor (the token is the index of the next row), like /api/logs. */
function cursorServer(all: Row[], withCursor = true) {
  const asked: Record<string, unknown>[] = []
  return {
    asked,
    page(params: Record<string, unknown>): PageOf<Row> {
      asked.push(params)
      const limit = Number(params.limit)
      const start = params.cursor ? Number(String(params.cursor).slice(1)) : Number(params.offset ?? 0)
      const slice = all.slice(start, start + limit)
      const full = slice.length === limit
      return { rows: slice, nextCursor: withCursor && full ? `c${start + limit}` : null }
    },
  }
}

function drain(state: PagerState<Row>, page: (p: Record<string, unknown>) => PageOf<Row>): PagerState<Row> {
  for (let i = 0; i < 100; i++) {
    const p = nextPageParams(state)
    if (!p) return state
    state = addPage(state, page(p))
  }
  throw new Error('paging did not end')
}

describe('cursor paging', () => {
  it('keeps the search params and passes the cursor from the previous page', () => {
    const all = rows(...Array.from({ length: 7 }, (_, i) => `r${i}`))
    const server = cursorServer(all)
    const state = drain(startPaging<Row>({ query: 'level:error', from: 'T', order: 'asc' }, 3), (p) => server.page(p))
    expect(state.rows.map((r) => r.id)).toEqual(all.map((r) => r.id))
    expect(state.done).toBe(true)
    expect(server.asked).toEqual([
      { query: 'level:error', from: 'T', order: 'asc', limit: 3 },
      { query: 'level:error', from: 'T', order: 'asc', limit: 3, cursor: 'c3' },
      { query: 'level:error', from: 'T', order: 'asc', limit: 3, cursor: 'c6' },
    ])
    // Never both cursor and offset: the server refuses that with 400.
    expect(server.asked.every((p) => !('offset' in p))).toBe(true)
  })

  it('stops after an empty page when the last full page still carried a cursor', () => {
    const server = cursorServer(rows('a', 'b', 'c', 'd'))
    const state = drain(startPaging<Row>({}, 2), (p) => server.page(p))
    expect(state.rows.map((r) => r.id)).toEqual(['a', 'b', 'c', 'd'])
    expect(server.asked).toHaveLength(3)
    expect(nextPageParams(state)).toBeNull()
  })

  it('a short first page is the only page', () => {
    const state = addPage(startPaging<Row>({}, 100), { rows: rows('a'), nextCursor: null })
    expect(state.done).toBe(true)
    expect(nextPageParams(state)).toBeNull()
  })

  it('falls back to offset when the server sends no cursor', () => {
    const server = cursorServer(rows('a', 'b', 'c', 'd', 'e'), false)
    const state = drain(startPaging<Row>({ q: 'x' }, 2), (p) => server.page(p))
    expect(state.rows.map((r) => r.id)).toEqual(['a', 'b', 'c', 'd', 'e'])
    expect(server.asked.map((p) => p.offset)).toEqual([undefined, 2, 4])
  })

  it('drops rows already shown (offset pages shift when logs arrive)', () => {
    let state = addPage(startPaging<Row>({}, 2), { rows: rows('a', 'b'), nextCursor: null })
    state = addPage(state, { rows: rows('b', 'c'), nextCursor: null })
    expect(state.rows.map((r) => r.id)).toEqual(['a', 'b', 'c'])
    expect(state.offset).toBe(4)
  })
})
