// Client PUBLISH packets held back by the pipeline's `throttle` stages, in
// order, per client. Holding a packet holds its Aedes callback, and Aedes
// reads a connection again only once every packet of its last read is done,
// so a throttled client's bytes wait in its socket and then in the kernel:
// TCP pushes back on the sender, and nothing it sent is dropped.
import type { Client, PublishPacket } from 'aedes'
import type { Route } from './aedes-adapter.js'
import { refreshKeepalive } from './internals.js'

type Throttle = ((client: Client, packet: PublishPacket) => number) | undefined

interface Held { packet: PublishPacket, done: (err?: Error | null) => void }

export class ThrottledPublishes {
  private readonly held = new WeakMap<Client, Held[]>()

  constructor (
    private readonly throttle: () => Throttle,
    private readonly go: Route,
    /** Told once per publish that had to wait. */
    private readonly onDelayed: () => void
  ) {}

  route (packet: PublishPacket, client: Client, done: (err?: Error | null) => void): void {
    const queue = this.held.get(client)
    if (queue !== undefined) {
      queue.push({ packet, done })
      this.onDelayed()
      return
    }
    const wait = this.throttle()?.(client, packet) ?? 0
    if (wait === 0) {
      this.go(packet, client, done)
      return
    }
    this.onDelayed()
    this.held.set(client, [{ packet, done }])
    this.releaseIn(client, wait)
  }

  private releaseIn (client: Client, ms: number): void {
    setTimeout(() => this.release(client), ms).unref()
  }

  private release (client: Client): void {
    const queue = this.held.get(client)
    if (queue === undefined) return
    const throttle = this.throttle()
    let i = 0
    for (; i < queue.length; i++) {
      const { packet, done } = queue[i] as Held
      const wait = throttle?.(client, packet) ?? 0
      if (wait > 0) {
        queue.splice(0, i)
        this.releaseIn(client, wait)
        return
      }
      // Held packets were read long ago: they count as the client's activity [MQTT-3.1.2-24].
      refreshKeepalive(client)
      this.go(packet, client, done)
    }
    this.held.delete(client)
  }
}
