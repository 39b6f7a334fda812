// Real MQTT.js clients for tests, connected before they are returned.
import { createConnection } from 'node:net'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'

export async function connectClient (url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5_000, ...opts })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  })
  return client
}

export async function subscribe (client: MqttClient, topic: string | string[], qos: 0 | 1 = 1): Promise<void> {
  const granted = await client.subscribeAsync(topic, { qos })
  for (const g of granted) if (g.qos === 128) throw new Error(`subscription to ${g.topic} refused`)
}

/** Subscribes and returns the granted QoS per filter; 128 means refused. */
export async function grantedQos (client: MqttClient, topic: string | string[], qos: 0 | 1 = 1): Promise<number[]> {
  try {
    const granted = await client.subscribeAsync(topic, { qos })
    return granted.map(g => g.qos)
  } catch (err) {
    // MQTT.js rejects when any filter got 0x80; the SUBACK it carries still has every return code.
    const granted = (err as { packet?: { granted?: Array<number | { qos: number }> } }).packet?.granted
    if (granted === undefined) throw err
    return granted.map(g => typeof g === 'number' ? g : g.qos)
  }
}

export interface Received { topic: string, payload: Buffer, retain: boolean }

/** Records every message a client receives, from now on. */
export function recordMessages (client: MqttClient): Received[] {
  const seen: Received[] = []
  client.on('message', (topic, payload, packet) => seen.push({ topic, payload, retain: packet.retain }))
  return seen
}

/** The next message whose topic matches, within timeoutMs. */
export async function nextMessage (client: MqttClient, match: (topic: string, payload: Buffer) => boolean = () => true, timeoutMs = 10_000): Promise<Received> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage)
      reject(new Error(`no matching MQTT message within ${timeoutMs} ms`))
    }, timeoutMs)
    const onMessage = (topic: string, payload: Buffer, packet: { retain: boolean }): void => {
      if (!match(topic, payload)) return
      clearTimeout(timer)
      client.off('message', onMessage)
      resolve({ topic, payload, retain: packet.retain })
    }
    client.on('message', onMessage)
  })
}

/** Connects with this password (any user name) and resolves the CONNACK return code instead of throwing. */
export async function connackCode (url: string, password: string | undefined): Promise<number> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5_000, username: 'anyone', ...(password === undefined ? {} : { password }) })
  try {
    return await new Promise<number>((resolve) => {
      client.once('connect', () => resolve(0))
      client.once('error', (err: Error & { code?: number }) => resolve(err.code ?? -1))
    })
  } finally {
    client.end(true)
  }
}

/**
 * An MQTT.js client (not yet connected) whose TCP connection comes from this
 * local address (any of 127.0.0.0/8 on Linux), so the gateway sees another remote address.
 */
function clientFrom (localAddress: string, port: number, opts: IClientOptions): MqttClient {
  return new mqtt.MqttClient(() => createConnection({ port, host: '127.0.0.1', localAddress }), { reconnectPeriod: 0, connectTimeout: 5_000, protocolVersion: 4, ...opts })
}

export async function connectFrom (localAddress: string, port: number, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = clientFrom(localAddress, port, opts)
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  })
  return client
}

/** Connects (from `from`, a local address, when given) and resolves the CONNACK: code 0 when accepted; never throws. */
export async function connackOf (url: string, opts: IClientOptions, from?: { address: string, port: number }): Promise<{ code: number, sessionPresent: boolean }> {
  const client = from === undefined ? mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5_000, ...opts }) : clientFrom(from.address, from.port, opts)
  try {
    return await new Promise((resolve) => {
      client.once('connect', (p) => resolve({ code: 0, sessionPresent: p.sessionPresent }))
      client.once('error', (err: Error & { code?: number }) => resolve({ code: err.code ?? -1, sessionPresent: false }))
    })
  } finally {
    client.end(true)
  }
}

/** Clients a test connects by id, all ended by endAll() (call it in afterEach). */
export function clientPool (url: () => string): { client: (clientId: string) => Promise<MqttClient>, endAll: () => Promise<void> } {
  const clients: MqttClient[] = []
  return {
    async client (clientId) {
      const c = await connectClient(url(), { clientId })
      clients.push(c)
      return c
    },
    async endAll () { await Promise.all(clients.splice(0).map(async c => { await c.endAsync(true) })) }
  }
}
