// One GET /events stream: the response it writes to, the messages held back
// while its recovery and retained values are read, and its bound on unsent
// bytes (PROTOCOL.md §15).
import type { ServerResponse } from 'node:http'
import type { LiveListener } from '../../core/live-hub.js'
import { formatEvent, type LiveMessage } from '../../core/sse.js'

export type CloseReason = 'client' | 'slow-consumer' | 'expired' | 'shutdown'

export class SseStream implements LiveListener {
  /** Messages that came while the stream was being set up; null once it is live. */
  private pending: LiveMessage[] | null = []
  private pendingBytes = 0
  /** Recorded messages up to this offset were replayed already (or came before the stream). */
  private replayedUpTo = 0
  private ended = false

  constructor (
    private readonly res: ServerResponse,
    private readonly maxUnsent: number,
    private readonly onEnd: (reason: CloseReason) => void
  ) {
    res.on('close', () => this.finish('client'))
  }

  get closed (): boolean {
    return this.ended
  }

  deliver (msg: LiveMessage): void {
    if (this.ended) return
    if (this.pending === null) {
      this.write(formatEvent(msg))
      return
    }
    this.pending.push(msg)
    this.pendingBytes += msg.payload.length + msg.topic.length
    if (this.pendingBytes > this.maxUnsent) this.close('slow-consumer')
  }

  /** Writes raw event-stream text; a client that lets more than maxUnsent bytes pile up is cut off [P-15.7]. */
  write (text: string): void {
    if (this.ended) return
    this.res.write(text)
    if (this.res.writableLength > this.maxUnsent) this.close('slow-consumer')
  }

  /** Goes live: what waited is sent, except the recorded messages the replay already carried. */
  goLive (replayedUpTo: number): void {
    this.replayedUpTo = replayedUpTo
    const held = this.pending ?? []
    this.pending = null
    this.pendingBytes = 0
    for (const msg of held) {
      if (msg.position !== undefined && msg.position.offset <= this.replayedUpTo) continue
      this.deliver(msg)
    }
  }

  /** Ends the stream; after a last `rtw-close` event, when the client still reads. */
  close (reason: CloseReason, code?: string): void {
    if (this.ended) return
    if (reason !== 'slow-consumer' && reason !== 'client') {
      this.res.write(`event: rtw-close\ndata: ${JSON.stringify({ reason, ...(code === undefined ? {} : { code }) })}\n\n`)
    }
    if (reason === 'slow-consumer') this.res.destroy()
    else this.res.end()
    this.finish(reason)
  }

  private finish (reason: CloseReason): void {
    if (this.ended) return
    this.ended = true
    this.pending = null
    this.onEnd(reason)
  }
}
