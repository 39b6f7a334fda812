// Attack: claiming a persisted session after the gateway restarted [P-4.7],
// [P-4.9]. A real gateway process with dataDir and auth, killed with kill -9
// and started again on the same directory: the bindings were on disk with the
// sessions, so another subject is still refused, and the owner resumes its
// session with the QoS 1 messages queued for it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { connackOf, connectClient, recordMessages, subscribe } from '../helpers/mqtt.js'
import { gatewayNode, type GatewayNode } from '../helpers/nodes.js'
import { onceWithin, waitFor } from '../helpers/wait.js'
import { mintToken } from '../../gateway/cli/token.js'

const SECRET = 'attack-sessions-restart-secret'
const token = async (...args: string[]): Promise<string> => await mintToken([...args, '--secret', SECRET], {})

describe('attack: claiming another subject\'s persisted session after a kill -9 and restart (dataDir)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rtw-owners-restart-'))
  let gw: GatewayNode
  let victimToken: string
  let attackerToken: string
  const clients: MqttClient[] = []
  const persistent = { clean: false, username: 'u' }

  beforeAll(async () => {
    gw = await gatewayNode({ dataDir, env: { RTW_JWT_SECRET: SECRET } })
    victimToken = await token('--sub', 'victim', '--subscribe', 'users/${sub}/#')
    attackerToken = await token('--sub', 'attacker')
  }, 60_000)
  afterAll(async () => {
    for (const c of clients) c.end(true)
    await gw?.kill()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('another subject gets CONNACK 5 for the persisted sessions (offline and live at the kill); each owner resumes with sessionPresent and its queued QoS 1 messages', async () => {
    // One victim offline at the kill, with messages queued; one still connected when the process dies.
    const offline = await connectClient(gw.mqttUrl, { ...persistent, password: victimToken, clientId: 'victim-offline' })
    await subscribe(offline, 'users/victim/#', 1)
    await offline.endAsync()
    const live = await connectClient(gw.mqttUrl, { ...persistent, password: victimToken, clientId: 'victim-live' })
    clients.push(live)
    await subscribe(live, 'users/victim/#', 1)
    const publisher = await connectClient(gw.mqttUrl, { username: 'u', password: await token('--sub', 'pub', '--publish', 'users/#'), clientId: 'publisher' })
    // Each one PUBACKed: stored for the offline session before the kill.
    for (let i = 0; i < 3; i++) await publisher.publishAsync('users/victim/mail', `m${i}`, { qos: 1 })
    await publisher.endAsync(true)

    await gw.kill()
    await gw.start()

    for (const clientId of ['victim-offline', 'victim-live']) {
      for (const clean of [false, true]) {
        expect(await connackOf(gw.mqttUrl, { clientId, username: 'u', password: attackerToken, clean }), `${clientId} clean=${String(clean)}`)
          .toEqual({ code: 5, sessionPresent: false })
      }
    }
    const stats = await (await fetch(`${gw.httpUrl}/stats`, { headers: { authorization: `Bearer ${await token('--sub', 'ops', '--subscribe', '$SYS/#')}` } })).json() as { sessions: { refusedTaken: number, store: string } }
    expect(stats.sessions).toEqual(expect.objectContaining({ refusedTaken: 4, store: 'level' }))

    // Listening from the first byte: the queued messages follow the CONNACK at once.
    const back = mqtt.connect(gw.mqttUrl, { ...persistent, password: victimToken, clientId: 'victim-offline', reconnectPeriod: 0 })
    clients.push(back)
    const seen = recordMessages(back)
    expect((await onceWithin<{ sessionPresent: boolean }>(back, 'connect')).sessionPresent).toBe(true)
    await waitFor(() => seen.length >= 3, { what: 'the three queued messages' })
    expect(seen.map(m => m.payload.toString())).toEqual(['m0', 'm1', 'm2'])

    const liveBack = mqtt.connect(gw.mqttUrl, { ...persistent, password: victimToken, clientId: 'victim-live', reconnectPeriod: 0 })
    clients.push(liveBack)
    expect((await onceWithin<{ sessionPresent: boolean }>(liveBack, 'connect')).sessionPresent).toBe(true)
  }, 60_000)
})
