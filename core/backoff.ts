// Reconnect delays: exponential backoff with "equal jitter". Pure, no I/O.

/**
 * The wait before reconnect attempt `attempt` (0-based): the exponential step
 * min * 2^attempt capped at max, of which the first half is fixed and the second
 * half random. So delays grow quickly, never exceed max, never drop to zero, and
 * many gateways that lost RabbitMQ at once do not reconnect in lock-step.
 */
export function reconnectDelay (attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const step = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30))
  return Math.round(step / 2 + random() * (step / 2))
}
