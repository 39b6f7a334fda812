// The request/reply exchange (PROTOCOL.md §2-§5). It decides, correlates and
// encodes; it never touches a socket. Publishing goes through the BrokerPort
// the caller hands in, and "who is subscribed" through a SubscriptionIndex.
import { Correlator, type DropReason, type Outcome } from './correlator.js'
import {
  CREDENTIAL_HEADERS, decodeCallerRequest, decodeReply, encodeBody, encodeCallerReply, encodeRequest,
  type CallerIdentity, type Headers, type Reply, type RequestEnvelope
} from './envelope.js'
import { answerTopic, isOwnInbox, parseReplyTopic, parseRequestTopic, replyTopic, requestTopic } from './topics.js'
import { ERRORS, errorBody, type ErrorCode } from './errors.js'
import type { SubscriptionIndex } from './subscriptions.js'

export interface BrokerPort {
  publish: (topic: string, payload: Buffer, qos: 0 | 1, retain: boolean, cb: (err?: Error | null) => void) => void
}

/**
 * A durable queue that takes requests for some services instead of MQTT
 * (RabbitMQ, issue 3). The bridge still correlates: replies come back through
 * settleFromQueue. `send` calls back once the queue has accepted (confirmed) the request.
 */
export interface RequestQueue {
  handles: (service: string) => boolean
  readonly ready: boolean
  send: (request: QueuedRequest, cb: (err?: Error | null) => void) => void
}

/** One request for a queued service, as the queue needs it. */
export interface QueuedRequest {
  service: string
  /** The MQTT request topic it would have had: `$req/<service>/<path…>`. */
  topic: string
  /** The correlation id, also the envelope's `id`. */
  id: string
  envelope: Buffer
  /** Not worth processing after this long (the caller's timeout); 0 means no limit. */
  expiresInMs: number
  /** False for fire-and-forget: nobody waits for a reply [P-2.5]. */
  expectsReply: boolean
  /** What a worker deduplicates on when it is not the id: the caller's idempotency key [P-13.8]. */
  dedupeId?: string
}

export interface BridgeOptions {
  requestQos: 0 | 1
  maxInFlight: number
  defaultTimeoutMs: number
  maxTimeoutMs: number
  /** Requests one caller (Call.owner, or an MQTT client) may have awaiting replies; 429 above it. */
  maxInFlightPerOwner?: number
  /** Services whose MQTT callers' Authorization and Cookie headers are forwarded [P-2.2]. */
  forwardCredentials?: ReadonlySet<string>
  /** In a cluster, the prefix of this node's correlation ids: its node id and boot epoch [P-5.1]. */
  nodeId?: string
}

/**
 * The other nodes of a cluster, as the bridge needs them (docs/CLUSTER.md).
 * Without one the gateway is a single node.
 */
export interface ClusterPort {
  /** True when a responder connected to another node holds a filter matching the topic [P-5.8]. */
  hasRemoteResponder: (topic: string) => boolean
  /**
   * Hands a reply this node accepted to the node whose caller waits for it,
   * named by the id's prefix [P-5.9]. False when the id names no other live
   * node: the reply is then this node's to settle (or drop).
   */
  forwardReply: (id: string, topic: string, payload: Buffer) => boolean
}

/** A REST call already split into its parts by the HTTP transport. */
export interface Call {
  service: string
  path: string
  method: string
  query: string
  headers: Headers
  body: Buffer | undefined
  timeoutMs: number
  /** Fire-and-forget: publish and do not wait [P-2.5]. */
  noReply: boolean
  /** Who calls, for the per-caller in-flight limit: `sub:<token subject>` or `ip:<address>`. */
  owner?: string
  /** [P-2.6] The verified caller, with auth on. */
  caller?: CallerIdentity
  /** Set for a call with an Idempotency-Key: queued services deduplicate on it [P-13.8]. */
  dedupeId?: string
}

export type CallStart = { ok: true, id: string } | { ok: false, code: ErrorCode }

export type DropListener = (reason: DropReason | 'bad-request', detail: string) => void

export type CallTransport = 'rest' | 'mqtt'

/** Told the final status of every request the bridge sees (metrics); it must be cheap, it runs once per request. */
export interface RequestObserver {
  /** startedAt is performance.now() when the request was admitted, or -1 when it was refused before. */
  settled: (service: string, transport: CallTransport, status: number, startedAt: number) => void
}

