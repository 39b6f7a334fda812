// The web client given the URLs of several nodes of a cluster (docs/CLUSTER.md):
// when the node it uses goes away it reconnects to the next one, and its
// requests, over MQTT and over REST, go on there, answered by a responder on
// the other node.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { redisAvailable, startRedis, type TestRedis } from '../helpers/redis.js'
import { nextEvent, nodeClient, startEchoResponder } from '../helpers/web-client.js'
import { waitFor } from '../helpers/wait.js'

describe.skipIf(!redisAvailable())('web client with the URLs of two cluster nodes', () => {
  let redis: TestRedis
  let a: TestGateway
  let b: TestGateway
  let echo: MqttClient

  beforeAll(async () => {
    redis = await startRedis()
    a = await startGateway({ redisUrl: redis.url })
    b = await startGateway({ redisUrl: redis.url })
    echo = await startEchoResponder(b.mqttUrl)
    await waitFor(() => a.app.cluster?.hasRemoteResponder('$req/echo/x') === true, { what: 'A to see the echo responder on B' })
  }, 30_000)
  afterAll(async () => {
    await echo?.endAsync()
    await b?.close()
    await redis?.close()
  })

  it('moves to the next node when its node goes away, and keeps answering requests there', async () => {
    const client = nodeClient('', { url: undefined, urls: [a.wsUrl, b.wsUrl] })
    try {
      for (const via of ['mqtt', 'rest'] as const) {
        expect(await client.request('echo', '/on-a', { body: `first ${via}`, via })).toMatchObject({ status: 200, body: `first ${via}` })
      }
      const reconnected = nextEvent(client, 'connected', info => info.reconnected)
      await a.close()
      await reconnected
      for (const via of ['mqtt', 'rest'] as const) {
        expect(await client.request('echo', '/on-b', { body: `after ${via}`, via })).toMatchObject({ status: 200, body: `after ${via}` })
      }
      // The session is on B now.
      expect(b.app.broker.subscriptions.hasMatch(`$inbox/${client.clientId}/r`)).toBe(true)
    } finally {
      client.close()
    }
  })
})
