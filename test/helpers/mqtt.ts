// Real MQTT.js clients for tests, connected before they are returned.
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
