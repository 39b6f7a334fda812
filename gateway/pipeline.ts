// The broker pipeline of the gateway, declared in one place: which stages run
// for every MQTT event, in this order (broker/pipeline.ts says what each
// event is; docs/ARCHITECTURE.md draws it). Before any stage, the broker
// itself applies the protocol's conformance checks and the reserved
// namespaces' subscribe rules (broker/aedes-adapter.ts).
//
// Adding a stage: write a Stage (a plain object with the methods it needs),
// let its plugin put it in `app.stages`, and list it below.
import type { Stage } from '../broker/pipeline.js'

export interface GatewayStages {
  /** plugins/auth.ts: the token at CONNECT, its grants on PUBLISH and SUBSCRIBE [P-11]. Absent when auth is off. */
  auth?: Stage
  /** plugins/sessions.ts: a client id belongs to the subject (or, without auth, the address) that holds it [P-4.7]. */
  sessions?: Stage
  /** plugins/limits.ts: connection rate and packet guard (accept), publish rate, subscriptions per client, slow consumers (deliver). */
  limits?: Stage
  /** plugins/replies.ts: records who was sent each request (deliver) and drops replies from anyone else (publish) [P-3.8]. */
  replies?: Stage
  /** plugins/sys-visibility.ts: without auth, `$SYS` topics naming client ids reach loopback readers only [P-12.9]. */
  sys?: Stage
  /** plugins/broker.ts: consumes `$res` replies and rewrites `$req` requests for the bridge; drops `$inbox`/`$result` forgeries [P-3], [P-4]. */
  bridge?: Stage
  /** plugins/history.ts: records every routed publish in the message history and hands it to GET /events streams [P-14], [P-15]. */
  history?: Stage
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Each plugin's broker stage, put in force by app.ts through brokerPipeline(). */
    stages: GatewayStages
  }
}

/**
 * The stages in the order they run. Auth before limits: a filter the token may
 * not hold does not count against maxSubscriptions. Sessions right after
 * auth: the owner of a client id is the subject auth verified. Replies after limits: a
 * delivery the slow-consumer check drops was never sent, so it is not
 * recorded. The bridge last: it consumes what was allowed. The history only
 * observes what was routed.
 */
export function brokerPipeline (s: GatewayStages): Stage[] {
  return [s.auth, s.sessions, s.limits, s.sys, s.replies, s.bridge, s.history].filter((stage): stage is Stage => stage !== undefined)
}