const IGNORE: RequestObserver = { settled: () => {} }

/** The HTTP status an outcome answers with: the responder's, or the error's. */
export function statusOf (outcome: Outcome): number {
  return outcome.kind === 'reply' ? outcome.reply.status : ERRORS[outcome.code].status
}

export class Bridge {
  readonly correlator: Correlator
  draining = false
  onDrop: DropListener = () => {}
  /** Set by the metrics plugin. */
  observer: RequestObserver = IGNORE
  /** MQTT callers' requests dropped because their envelope could not be used [P-4.5]. */
  badRequests = 0
  /** Set by the AMQP plugin when RabbitMQ is configured. */
  queue: RequestQueue | undefined
  private readonly inFlightByOwner = new Map<string, number>()

  constructor (
    private readonly opts: BridgeOptions,
    private readonly port: BrokerPort,
    private readonly subscriptions: SubscriptionIndex<unknown>,
    private readonly cluster?: ClusterPort
  ) {
    this.correlator = new Correlator({ maxInFlight: opts.maxInFlight, ...(opts.nodeId === undefined ? {} : { prefix: opts.nodeId }) })
  }

  /** [P-5.1] Ids are unique per gateway process (per cluster: they start with the node id) and unguessable across restarts. */
  nextId (): string {
    return this.correlator.nextId()
  }

  /** Checks shared by both kinds of caller, in the order PROTOCOL.md §6 lists them. */
  private admit (service: string, topic: string, owner?: string): ErrorCode | null {
    if (this.draining) return 'RTW_SHUTTING_DOWN'
    if (this.queue?.handles(service) === true) {
      // A queued service needs no online responder: the queue holds the request [P-10].
      if (!this.queue.ready) return 'RTW_QUEUE_UNAVAILABLE'
    } else if (!this.subscriptions.hasMatch(topic) && this.cluster?.hasRemoteResponder(topic) !== true) return 'RTW_NO_RESPONDER'
    if (this.correlator.full) return 'RTW_TOO_MANY_REQUESTS'
    if (owner !== undefined && (this.inFlightByOwner.get(owner) ?? 0) >= (this.opts.maxInFlightPerOwner ?? Infinity)) return 'RTW_TOO_MANY_REQUESTS'
    return null
  }

  /** Counts a pending request against its owner until its one outcome [P-5.3], and tells the observer that outcome. */
  private track (owner: string | undefined, service: string, transport: CallTransport, onSettle: (outcome: Outcome, id: string) => void): (outcome: Outcome, id: string) => void {
    const owners = this.inFlightByOwner
    if (owner !== undefined) owners.set(owner, (owners.get(owner) ?? 0) + 1)
    const startedAt = performance.now()
    return (outcome, id) => {
      if (owner !== undefined) {
        const n = (owners.get(owner) ?? 1) - 1
        if (n === 0) owners.delete(owner)
        else owners.set(owner, n)
      }
      this.observer.settled(service, transport, statusOf(outcome), startedAt)
      onSettle(outcome, id)
    }
  }

  /** Starts a REST-originated request; onSettle gets exactly one outcome unless noReply. */
  call (c: Call, onSettle: (outcome: Outcome, id: string) => void): CallStart {
    const topic = requestTopic(c.service, c.path)
    const refused = this.admit(c.service, topic, c.noReply ? undefined : c.owner)
    if (refused !== null) {
      this.observer.settled(c.service, 'rest', ERRORS[refused].status, -1)
      return { ok: false, code: refused }
    }
    const id = this.nextId()
    // One object shape for every envelope, absent parts undefined (JSON.stringify
    // leaves them out): the same bytes as spreading the optional parts in, without
    // the temporary objects and the shapes they made.
    const body = c.body === undefined ? undefined : encodeBody(c.body)
    const env: RequestEnvelope = {
      id,
      method: c.method,
      path: c.path,
      query: c.query,
      headers: c.headers,
      body: body?.body,
      enc: body?.enc,
      caller: c.caller,
      replyTo: c.noReply ? '' : replyTopic(c.service, id),
      deadline: c.noReply ? 0 : Date.now() + c.timeoutMs
    }
    if (c.noReply) {
      // [P-2.5] an empty replyTo tells the responder that nobody waits.
      this.dispatch(c.service, topic, id, encodeRequest(env), c.timeoutMs, false, () => {}, c.dedupeId)
      this.observer.settled(c.service, 'rest', 202, -1)
      return { ok: true, id }
    }
    this.correlator.register(id, c.service, c.timeoutMs, this.track(c.owner, c.service, 'rest', onSettle))
    this.dispatch(c.service, topic, id, encodeRequest(env), c.timeoutMs, true, err => {
      if (err) this.correlator.settle(id, { kind: 'error', code: this.publishFailure(c.service), message: err.message })
    }, c.dedupeId)
    return { ok: true, id }
  }

