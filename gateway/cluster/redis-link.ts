// The node's connections to the cluster's Redis (docs/CLUSTER.md): one for
// commands, one for publishing and two in subscriber mode (the broker's routing,
// and the cluster's own channels). Each reconnects on its own with exponential
// backoff and jitter; the link is up only while all of them are ready.
import { EventEmitter } from 'node:events'
import { Redis, type RedisOptions } from 'ioredis'

export type LinkName = 'db' | 'pub' | 'sub' | 'cluster'

export interface RedisLinkOptions {
  url: string
  /** Longest wait between reconnect attempts. */
  reconnectMaxMs?: number
  onError?: (name: LinkName, err: Error) => void
}

/** Backoff from 100 ms doubling up to maxMs, with up to 25% jitter so nodes do not reconnect in step. */
export function reconnectDelay (attempt: number, maxMs: number, random = Math.random): number {
  const base = Math.min(maxMs, 100 * 2 ** Math.min(attempt - 1, 20))
  return Math.round(base * (0.75 + random() * 0.25))
}

export class RedisLink extends EventEmitter<{ up: [], down: [] }> {
  readonly db: Redis
  readonly pub: Redis
  readonly sub: Redis
  readonly cluster: Redis
  private wasUp = false
  private closing = false

  constructor (readonly opts: RedisLinkOptions) {
    super()
    const maxMs = opts.reconnectMaxMs ?? 5_000
    const make = (name: LinkName, extra: RedisOptions = {}): Redis => {
      const r = new Redis(opts.url, {
        connectionName: `rtw-${name}`,
        retryStrategy: attempt => reconnectDelay(attempt, maxMs),
        // A command made while Redis is away fails after one reconnect attempt
        // instead of waiting: the caller (Aedes, the cluster) then refuses or
        // retries, rather than holding a client or a request without a bound.
        maxRetriesPerRequest: 1,
        lazyConnect: true,
        ...extra
      })
      r.on('error', (err: Error) => { if (!this.closing) opts.onError?.(name, err) })
      r.on('ready', () => this.check())
      r.on('close', () => this.check())
      return r
    }
    this.db = make('db', { enableAutoPipelining: true })
    this.pub = make('pub', { enableAutoPipelining: true })
    this.sub = make('sub')
    this.cluster = make('cluster')
  }

  private get all (): Redis[] {
    return [this.db, this.pub, this.sub, this.cluster]
  }

  /** True while every connection is ready: what /readyz and rtw_redis_up report. */
  get up (): boolean {
    return this.all.every(r => r.status === 'ready')
  }

  /** Per-connection state, for /readyz. */
  get state (): string {
    return this.up ? 'ok' : this.all.find(r => r.status !== 'ready')?.status ?? 'down'
  }

  private check (): void {
    const up = this.up
    if (up === this.wasUp || this.closing) return
    this.wasUp = up
    this.emit(up ? 'up' : 'down')
  }

  /**
   * Connects every connection, retrying with the usual backoff for up to
   * timeoutMs (Redis may start a moment after the node); then rejects with
   * RTW_REDIS_UNREACHABLE, naming the URL (no password) and the last error, so
   * a node does not start blind (docs/CLUSTER.md, "Redis unreachable at start").
   */
  async connect (timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const lastError: Partial<Record<LinkName, Error>> = {}
    const names: LinkName[] = ['db', 'pub', 'sub', 'cluster']
    const ready = (r: Redis, name: LinkName): Promise<void> => new Promise(resolve => {
      r.on('error', (err: Error) => { lastError[name] = err })
      r.once('ready', () => resolve())
      // The first attempt's rejection is only that; ioredis goes on retrying by retryStrategy.
      r.connect().catch(() => {})
    })
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const err = names.map(n => lastError[n]).find(e => e !== undefined) as (Error & { code?: string }) | undefined
        const why = err === undefined ? 'no answer' : `${err.code === undefined ? '' : `${err.code}: `}${err.message}`
        reject(new RedisUnreachableError(`Redis at ${redactUrl(this.opts.url)} did not answer within ${timeoutMs} ms (${why})`))
      }, timeoutMs)
    })
    try {
      await Promise.race([Promise.all(this.all.map(async (r, i) => { await ready(r, names[i] as LinkName) })), timeout])
    } catch (err) {
      await this.close()
      throw err
    } finally {
      clearTimeout(timer)
    }
    this.check()
  }

  async close (): Promise<void> {
    this.closing = true
    await Promise.all(this.all.map(async r => {
      if (r.status === 'end') return
      try {
        if (r.status === 'ready') await r.quit()
        else r.disconnect()
      } catch {
        r.disconnect()
      }
    }))
  }
}

/** A node that cannot reach its Redis at start does not start: main.ts exits EXIT_UNAVAILABLE with this message. */
export class RedisUnreachableError extends Error {
  readonly code = 'RTW_REDIS_UNREACHABLE'
}

/** The URL without its password, for logs. */
export function redactUrl (url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')
}
