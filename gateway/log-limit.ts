// Rate-limited logging per kind of event: a flood of bad clients must not flood
// the log or grow memory (docs/ARCHITECTURE.md "Pitfalls" 6). Suppressed lines are counted
// and reported with the next line that gets through.
import type { FastifyBaseLogger } from 'fastify'

export class LogLimiter {
  private readonly windows = new Map<string, { start: number, logged: number, suppressed: number }>()

  constructor (
    private readonly log: FastifyBaseLogger,
    private readonly perWindow = 10,
    private readonly windowMs = 10_000
  ) {}

  warn (kind: string, msg: string): void {
    const now = Date.now()
    let w = this.windows.get(kind)
    if (w === undefined || now - w.start >= this.windowMs) {
      const suppressed = w?.suppressed ?? 0
      w = { start: now, logged: 0, suppressed: 0 }
      this.windows.set(kind, w)
      if (suppressed > 0) this.log.warn({ kind, suppressed }, `${suppressed} more "${kind}" events were not logged`)
    }
    if (w.logged < this.perWindow) {
      w.logged++
      this.log.warn({ kind }, msg)
    } else {
      w.suppressed++
    }
  }
}
