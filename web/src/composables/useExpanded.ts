// Which rows of a list are expanded. The set is replaced, never changed in
// place, so a shallow ref is enough for the template to follow it.
import { shallowRef, type ShallowRef } from 'vue'

export interface Expanded<K> {
  expanded: ShallowRef<Set<K>>
  /** Expands a collapsed row, collapses an expanded one. */
  toggle: (key: K) => void
  /** Collapses every row but `keys`. */
  reset: (keys?: K[]) => void
}

export function useExpanded<K>(): Expanded<K> {
  const expanded = shallowRef(new Set<K>())
  function toggle(key: K): void {
    const next = new Set(expanded.value)
    if (next.has(key)) next.delete(key)
    else next.add(key)
    expanded.value = next
  }
  function reset(keys: K[] = []): void {
    expanded.value = new Set(keys)
  }
  return { expanded, toggle, reset }
}
