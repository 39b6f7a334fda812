// [P-16.1] An eavesdropper holding `$history/#` (or naming a private namespace
// inside it) must not see the replies, requests and inbox messages that its
// own `$res/#`, `$req/#` or `$inbox/#` subscription would be refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, grantedQos, recordMessages, subscribe } from '../helpers/mqtt.js'
import { Responder, startEcho } from '../helpers/responders.js'
import { waitFor } from '../helpers/wait.js'

describe('attack: reading private traffic through $history copies (anonymous gateway)', () => {
  let gw: TestGateway
  let echo: Responder
  const clients: MqttClient[] = []
  beforeAll(async () => {
    gw = await startGateway()
    echo = await startEcho(gw.mqttUrl)
  })
  afterAll(async () => {
    await Promise.all(clients.map(c => c.endAsync()))
    await echo?.close()
    await gw?.close()
  })

  it('refuses $history/ of a private namespace with SUBACK 0x80', async () => {
    const spy = await connectClient(gw.mqttUrl)
    clients.push(spy)
    expect(await grantedQos(spy, ['$history/$res/#', '$history/$inbox/#', '$history/$result/#', '$history/a/#'])).toEqual([128, 128, 128, 1])
  })

  it('gives a $history/# subscriber no copy of a REST call\'s request or reply, nor of an MQTT caller\'s inbox, while the callers get theirs', async () => {
    const spy = await connectClient(gw.mqttUrl)
    clients.push(spy)
    await subscribe(spy, '$history/#')
    const seen = recordMessages(spy)

    const res = await fetch(`${gw.httpUrl}/api/echo/secret?timeout=10`, { method: 'POST', body: 'the victim\'s reply' })
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('the victim\'s reply')

    const caller = await connectClient(gw.mqttUrl, { clientId: 'victim-caller' })
    clients.push(caller)
    await subscribe(caller, '$inbox/victim-caller/#')
    const inbox = recordMessages(caller)
    await caller.publishAsync('$req/echo/mine', JSON.stringify({ id: 'v1', replyTo: '$inbox/victim-caller/r', body: 'inbox secret' }), { qos: 1 })
    await waitFor(() => inbox.length === 1, { what: 'the MQTT caller\'s reply in its inbox' })

    // Routed after everything above, by one publisher: once its copy is here, earlier copies would be too.
    const marker = await connectClient(gw.mqttUrl)
    clients.push(marker)
    await marker.publishAsync('public/marker', 'end', { qos: 1 })
    await waitFor(() => seen.some(m => m.topic === '$history/public/marker'), { what: 'the marker\'s copy' })
    expect(seen.map(m => m.topic)).toEqual(['$history/public/marker'])
  })
})
