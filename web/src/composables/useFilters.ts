// Filters live in the URL query string: the route is the single source of truth.
import { computed } from 'vue'
import { useRoute, useRouter } from 'vue-router'
import { filtersFromQuery, filtersKey, filtersToQuery, type Filters, type RawQuery } from '../filters'

export function useFilters() {
  const route = useRoute()
  const router = useRouter()
  const filters = computed<Filters>(() => filtersFromQuery(route.query as RawQuery))
  const key = computed(() => filtersKey(filters.value))

  function setFilters(next: Filters, opts: { replace?: boolean } = {}): void {
    if (filtersKey(next) === key.value) return
    const to = { path: route.path, query: filtersToQuery(next) }
    if (opts.replace) void router.replace(to)
    else void router.push(to)
  }

  return { filters, key, setFilters }
}
