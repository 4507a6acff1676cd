// App-wide credentials: who the dashboard acts as (GET /auth/me: a signed-in
// session, an API key, or open access), its role and what it may do, the
// session's CSRF token for changes, and the API key kept in this browser.
// On a 401 the browser is sent to sign in when sign-in is configured (and no
// key is kept here), else the key prompt opens.
import { reactive } from 'vue'
import { ApiError, createApiClient, localStorageKeyStore, signInUrl, type Me } from './api'

export const keyStore = localStorageKeyStore()

/** Where the tenant chosen in the header is kept (per browser, like the key). */
export const TENANT_STORAGE_KEY = 'oglogstream.tenant'

function storedTenant(): string | null {
  try {
    return globalThis.localStorage?.getItem(TENANT_STORAGE_KEY) || null
  } catch {
    return null
  }
}

export const auth = reactive({
  /** True when the server answered 401: the key prompt is shown. */
  needKey: false,
  /** Prompt opened by the user (to change or clear the key). */
  promptOpen: false,
  hasKey: !!keyStore.get(),
  /** Bumped when the key changes so pages refetch / reconnect. */
  version: 0,
  lastError: '',
  /** `GET /auth/me`'s answer, once known. */
  me: null as Me | null,
  /** The tenant(s) chosen in the header (`a` or `a|b`), sent as X-Scope-OrgID; null: the server's choice. */
  tenant: storedTenant(),
})

/** Sends the browser to sign in, back to where it is afterwards. */
export function signIn(): void {
  window.location.assign(signInUrl(window.location.pathname + window.location.search))
}

export const api = createApiClient({
  keyStore,
  csrfToken: () => auth.me?.csrfToken ?? null,
  tenant: () => auth.tenant,
  onUnauthorized: (e) => void unauthorized(e),
})

/** A 401: to the provider when sign-in is how to get in (and no key is kept here), else the key prompt. */
async function unauthorized(e: ApiError): Promise<void> {
  // No tenant named (tenancy on, a key allowed any): the header's switcher
  // says so and offers them; a new key would not help.
  if (e.field === 'X-Scope-OrgID') {
    auth.lastError = e.message
    return
  }
  if (!keyStore.get()) {
    // A page's request may answer before /auth/me has: ask it now.
    const me = auth.me ?? (await api.me().catch(() => null))
    if (me) auth.me = me
    if (me?.signInAvailable) {
      signIn()
      return
    }
  }
  auth.needKey = true
  auth.lastError = e.message
}

/** Asks who we are; sends the browser to sign in when that is how to get in. */
export async function loadMe(): Promise<void> {
  try {
    auth.me = await api.me()
    if (!auth.me.signedIn && auth.me.signInAvailable && !keyStore.get()) signIn()
  } catch (e) {
    // 401 (a stale key or session) is handled by onUnauthorized; anything
    // else leaves the dashboard as it was, the API still deciding.
    if (!(e instanceof ApiError)) auth.lastError = String(e)
  }
}

/** Whether the current role may do this (`alerts.write`, ...); unknown yet: yes, the server decides. */
export function can(permission: string): boolean {
  return auth.me?.permissions[permission] ?? true
}

/** Signs out here, then at the provider where it offers that. */
export async function signOut(): Promise<void> {
  const next = await api.logout()
  auth.me = null
  window.location.assign(next)
}

export function saveApiKey(key: string | null): void {
  const k = key?.trim() || null
  keyStore.set(k)
  auth.hasKey = !!k
  auth.needKey = false
  auth.promptOpen = false
  auth.version++
  void loadMe()
}

export function currentApiKey(): string | null {
  return keyStore.get()
}

/** Reads as these tenants from now on (null: as the key or sign-in decides); pages refetch. */
export function chooseTenant(tenant: string | null): void {
  const t = tenant?.trim() || null
  auth.tenant = t
  try {
    if (t) globalThis.localStorage?.setItem(TENANT_STORAGE_KEY, t)
    else globalThis.localStorage?.removeItem(TENANT_STORAGE_KEY)
  } catch {
    /* private mode: this page only */
  }
  auth.version++
  void loadMe()
}
