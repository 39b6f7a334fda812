// The fallback transport (web-client/README.md "Fallback"): when no WebSocket
// can be opened, subscriptions ride one EventSource on GET /events, and
// publishes go to POST /publish. Changing the filters reopens the stream from
// the last position, so nothing is missed in between (gateway PROTOCOL.md §15).
import { decodePayload, encodeBase64 } from './positions.js'
import { clientError } from './errors.js'

/** The parts of the browser's EventSource this library uses. */
export interface EventSourceLike {
  readonly readyState: number
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: string, lastEventId: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
  addEventListener: (type: string, fn: (ev: { data: string, lastEventId: string }) => void) => void
  close: () => void
}
export type EventSourceConstructor = new (url: string) => EventSourceLike

export interface SseHandlers {
  /** The stream is open (again). */
  open: () => void
  message: (topic: string, payload: Uint8Array, retain: boolean, position: string | undefined) => void
  /** The stream's rtw-position event; `recovered` is set when it resumed from a position. */
  position: (position: string | undefined, recovered: boolean | undefined) => void
  /** The stream dropped; EventSource reconnects by itself unless `fatal`. */
  dropped: (fatal: boolean) => void
}

const CLOSED = 2

export class SseTransport {
  private es: EventSourceLike | null = null
  private lastId: string | undefined
  private filters: string[] = []

  constructor (
    private readonly base: string,
    private readonly ES: EventSourceConstructor,
    private readonly token: () => Promise<string | undefined>,
    private readonly on: SseHandlers
  ) {}

  get open (): boolean {
    return this.es !== null && this.es.readyState === 1
  }

  /** (Re)opens the stream for these filters, resuming after the last position seen; `retained` asks for retained values first. */
  async follow (filters: string[], retained: boolean): Promise<void> {
    this.filters = filters
    const token = await this.token()
    if (this.filters !== filters) return // a later call replaced this one
    this.es?.close()
    this.es = null
    if (filters.length === 0) return
    const q = filters.map(f => 'topic=' + encodeURIComponent(f))
    if (retained) q.push('retained=1')
    if (this.lastId !== undefined) q.push('lastEventID=' + encodeURIComponent(this.lastId))
    if (token !== undefined) q.push('access_token=' + encodeURIComponent(token))
    const es = new this.ES(`${this.base}/events?${q.join('&')}`)
    this.es = es
    es.onopen = () => { if (this.es === es) this.on.open() }
    es.onmessage = ev => {
      if (this.es !== es) return
      if (ev.lastEventId !== '') this.lastId = ev.lastEventId
      const m = JSON.parse(ev.data) as { topic: string, payload: string, encoding?: string, retain?: boolean }
      this.on.message(m.topic, decodePayload(m.payload, m.encoding), m.retain === true, ev.lastEventId === '' ? undefined : ev.lastEventId)
    }
    es.addEventListener('rtw-position', ev => {
      if (this.es !== es) return
      const m = JSON.parse(ev.data) as { position: string | null, recovered?: boolean }
      if (m.position !== null) this.lastId = m.position
      this.on.position(m.position ?? undefined, m.recovered)
    })
    es.onerror = () => {
      if (this.es !== es) return
      // CLOSED: the gateway refused the stream (401, 403, 503…); EventSource will not retry it.
      const fatal = es.readyState === CLOSED
      if (fatal) this.es = null
      this.on.dropped(fatal)
    }
  }

  /** POST /publish [P-8.1]. */
  async publish (fetchFn: typeof fetch, topic: string, payload: Uint8Array, qos: number, retain: boolean): Promise<void> {
    const token = await this.token()
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    let res: globalThis.Response
    try {
      res = await fetchFn(`${this.base}/publish`, { method: 'POST', headers, body: JSON.stringify({ topic, payload: encodeBase64(payload), encoding: 'base64', qos, retain }) })
    } catch (err) {
      throw clientError('RTW_CLIENT_NETWORK', (err as Error).message)
    }
    if (res.status >= 300) throw clientError('RTW_CLIENT_NETWORK', `POST /publish answered ${res.status}`)
  }

  close (): void {
    this.filters = []
    this.es?.close()
    this.es = null
  }
}
