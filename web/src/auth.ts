// App-wide API client and API-key state (shows the key prompt on 401).
import { reactive } from 'vue'
import { createApiClient, localStorageKeyStore } from './api'

export const keyStore = localStorageKeyStore()

export const auth = reactive({
  /** True when the server answered 401: the key prompt is shown. */
  needKey: false,
  /** Prompt opened by the user (to change or clear the key). */
  promptOpen: false,
  hasKey: !!keyStore.get(),
  /** Bumped when the key changes so pages refetch / reconnect. */
  version: 0,
  lastError: '',
})

export const api = createApiClient({
  keyStore,
  onUnauthorized: (e) => {
    auth.needKey = true
    auth.lastError = e.message
  },
})

export function saveApiKey(key: string | null): void {
  const k = key?.trim() || null
  keyStore.set(k)
  auth.hasKey = !!k
  auth.needKey = false
  auth.promptOpen = false
  auth.version++
}

export function currentApiKey(): string | null {
  return keyStore.get()
}
