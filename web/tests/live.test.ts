import { describe, expect, it, vi } from 'vitest'
import {
  LiveClient,
  RateMeter,
  appendCapped,
  backoffDelay,
  backoffSchedule,
  formatRate,
  parseFrame,
  type LiveState,
} from '../src/live'

describe('backoff', () => {
  it('doubles from 500 ms and caps at 30 s', () => {
    expect(backoffSchedule(9)).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000])
  })
  it('honours options', () => {
    expect(backoffSchedule(4, { baseMs: 100, factor: 3, maxMs: 1000 })).toEqual([100, 300, 900, 1000])
  })
  it('jitter only ever shortens the delay, within the jitter fraction', () => {
    expect(backoffDelay(3, { jitter: 0.2 }, () => 0)).toBe(4000)
    expect(backoffDelay(3, { jitter: 0.2 }, () => 0.999999)).toBe(3200)
    expect(backoffDelay(3, { jitter: 0.5 }, () => 0.5)).toBe(3000)
  })
  it('treats negative or fractional attempts sanely', () => {
    expect(backoffDelay(-3, { jitter: 0 })).toBe(500)
    expect(backoffDelay(1.7, { jitter: 0 })).toBe(1000)
  })
})

describe('appendCapped', () => {
  it('appends under the cap', () => {
    expect(appendCapped([1, 2], [3], 5)).toEqual({ rows: [1, 2, 3], dropped: 0 })
  })
  it('drops the oldest rows beyond the cap', () => {
    expect(appendCapped([1, 2, 3, 4], [5, 6], 5)).toEqual({ rows: [2, 3, 4, 5, 6], dropped: 1 })
  })
  it('handles a batch bigger than the cap', () => {
    expect(appendCapped([1, 2], [3, 4, 5, 6, 7], 3)).toEqual({ rows: [5, 6, 7], dropped: 4 })
  })
  it('does not mutate its inputs', () => {
    const a = [1, 2, 3]
    appendCapped(a, [4], 2)
    expect(a).toEqual([1, 2, 3])
  })
  it('keeps exactly 2000 of 2500', () => {
    const r = appendCapped(Array.from({ length: 1500 }, (_, i) => i), Array.from({ length: 1000 }, (_, i) => 1500 + i), 2000)
    expect(r.rows.length).toBe(2000)
    expect(r.rows[0]).toBe(500)
    expect(r.rows[1999]).toBe(2499)
    expect(r.dropped).toBe(500)
  })
})

describe('RateMeter', () => {
  it('averages over the elapsed time until the window is full', () => {
    const m = new RateMeter(5000, 0)
    m.record(10, 500)
    expect(m.rate(1000)).toBe(10) // 10 events over (min) 1 s
    m.record(10, 1500)
    expect(m.rate(2000)).toBe(10) // 20 over 2 s
  })
  it('forgets events older than the window', () => {
    const m = new RateMeter(5000, 0)
    m.record(50, 100)
    for (let t = 1000; t <= 10_000; t += 1000) m.record(5, t)
    // window [5 s, 10 s] in 100 ms buckets: events at 5..10 s = 30 over 5 s; the burst at 0.1 s is gone
    expect(m.rate(10_000)).toBeCloseTo(6, 5)
    expect(m.rate(10_150)).toBeCloseTo(5, 5) // the 5 s bucket has now left the window
    expect(m.rate(20_000)).toBe(0)
  })
  it('reset clears history', () => {
    const m = new RateMeter(5000, 0)
    m.record(100, 10)
    m.reset(20)
    expect(m.rate(1020)).toBe(0)
  })
  it('formats rates', () => {
    expect(formatRate(0)).toBe('0 logs/s')
    expect(formatRate(2.345)).toBe('2.3 logs/s')
    expect(formatRate(42.6)).toBe('43 logs/s')
  })
})

describe('parseFrame', () => {
  it('parses one log object', () => {
    const [l] = parseFrame('{"id":"1","timestamp":"t","level":"warn","message":"m","service":"s"}')
    expect(l).toEqual({ id: '1', timestamp: 't', level: 'warn', message: 'm', service: 's', attributes: {}, trace_id: null, span_id: null })
  })
  it('tolerates arrays and ignores junk', () => {
    expect(parseFrame('[{"message":"a"},{"message":"b"}]').map((l) => l.message)).toEqual(['a', 'b'])
    expect(parseFrame('not json')).toEqual([])
    expect(parseFrame('{"hello":1}')).toEqual([])
    expect(parseFrame(new ArrayBuffer(2))).toEqual([])
  })
})

// ---- reconnecting client with fake sockets and timers

