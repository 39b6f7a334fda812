// The gateway's numbers, in one place: what /metrics exposes (Prometheus, via
// prom-client), what /stats and the $SYS topics show, and what the dashboard
// draws. Counters the gateway keeps anyway (the correlator's, the limits', the
// broker's) are read when asked, through sources registered here; only the
// per-request counter and histogram are kept by prom-client itself.
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client'
import type { CallTransport, RequestObserver } from '../../core/bridge.js'
import type { Reading } from './sys-topics.js'

/** Seconds; 0.1 ms to 60 s, the longest timeout a caller may ask for. */
export const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/** The label every service past metricsMaxServices is counted under. */
export const OTHER_SERVICE = 'other'

export type Qos = 0 | 1 | 2
export interface MessageCounts { received: readonly number[], sent: readonly number[] }

/**
 * One service's requests, counted in plain numbers on the hot path (a few ns)
 * and turned into Prometheus samples by prom-client only when scraped: a
 * prom-client child's inc() and observe() cost about 0.45 µs per request.
 */
interface ServiceSeries {
  name: string
  /** Requests by status * 2 + transport (0 rest, 1 mqtt). */
  counts: Map<number, number>
  /** Durations per bucket of DURATION_BUCKETS, the last one above 60 s; not cumulative. */
  buckets: Float64Array
  sum: number
}

export interface MetricsOptions {
  maxServices: number
  /** Node's process metrics (CPU, memory, event loop lag, GC); off in unit tests that build many registries. */
  processMetrics?: boolean
}

export class Metrics implements RequestObserver {
  readonly registry = new Registry()
  readonly startedAt = Date.now()
  private readonly connectionSources = new Map<string, () => number>()
  private readonly dropSources: Array<() => Readonly<Record<string, number>>> = []
  private readonly upSources = new Map<string, () => boolean>()
  private messageSource: () => MessageCounts = () => ({ received: [0, 0, 0], sent: [0, 0, 0] })
  private subscriptionSource: () => number = () => 0
  private inFlightSource: () => number = () => 0
  private readonly services = new Map<string, ServiceSeries>()
  private other: ServiceSeries | undefined
  private readonly maxServices: number

