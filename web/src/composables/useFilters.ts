// Filters live in the URL query string: the route is the single source of truth.
import { computed } from 'vue'
import { useRoute, useRouter } from 'vue-router'
import { filtersFromQuery, filtersKey, filtersToQuery, type Filters, type Level, type RawQuery } from '../filters'
import { attribute, toggleTerm, type FieldRef } from '../querylang'

export function useFilters() {
  const route = useRoute()
  const router = useRouter()
  const filters = computed<Filters>(() => filtersFromQuery(route.query as RawQuery))
  const key = computed(() => filtersKey(filters.value))

  function setFilters(next: Filters, opts: { replace?: boolean } = {}): void {
    if (filtersKey(next) === key.value) return
    // The Explorer's tab (`view`) and the saved view it was opened with
    // (`saved`, which "Update" saves the changes to) are not filters: they stay.
    const kept: Record<string, string> = {}
    for (const name of ['view', 'saved']) {
      const value = route.query[name]
      if (typeof value === 'string') kept[name] = value
    }
    const to = { path: route.path, query: { ...filtersToQuery(next), ...kept } }
    if (opts.replace) void router.replace(to)
    else void router.push(to)
  }

  // What a click on a log row or a facet does to the search: narrow it to a
  // level or a service, or add (again: remove) a `field:value` term, or its
  // exclusion, in the query.
  function filterLevel(level: Level): void {
    setFilters({ ...filters.value, levels: [level] })
  }
  function filterService(service: string): void {
    setFilters({ ...filters.value, service })
  }
  function filterTerm(field: FieldRef, value: string, exclude: boolean): void {
    setFilters({ ...filters.value, query: toggleTerm(filters.value.query, field, value, exclude) })
  }
  function filterAttribute(key: string, value: string, exclude: boolean): void {
    filterTerm(attribute(key), value, exclude)
  }

  return { filters, key, setFilters, filterLevel, filterService, filterTerm, filterAttribute }
}