class FakeSocket {
  static all: FakeSocket[] = []
  onopen: ((ev: unknown) => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  onclose: ((ev: { code: number; reason: string }) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null
  closed = false
  constructor(public url: string) {
    FakeSocket.all.push(this)
  }
  close() {
    this.closed = true
  }
  open() {
    this.onopen?.({})
  }
  send(obj: unknown) {
    this.onmessage?.({ data: JSON.stringify(obj) })
  }
  drop(code = 1006, reason = '') {
    this.onclose?.({ code, reason })
  }
}

function setup() {
  FakeSocket.all = []
  let t = 0
  const timers: { at: number; fn: () => void; id: number }[] = []
  let nextId = 1
  const states: LiveState[] = []
  const logs: string[] = []
  const rejected = vi.fn()
  let n = 0
  const client = new LiveClient({
    url: () => `ws://h/ws/live?n=${++n}`,
    onLogs: (ls) => logs.push(...ls.map((l) => l.message)),
    onState: (s) => states.push(s),
    onRejected: rejected,
    socket: (url) => new FakeSocket(url),
    now: () => t,
    random: () => 0,
    setTimer: (fn, ms) => {
      const id = nextId++
      timers.push({ at: t + ms, fn, id })
      return id
    },
    clearTimer: (id) => {
      const i = timers.findIndex((x) => x.id === id)
      if (i >= 0) timers.splice(i, 1)
    },
  })
  const advance = (ms: number) => {
    t += ms
    for (;;) {
      timers.sort((a, b) => a.at - b.at)
      const next = timers[0]
      if (!next || next.at > t) break
      timers.shift()
      next.fn()
    }
  }
  const last = () => FakeSocket.all[FakeSocket.all.length - 1]
  return { client, states, logs, rejected, advance, last, timers, setNow: (v: number) => (t = v) }
}

describe('LiveClient', () => {
  it('connects, delivers messages and reports status', () => {
    const { client, states, logs, last } = setup()
    client.start()
    expect(client.current.status).toBe('connecting')
    last().open()
    expect(client.current.status).toBe('open')
    last().send({ id: '1', timestamp: 't', level: 'info', message: 'hello', service: 's', attributes: {} })
    expect(logs).toEqual(['hello'])
    expect(states.map((s) => s.status)).toEqual(['connecting', 'open'])
  })

  it('reconnects with exponential backoff and a fresh URL', () => {
    const { client, advance, last, rejected } = setup()
    client.start()
    last().drop() // never opened
    expect(rejected).toHaveBeenCalledTimes(1)
    expect(client.current).toMatchObject({ status: 'reconnecting', attempt: 1, retryAt: 500 })
    advance(499)
    expect(FakeSocket.all.length).toBe(1)
    advance(1)
    expect(FakeSocket.all.length).toBe(2)
    expect(last().url).toBe('ws://h/ws/live?n=2')
    last().drop()
    expect(client.current).toMatchObject({ attempt: 2, retryAt: 500 + 1000 })
    advance(1000)
    last().drop()
    expect(client.current.retryAt).toBe(1500 + 2000)
  })

  it('resets the backoff only after a stable connection', () => {
    const { client, advance, last } = setup()
    client.start()
    last().drop()
    advance(500)
    last().open()
    advance(100)
    last().drop(1008, 'too slow') // short-lived: keep backing off
    expect(client.current).toMatchObject({ attempt: 2, lastError: 'closed: too slow' })
    advance(1000)
    last().open()
    advance(6000)
    last().drop()
    expect(client.current.attempt).toBe(1) // stable -> reset, this is the first retry again
  })

  it('stop closes the socket and cancels retries', () => {
    const { client, last, advance, timers } = setup()
    client.start()
    last().drop()
    expect(timers.length).toBe(1)
    client.stop()
    expect(timers.length).toBe(0)
    advance(60_000)
    expect(FakeSocket.all.length).toBe(1)
    expect(client.current.status).toBe('stopped')

    client.start()
    const s = last()
    s.open()
    client.stop()
    expect(s.closed).toBe(true)
    s.drop() // late close event from the old socket is ignored
    expect(client.current.status).toBe('stopped')
  })

  it('restart reconnects at once with attempt reset', () => {
    const { client, last } = setup()
    client.start()
    last().drop()
    client.restart()
    expect(FakeSocket.all.length).toBe(2)
    expect(client.current).toMatchObject({ status: 'connecting', attempt: 0 })
  })

  it('retryNow skips the wait', () => {
    const { client, last } = setup()
    client.start()
    last().drop()
    client.retryNow()
    expect(FakeSocket.all.length).toBe(2)
  })
})
