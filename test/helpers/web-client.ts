// Helpers for testing the web client in Node: the client over the `ws`
// transport, MQTT responders, and waits on events instead of sleeps.
import type { MqttClient } from 'mqtt'
import { WebSocket } from 'ws'
import { expect } from 'vitest'
import { connect, GatewayError, type ClientEvents, type ConnectOptions, type RealtimeClient } from '../../web-client/src/index.js'
import { connectClient, subscribe } from './mqtt.js'
import { startEcho } from './responders.js'

/** A client on the `ws` package, with a short backoff so reconnect tests stay quick. */
export function nodeClient (url: string, opts: ConnectOptions = {}): RealtimeClient {
  return connect({ url, WebSocket, minReconnectDelay: 50, maxReconnectDelay: 300, ...opts })
}

/** The next `event` whose arguments pass `test`. */
export function nextEvent<K extends keyof ClientEvents> (
  client: RealtimeClient, event: K, test: (...args: ClientEvents[K]) => boolean = () => true
): Promise<ClientEvents[K]> {
  return new Promise(resolve => {
    const off = client.on(event, (...args) => {
      if (!test(...args)) return
      off()
      resolve(args)
    })
  })
}

type MqttOptions = Parameters<typeof connectClient>[1]

/** The echo service over MQTT.js, as echo-server/main.ts runs it. */
export async function startEchoResponder (mqttUrl: string, opts: MqttOptions = {}, service = 'echo'): Promise<MqttClient> {
  return (await startEcho(mqttUrl, `$req/${service}/#`, opts)).client
}

export interface HeldRequest {
  topic: string
  env: { id: string, replyTo: string, method: string, path: string, body?: string }
}

/** A responder that holds every request until the test answers it. */
export class HoldingResponder {
  private readonly held: HeldRequest[] = []
  private readonly waiters: Array<{ test: (h: HeldRequest) => boolean, resolve: (h: HeldRequest) => void }> = []

  private constructor (readonly mqtt: MqttClient) {
    mqtt.on('message', (topic, payload) => {
      const h: HeldRequest = { topic, env: JSON.parse(payload.toString()) }
      const i = this.waiters.findIndex(w => w.test(h))
      if (i === -1) this.held.push(h)
      else this.waiters.splice(i, 1)[0]?.resolve(h)
    })
  }

  static async start (mqttUrl: string, service: string, opts: MqttOptions = {}): Promise<HoldingResponder> {
    const mqtt = await connectClient(mqttUrl, opts)
    await subscribe(mqtt, `$req/${service}/#`)
    return new HoldingResponder(mqtt)
  }

  /** The next request that passes `test`, already received or still to come. */
  next (test: (h: HeldRequest) => boolean = () => true): Promise<HeldRequest> {
    const i = this.held.findIndex(test)
    if (i !== -1) return Promise.resolve(this.held.splice(i, 1)[0] as HeldRequest)
    return new Promise(resolve => this.waiters.push({ test, resolve }))
  }

  answer (h: HeldRequest, status: number, body: string): void {
    this.mqtt.publish(h.env.replyTo, JSON.stringify({ id: h.env.id, status, headers: { 'content-type': 'text/plain' }, body }))
  }
}

/** The GatewayError a promise rejects with; fails the test if it resolves or rejects otherwise. */
export async function rejection (p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError)
    return err as GatewayError
  }
  throw new Error('expected a rejection')
}
