// Live tail over WebSocket: backoff schedule, row cap, rate meter and a small
// reconnecting client. Framework-free; timers and WebSocket are injectable.

import type { LogEntry } from './api'
import { normalizeLog } from './api'

// ---------------------------------------------------------------- backoff

export interface BackoffOptions {
  /** First retry delay (ms). */
  baseMs?: number
  /** Upper bound (ms). */
  maxMs?: number
  factor?: number
  /** 0..1: fraction of the delay that may be randomly subtracted. */
  jitter?: number
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { baseMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 }

/** Delay before retry number `attempt` (0-based): base * factor^attempt, capped, minus jitter. */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const o = { ...DEFAULT_BACKOFF, ...opts }
  const n = Math.max(0, Math.floor(attempt))
  const raw = Math.min(o.maxMs, o.baseMs * Math.pow(o.factor, n))
  const j = Math.min(1, Math.max(0, o.jitter))
  return Math.round(raw - raw * j * random())
}

export function backoffSchedule(count: number, opts: BackoffOptions = {}): number[] {
  return Array.from({ length: count }, (_, i) => backoffDelay(i, { ...opts, jitter: 0 }))
}

// ---------------------------------------------------------------- row cap

export const DEFAULT_ROW_CAP = 2000

/** Append and drop the oldest rows beyond `cap`. Returns a new array. */
export function appendCapped<T>(rows: readonly T[], incoming: readonly T[], cap: number): { rows: T[]; dropped: number } {
  const limit = Math.max(0, Math.floor(cap))
  const total = rows.length + incoming.length
  const dropped = Math.max(0, total - limit)
  if (dropped === 0) return { rows: rows.concat(incoming), dropped: 0 }
  if (dropped >= rows.length) {
    return { rows: incoming.slice(dropped - rows.length), dropped }
  }
  return { rows: rows.slice(dropped).concat(incoming), dropped }
}

// ---------------------------------------------------------------- rate meter

/** Events per second over a sliding window, bucketed per 100 ms. */
export class RateMeter {
  private readonly windowMs: number
  private buckets: { t: number; n: number }[] = []
  private startedAt: number

  constructor(windowMs = 5000, now: number = Date.now()) {
    this.windowMs = windowMs
    this.startedAt = now
  }

  reset(now: number = Date.now()): void {
    this.buckets = []
    this.startedAt = now
  }

  record(count = 1, now: number = Date.now()): void {
    const t = Math.floor(now / 100) * 100
    const last = this.buckets[this.buckets.length - 1]
    if (last && last.t === t) last.n += count
    else this.buckets.push({ t, n: count })
    this.prune(now)
  }

  private prune(now: number): void {
    const cutoff = now - this.windowMs
    let i = 0
    while (i < this.buckets.length && this.buckets[i].t + 100 <= cutoff) i++
    if (i) this.buckets.splice(0, i)
  }

  /** Events per second. Before a full window has elapsed, divides by the elapsed time (min 1 s). */
  rate(now: number = Date.now()): number {
    this.prune(now)
    const sum = this.buckets.reduce((s, b) => s + b.n, 0)
    const elapsed = Math.min(this.windowMs, Math.max(1000, now - this.startedAt))
    return sum / (elapsed / 1000)
  }
}

export function formatRate(r: number): string {
  if (r === 0) return '0 logs/s'
  if (r < 10) return `${r.toFixed(1)} logs/s`
  return `${Math.round(r).toLocaleString()} logs/s`
}

// ---------------------------------------------------------------- frames

/** Parse one text frame: a log object (or, tolerated, an array of them). */
export function parseFrame(data: unknown): LogEntry[] {
  if (typeof data !== 'string') return []
  let v: unknown
  try {
    v = JSON.parse(data)
  } catch {
    return []
  }
  const list = Array.isArray(v) ? v : [v]
  return list
    .filter((x) => x && typeof x === 'object' && 'message' in (x as object))
    .map((x) => normalizeLog(x as Partial<LogEntry>))
}

// ---------------------------------------------------------------- client

export type LiveStatus = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'stopped'

export interface LiveState {
  status: LiveStatus
  /** Consecutive failed attempts (0 when healthy). */
  attempt: number
  /** When status === 'reconnecting': epoch ms of the next try. */
  retryAt: number | null
  /** Short description of the last problem. */
  lastError: string | null
}

