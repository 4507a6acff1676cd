// The Explorer's table: attribute columns (`columns=` in the URL) and the
// grid they make. Pure, no Vue: unit-tested in tests/columns.test.ts.
import { MAX_COLUMNS, type Filters } from './filters'

/** The row's grid on wide screens: time, level, service, one track per column, the message. */
export function tableGrid(columns: number): string {
  const extra = columns > 0 ? ` repeat(${columns}, minmax(4rem, 10rem))` : ''
  return `11.5rem 4rem 10rem${extra} minmax(0, 1fr)`
}

/** The filters with `key` shown as the last column (once; at most MAX_COLUMNS). */
export function withColumn(f: Filters, key: string): Filters {
  const k = key.trim()
  if (!k || k.includes(',') || f.columns.includes(k) || f.columns.length >= MAX_COLUMNS) return f
  return { ...f, columns: [...f.columns, k] }
}

export function withoutColumn(f: Filters, key: string): Filters {
  return { ...f, columns: f.columns.filter((c) => c !== key) }
}

/** Attribute keys that can still be added as columns (a key holding a comma cannot be named in `columns=`). */
export function addableColumns(fields: readonly { field: string }[], shown: readonly string[]): string[] {
  return fields.map((f) => f.field).filter((k) => k && !k.includes(',') && !shown.includes(k))
}
