// What the gateway publishes under $SYS every sysIntervalS: Mosquitto's
// `$SYS/broker/…` names, so that mosquitto_sub and MQTT Explorer show them as
// they would for Mosquitto, and the gateway's own `$SYS/rtw/…`. Pure: readings
// in, [topic, payload] pairs out; the plugin (plugins/sys.ts) publishes them.
import { quantile } from './registry.js'

/** One reading of the Metrics object (registry.ts). */
export interface Reading {
  /** Date.now() when read. */
  at: number
  uptimeS: number
  clients: number
  connections: Record<string, number>
  subscriptions: number
  received: number
  sent: number
  dropped: Record<string, number>
  inFlight: number
  /** Requests so far by service, then by status. */
  requests: Record<string, Record<string, number>>
  latency: { bounds: number[], cumulative: number[] }
  up: Record<string, boolean>
  /** A cluster's sum: the nodes it adds up [P-12.10]. */
  nodes?: string[]
}

/** The JSON of $SYS/rtw/stats: everything the dashboard draws, in one message per interval. */
export interface SysStats {
  at: number
  intervalS: number
  uptimeS: number
  clients: number
  connections: Record<string, number>
  subscriptions: number
  messages: { received: number, sent: number }
  /** Per second over the last interval. */
  rates: { received: number, sent: number, requests: number }
  requests: Record<string, Record<string, number>>
  inFlight: number
  /** Over the last interval, in ms; null when no request finished in it. */
  latencyMs: { p50: number | null, p99: number | null }
  dropped: Record<string, number>
  up: Record<string, boolean>
  /** In a cluster's $SYS/rtw/stats: the nodes its numbers add up [P-12.10]. */
  nodes?: string[]
}

const total = (byStatus: Record<string, Record<string, number>>): number =>
  Object.values(byStatus).reduce((a, s) => a + Object.values(s).reduce((b, n) => b + n, 0), 0)

const fixed = (n: number): string => Number.isInteger(n) ? String(n) : n.toFixed(2)

/** Where a SysTopics publishes: Mosquitto's tree and the gateway's own. */
export interface SysPrefixes { broker: string, rtw: string }

/** One gateway, or a whole cluster's sum (plugins/sys.ts) [P-12.10]. */
export const CLUSTER_PREFIXES: SysPrefixes = { broker: '$SYS/broker/', rtw: '$SYS/rtw/' }

/** One node of a cluster, as EMQX names them: `$SYS/brokers/<node>/clients/connected`, `$SYS/brokers/<node>/rtw/stats` [P-12.10]. */
export function nodePrefixes (node: string): SysPrefixes {
  return { broker: `$SYS/brokers/${node}/`, rtw: `$SYS/brokers/${node}/rtw/` }
}

/**
 * Keeps what a reading is compared with: the last one (for rates and the
 * interval's latency) and Mosquitto's load averages, exponentially weighted
 * per-minute rates over 1, 5 and 15 minutes.
 */
export class SysTopics {
  private last: Reading | undefined
  private readonly load = new Map<string, number>()

  constructor (private readonly version: string, private readonly prefixes: SysPrefixes = CLUSTER_PREFIXES) {}

  next (r: Reading): { messages: Array<[string, string]>, stats: SysStats } {
    const prev = this.last
    this.last = r
    const dt = prev === undefined ? 0 : (r.at - prev.at) / 1000
    const perSecond = (now: number, before: number | undefined): number => dt > 0 && before !== undefined ? Math.max(0, now - before) / dt : 0
    const rates = {
      received: perSecond(r.received, prev?.received),
      sent: perSecond(r.sent, prev?.sent),
      requests: perSecond(total(r.requests), prev === undefined ? undefined : total(prev.requests))
    }
    const before = prev?.latency.cumulative ?? r.latency.cumulative.map(() => 0)
    const ms = (q: number): number | null => {
      const s = quantile(q, r.latency.bounds, before, r.latency.cumulative)
      return s === null ? null : Math.round(s * 1e6) / 1e3
    }
    const latencyMs = { p50: ms(0.5), p99: ms(0.99) }

    const { broker: b, rtw: x } = this.prefixes
    const out: Array<[string, string]> = [
      [`${b}version`, this.version],
      [`${b}uptime`, `${Math.floor(r.uptimeS)} seconds`],
      [`${b}clients/connected`, String(r.clients)],
      [`${b}messages/received`, String(r.received)],
      [`${b}messages/sent`, String(r.sent)],
      [`${b}subscriptions/count`, String(r.subscriptions)]
    ]
    for (const [direction, rate] of [['received', rates.received], ['sent', rates.sent]] as const) {
      for (const [window, minutes] of [['1min', 1], ['5min', 5], ['15min', 15]] as const) {
        const key = `${direction}/${window}`
        const perMinute = rate * 60
        const old = this.load.get(key)
        // Mosquitto's load: an exponential moving average of the per-minute rate.
        const value = old === undefined ? perMinute : old + (perMinute - old) * (1 - Math.exp(-dt / (minutes * 60)))
        if (dt > 0 || old === undefined) this.load.set(key, value)
        out.push([`${b}load/messages/${key}`, fixed(value)])
      }
    }
    for (const [transport, n] of Object.entries(r.connections)) out.push([`${x}connections/${transport}`, String(n)])
    out.push(
      [`${x}requests/total`, String(total(r.requests))],
      [`${x}requests/per-second`, fixed(rates.requests)],
      [`${x}requests/in-flight`, String(r.inFlight)],
      [`${x}latency/p50`, latencyMs.p50 === null ? 'n/a' : String(latencyMs.p50)],
      [`${x}latency/p99`, latencyMs.p99 === null ? 'n/a' : String(latencyMs.p99)]
    )
    for (const [reason, n] of Object.entries(r.dropped)) out.push([`${x}messages/dropped/${reason}`, String(n)])
    for (const [name, up] of Object.entries(r.up)) out.push([`${x}${name}/up`, up ? '1' : '0'])

    const stats: SysStats = {
      at: r.at,
      intervalS: dt,
      uptimeS: Math.floor(r.uptimeS),
      clients: r.clients,
      connections: r.connections,
      subscriptions: r.subscriptions,
      messages: { received: r.received, sent: r.sent },
      rates,
      requests: r.requests,
      inFlight: r.inFlight,
      latencyMs,
      dropped: r.dropped,
      up: r.up,
      ...(r.nodes === undefined ? {} : { nodes: r.nodes })
    }
    out.push([`${x}stats`, JSON.stringify(stats)])
    return { messages: out, stats }
  }
}
