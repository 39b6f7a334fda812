// Timers that keep running in background tabs. Browsers throttle main-thread
// timers in hidden tabs (Chrome to once a minute after five minutes), which
// would miss MQTT keepalives and get the connection dropped. Timers inside a
// dedicated worker are not throttled that way, so when Worker and Blob exist
// the timers run there (MQTT.js's `timerVariant: 'worker'` idea). Elsewhere,
// or if the worker cannot start (a CSP without `worker-src blob:`), they are
// plain setTimeout.

export type Cancel = () => void

const WORKER_SOURCE = 'const t=new Map;onmessage=e=>{const[i,m]=e.data;if(m<0){clearTimeout(t.get(i));t.delete(i)}else t.set(i,setTimeout(()=>{t.delete(i);postMessage(i)},m))}'

let worker: Worker | null | undefined
const callbacks = new Map<number, () => void>()
let seq = 0

function getWorker (): Worker | null {
  if (worker !== undefined) return worker
  worker = null
  try {
    if (typeof Worker === 'function' && typeof Blob === 'function' && typeof URL.createObjectURL === 'function') {
      const w = new Worker(URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' })))
      w.onmessage = (e: MessageEvent<number>) => {
        const fn = callbacks.get(e.data)
        callbacks.delete(e.data)
        fn?.()
      }
      w.onerror = () => {
        // The worker failed: run what it held on the main thread from now on.
        worker = null
        const pending = [...callbacks.values()]
        callbacks.clear()
        for (const fn of pending) setTimeout(fn, 0)
      }
      worker = w
    }
  } catch {
    worker = null
  }
  return worker
}

/** Calls fn once after ms; the returned function cancels it. */
export function schedule (fn: () => void, ms: number, useWorker = true): Cancel {
  const w = useWorker ? getWorker() : null
  if (w === null) {
    const t = setTimeout(fn, ms)
    return () => clearTimeout(t)
  }
  const id = ++seq
  callbacks.set(id, fn)
  w.postMessage([id, Math.max(0, ms)])
  return () => {
    if (callbacks.delete(id)) w.postMessage([id, -1])
  }
}
