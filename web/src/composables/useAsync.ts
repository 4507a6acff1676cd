// Stale-while-revalidate loader: old data stays visible while a new request runs,
// newer requests win (older in-flight ones are aborted), errors are kept separately.
import { onBeforeUnmount, ref, shallowRef, type Ref, type ShallowRef } from 'vue'
import { describeError, isAbortError } from '../api'

export interface AsyncState<T> {
  data: ShallowRef<T | null>
  error: Ref<string | null>
  /** The error itself (an ApiError carries the status, field and position). */
  failure: ShallowRef<unknown>
  loading: Ref<boolean>
  /** True once the first request finished (successfully or not). */
  settled: Ref<boolean>
  run: () => Promise<void>
  abort: () => void
}

export function useAsync<T>(fn: (signal: AbortSignal) => Promise<T>): AsyncState<T> {
  const data = shallowRef<T | null>(null)
  const error = ref<string | null>(null)
  const failure = shallowRef<unknown>(null)
  const loading = ref(false)
  const settled = ref(false)
  let ctrl: AbortController | null = null

  async function run(): Promise<void> {
    ctrl?.abort()
    const mine = new AbortController()
    ctrl = mine
    loading.value = true
    try {
      const v = await fn(mine.signal)
      if (ctrl !== mine) return
      data.value = v
      error.value = null
      failure.value = null
    } catch (e) {
      if (ctrl !== mine || isAbortError(e)) return
      error.value = describeError(e)
      failure.value = e
    } finally {
      if (ctrl === mine) {
        loading.value = false
        settled.value = true
        ctrl = null
      }
    }
  }

  function abort(): void {
    ctrl?.abort()
    ctrl = null
    loading.value = false
  }

  onBeforeUnmount(abort)
  return { data, error, failure, loading, settled, run, abort }
}
