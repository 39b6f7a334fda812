// A GET /events reader for tests: fetch with a streamed body, parsed as the
// EventSource spec parses it (id, event, data, retry and comment lines).
import { waitFor } from './wait.js'

export interface SseEvent {
  id: string | undefined
  event: string
  data: string
}

export interface SseReader {
  status: number
  headers: Headers
  events: SseEvent[]
  /** Comment lines seen (heartbeats). */
  comments: number
  /** The last id: seen, as EventSource would send it back in Last-Event-ID. */
  lastEventId: string
  retry: number | undefined
  ended: boolean
  /** The data: messages (events of type "message"), parsed as JSON. */
  messages: () => Array<{ topic: string, payload: string, encoding?: string, qos: number, retain?: boolean }>
  /** Waits until n messages have arrived. */
  waitMessages: (n: number, timeoutMs?: number) => Promise<void>
  close: () => void
  /** The body as text, for a refused request. */
  text: string
}

export async function openEvents (url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const ctrl = new AbortController()
  const res = await fetch(url, { headers, signal: ctrl.signal })
  const reader: SseReader = {
    status: res.status,
    headers: res.headers,
    events: [],
    comments: 0,
    lastEventId: headers['last-event-id'] ?? '',
    retry: undefined,
    ended: false,
    text: '',
    messages: () => reader.events.filter(e => e.event === 'message').map(e => JSON.parse(e.data)),
    waitMessages: async (n, timeoutMs = 10_000) => {
      await waitFor(() => reader.messages().length >= n, { timeoutMs, what: `${n} SSE messages (have ${reader.messages().length})` })
    },
    close: () => ctrl.abort()
  }
  if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
    reader.text = await res.text()
    reader.ended = true
    return reader
  }
  void pump(res, reader)
  return reader
}

async function pump (res: Response, r: SseReader): Promise<void> {
  const decoder = new TextDecoder()
  let buf = ''
  let data: string[] = []
  let event = ''
  let id: string | undefined
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true })
      let nl: number
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl).replace(/\r$/, '')
        buf = buf.slice(nl + 1)
        if (line === '') {
          if (id !== undefined) r.lastEventId = id
          if (data.length > 0) r.events.push({ id, event: event === '' ? 'message' : event, data: data.join('\n') })
          data = []
          event = ''
          id = undefined
          continue
        }
        if (line.startsWith(':')) { r.comments++; continue }
        const colon = line.indexOf(':')
        const field = colon === -1 ? line : line.slice(0, colon)
        let value = colon === -1 ? '' : line.slice(colon + 1)
        if (value.startsWith(' ')) value = value.slice(1)
        if (field === 'data') data.push(value)
        else if (field === 'event') event = value
        else if (field === 'id') id = value
        else if (field === 'retry') r.retry = Number(value)
      }
    }
  } catch { /* aborted */ }
  r.ended = true
}
