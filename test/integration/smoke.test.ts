import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, subscribe } from '../helpers/mqtt.js'
import { echo } from '../../echo-server/echo.js'

describe('REST to an MQTT responder', () => {
  let gw: TestGateway
  let responder: MqttClient

  beforeAll(async () => {
    gw = await startGateway()
    responder = await connectClient(gw.mqttUrl)
    await subscribe(responder, '$req/echo/#')
    responder.on('message', (topic, payload) => {
      const out = echo(topic, payload)
      if (out !== null) responder.publish(out.topic, out.payload)
    })
  })
  afterAll(async () => {
    await responder.endAsync()
    await gw.close()
  })

  it('returns the responder reply as the HTTP response', async () => {
    const res = await fetch(`${gw.httpUrl}/api/echo/a/b?x=1`, { method: 'PUT', body: 'hello', headers: { 'content-type': 'text/plain' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/plain')
    expect(res.headers.get('x-echo-method')).toBe('PUT')
    expect(res.headers.get('x-echo-path')).toBe('/a/b')
    expect(res.headers.get('x-echo-query')).toBe('x=1')
    expect(await res.text()).toBe('hello')
  })
})
