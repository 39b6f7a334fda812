// The echo server: an ordinary MQTT client that answers $req/echo/# and the
// original project's $req/realtimeweb/#. It reconnects when the broker restarts.
import mqtt from 'mqtt'
import { echo } from './echo.js'
import { batchWrites } from '../broker/write-batch.js'

const host = process.env.RTW_HOST === undefined || process.env.RTW_HOST === '0.0.0.0' ? '127.0.0.1' : process.env.RTW_HOST
const url = process.env.ECHO_MQTT_URL ?? `mqtt://${host}:${process.env.RTW_MQTT_PORT ?? '1883'}`
const replyQos = process.env.ECHO_REPLY_QOS === '1' ? 1 : 0
const topics = (process.env.ECHO_TOPICS ?? '$req/echo/#,$req/realtimeweb/#').split(',')

const client = mqtt.connect(url, {
  clientId: `echo-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
  clean: true,
  reconnectPeriod: 500,
  connectTimeout: 5_000,
  ...(process.env.ECHO_TOKEN === undefined ? {} : { username: 'echo', password: process.env.ECHO_TOKEN })
})

client.on('connect', () => {
  // MQTT.js leaves Nagle on. The PUBACK for a request and the reply are
  // back-to-back small writes, and Nagle plus delayed ACK stalls the second
  // one (PERF-NOTES pitfall 2). A WebSocket stream has no setNoDelay; ws sets it.
  ;(client.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
  // MQTT.js handles each incoming request in its own tick and writes each reply
  // on its own; one socket write per event-loop turn instead cut the echo
  // server's write syscalls ~15x at 50 concurrent requests, and the gateway's reads with them.
  batchWrites(client.stream)
  // One SUBSCRIBE per filter, so a token that may serve only some services still serves those.
  for (const topic of topics) {
    client.subscribe(topic, { qos: 1 }, (err, granted) => {
      if (err || granted?.[0]?.qos === 128) console.error(`echo-server: not allowed to answer ${topic}`)
      else console.log(`echo-server: connected to ${url}, answering ${topic}`)
    })
  }
})
client.on('reconnect', () => console.log('echo-server: reconnecting'))
client.on('error', err => console.error(`echo-server: ${err.message}`))
client.on('message', (topic, payload) => {
  const out = echo(topic, payload)
  if (out !== null) client.publish(out.topic, out.payload, { qos: replyQos })
})

const stop = (): void => {
  client.end(false, {}, () => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