interface SocketLike {
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null
  onerror: ((ev: unknown) => void) | null
  close(code?: number, reason?: string): void
}

export type SocketFactory = (url: string) => SocketLike

export interface LiveClientOptions {
  /** Called at every (re)connect so a new API key or filter is picked up. */
  url: () => string
  onLogs: (logs: LogEntry[]) => void
  onState: (s: LiveState) => void
  /** Connection closed without ever opening (maybe 401): the page may probe the HTTP API. */
  onRejected?: () => void
  socket?: SocketFactory
  backoff?: BackoffOptions
  /** A connection that stayed open this long resets the backoff. */
  stableMs?: number
  now?: () => number
  setTimer?: (fn: () => void, ms: number) => unknown
  clearTimer?: (h: unknown) => void
  random?: () => number
}

export class LiveClient {
  private ws: SocketLike | null = null
  private timer: unknown = null
  private openedAt: number | null = null
  private running = false
  private state: LiveState = { status: 'idle', attempt: 0, retryAt: null, lastError: null }
  private readonly o: Required<Omit<LiveClientOptions, 'onRejected' | 'backoff'>> &
    Pick<LiveClientOptions, 'onRejected' | 'backoff'>

  constructor(opts: LiveClientOptions) {
    this.o = {
      socket: (url) => new WebSocket(url) as unknown as SocketLike,
      stableMs: 5000,
      now: () => Date.now(),
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      random: Math.random,
      ...opts,
    }
  }

  get current(): LiveState {
    return this.state
  }

  private set(patch: Partial<LiveState>): void {
    this.state = { ...this.state, ...patch }
    this.o.onState(this.state)
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.connect()
  }

  stop(): void {
    this.running = false
    this.clearRetry()
    const ws = this.ws
    this.ws = null
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null
      try {
        ws.close(1000, 'client stop')
      } catch {
        /* ignore */
      }
    }
    this.set({ status: 'stopped', retryAt: null })
  }

  /** Drop the current socket and connect again immediately (e.g. filters changed). */
  restart(): void {
    this.stop()
    this.state = { ...this.state, attempt: 0, lastError: null }
    this.start()
  }

  /** Skip the remaining backoff wait. */
  retryNow(): void {
    if (!this.running || this.state.status !== 'reconnecting') return
    this.clearRetry()
    this.connect()
  }

  private clearRetry(): void {
    if (this.timer !== null) {
      this.o.clearTimer(this.timer)
      this.timer = null
    }
  }

  private connect(): void {
    this.clearRetry()
    this.openedAt = null
    this.set({ status: 'connecting', retryAt: null })
    let ws: SocketLike
    try {
      ws = this.o.socket(this.o.url())
    } catch (e) {
      this.scheduleRetry(e instanceof Error ? e.message : 'could not open WebSocket')
      return
    }
    this.ws = ws
    ws.onopen = () => {
      if (this.ws !== ws) return
      this.openedAt = this.o.now()
      this.set({ status: 'open', lastError: null })
    }
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return
      const logs = parseFrame(ev.data)
      if (logs.length) this.o.onLogs(logs)
    }
    ws.onerror = () => {
      /* a close event always follows; handled there */
    }
    ws.onclose = (ev) => {
      if (this.ws !== ws) return
      this.ws = null
      if (!this.running) return
      const wasOpen = this.openedAt !== null
      const stable = wasOpen && this.o.now() - (this.openedAt as number) >= this.o.stableMs
      if (stable) this.state = { ...this.state, attempt: 0 }
      if (!wasOpen) this.o.onRejected?.()
      const why = ev.reason
        ? `closed: ${ev.reason}`
        : wasOpen
          ? `connection closed (code ${ev.code})`
          : 'could not connect'
      this.scheduleRetry(why)
    }
  }

  private scheduleRetry(reason: string): void {
    if (!this.running) return
    const attempt = this.state.attempt
    const delay = backoffDelay(attempt, this.o.backoff, this.o.random)
    this.set({ status: 'reconnecting', attempt: attempt + 1, retryAt: this.o.now() + delay, lastError: reason })
    this.timer = this.o.setTimer(() => {
      this.timer = null
      if (this.running) this.connect()
    }, delay)
  }
}
