// Who was sent which request [P-3.8]: a reply to request `id` counts only from
// a client the request was delivered to. The ledger lives on the node that
// delivered the request (where the responder is connected), so the check
// composes with a cluster that forwards replies between nodes. Pure, no I/O.

const CLOSED_KEPT = 32

// A request envelope is the gateway's own JSON.stringify output, with `id`
// first and `deadline` last [P-2.1]: both are read without parsing the JSON.
const ID_HEAD = Buffer.from('{"id":"')

/** The `id` of a request envelope the gateway encoded, or undefined. */
export function requestIdOf (payload: Buffer): string | undefined {
  if (payload.length < ID_HEAD.length + 2 || payload.compare(ID_HEAD, 0, ID_HEAD.length, 0, ID_HEAD.length) !== 0) return undefined
  const end = payload.indexOf(0x22, ID_HEAD.length)
  return end === -1 ? undefined : payload.toString('latin1', ID_HEAD.length, end)
}

/** The `deadline` of a request envelope (epoch ms, 0 when nobody waits), or -1 when it cannot be read. */
export function deadlineOf (payload: Buffer): number {
  let i = payload.length - 1
  if (payload[i] !== 0x7d) return -1 // "}"
  let n = 0
  let scale = 1
  for (i--; i >= 0; i--) {
    const c = payload[i] as number
    if (c < 0x30 || c > 0x39) break
    n += (c - 0x30) * scale
    scale *= 10
  }
  return scale > 1 && payload[i] === 0x3a ? n : -1 // ":"
}

/** The requests delivered to one client that it may still answer. */
export class Ledger {
  /** Open request ids and their deadlines. */
  private readonly open = new Map<string, number>()
  private sweepAt = 256
  /** The last ids answered here: a second reply to one is the correlator's to call duplicate, late or wrong-service. */
  private readonly closed: string[] = new Array<string>(CLOSED_KEPT).fill('')
  private closedAt = 0

  /** The request was delivered; it may be answered until its deadline (epoch ms). */
  asked (id: string, deadline: number): void {
    this.open.set(id, deadline)
    if (this.open.size >= this.sweepAt) {
      const now = Date.now()
      for (const [k, d] of this.open) if (d < now) this.open.delete(k)
      this.sweepAt = Math.max(256, this.open.size * 2)
    }
  }

  /**
   * True for a reply to a request that was delivered to this client: the
   * correlator then decides what it is (the reply, or a late, duplicate or
   * wrong-service one [P-5.3], [P-3.5]). The first reply closes the entry;
   * the last CLOSED_KEPT closed ids still pass, so that a repeat is counted as
   * what it is rather than as not-asked.
   */
  answer (id: string): boolean {
    if (this.open.delete(id)) {
      this.closed[this.closedAt] = id
      this.closedAt = (this.closedAt + 1) % CLOSED_KEPT
      return true
    }
    return this.closed.includes(id)
  }

  get size (): number {
    return this.open.size
  }
}
