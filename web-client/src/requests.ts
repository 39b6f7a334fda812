// Requests over MQTT [P-4]: publish an envelope on $req/<service>/<path…>
// naming our own inbox as replyTo, and match the reply on its id. Also the
// policy for requests caught by a dropped connection (README "Pending requests").
import { fromBase64, toBase64 } from './body.js'
import { clientError, GatewayError } from './errors.js'
import { normalizePath, prepareRequest, toResponse, type PreparedRequest, type RequestOptions, type Response } from './response.js'
import { schedule, type Cancel } from './timers.js'

export type { RequestOptions, Response }

/** After the timeout the gateway answers 504 itself; this much longer and the client gives up. */
const GRACE_MS = 2000

interface Pending {
  id: string
  topic: string
  req: PreparedRequest
  deadline: number
  sent: boolean
  resolve: (r: Response) => void
  reject: (e: GatewayError) => void
  cancel: Cancel
}

const encoder = new TextEncoder()

export class Requests {
  private readonly byId = new Map<string, Pending>()
  private seq = 0

  constructor (
    private readonly clientId: string,
    private readonly publish: (topic: string, payload: Uint8Array) => boolean,
    private readonly live: () => boolean,
    private readonly settled: () => void,
    private readonly workerTimers: boolean
  ) {}

  /** Requests published and not yet answered. */
  get inFlight (): number {
    let n = 0
    for (const p of this.byId.values()) if (p.sent) n++
    return n
  }

  /** Requests waiting for a connection. */
  get waiting (): number {
    return this.byId.size - this.inFlight
  }

  start (service: string, path: string, options: RequestOptions, timeout: number): Promise<Response> {
    const topic = `$req/${service}${normalizePath(path)}`
    // A wildcard in a PUBLISH topic is a protocol error that would drop the
    // connection [MQTT-3.3.2-2]; REST answers the same target with RTW_BAD_TARGET, so does this.
    if (/[+#]/.test(topic) || topic.includes('\u0000')) return Promise.reject(new GatewayError('RTW_BAD_TARGET', 'Invalid service or path: wildcards and NUL are not allowed', 400))
    let req: PreparedRequest
    try {
      req = prepareRequest(options)
    } catch (err) {
      return Promise.reject(clientError('RTW_CLIENT_INVALID_ARGUMENT', (err as Error).message))
    }
    return new Promise((resolve, reject) => {
      const p: Pending = { id: this.nextId(), topic, req, deadline: Date.now() + timeout, sent: false, resolve, reject, cancel: () => {} }
      p.cancel = schedule(() => this.expire(p), timeout, this.workerTimers)
      this.byId.set(p.id, p)
      if (this.live()) this.send(p)
    })
  }

  private nextId (): string {
    return (++this.seq).toString(36)
  }

  private expire (p: Pending): void {
    if (this.byId.get(p.id) !== p) return
    if (p.sent) {
      // The gateway's 504 should be on its way; wait a little longer for it.
      p.cancel = schedule(() => this.finish(p, clientError('RTW_CLIENT_TIMEOUT', 'the gateway did not answer')), GRACE_MS, this.workerTimers)
      return
    }
    this.finish(p, clientError('RTW_CLIENT_TIMEOUT', 'not connected in time'))
  }

  private finish (p: Pending, outcome: Response | GatewayError): void {
    if (this.byId.get(p.id) !== p) return
    this.byId.delete(p.id)
    p.cancel()
    if (outcome instanceof GatewayError) p.reject(outcome)
    else p.resolve(outcome)
    this.settled()
  }

  /** [P-4.1] the caller envelope; the timeout is what is left of the caller's. */
  private send (p: Pending): void {
    const left = p.deadline - Date.now()
    if (left < 1) return
    const r = p.req
    const env: Record<string, unknown> = {
      id: p.id,
      replyTo: `$inbox/${this.clientId}/${p.id}`,
      method: r.method,
      query: r.query,
      headers: r.headers,
      timeout: left
    }
    if (typeof r.body === 'string') env.body = r.body
    else if (r.body !== undefined) {
      env.body = toBase64(r.body)
      env.enc = 'base64'
    }
    p.sent = this.publish(p.topic, encoder.encode(JSON.stringify(env)))
  }

  /** Sends every request that waited for a connection. */
  flush (): void {
    for (const p of [...this.byId.values()]) if (!p.sent) this.send(p)
  }

  /**
   * The connection dropped. A request in flight may or may not have reached
   * its responder. An idempotent one is sent again after reconnecting, under a
   * new id so that a late reply to the old one is ignored; any other is
   * rejected with RTW_CLIENT_CONNECTION_LOST. Requests not yet sent just wait.
   */
  connectionLost (): void {
    for (const p of [...this.byId.values()]) {
      if (!p.sent) continue
      if (p.req.idempotent) {
        this.byId.delete(p.id)
        p.id = this.nextId()
        p.sent = false
        this.byId.set(p.id, p)
      } else {
        this.finish(p, clientError('RTW_CLIENT_CONNECTION_LOST', `${p.req.method} ${p.topic}`))
      }
    }
  }

  /** [P-4.4] a reply on our inbox: `{id, status, headers, body?, enc?}`. Unknown ids are late or duplicate: dropped. */
  reply (payload: Uint8Array): void {
    let env: { id?: unknown, status?: unknown, headers?: unknown, body?: unknown, enc?: unknown }
    try {
      env = JSON.parse(new TextDecoder().decode(payload)) as typeof env
    } catch {
      return
    }
    const p = typeof env.id === 'string' ? this.byId.get(env.id) : undefined
    if (p === undefined || !p.sent || typeof env.status !== 'number') return
    const headers: Record<string, string> = {}
    if (typeof env.headers === 'object' && env.headers !== null) {
      for (const [k, v] of Object.entries(env.headers)) headers[k.toLowerCase()] = String(v)
    }
    const raw = env.body === undefined ? '' : typeof env.body === 'string' ? env.body : JSON.stringify(env.body)
    let outcome: Response | GatewayError
    try {
      outcome = toResponse(env.status, headers, env.enc === 'base64' ? fromBase64(raw) : encoder.encode(raw))
    } catch (err) {
      outcome = err instanceof GatewayError ? err : clientError('RTW_CLIENT_INVALID_ARGUMENT', String(err))
    }
    this.finish(p, outcome)
  }

  closeAll (err: GatewayError): void {
    for (const p of [...this.byId.values()]) this.finish(p, err)
  }
}
