// The dashboard's settings from the server (`GET /api/ui`, the `[ui]`
// section), asked once and shared by every page that links out.
import { reactive, watch } from 'vue'
import { api, auth } from './auth'

export const ui = reactive({
  /** `ui.trace_url`: a tracing UI's address with `{trace_id}` in it, or null. */
  traceUrl: null as string | null,
})

let asked: Promise<void> | null = null

/** Asks the server once (again after a failure, or when the key changes). */
export function loadUi(): Promise<void> {
  asked ??= api
    .ui()
    .then((settings) => {
      ui.traceUrl = settings.trace_url
    })
    .catch(() => {
      // Without the settings nothing links out; the next page to ask tries again.
      asked = null
    })
  return asked
}

watch(
  () => auth.version,
  () => {
    asked = null
    void loadUi()
  },
)
