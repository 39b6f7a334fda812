// A client's publishes reach the router in the order the client sent them
// ([P-12.11], [MQTT-4.6.0-6]). Aedes stores a retained message before it routes it, which
// takes at least a promise's turn, while a plain one is routed at once: a
// message sent right after a retained one overtook it (a client sending A
// retained, B, C retained, D to one topic in one read had them delivered
// B D A C). So while a client's retained publish is on its way to the router,
// that client's later publishes wait here, in order, and go once it was
// routed, or failed. Holding a publish holds its Aedes callback, so Aedes
// reads nothing more from that connection meanwhile; nothing is dropped.
import type { Client, PublishPacket } from 'aedes'
import type { Route } from './aedes-adapter.js'

interface Held { packet: PublishPacket, client: Client, done: (err?: Error | null) => void }

/** A client's retained publish on its way to the router, and what the client sent after it. */
interface Pending { payload: unknown, later: Held[] }

export class OrderedPublishes {
  // By client id, as Aedes's copy of a routed packet names its publisher.
  private readonly pending = new Map<string, Pending>()

  constructor (private readonly go: Route) {}

  route (packet: PublishPacket, client: Client, done: (err?: Error | null) => void): void {
    const p = this.pending.size === 0 ? undefined : this.pending.get(client.id)
    if (p !== undefined) p.later.push({ packet, client, done })
    else this.start(packet, client, done)
  }

  /** Told of every packet Aedes hands to its router, right after it did. */
  routed (packet: PublishPacket & { clientId?: string }): void {
    const id = packet.clientId
    if (id === undefined || this.pending.size === 0) return
    // Aedes's copy keeps the payload itself, so this is that very publish, not another of the client's.
    if (this.pending.get(id)?.payload === packet.payload) this.release(id)
  }

  private start (packet: PublishPacket, client: Client, done: (err?: Error | null) => void): void {
    if (!packet.retain) {
      this.go(packet, client, done)
      return
    }
    const p: Pending = { payload: packet.payload, later: [] }
    this.pending.set(client.id, p)
    this.go(packet, client, err => {
      // Routed long ago, unless storing it failed and it never was: either way the rest may go.
      if (this.pending.get(client.id) === p) this.release(client.id)
      done(err)
    })
  }

  private release (id: string): void {
    const p = this.pending.get(id)
    if (p === undefined) return
    this.pending.delete(id)
    const later = p.later
    for (let i = 0; i < later.length; i++) {
      const { packet, client, done } = later[i] as Held
      this.start(packet, client, done)
      const next = this.pending.get(id)
      if (next !== undefined) {
        // Another retained one is on its way: the rest wait behind it.
        next.later.push(...later.slice(i + 1))
        return
      }
    }
  }
}
