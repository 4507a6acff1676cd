// Light/dark theme: follows prefers-color-scheme until the user toggles; remembered.
import { computed, ref, watchEffect } from 'vue'

export type ThemePref = 'light' | 'dark' | 'system'
export const THEME_STORAGE_KEY = 'oglogstream.theme'

function loadPref(): ThemePref {
  try {
    const v = localStorage.getItem(THEME_STORAGE_KEY)
    return v === 'light' || v === 'dark' ? v : 'system'
  } catch {
    return 'system'
  }
}

const media = typeof window !== 'undefined' && window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null

export const themePref = ref<ThemePref>(loadPref())
const systemDark = ref(media?.matches ?? false)
media?.addEventListener?.('change', (e) => (systemDark.value = e.matches))

export const isDark = computed(() => (themePref.value === 'system' ? systemDark.value : themePref.value === 'dark'))

export function initTheme(): void {
  watchEffect(() => {
    document.documentElement.classList.toggle('dark', isDark.value)
    try {
      if (themePref.value === 'system') localStorage.removeItem(THEME_STORAGE_KEY)
      else localStorage.setItem(THEME_STORAGE_KEY, themePref.value)
    } catch {
      /* ignore */
    }
  })
}

export function toggleTheme(): void {
  const next: ThemePref = isDark.value ? 'light' : 'dark'
  // Toggling back to what the system wants returns to "follow the system".
  themePref.value = next === (systemDark.value ? 'dark' : 'light') ? 'system' : next
}
