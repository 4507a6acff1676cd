// Paging through /api/logs on the server's cursor (pure, no Vue).
//
// The first page's params are kept and every later page repeats them with
// `cursor=` from the previous answer's `X-Next-Cursor`: the server checks the
// cursor against the filters and order, so they must not drift (a preset
// range is resolved once, when the search starts). A server that sends no
// cursor is paged by `offset` instead, as before.

import type { Params } from './filters'

export interface PageOf<T> {
  rows: T[]
  nextCursor: string | null
}

export interface PagerState<T> {
  /** The search's params (filters, range, order), fixed for all its pages. */
  params: Params
  limit: number
  rows: T[]
  /** Token for the next page, when the last answer carried one. */
  cursor: string | null
  /** Rows fetched so far by offset (only used when the server sends no cursor). */
  offset: number
  /** No more pages. */
  done: boolean
}

export function startPaging<T>(params: Params, limit: number): PagerState<T> {
  return { params, limit, rows: [], cursor: null, offset: 0, done: false }
}

/** Params for the next page, or null when there is none. */
export function nextPageParams<T>(state: PagerState<T>): Params | null {
  if (state.done) return null
  const p: Params = { ...state.params, limit: state.limit }
  if (state.cursor) p.cursor = state.cursor
  else if (state.offset > 0) p.offset = state.offset
  return p
}

/**
 * The state after a page arrived. Rows already shown are dropped (offset
 * pages shift when logs arrive between them; a cursor never repeats a row,
 * so this costs nothing there).
 */
export function addPage<T extends { id: string }>(state: PagerState<T>, page: PageOf<T>): PagerState<T> {
  const seen = new Set(state.rows.map((r) => r.id))
  const fresh = page.rows.filter((r) => !seen.has(r.id))
  const full = page.rows.length >= state.limit
  return {
    ...state,
    rows: state.rows.concat(fresh),
    cursor: page.nextCursor,
    offset: state.offset + page.rows.length,
    // A cursor means "there may be more"; without one, only a full page does.
    done: page.nextCursor ? page.rows.length === 0 : !full,
  }
}