  /** Sends a request envelope to its service: into the queue for queued services, else on MQTT. */
  private dispatch (service: string, topic: string, id: string, envelope: Buffer, timeoutMs: number, expectsReply: boolean, cb: (err?: Error | null) => void, dedupeId?: string): void {
    if (this.queue?.handles(service) === true) this.queue.send({ service, topic, id, envelope, expiresInMs: timeoutMs, expectsReply, dedupeId }, cb)
    else this.port.publish(topic, envelope, this.opts.requestQos, false, cb)
  }

  /** A queue that did not confirm a request is unavailable; the broker that did not take a publish failed it. */
  private publishFailure (service: string): ErrorCode {
    return this.queue?.handles(service) === true ? 'RTW_QUEUE_UNAVAILABLE' : 'RTW_PUBLISH_FAILED'
  }

  /**
   * A reply that came back through the queue's reply path rather than `$res/…`.
   * Returns null when it answered its caller, 'bad-reply' when it answered with
   * 502 because it could not be decoded, or why it was dropped.
   */
  settleFromQueue (id: string, payload: Buffer): DropReason | 'bad-reply' | null {
    const decoded = decodeReply(payload)
    const outcome: Outcome = decoded.ok
      ? { kind: 'reply', reply: decoded.reply }
      : { kind: 'error', code: 'RTW_BAD_REPLY', message: `${ERRORS.RTW_BAD_REPLY.message}: ${decoded.reason}` }
    const dropped = this.correlator.settle(id, outcome)
    if (dropped !== null) {
      this.onDrop(dropped, `queue reply id=${id}`)
      return dropped
    }
    return decoded.ok ? null : 'bad-reply'
  }

  /**
   * A client PUBLISH on `$res/…` [P-3]. Always consumed: a reply either reaches
   * the caller that waits for it or is dropped and counted [P-5.3].
   */
  handleReply (topic: string, payload: Buffer, retain: boolean): void {
    const rt = parseReplyTopic(topic)
    if (rt === null) return
    if (retain) {
      // [P-3.6] a retained message is never a reply: it would answer a request that was not yet made.
      this.correlator.drop('retained')
      this.onDrop('retained', topic)
      return
    }
    // On the $rid topic the id is known before the payload is decoded: the node that waits decodes it.
    if (rt.kind === 'rid' && this.forwarded(rt.id, topic, payload)) return
    const decoded = decodeReply(payload)
    const id = rt.kind === 'rid' ? rt.id : decoded.ok ? decoded.reply.id : decoded.id
    if (id === undefined) {
      this.correlator.drop('undecodable')
      this.onDrop('undecodable', `${topic}: ${decoded.ok ? 'reply has no id' : decoded.reason}`)
      return
    }
    if (rt.kind !== 'rid' && this.forwarded(id, topic, payload)) return
    const outcome: Outcome = decoded.ok
      ? { kind: 'reply', reply: decoded.reply }
      : { kind: 'error', code: 'RTW_BAD_REPLY', message: `${ERRORS.RTW_BAD_REPLY.message}: ${decoded.reason}` }
    const dropped = this.correlator.settle(id, outcome, rt.service)
    if (dropped !== null) this.onDrop(dropped, `${topic} id=${id}`)
  }

  /**
   * [P-5.9] A reply that another node took from its responder and forwarded,
   * because this node's caller waits for it. That node made every check of the
   * client that published it; here it is settled as if it had arrived here.
   */
  handleForwardedReply (topic: string, payload: Buffer): void {
    this.handleReply(topic, payload, false)
  }

  /** [P-5.9] A reply whose caller waits on another node goes to that node, which settles it as its own. */
  private forwarded (id: string, topic: string, payload: Buffer): boolean {
    return this.cluster !== undefined && this.opts.nodeId !== undefined && !id.startsWith(this.opts.nodeId) && this.cluster.forwardReply(id, topic, payload)
  }

