// Alerts: the /api/alerts client, the rule form's draft <-> JSON body, and
// display helpers. Pure apart from the client calls, which take the app's
// API client (so tests pass one with a mocked fetch).

import { reactive } from 'vue'
import type { ApiClient } from './api'
import type { Params } from './filters'

export type AlertState = 'inactive' | 'pending' | 'firing'

export interface AlertGroup {
  labels: Record<string, string>
  state: AlertState
  value: number
  active_since?: string
}

/** A rule's own fields: what POST and PUT take. */
export interface RuleBody {
  name: string
  query: string
  window: string
  threshold: number
  group_by: string[]
  for: string
  repeat_interval: string | null
  channels: string[]
  labels: Record<string, string>
  /** Whose logs it counts (tenancy on); absent: the request's one tenant. */
  tenant?: string
}

/** A rule as `GET /api/alerts` lists it. */
export interface AlertRule extends RuleBody {
  id: string
  source: 'config' | 'api'
  read_only: boolean
  state: AlertState
  last_value: number | null
  last_evaluation: string | null
  groups: AlertGroup[]
  error: string | null
}

export interface AlertChannel {
  name: string
  kind: 'slack' | 'webhook' | 'pagerduty'
  url: string
  source: 'config' | 'api'
  read_only: boolean
}

export interface AlertsOverview {
  rules: AlertRule[]
  channels: AlertChannel[]
  firing: number
  evaluation_interval: string
}

export type DeliveryState = 'pending' | 'delivered' | 'failed'

export interface AlertNotification {
  id: string
  created: string
  rule_id: string
  rule_name: string
  channel: string
  status: 'firing' | 'resolved'
  change: 'fired' | 'repeated' | 'resolved' | null
  test: boolean
  group: Record<string, string>
  group_text: string
  value: number
  threshold: number
  delivery: DeliveryState
  attempts: number
  error: string | null
  delivered_at: string | null
}

export interface Preview {
  from: string
  to: string
  count: number
  largest_group: number
  groups: { labels: Record<string, string>; value: number }[]
}

export interface TestResult {
  channel: string
  kind: string
  delivery: DeliveryState
  attempts: number
  error: string | null
}

/** The rule form, as text fields. */
export interface RuleDraft {
  name: string
  query: string
  window: string
  threshold: string
  groupBy: string
  forDuration: string
  repeatInterval: string
  channels: string[]
  labels: string
  /** The rule's tenant; '' leaves it to the request (one tenant chosen). */
  tenant: string
}

/** A field of the rule body and what is wrong with it (mirrors the API's 400). */
export interface FieldError {
  field: string
  message: string
}

export function emptyDraft(): RuleDraft {
  return {
    name: '',
    query: 'level:>=error',
    window: '5m',
    threshold: '10',
    groupBy: '',
    forDuration: '0s',
    repeatInterval: '',
    channels: [],
    labels: '',
    tenant: '',
  }
}

/** A new rule's name and query from `/alerts?new=1&name=…&query=…`; null without `new`. */
export function prefillFromQuery(query: Record<string, unknown>): Partial<RuleDraft> | null {
  if (query.new === undefined) return null
  const text = (v: unknown) => (typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : '')
  const out: Partial<RuleDraft> = {}
  const name = text(query.name).trim()
  if (name) out.name = name
  if (typeof query.query === 'string' || Array.isArray(query.query)) out.query = text(query.query).trim()
  return out
}

export function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: FieldError }

/** `severity=critical` lines (or comma separated) -> an object. */
export function parseLabels(text: string): Parsed<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const raw of text.split(/[\n,]/)) {
    const line = raw.trim()
    if (!line) continue
    const eq = line.indexOf('=')
    if (eq <= 0) return { ok: false, error: { field: 'labels', message: `“${line}”: write labels as name=value` } }
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim()
  }
  return { ok: true, value: out }
}

export function draftFromRule(rule: AlertRule): RuleDraft {
  return {
    name: rule.name,
    query: rule.query,
    window: rule.window,
    threshold: String(rule.threshold),
    groupBy: rule.group_by.join(', '),
    forDuration: rule.for || '0s',
    repeatInterval: rule.repeat_interval ?? '',
    channels: [...rule.channels],
    labels: formatLabels(rule.labels),
    tenant: rule.tenant ?? '',
  }
}

/**
 * The tenants a rule may be made for when the dashboard reads as several
 * (`readsAs`, e.g. a key bound to two, or `a|b` chosen in the header): a
 * rule counts one tenant's logs, so the form asks which. Empty when it
 * reads as one tenant (or tenancy is off).
 */
export function ruleTenantChoices(readsAs: string[] | null | undefined): string[] {
  return readsAs && readsAs.length > 1 ? [...readsAs] : []
}

export function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

