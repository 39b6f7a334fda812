// The fallback transport's wiring (README "Fallback"): once no WebSocket can be
// opened, the client's subscriptions ride one EventSource stream (sse-transport.ts)
// and publishes go over fetch. This keeps the stream pointed at the client's
// subscriptions and turns its events into the client's: deliveries, `recovered`,
// connected and dropped. The client (client.ts) stays the one owner of its state.
import { SseTransport, type EventSourceConstructor } from './sse-transport.js'
import { topicMatches } from './topics.js'

/** A subscription, as far as the fallback reads and changes it. */
export interface FallbackSub {
  active: boolean
  waiters: Array<[() => void, (e: Error) => void]>
  recover: boolean
  /** The retained values of a new subscription are still to come. */
  wantsRetained: boolean
}

/** What the fallback needs of its client. */
export interface FallbackHost<S extends FallbackSub> {
  readonly subs: ReadonlyMap<string, S>
  token: () => Promise<string | undefined>
  deliver: (sub: S, topic: string, payload: Uint8Array, retain: boolean, position: string | undefined) => void
  recovered: (filter: string, recovered: boolean) => void
  /** True while the client counts as connected. */
  connected: () => boolean
  /** The stream is open, or there is nothing to stream: the client is connected. */
  open: () => void
  /** The stream dropped; EventSource reconnects by itself unless `fatal`, when the client retries follow() after a backoff. */
  dropped: (fatal: boolean) => void
}

/** The EventSource the fallback would use: the option's, else the global one; undefined when there is none or the fallback is off. */
export function fallbackEventSource (opts: { fallback?: boolean, EventSource?: EventSourceConstructor }): EventSourceConstructor | undefined {
  return opts.fallback === false ? undefined : opts.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource
}

/** The client's fallback: an EventSource stream that follows its subscriptions, and POST /publish (inherited). */
export class Fallback<S extends FallbackSub> extends SseTransport {
  constructor (base: string, ES: EventSourceConstructor, private readonly host: FallbackHost<S>) {
    super(base, ES, host.token, {
      open: () => {
        for (const sub of host.subs.values()) {
          sub.active = true
          const waiters = sub.waiters
          sub.waiters = []
          for (const [resolve] of waiters) resolve()
        }
        host.open()
      },
      message: (topic, payload, retain, position) => {
        for (const [filter, sub] of host.subs) {
          if (!topicMatches(filter, topic) || (retain && !sub.wantsRetained)) continue
          host.deliver(sub, topic, payload, retain, position)
        }
      },
      position: (_position, recovered) => {
        for (const [filter, sub] of host.subs) {
          sub.wantsRetained = false
          if (recovered !== undefined && sub.recover && sub.active) host.recovered(filter, recovered)
        }
      },
      dropped: host.dropped
    })
  }

  /** Points the stream at the client's current subscriptions. */
  update (): void {
    const filters = [...this.host.subs.keys()]
    // Nothing to stream: publishes and requests need no connection of their own.
    if (filters.length === 0 && !this.host.connected()) this.host.open()
    void this.follow(filters, [...this.host.subs.values()].some(s => s.wantsRetained))
  }
}
