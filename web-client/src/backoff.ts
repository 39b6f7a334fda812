// Reconnect delays: exponential with full jitter, as centrifuge-js does
// (0.5 s doubling up to 20 s). Jitter spreads a crowd of clients that lost the
// same gateway so they do not all come back in the same instant.

export interface BackoffOptions {
  /** First delay's floor, in ms (default 500). */
  minDelayMs: number
  /** Largest delay, in ms (default 20000). */
  maxDelayMs: number
}

/**
 * The delay before reconnect attempt `step` (0 for the first): min plus a
 * random part of min·2^step, capped at max. `random` is injectable for tests.
 */
export function backoffDelay (step: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxDelayMs, opts.minDelayMs * 2 ** Math.min(step, 31))
  return Math.min(opts.maxDelayMs, opts.minDelayMs + Math.floor(random() * ceiling))
}