  constructor (opts: MetricsOptions) {
    this.maxServices = opts.maxServices
    const registers = [this.registry]
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry })
    // The sources, read through arrows: inside collect(), `this` is the metric.
    const connections = (): Record<string, number> => this.connections()
    const subscriptions = (): number => this.subscriptionSource()
    const inFlight = (): number => this.inFlightSource()
    const messages = (): MessageCounts => this.messageSource()
    const dropped = (): Record<string, number> => this.dropped()
    // tcp and ws from the broker, sse once its plugin registers a source.
    new Gauge({
      name: 'rtw_connections',
      help: 'Open client connections, by transport',
      labelNames: ['transport'],
      registers,
      collect () {
        this.reset()
        for (const [transport, count] of Object.entries(connections())) this.set({ transport }, count)
      }
    })
    new Gauge({ name: 'rtw_subscriptions', help: 'Subscriptions held by connected MQTT clients', registers, collect () { this.set(subscriptions()) } })
    new Gauge({ name: 'rtw_requests_in_flight', help: 'Requests awaiting a reply, REST and MQTT together', registers, collect () { this.set(inFlight()) } })
    for (const [direction, help] of [['received', 'PUBLISH packets received from clients'], ['sent', 'PUBLISH packets sent to clients']] as const) {
      new Counter({
        name: `rtw_messages_${direction}_total`,
        help: `${help}, by QoS`,
        labelNames: ['qos'],
        registers,
        collect () {
          const counts = messages()[direction]
          this.reset()
          for (let q = 0; q < counts.length; q++) this.inc({ qos: String(q) }, counts[q] as number)
        }
      })
    }
    new Counter({
      name: 'rtw_messages_dropped_total',
      help: 'Messages dropped, by reason (also in /stats)',
      labelNames: ['reason'],
      registers,
      collect () {
        this.reset()
        for (const [reason, n] of Object.entries(dropped())) this.inc({ reason }, n)
      }
    })
    const series = (): ServiceSeries[] => [...this.services.values(), ...(this.other === undefined ? [] : [this.other])]
    new Counter({
      name: 'rtw_requests_total',
      help: `Requests by service, final status and transport (rest or mqtt); services past the first ${opts.maxServices} are service="${OTHER_SERVICE}"`,
      labelNames: ['service', 'status', 'transport'],
      registers,
      collect () {
        this.reset()
        for (const s of series()) for (const [key, n] of s.counts) this.inc({ service: s.name, status: String(key >> 1), transport: (key & 1) === 0 ? 'rest' : 'mqtt' }, n)
      }
    })
    // A histogram whose samples are made at scrape time from the counts above; prom-client formats them.
    const histogram = {
      name: 'rtw_request_duration_seconds',
      help: 'Time from admitting a request to its outcome, by service',
      type: 'histogram',
      aggregator: 'sum',
      reset () {},
      get: async () => ({
        name: histogram.name,
        help: histogram.help,
        type: histogram.type,
        aggregator: histogram.aggregator,
        values: series().filter(s => s.counts.size > 0 && s.buckets.some(n => n > 0)).flatMap(s => {
          let run = 0
          const count = s.buckets.reduce((a, n) => a + n, 0)
          return [
            ...DURATION_BUCKETS.map((le, i) => ({ metricName: 'rtw_request_duration_seconds_bucket', labels: { service: s.name, le }, value: (run += s.buckets[i] as number) })),
            { metricName: 'rtw_request_duration_seconds_bucket', labels: { service: s.name, le: '+Inf' }, value: count },
            { metricName: 'rtw_request_duration_seconds_sum', labels: { service: s.name }, value: s.sum },
            { metricName: 'rtw_request_duration_seconds_count', labels: { service: s.name }, value: count }
          ]
        })
      })
    }
    this.registry.registerMetric(histogram as unknown as Metric)
    this.registerUp('amqp', () => false)
  }

  /** Open connections of one transport (tcp, ws, sse, …), read at each scrape. */
  addConnectionSource (transport: string, count: () => number): void {
    this.connectionSources.set(transport, count)
  }

  /** Counters of dropped messages by reason; several sources add up. */
  addDropSource (counts: () => Readonly<Record<string, number>>): void {
    this.dropSources.push(counts)
  }

  setMessageSource (counts: () => MessageCounts): void { this.messageSource = counts }
  setSubscriptionSource (count: () => number): void { this.subscriptionSource = count }
  setInFlightSource (count: () => number): void { this.inFlightSource = count }

  /** A dependency's state as the 0/1 gauge rtw_<name>_up (rtw_amqp_up, rtw_redis_up); registering again replaces the source. */
  registerUp (name: string, up: () => boolean): void {
    const fresh = !this.upSources.has(name)
    this.upSources.set(name, up)
    if (!fresh) return
    const sources = this.upSources
    new Gauge({ name: `rtw_${name}_up`, help: `1 while ${name} is connected and usable, else 0 (also 0 when not configured)`, registers: [this.registry], collect () { this.set(sources.get(name)?.() === true ? 1 : 0) } })
  }

  /** RequestObserver: one call per request, with its final status [P-5.3]; startedAt < 0 when refused before admission. */
  settled (service: string, transport: CallTransport, status: number, startedAt: number): void {
    const s = this.series(service)
    const key = status * 2 + (transport === 'rest' ? 0 : 1)
    s.counts.set(key, (s.counts.get(key) ?? 0) + 1)
    if (startedAt < 0) return
    const seconds = (performance.now() - startedAt) / 1000
    let i = 0
    while (i < DURATION_BUCKETS.length && seconds > (DURATION_BUCKETS[i] as number)) i++
    s.buckets[i] = (s.buckets[i] as number) + 1
    s.sum += seconds
  }

  /** Service names are client-supplied: only the first maxServices get a label of their own, later ones share "other". */
  private series (service: string): ServiceSeries {
    const s = this.services.get(service)
    if (s !== undefined) return s
    // Past the cap, names are not remembered: a flood of made-up ones cannot grow this map.
    if (this.services.size >= this.maxServices) return (this.other ??= this.newSeries(OTHER_SERVICE))
    const fresh = this.newSeries(service)
    this.services.set(service, fresh)
    return fresh
  }

  private newSeries (name: string): ServiceSeries {
    return { name, counts: new Map(), buckets: new Float64Array(DURATION_BUCKETS.length + 1), sum: 0 }
  }

  dropped (): Record<string, number> {
    const out: Record<string, number> = {}
    for (const source of this.dropSources) for (const [reason, n] of Object.entries(source())) out[reason] = (out[reason] ?? 0) + n
    return out
  }

  connections (): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [transport, count] of this.connectionSources) out[transport] = count()
    return out
  }

  ups (): Record<string, boolean> {
    const out: Record<string, boolean> = {}
    for (const [name, up] of this.upSources) out[name] = up()
    return out
  }

  messages (): MessageCounts { return this.messageSource() }

  /** Every number at once, for $SYS and the dashboard; clients is the MQTT clients' count. */
  async reading (clients: number): Promise<Reading> {
    const sum = (a: readonly number[]): number => a.reduce((x, y) => x + y, 0)
    const m = this.messageSource()
    return {
      at: Date.now(),
      uptimeS: (Date.now() - this.startedAt) / 1000,
      clients,
      connections: this.connections(),
      subscriptions: this.subscriptionSource(),
      received: sum(m.received),
      sent: sum(m.sent),
      dropped: this.dropped(),
      inFlight: this.inFlightSource(),
      requests: await this.requestCounts(),
      latency: await this.latencyBuckets(),
      up: this.ups()
    }
  }
  subscriptions (): number { return this.subscriptionSource() }
  inFlight (): number { return this.inFlightSource() }

  /** Requests so far by service and status, all transports together, as /stats and $SYS/rtw show them. */
  async requestCounts (): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {}
    for (const s of [...this.services.values(), ...(this.other === undefined ? [] : [this.other])]) {
      const byStatus = out[s.name] ?? (out[s.name] = {})
      for (const [key, n] of s.counts) byStatus[String(key >> 1)] = (byStatus[String(key >> 1)] ?? 0) + n
    }
    return out
  }

  /** The duration histogram summed over services: cumulative counts per bucket bound (+Inf last), for quantiles. */
  async latencyBuckets (): Promise<{ bounds: number[], cumulative: number[] }> {
    const bounds = [...DURATION_BUCKETS, Infinity]
    const cumulative = bounds.map(() => 0)
    for (const s of [...this.services.values(), ...(this.other === undefined ? [] : [this.other])]) {
      let run = 0
      for (let i = 0; i < bounds.length; i++) cumulative[i] = (cumulative[i] as number) + (run += s.buckets[i] as number)
    }
    return { bounds, cumulative }
  }
}

/**
 * The q-quantile of the requests between two readings of latencyBuckets, in
 * seconds, interpolated inside its bucket as Prometheus's histogram_quantile
 * does; null when no request finished in between.
 */
export function quantile (q: number, bounds: readonly number[], before: readonly number[], after: readonly number[]): number | null {
  const delta = after.map((v, i) => v - (before[i] ?? 0))
  const total = delta[delta.length - 1] ?? 0
  if (total <= 0) return null
  const rank = q * total
  for (let i = 0; i < delta.length; i++) {
    const d = delta[i] as number
    if (d >= rank) {
      const lower = i === 0 ? 0 : bounds[i - 1] as number
      const upper = bounds[i] as number
      if (upper === Infinity) return lower
      const below = i === 0 ? 0 : delta[i - 1] as number
      const inBucket = d - below
      return inBucket <= 0 ? upper : lower + (upper - lower) * (rank - below) / inBucket
    }
  }
  return bounds[bounds.length - 2] ?? null
}
