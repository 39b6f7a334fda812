// Bounded polling: wait on an observable condition instead of sleeping.
import type { MqttClient } from 'mqtt'

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number
  /** Time between probes (default 20 ms). */
  intervalMs?: number
  /** Named in the error when the wait gives up. */
  what?: string
}

/**
 * Calls probe until it returns a truthy value and returns that value. Throws
 * after timeoutMs, with the last probe error if there was one.
 */
export async function waitFor<T> (probe: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000
  const intervalMs = opts.intervalMs ?? 20
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v) return v as NonNullable<T>
      lastError = undefined
    } catch (err) {
      lastError = err
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'condition'}${why}`)
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

/** Resolves with the first event emitted, or rejects after timeoutMs. */
export async function onceWithin<T = unknown> (source: NodeJS.EventEmitter | MqttClient, event: string, timeoutMs = 10_000): Promise<T> {
  // MQTT.js types its events per name; underneath it is an EventEmitter.
  const emitter = source as NodeJS.EventEmitter
  return await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, onEvent)
      reject(new Error(`no "${event}" event within ${timeoutMs} ms`))
    }, timeoutMs)
    const onEvent = (value: T): void => {
      clearTimeout(timer)
      resolve(value)
    }
    emitter.once(event, onEvent)
  })
}
