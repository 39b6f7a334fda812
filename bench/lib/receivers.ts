// Receivers that only count what reaches them, for the fan-out rows
// (bench/sse-rows.ts, bench/cluster-fanout.ts), and the wait for a count.
import mqtt, { type MqttClient } from 'mqtt'

export interface Receivers { count: () => number, close: () => void }

/** `n` MQTT.js subscribers of `topic` at QoS 0 on `url`, connected `batch` at a time. */
export async function mqttReceivers (url: string, n: number, topic: string, batch: number): Promise<Receivers> {
  let got = 0
  const clients: MqttClient[] = []
  for (let i = 0; i < n; i += batch) {
    clients.push(...await Promise.all(Array.from({ length: Math.min(batch, n - i) }, async () => {
      const c = await mqtt.connectAsync(url, { reconnectPeriod: 0 })
      c.on('message', () => { got++ })
      await c.subscribeAsync(topic, { qos: 0 })
      return c
    })))
  }
  return { count: () => got, close: () => { for (const c of clients) c.end(true) } }
}

/** True once `test` holds, false when `timeoutMs` passed first (a round that did not complete is reported, not thrown). */
export async function until (test: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!test()) {
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  return true
}