  /**
   * A client PUBLISH on `$req/…` [P-4]. Returns the envelope to route in its
   * place, or null when the request was answered or dropped here instead.
   */
  handleCallerRequest (clientId: string, topic: string, payload: Buffer, caller?: CallerIdentity): Buffer | null {
    const target = parseRequestTopic(topic)
    const decoded = decodeCallerRequest(payload)
    if (!decoded.ok) {
      this.badRequests++
      this.onDrop('bad-request', `${clientId} ${topic}: ${decoded.reason}`)
      const to = decoded.replyTo === undefined ? null : answerTopic(decoded.replyTo, clientId)
      if (decoded.id !== undefined && to !== null) this.answerCaller(to, decoded.id, 'RTW_BAD_REQUEST', decoded.reason)
      return null
    }
    const req = decoded.request
    // [P-4.6] a replyTo is a topic name: a wildcard in it is a malformed request.
    if (/[+#]/.test(req.replyTo)) {
      this.onDrop('bad-request', `${clientId} ${topic}: replyTo ${req.replyTo} holds a wildcard`)
      const to = answerTopic(req.replyTo, clientId)
      if (to !== null) this.answerCaller(to, req.id, 'RTW_BAD_REQUEST', 'replyTo must be a topic name, without + or #')
      return null
    }
    // [P-4.3] replies go only to the caller's own inbox.
    if (!isOwnInbox(req.replyTo, clientId)) {
      this.badRequests++
      this.onDrop('bad-request', `${clientId} ${topic}: replyTo ${req.replyTo} is not $inbox/${clientId}/…`)
      return null
    }
    if (target === null) {
      this.answerCaller(req.replyTo, req.id, 'RTW_BAD_TARGET')
      return null
    }
    const timeoutMs = req.timeout ?? this.opts.defaultTimeoutMs
    const refused = timeoutMs === 0 || timeoutMs > this.opts.maxTimeoutMs ? 'RTW_BAD_TIMEOUT' : this.admit(target.service, topic, 'client:' + clientId)
    if (refused !== null) {
      this.answerCaller(req.replyTo, req.id, refused)
      this.observer.settled(target.service, 'mqtt', ERRORS[refused].status, -1)
      return null
    }
    const id = this.nextId()
    this.correlator.register(id, target.service, timeoutMs, this.track('client:' + clientId, target.service, 'mqtt', outcome => {
      if (outcome.kind === 'reply') this.port.publish(req.replyTo, encodeCallerReply(req.id, outcome.reply), 1, false, () => {})
      else this.answerCaller(req.replyTo, req.id, outcome.code, outcome.message)
    }))
    if (this.opts.forwardCredentials?.has(target.service) !== true) for (const h of CREDENTIAL_HEADERS) delete req.headers[h]
    const env: RequestEnvelope = {
      id,
      method: req.method,
      path: target.path,
      query: req.query,
      headers: req.headers,
      body: req.body,
      enc: req.enc,
      caller,
      replyTo: replyTopic(target.service, id),
      deadline: Date.now() + timeoutMs
    }
    if (this.queue?.handles(target.service) === true) {
      this.dispatch(target.service, topic, id, encodeRequest(env), timeoutMs, true, err => {
        if (err) this.correlator.settle(id, { kind: 'error', code: 'RTW_QUEUE_UNAVAILABLE', message: err.message })
      })
      return null
    }
    return encodeRequest(env)
  }

  /** Answers an MQTT caller's request with an error without routing it, when its envelope names the caller's own inbox [P-4.5]. */
  refuseCaller (clientId: string, payload: Buffer, code: ErrorCode): void {
    const decoded = decodeCallerRequest(payload)
    const id = decoded.ok ? decoded.request.id : decoded.id
    const replyTo = decoded.ok ? decoded.request.replyTo : decoded.replyTo
    const to = replyTo === undefined ? null : answerTopic(replyTo, clientId)
    if (id !== undefined && to !== null) this.answerCaller(to, id, code)
  }

  /** [P-6.2] A gateway-made error reply to an MQTT-native caller: the same status and body REST would get. */
  private answerCaller (replyTo: string, callerId: string, code: ErrorCode, message?: string): void {
    const reply: Reply = {
      id: callerId,
      status: ERRORS[code].status,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify(errorBody(code, message))
    }
    this.port.publish(replyTo, encodeCallerReply(callerId, reply), 1, false, () => {})
  }
}
