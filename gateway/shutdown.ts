// Graceful drain [P-5.6]: refuse new requests, give in-flight ones the grace
// period to be answered, answer the rest 503, then close every listener and client.
import type { FastifyInstance } from 'fastify'

export async function drainAndClose (app: FastifyInstance, graceMs: number): Promise<void> {
  const bridge = app.bridge
  bridge.draining = true
  const deadline = Date.now() + graceMs
  while (bridge.correlator.size > 0 && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, Math.min(50, Math.max(1, deadline - Date.now()))))
  }
  bridge.correlator.failAll('RTW_SHUTTING_DOWN')
  await app.close()
}
