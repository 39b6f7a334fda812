// The broker pipeline: the stages every MQTT event passes through, in order.
// A stage is a small object with the methods below, each optional; which
// stages run, and in what order, is declared once, in gateway/pipeline.ts.
// compose() turns the list into one function per event, so the broker calls a
// plain function per packet and no stage wraps another.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Client, PublishPacket } from 'aedes'

export interface Stage {
  /** For logs and docs/ARCHITECTURE.md. */
  readonly name: string
  /**
   * A new connection, before Aedes reads a byte of it (`req` for WebSocket).
   * False destroys it; a number of ms makes it wait that long before Aedes
   * reads it (its bytes wait in the socket meanwhile). A stage may wrap the
   * connection's reader here.
   */
  accept?: (conn: Duplex, req?: IncomingMessage) => boolean | number
  /** CONNECT, before its credentials are looked at; false closes the connection. */
  connect?: (client: Client) => boolean
  /**
   * CONNECT credentials: 0 to go on, or the CONNACK return code to refuse with
   * (4 bad user name or password, 5 not authorized) [MQTT-3.2.2-5]. The first
   * stage that refuses ends the chain.
   */
  authenticate?: (client: Client, username: string | undefined, password: Buffer | undefined) => number | Promise<number>
  /**
   * How many ms this client PUBLISH must wait before the `publish` stages see
   * it; 0 to go on now. While a publish waits, the ones after it wait behind
   * it and the connection is not read: backpressure, nothing is dropped.
   * Asked again when the wait is over.
   */
  throttle?: (client: Client, packet: PublishPacket) => number
  /**
   * A client PUBLISH, after the broker's conformance checks and after it was
   * acknowledged, before it is routed. A stage may rewrite `packet.payload`.
   * True consumes the packet: later stages do not see it and it is not routed
   * [P-3.6], [MQTT-3.3.5-2].
   */
  publish?: (client: Client, packet: PublishPacket) => boolean
  /** A SUBSCRIBE filter, after the broker's own rules; false refuses it with SUBACK 0x80. */
  subscribe?: (client: Client, filter: string) => boolean
  /** Filters a client gave up (UNSUBSCRIBE). */
  unsubscribe?: (client: Client, filters: readonly string[]) => void
  /**
   * Each delivery to a subscriber, on every path (Aedes's router and the
   * gateway's own request lane). False drops this one delivery.
   */
  deliver?: (client: Client, packet: PublishPacket) => boolean
  /**
   * Every publish that was routed, from any transport: MQTT clients, the
   * gateway's own publishes (POST /publish, the AMQP bridge, requests of REST
   * calls) and wills. `client` is null for the gateway's own. An observer:
   * it must not change the packet.
   */
  published?: (packet: PublishPacket, client: Client | null) => void
  /** A client that went away, for per-client state. */
  disconnect?: (client: Client) => void
}

export interface Pipeline {
  readonly stages: readonly Stage[]
  /** False to destroy, else the ms to wait before Aedes reads the connection (the longest any stage asks). */
  accept: (conn: Duplex, req?: IncomingMessage) => false | number
  connect: (client: Client) => boolean
  /** Resolves 0, or the first refusing stage's CONNACK code; undefined when no stage authenticates (sync fast path). */
  authenticate: ((client: Client, username: string | undefined, password: Buffer | undefined) => Promise<number>) | undefined
  /** The longest wait any stage asks for; undefined when no stage throttles. */
  throttle: ((client: Client, packet: PublishPacket) => number) | undefined
  /** True when a stage consumed the packet. */
  publish: (client: Client, packet: PublishPacket) => boolean
  subscribe: (client: Client, filter: string) => boolean
  unsubscribe: (client: Client, filters: readonly string[]) => void
  /** Undefined when no stage looks at deliveries, so the router skips the call. */
  deliver: ((client: Client, packet: PublishPacket) => boolean) | undefined
  /** Undefined when nobody observes. */
  published: ((packet: PublishPacket, client: Client | null) => void) | undefined
  disconnect: (client: Client) => void
}

type Method = Exclude<keyof Stage, 'name'>

function methods<M extends Method> (stages: readonly Stage[], m: M): Array<NonNullable<Stage[M]>> {
  const out: Array<NonNullable<Stage[M]>> = []
  for (const s of stages) {
    const f = s[m]
    if (f !== undefined) out.push(f.bind(s) as NonNullable<Stage[M]>)
  }
  return out
}

/** Every stage must say yes; the first no ends the walk. */
function all<A extends unknown[]> (fns: Array<(...a: A) => boolean>): (...a: A) => boolean {
  if (fns.length === 0) return () => true
  if (fns.length === 1) return fns[0] as (...a: A) => boolean
  return (...a: A) => {
    for (const f of fns) if (!f(...a)) return false
    return true
  }
}

/** The pipeline the broker runs: each event's stages, in the order given. */
export function compose (stages: readonly Stage[]): Pipeline {
  const consume = methods(stages, 'publish')
  const accept = methods(stages, 'accept')
  const throttle = methods(stages, 'throttle')
  const auth = methods(stages, 'authenticate')
  const deliver = methods(stages, 'deliver')
  const published = methods(stages, 'published')
  const unsubscribe = methods(stages, 'unsubscribe')
  const disconnect = methods(stages, 'disconnect')
  return {
    stages,
    accept: (conn, req) => {
      let wait = 0
      for (const f of accept) {
        const r = f(conn, req)
        if (r === false) return false
        if (typeof r === 'number' && r > wait) wait = r
      }
      return wait
    },
    throttle: throttle.length === 0
      ? undefined
      : (client, packet) => {
          let wait = 0
          for (const f of throttle) {
            const w = f(client, packet)
            if (w > wait) wait = w
          }
          return wait
        },
    connect: all(methods(stages, 'connect')),
    authenticate: auth.length === 0
      ? undefined
      : async (client, username, password) => {
        for (const f of auth) {
          const code = await f(client, username, password)
          if (code !== 0) return code
        }
        return 0
      },
    publish: consume.length === 1
      ? consume[0] as (client: Client, packet: PublishPacket) => boolean
      : (client, packet) => {
          for (const f of consume) if (f(client, packet)) return true
          return false
        },
    subscribe: all(methods(stages, 'subscribe')),
    unsubscribe: (client, filters) => { for (const f of unsubscribe) f(client, filters) },
    deliver: deliver.length === 0 ? undefined : all(deliver),
    published: published.length === 0
      ? undefined
      : (packet, client) => { for (const f of published) f(packet, client) },
    disconnect: client => { for (const f of disconnect) f(client) }
  }
}
