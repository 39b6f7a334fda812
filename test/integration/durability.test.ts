// dataDir: the broker's state on disk (aedes-persistence-level in <dataDir>/broker).
// A gateway process is killed with SIGKILL in the middle of QoS 1 traffic and
// started again on the same directory: every message that got its PUBACK
// reaches the offline persistent session, and retained values read back.
// Without dataDir the same restart loses them (the in-memory default).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt, { type IConnackPacket, type MqttClient } from 'mqtt'
import { connectClient, nextMessage, recordMessages, subscribe, type Received } from '../helpers/mqtt.js'
import { gatewayNode, type GatewayNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'

const DEVICE = { clientId: 'dev-durable-1', clean: false }

/**
 * Connects and returns the client with its CONNACK, whose sessionPresent says
 * whether the session survived, and every message it got: recorded from the
 * start, as queued messages may come in the same read as the CONNACK.
 */
async function connectWithConnack (url: string): Promise<{ client: MqttClient, connack: IConnackPacket, got: Received[] }> {
  const client = mqtt.connect(url, { ...DEVICE, reconnectPeriod: 0, connectTimeout: 5_000 })
  const got = recordMessages(client)
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', resolve)
    client.once('error', reject)
  })
  return { client, connack, got }
}

/** The retained value on a topic, as GET /retained/<topic> reads it from the broker's store; null for 404. */
async function retained (node: GatewayNode, topic: string): Promise<string | null> {
  const res = await fetch(`${node.httpUrl}/retained/${topic}`)
  if (res.status === 404) return null
  expect(res.status).toBe(200)
  return await res.text()
}

/** Publishes seq 0.. at QoS 1 until the connection drops, several in flight; returns the seqs that got a PUBACK. */
async function publishUntilKilled (client: MqttClient, kill: () => Promise<void>, killAfter: number): Promise<Set<number>> {
  const acked = new Set<number>()
  let seq = 0
  let killed: Promise<void> | undefined
  await new Promise<void>(resolve => {
    const next = (): void => {
      if (!client.connected) return
      const n = seq++
      client.publish('dev/1/cmd', String(n), { qos: 1 }, err => {
        if (err === undefined || err === null) acked.add(n)
        if (acked.size === killAfter) killed ??= kill()
        next()
      })
    }
    // Eight in flight at once, so the kill lands while some are unacknowledged.
    for (let i = 0; i < 8; i++) next()
    // A publish waiting on a PUBACK that never comes ends with the connection.
    client.once('close', () => resolve())
  })
  await killed
  return acked
}

describe('dataDir: kill -9 and restart on the same directory', () => {
  let dir: string
  let node: GatewayNode

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rtw-data-'))
    node = await gatewayNode({ dataDir: dir })
  })
  afterAll(async () => {
    await node?.kill()
    rmSync(dir, { recursive: true, force: true })
  })

  it('delivers every PUBACKed QoS 1 message to the offline session, and keeps retained values and the session', async () => {
    const device = await connectClient(node.mqttUrl, DEVICE)
    await subscribe(device, 'dev/1/cmd', 1)
    await device.endAsync()

    const publisher = await connectClient(node.mqttUrl, { clientId: 'pub-durable' })
    await publisher.publishAsync('state/dev/1', 'on', { qos: 1, retain: true })
    const acked = await publishUntilKilled(publisher, node.kill, 300)
    publisher.end(true)
    expect(acked.size).toBeGreaterThanOrEqual(300)

    await node.start()
    const { client: back, connack, got } = await connectWithConnack(node.mqttUrl)
    expect(connack.sessionPresent).toBe(true)
    // The queued messages come right after CONNACK, with the session still there.
    const delivered = (): Set<string> => new Set(got.map(m => m.payload.toString()))
    try {
      await waitFor(() => { const d = delivered(); return [...acked].every(n => d.has(String(n))) },
        { timeoutMs: 20_000, what: `all ${acked.size} acknowledged messages after the restart` })
    } catch (err) {
      const d = delivered()
      throw new Error(`${(err as Error).message}; missing ${JSON.stringify([...acked].filter(n => !d.has(String(n))))} of ${JSON.stringify([...acked].sort((x, y) => x - y).slice(-12))}; got ${got.length}`)
    }
    expect(await retained(node, 'state/dev/1')).toBe('on')
    const reader = await connectClient(node.mqttUrl)
    const onSubscribe = nextMessage(reader, t => t === 'state/dev/1')
    await subscribe(reader, 'state/dev/1', 1)
    const r = await onSubscribe
    expect([r.payload.toString(), r.retain]).toEqual(['on', true])
    await reader.endAsync()
    // The session's subscription survived too: a new message reaches it live.
    const live = nextMessage(back, (_t, p) => p.toString() === 'after')
    const other = await connectClient(node.mqttUrl)
    await other.publishAsync('dev/1/cmd', 'after', { qos: 1 })
    await live
    await other.endAsync()
    await back.endAsync()
  }, 60_000)
})

describe('without dataDir', () => {
  let node: GatewayNode

  beforeAll(async () => {
    node = await gatewayNode()
  })
  afterAll(async () => {
    await node?.kill()
  })

  it('keeps state in memory only: a restart loses the session and the retained value', async () => {
    const device = await connectClient(node.mqttUrl, DEVICE)
    await subscribe(device, 'dev/1/cmd', 1)
    await device.endAsync()
    const publisher = await connectClient(node.mqttUrl)
    await publisher.publishAsync('state/dev/1', 'on', { qos: 1, retain: true })
    await publisher.publishAsync('dev/1/cmd', 'queued', { qos: 1 })
    await publisher.endAsync()
    expect(await retained(node, 'state/dev/1')).toBe('on')
    await node.kill()
    await node.start()
    const { client: back, connack } = await connectWithConnack(node.mqttUrl)
    // [MQTT-3.2.2-3] no session to resume.
    expect(connack.sessionPresent).toBe(false)
    await back.endAsync()
    expect(await retained(node, 'state/dev/1')).toBeNull()
  })
})
