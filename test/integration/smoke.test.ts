import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startEcho, type Responder } from '../helpers/responders.js'

describe('REST to an MQTT responder', () => {
  let gw: TestGateway
  let responder: Responder

  beforeAll(async () => {
    gw = await startGateway()
    responder = await startEcho(gw.mqttUrl)
  })
  afterAll(async () => {
    await responder.close()
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
