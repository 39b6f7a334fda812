// Fan-out of routed messages to the gateway's own listeners (GET /events
// streams): each listener holds MQTT filters and gets each matching message
// once, however many of its filters match it. Pure: no I/O.
import type { LiveMessage } from './sse.js'
import { SubscriptionIndex } from './subscriptions.js'

export interface LiveListener {
  deliver: (msg: LiveMessage) => void
}

export class LiveHub {
  private readonly index = new SubscriptionIndex<LiveListener>()
  // The last message each listener was given, so that overlapping filters deliver it once.
  private readonly last = new WeakMap<LiveListener, LiveMessage>()

  add (listener: LiveListener, filters: readonly string[]): void {
    for (const f of filters) this.index.add(listener, f)
  }

  remove (listener: LiveListener): void {
    this.index.removeOwner(listener)
  }

  /** Listeners now held. */
  get size (): number {
    return this.index.size
  }

  hasMatch (topic: string): boolean {
    return this.index.hasMatch(topic)
  }

  publish (msg: LiveMessage): void {
    if (this.index.size === 0) return
    this.index.forEachMatch(msg.topic, listener => {
      if (this.last.get(listener) === msg) return
      this.last.set(listener, msg)
      listener.deliver(msg)
    })
  }
}
