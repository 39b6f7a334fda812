// The loads of the broker rows (bench/broker-rows.ts), each against any MQTT
// broker: fan-out, idle connections, connection rate. Each calls meter.start()
// and meter.stop() around the part that is measured, so the runner can read
// the CPU every process used in exactly that span.
import { readFileSync } from 'node:fs'
import { LoadClient, publishTemplate, type Endpoint } from './load-client.js'

export interface Meter {
  start: () => void
  stop: () => void
}

/** What a load measured: the figure, the operations it stands for (for CPU per operation), and anything wrong. */
export interface LoadResult {
  value: number
  ops: number
  problems: string[]
  /** A short note printed with the row, e.g. the RSS before and after. */
  note?: string
  /** Why the figure cannot be held against the goal (it measured less than the row names). */
  incomplete?: string
}

const sleep = async (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const tag = (): string => Math.random().toString(36).slice(2, 8)

/** Source addresses for many connections: each has its own ~28k ephemeral ports (Linux loopback answers all of 127/8). */
export const SOURCES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 1}`)

export interface FanOutOptions {
  subscribers: number
  qos: 0 | 1
  payloadBytes: number
  /** Messages the publisher may have out that some subscriber has not yet received. */
  window: number
  warmupS: number
  durationS: number
}

/**
 * One publisher, `subscribers` subscribers of one topic, closed loop: the
 * publisher keeps `window` messages ahead of the slowest subscriber. The figure
 * is deliveries per second (messages received, over all subscribers).
 */
export async function fanOut (ep: Endpoint, o: FanOutOptions, meter: Meter): Promise<LoadResult> {
  const t = tag()
  const topic = `bench/fanout/${t}`
  const subs = await Promise.all(Array.from({ length: o.subscribers }, async (_, i) => LoadClient.open(ep, { clientId: `fan-${t}-s${i}` })))
  const pub = await LoadClient.open(ep, { clientId: `fan-${t}-p` })
  const problems: string[] = []
  try {
    for (const s of subs) await s.subscribe(topic, o.qos)
    const { frame, idOffset } = publishTemplate(topic, Buffer.alloc(o.payloadBytes, 0x61), o.qos)
    let sent = 0
    let running = true
    const slowest = (): number => {
      let m = Infinity
      for (const s of subs) if (s.received < m) m = s.received
      return m
    }
    // Refills in batches of a quarter window, as the bytes of one read free them.
    const pump = (): void => {
      if (!running) return
      const room = o.window - (sent - slowest())
      if (room < o.window / 4) return
      const out = Buffer.allocUnsafe(room * frame.length)
      for (let i = 0; i < room; i++) {
        const at = i * frame.length
        frame.copy(out, at)
        if (o.qos === 1) out.writeUInt16BE((sent + i) % 65_535 + 1, at + idOffset)
      }
      sent += room
      pub.send(out)
    }
    for (const s of subs) s.onRead = pump
    pump()
    await sleep(o.warmupS * 1000)
    const total = (): number => subs.reduce((n, s) => n + s.received, 0)
    meter.start()
    const r0 = total()
    const t0 = process.hrtime.bigint()
    await sleep(o.durationS * 1000)
    const r1 = total()
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    meter.stop()
    running = false
    // Everything sent must arrive: a lost message would stall the loop, so say so.
    const deadline = Date.now() + 5_000
    while (slowest() < sent && Date.now() < deadline) await sleep(20)
    if (slowest() < sent) problems.push(`${sent - slowest()} of ${sent} messages did not reach every subscriber`)
    for (const c of [pub, ...subs]) if (c.error !== undefined || c.closed) problems.push(`a client was disconnected: ${c.error?.message ?? 'closed'}`)
    return { value: (r1 - r0) / seconds, ops: r1 - r0, problems: [...new Set(problems)] }
  } finally {
    for (const c of [pub, ...subs]) c.destroy()
  }
}

/** Resident set size of a process, in bytes (Linux /proc). */
export function rssBytes (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1]) * 1024
}

/** Waits until RSS stops moving (under 0.5% over the last second, at least 2 s, at most maxS), and returns it. */
export async function settledRss (pid: number, maxS = 15): Promise<number> {
  const samples: number[] = []
  const start = Date.now()
  for (;;) {
    samples.push(rssBytes(pid))
    const n = samples.length
    const last = samples[n - 1] as number
    if (Date.now() - start >= 2_000 && n > 4 && Math.abs(last - (samples[n - 5] as number)) <= last * 0.005) return last
    if (Date.now() - start >= maxS * 1000) return last
    await sleep(250)
  }
}

/** Opens `count` connections, `concurrency` at a time, over the source addresses in turn. */
export async function openMany (ep: Endpoint, count: number, concurrency: number, prefix: string, problems: string[]): Promise<LoadClient[]> {
  const clients: LoadClient[] = []
  let next = 0
  let failures = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++
      try {
        clients.push(await LoadClient.open(ep, { clientId: `${prefix}-${i}`, localAddress: SOURCES[i % SOURCES.length] }))
      } catch (err) {
        if (failures++ === 0) problems.push(`connect failed: ${(err as Error).message}`)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  if (failures > 1) problems.push(`${failures} of ${count} connections failed`)
  return clients
}

export interface IdleOptions {
  /** Connections measured. */
  count: number
  /** Connections opened first and kept, so that first-use costs (code, caches) are not counted. */
  warm: number
  concurrency: number
}

/**
 * Idle memory per connection: RSS growth of the broker process over `count`
 * connected, idle clients (CONNECT, CONNACK, nothing else), after it settles,
 * divided by `count`. In KiB.
 */
export async function idleMemory (ep: Endpoint, pid: number, o: IdleOptions, meter: Meter): Promise<LoadResult> {
  const problems: string[] = []
  const t = tag()
  const warm = await openMany(ep, o.warm, o.concurrency, `warm-${t}`, problems)
  const before = await settledRss(pid)
  meter.start()
  const idle = await openMany(ep, o.count, o.concurrency, `idle-${t}`, problems)
  meter.stop()
  const after = await settledRss(pid)
  const lost = idle.filter(c => c.closed).length
  if (lost > 0) problems.push(`${lost} idle connections were closed`)
  for (const c of [...warm, ...idle]) c.destroy()
  const mib = (b: number): string => (b / 1048576).toFixed(1)
  return { value: (after - before) / idle.length / 1024, ops: idle.length, problems, note: `RSS ${mib(before)} → ${mib(after)} MiB` }
}

/** New connections per second: CONNECT, CONNACK, DISCONNECT, `concurrency` at a time. */
export async function connectRate (ep: Endpoint, concurrency: number, warmupS: number, durationS: number, meter: Meter): Promise<LoadResult> {
  const problems: string[] = []
  const t = tag()
  let done = 0
  let failures = 0
  let running = true
  let n = 0
  const worker = async (): Promise<void> => {
    while (running) {
      const i = n++
      try {
        const c = await LoadClient.open(ep, { clientId: `rate-${t}-${i}`, localAddress: SOURCES[i % SOURCES.length] })
        done++
        c.disconnect()
      } catch (err) {
        if (failures++ === 0) problems.push(`connect failed: ${(err as Error).message}`)
      }
    }
  }
  const workers = Promise.all(Array.from({ length: concurrency }, worker))
  await sleep(warmupS * 1000)
  meter.start()
  const d0 = done
  const t0 = process.hrtime.bigint()
  await sleep(durationS * 1000)
  const d1 = done
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  meter.stop()
  running = false
  await workers
  if (failures > 1) problems.push(`${failures} connects failed`)
  return { value: (d1 - d0) / seconds, ops: d1 - d0, problems }
}

/**
 * Holds `count` idle connections, then sends every one a PINGREQ and counts the
 * PINGRESPs. The figure is the broker's whole RSS, in MiB.
 */
export async function hold (ep: Endpoint, pid: number, wanted: number, meter: Meter): Promise<LoadResult> {
  const problems: string[] = []
  // Each connection is a descriptor here and one in the broker; both have this process's limit.
  const limit = openFileLimit()
  const count = Math.min(wanted, limit - 1000)
  const incomplete = count < wanted ? `held ${count.toLocaleString('en-US')}, not ${wanted.toLocaleString('en-US')}: the open-file limit is ${limit} and could not be raised` : undefined
  meter.start()
  const clients = await openMany(ep, count, 200, `hold-${tag()}`, problems)
  meter.stop()
  const rss = await settledRss(pid, 30)
  let answered = 0
  let next = 0
  const deadline = Date.now() + 60_000
  const pinger = async (): Promise<void> => {
    while (next < clients.length && Date.now() < deadline) {
      const c = clients[next++] as LoadClient
      try {
        await c.ping()
        answered++
      } catch {
        // counted below
      }
    }
  }
  await Promise.all(Array.from({ length: 500 }, pinger))
  if (clients.length < count) problems.push(`only ${clients.length} of ${count} connected`)
  if (answered < count) problems.push(`${count - answered} of ${count} did not answer PINGREQ`)
  for (const c of clients) c.destroy()
  const note = `${answered.toLocaleString('en-US')} of ${count.toLocaleString('en-US')} answered PINGREQ, ${(rss / count / 1024).toFixed(1)} KiB of RSS per connection`
  return { value: rss / 1048576, ops: clients.length, problems, note, incomplete }
}

/** This process's soft limit on open files (Linux /proc). */
export function openFileLimit (): number {
  const m = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))
  return m === null ? 1024 : Number(m[1])
}