/** The JSON body for POST/PUT, or the first field the server would refuse anyway. */
export function ruleBody(draft: RuleDraft): Parsed<RuleBody> {
  if (!draft.name.trim()) return { ok: false, error: { field: 'name', message: 'Give the rule a name.' } }
  const threshold = Number(draft.threshold.trim())
  if (draft.threshold.trim() === '' || !Number.isFinite(threshold) || threshold < 0) {
    return { ok: false, error: { field: 'threshold', message: 'The threshold is a count: 0 or more.' } }
  }
  const labels = parseLabels(draft.labels)
  if (!labels.ok) return labels
  return {
    ok: true,
    value: {
      name: draft.name.trim(),
      query: draft.query.trim(),
      window: draft.window.trim(),
      threshold,
      group_by: splitList(draft.groupBy),
      for: draft.forDuration.trim() || '0s',
      repeat_interval: draft.repeatInterval.trim() || null,
      channels: [...draft.channels],
      labels: labels.value,
      ...(draft.tenant ? { tenant: draft.tenant } : {}),
    },
  }
}

/** Query parameters of the preview for a draft. */
export function previewParams(draft: RuleDraft): Params {
  return {
    query: draft.query.trim(),
    window: draft.window.trim() || '5m',
    group_by: splitList(draft.groupBy).join(','),
    ...(draft.tenant ? { tenant: draft.tenant } : {}),
  }
}

/** Whether the rule would fire on this preview (its largest group is above the threshold). */
export function wouldFire(preview: Preview, threshold: string): boolean | null {
  const t = Number(threshold)
  if (threshold.trim() === '' || !Number.isFinite(t)) return null
  return preview.largest_group > t
}

/** `service=checkout, region=eu`; empty for a rule without group_by. */
export function groupText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v === '' ? '(none)' : v}`)
    .join(', ')
}

/** Tailwind classes for a state badge. */
export const STATE_BADGE: Record<AlertState, string> = {
  inactive: 'bg-emerald-50 text-emerald-800 ring-emerald-300 dark:bg-emerald-950 dark:text-emerald-300 dark:ring-emerald-800',
  pending: 'bg-amber-100 text-amber-800 ring-amber-300 dark:bg-amber-950 dark:text-amber-300 dark:ring-amber-800',
  firing: 'bg-red-100 text-red-800 ring-red-300 dark:bg-red-950 dark:text-red-300 dark:ring-red-800',
}

export const DELIVERY_BADGE: Record<DeliveryState, string> = {
  delivered: 'text-emerald-700 dark:text-emerald-400',
  pending: 'text-amber-700 dark:text-amber-400',
  failed: 'text-red-700 dark:text-red-400',
}

/** Firing alert groups as last seen, shared by the header and the Alerts page. */
export const alertSummary = reactive({ firing: 0, known: false })

export function alertsApi(api: ApiClient) {
  return {
    async overview(signal?: AbortSignal): Promise<AlertsOverview> {
      const raw = await api.request<AlertsOverview>('/api/alerts', { signal })
      alertSummary.firing = Number(raw.firing ?? 0)
      alertSummary.known = true
      return {
        rules: Array.isArray(raw.rules) ? raw.rules : [],
        channels: Array.isArray(raw.channels) ? raw.channels : [],
        firing: Number(raw.firing ?? 0),
        evaluation_interval: String(raw.evaluation_interval ?? ''),
      }
    },
    async notifications(limit: number, signal?: AbortSignal): Promise<AlertNotification[]> {
      const raw = await api.request<{ notifications?: AlertNotification[] }>('/api/alerts/notifications', {
        params: { limit },
        signal,
      })
      return Array.isArray(raw.notifications) ? raw.notifications : []
    },
    preview(params: Params, signal?: AbortSignal): Promise<Preview> {
      return api.request<Preview>('/api/alerts/preview', { params, signal })
    },
    createRule(body: RuleBody): Promise<{ id: string }> {
      return api.request<{ id: string }>('/api/alerts/rules', { method: 'POST', body })
    },
    replaceRule(id: string, body: RuleBody): Promise<{ id: string }> {
      return api.request<{ id: string }>(`/api/alerts/rules/${encodeURIComponent(id)}`, { method: 'PUT', body })
    },
    async deleteRule(id: string): Promise<void> {
      // 204: no body, which the JSON client would call a parse error.
      await api
        .request<unknown>(`/api/alerts/rules/${encodeURIComponent(id)}`, { method: 'DELETE' })
        .catch((e: unknown) => {
          if ((e as { kind?: string; status?: number }).kind === 'parse' && (e as { status?: number }).status === 204) return
          throw e
        })
    },
    async testRule(id: string): Promise<TestResult[]> {
      const raw = await api.request<{ results?: TestResult[] }>(`/api/alerts/rules/${encodeURIComponent(id)}/test`, {
        method: 'POST',
      })
      return Array.isArray(raw.results) ? raw.results : []
    },
  }
}
