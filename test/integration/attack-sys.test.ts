// Attacks on `$SYS` [P-12.7], [P-12.9]: learning client ids from it, and
// publishing into it. Real MQTT.js and mosquitto_pub/mosquitto_sub.
import { execFile } from 'node:child_process'
import { networkInterfaces } from 'node:os'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, grantedQos, recordMessages, subscribe } from '../helpers/mqtt.js'
import { onceWithin, waitFor } from '../helpers/wait.js'
import { mintToken } from '../../gateway/cli/token.js'

const run = promisify(execFile)
/** This machine's first non-loopback IPv4 address: a reader from there is not local. */
const external = Object.values(networkInterfaces()).flat().find(i => i !== undefined && i.family === 'IPv4' && !i.internal)?.address

describe('attack: learning client ids from $SYS without auth', () => {
  let gw: TestGateway
  const clients: MqttClient[] = []
  beforeAll(async () => {
    // Listening on every interface (anonymous, as --allow-anonymous allows) so a reader can come from a non-loopback address.
    gw = await startGateway({ host: '0.0.0.0', allowAnonymous: true })
  })
  afterAll(async () => {
    await Promise.all(clients.map(c => c.endAsync(true)))
    await gw?.close()
  })

  it.skipIf(external === undefined)('a non-loopback reader sees the $SYS counters but no client id; a loopback reader sees both', async () => {
    const remote = await connectClient(`mqtt://${external}:${gw.mqttPort}`, { clientId: 'remote-reader' })
    const local = await connectClient(`mqtt://127.0.0.1:${gw.mqttPort}`, { clientId: 'local-reader' })
    // A loopback reader over WebSocket (a local dashboard) is local too.
    const localWs = await connectClient(`ws://127.0.0.1:${gw.httpPort}/mqtt`, { clientId: 'local-ws-reader' })
    clients.push(remote, local, localWs)
    for (const c of [remote, local, localWs]) await subscribe(c, '$SYS/#', 0)
    const remoteSeen = recordMessages(remote)
    const localSeen = recordMessages(local)
    const localWsSeen = recordMessages(localWs)
    // The victim connects and subscribes: Aedes announces both on $SYS/<broker>/new/…
    const victim = await connectClient(`mqtt://127.0.0.1:${gw.mqttPort}`, { clientId: 'secret-responder-id' })
    clients.push(victim)
    await subscribe(victim, '$req/bank/#')
    gw.app.broker.publish('$SYS/broker/clients/connected', Buffer.from('4'), 0, false, () => {})
    await waitFor(() => [localSeen, localWsSeen].every(seen => seen.some(m => m.payload.toString().includes('secret-responder-id'))), { what: 'the local readers to see the new client' })
    await waitFor(() => remoteSeen.some(m => m.topic === '$SYS/broker/clients/connected') && localSeen.some(m => m.topic === '$SYS/broker/clients/connected'), { what: 'the counter at both readers' })
    expect(remoteSeen.some(m => m.payload.toString().includes('secret-responder-id') || m.topic.includes('secret-responder-id'))).toBe(false)
    expect(remoteSeen.every(m => m.topic.startsWith('$SYS/broker/') || m.topic.startsWith('$SYS/rtw/'))).toBe(true)
  })
})

describe('$SYS with auth follows the subscribe grants', () => {
  const SECRET = 'attack-sys-secret'
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ jwtSecret: SECRET }) })
  afterAll(async () => { await gw?.close() })

  it('a "#" grant does not reach $SYS; a $SYS/broker/# grant reads the counters only', async () => {
    const everything = await connectClient(gw.mqttUrl, { username: 'u', password: await mintToken(['--sub', 'a', '--subscribe', '#', '--secret', SECRET], {}) })
    const ops = await connectClient(gw.mqttUrl, { username: 'u', password: await mintToken(['--sub', 'ops', '--subscribe', '$SYS/broker/#', '--secret', SECRET], {}) })
    try {
      expect(await grantedQos(everything, ['$SYS/#', '$SYS/+/new/clients'])).toEqual([128, 128])
      expect(await grantedQos(ops, ['$SYS/broker/#', '$SYS/#', '$SYS/+/new/clients'])).toEqual([1, 128, 128])
    } finally {
      await everything.endAsync(true)
      await ops.endAsync(true)
    }
  })
})

describe('attack: publishing into $SYS, the bare topic too', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway() })
  afterAll(async () => { await gw?.close() })

  it('closes the publisher\'s connection, MQTT.js or mosquitto_pub, and $SYS/# readers get nothing from it', async () => {
    const reader = await connectClient(gw.mqttUrl, { clientId: 'sys-reader' })
    try {
      await subscribe(reader, ['$SYS/#', '$SYS'], 0)
      const seen = recordMessages(reader)
      for (const topic of ['$SYS', '$SYS/broker/uptime']) {
        const forger = mqtt.connect(gw.mqttUrl, { reconnectPeriod: 0 })
        await onceWithin(forger, 'connect')
        const closed = onceWithin(forger, 'close')
        forger.publish(topic, 'forged')
        await closed
        forger.end(true)
        await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-V', '311', '-t', topic, '-m', 'forged']).catch(() => {})
      }
      // Something the reader does get, published after the forgeries: they would have arrived first.
      gw.app.broker.publish('$SYS/broker/uptime', Buffer.from('1 seconds'), 0, false, () => {})
      await waitFor(() => seen.some(m => m.payload.toString() === '1 seconds'), { what: 'the real $SYS message' })
      expect(seen.filter(m => m.payload.toString() === 'forged')).toEqual([])
      expect(reader.connected).toBe(true)
    } finally {
      await reader.endAsync(true)
    }
  })
})
