// In-process MQTT responders for the $req/$res contract, built on MQTT.js.
import type { IClientOptions, MqttClient } from 'mqtt'
import type { RequestEnvelope } from '../../core/envelope.js'
import { echo } from '../../echo-server/echo.js'
import { connectClient, subscribe } from './mqtt.js'
import { waitFor } from './wait.js'

export interface Incoming { topic: string, env: RequestEnvelope, raw: Buffer }

export interface ReplyFields {
  status?: number
  headers?: Record<string, string>
  body?: unknown
  enc?: 'base64'
}

/**
 * A responder that records every request and answers only when told, or at
 * once through `answer` when one is given.
 */
export class Responder {
  readonly requests: Incoming[] = []

  private constructor (readonly client: MqttClient, private readonly answer?: (req: Incoming, r: Responder) => void) {
    client.on('message', (topic, payload) => {
      let env: RequestEnvelope
      try {
        env = JSON.parse(payload.toString('utf8')) as RequestEnvelope
      } catch {
        env = { id: '', method: '', path: '', query: '', headers: {}, replyTo: '', deadline: 0 }
      }
      const req = { topic, env, raw: payload }
      this.requests.push(req)
      this.answer?.(req, this)
    })
  }

  static async start (url: string, filter: string | string[], answer?: (req: Incoming, r: Responder) => void, clientOpts: IClientOptions = {}): Promise<Responder> {
    const client = await connectClient(url, clientOpts)
    const r = new Responder(client, answer)
    await subscribe(client, filter)
    return r
  }

  /** Waits until at least n requests arrived and returns them. */
  async waitForRequests (n: number, timeoutMs = 10_000): Promise<Incoming[]> {
    await waitFor(() => this.requests.length >= n, { timeoutMs, what: `${n} requests at the responder (have ${this.requests.length})` })
    return this.requests
  }

  /** The reply object the contract defines, published on req.env.replyTo unless another topic is named. */
  async reply (req: Incoming, fields: ReplyFields = {}, opts: { topic?: string, retain?: boolean, id?: string } = {}): Promise<void> {
    const reply: Record<string, unknown> = { id: opts.id ?? req.env.id, status: fields.status ?? 200, headers: fields.headers ?? {} }
    if (fields.body !== undefined) reply.body = fields.body
    if (fields.enc !== undefined) reply.enc = fields.enc
    await this.publish(opts.topic ?? req.env.replyTo, JSON.stringify(reply), opts.retain)
  }

  async publish (topic: string, payload: string | Buffer, retain = false): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 1, retain })
  }

  async close (): Promise<void> {
    await this.client.endAsync()
  }
}

/** A responder that answers like the echo server (echo-server/echo.ts). */
export async function startEcho (url: string, filter: string | string[] = '$req/echo/#', clientOpts: IClientOptions = {}): Promise<Responder> {
  return await Responder.start(url, filter, (req, r) => {
    const out = echo(req.topic, req.raw)
    if (out !== null) r.client.publish(out.topic, out.payload, { qos: 0 })
  }, clientOpts)
}
