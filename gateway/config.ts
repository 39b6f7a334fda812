// The one configuration object: defaults, then a JSON file, then environment,
// then command-line flags, each later source overriding the earlier. Validated
// once and frozen; a bad value stops start-up with a message naming its source.
import { readFileSync, statSync } from 'node:fs'
import { parseApiKeys, type ApiKey } from './auth/api-keys.js'
import { checkTrustedProxies } from '../core/client-address.js'
import { isValidTopicFilter } from '../core/topics.js'
import { configFiles } from './config-files.js'
import { parseArgv } from './config-argv.js'

// list, addresses and filters are lists: a comma string in env and flags, a
// JSON array or a comma string in a config file, always an array once loaded.
type Kind = 'string' | 'optional' | 'port' | 'int' | 'qos' | 'level' | 'bool' | 'list' | 'addresses' | 'filters'
type ListKind = 'list' | 'addresses' | 'filters'

interface Field {
  kind: Kind
  env: string
  flag: string
  default: string | number | boolean | readonly string[]
  doc: string
  min?: number
  /** Never printed: --print-config shows it as "(redacted)". */
  secret?: boolean
}

export const CONFIG_FIELDS = {
  host: { kind: 'string', env: 'RTW_HOST', flag: '--host', default: '127.0.0.1', doc: 'Address the HTTP and MQTT listeners bind to' },
  httpPort: { kind: 'port', env: 'RTW_HTTP_PORT', flag: '--http-port', default: 8080, doc: 'HTTP port: REST API, demo page and MQTT over WebSocket' },
  mqttPort: { kind: 'port', env: 'RTW_MQTT_PORT', flag: '--mqtt-port', default: 1883, doc: 'MQTT over TCP port' },
  wsPath: { kind: 'string', env: 'RTW_WS_PATH', flag: '--ws-path', default: '/mqtt', doc: 'Path of the MQTT-over-WebSocket endpoint on the HTTP port' },
  requestTimeoutMs: { kind: 'int', env: 'RTW_REQUEST_TIMEOUT_MS', flag: '--request-timeout-ms', default: 10_000, min: 1, doc: 'Reply timeout when the caller names none' },
  maxTimeoutMs: { kind: 'int', env: 'RTW_MAX_TIMEOUT_MS', flag: '--max-timeout-ms', default: 60_000, min: 1, doc: 'Largest timeout a caller may ask for' },
  bodyLimit: { kind: 'int', env: 'RTW_BODY_LIMIT', flag: '--body-limit', default: 1_048_576, min: 1, doc: 'Largest REST request body in bytes (413 above it)' },
  maxInFlight: { kind: 'int', env: 'RTW_MAX_IN_FLIGHT', flag: '--max-in-flight', default: 10_000, min: 1, doc: 'Requests awaiting a reply at once, REST and MQTT together (429 above it)' },
  requestQos: { kind: 'qos', env: 'RTW_REQUEST_QOS', flag: '--request-qos', default: 0, doc: 'QoS the gateway publishes requests with (0 or 1; 1 only helps responders with persistent sessions)' },
  shutdownGraceMs: { kind: 'int', env: 'RTW_SHUTDOWN_GRACE_MS', flag: '--shutdown-grace-ms', default: 10_000, min: 0, doc: 'How long a draining gateway lets in-flight requests finish before answering 503' },
  logLevel: { kind: 'level', env: 'RTW_LOG_LEVEL', flag: '--log-level', default: 'info', doc: 'fatal, error, warn, info, debug, trace or silent' },
  logPretty: { kind: 'bool', env: 'RTW_LOG_PRETTY', flag: '--log-pretty', default: false, doc: 'Coloured one-line logs through pino-pretty instead of JSON; when not set, on if stdout is a terminal' },
  jwtSecret: { kind: 'optional', env: 'RTW_JWT_SECRET', flag: '--jwt-secret', default: '', secret: true, doc: 'HS256 secret; setting it (or a key below) turns JWT auth on' },
  jwtPublicKeyFile: { kind: 'optional', env: 'RTW_JWT_PUBLIC_KEY_FILE', flag: '--jwt-public-key-file', default: '', doc: 'PEM public key for RS256/ES256 tokens' },
  jwksFile: { kind: 'optional', env: 'RTW_JWKS_FILE', flag: '--jwks-file', default: '', doc: 'JWKS file (RS256/ES256 keys by kid)' },
  jwtAudience: { kind: 'optional', env: 'RTW_JWT_AUDIENCE', flag: '--jwt-audience', default: '', doc: 'Required aud claim, when set' },
  jwtIssuer: { kind: 'optional', env: 'RTW_JWT_ISSUER', flag: '--jwt-issuer', default: '', doc: 'Required iss claim, when set' },
  jwtRequireExp: { kind: 'bool', env: 'RTW_JWT_REQUIRE_EXP', flag: '--jwt-require-exp', default: true, doc: 'Refuse JWTs without an exp claim (API keys never expire and are exempt)' },
  apiKeysFile: { kind: 'optional', env: 'RTW_API_KEYS_FILE', flag: '--api-keys-file', default: '', doc: 'JSON file of static API keys, each with a sub and rtw grants (see Security); read at start-up; setting it turns auth on' },
  takeoverGraceMs: { kind: 'int', env: 'RTW_TAKEOVER_GRACE_MS', flag: '--takeover-grace-ms', default: 60_000, min: 0, doc: 'Without auth: how long after a responder or a persistent session disconnects its client id cannot be taken over from another address' },
  sessionOwnersMax: { kind: 'int', env: 'RTW_SESSION_OWNERS_MAX', flag: '--session-owners-max', default: 1_000_000, min: 1, doc: 'Client ids bound to their owner at once (connected, persistent, or in their grace period); a CONNECT with one more new id gets CONNACK 3, no binding is dropped early' },
  allowAnonymous: { kind: 'bool', env: 'RTW_ALLOW_ANONYMOUS', flag: '--allow-anonymous', default: false, doc: 'Allow starting without auth on a non-loopback address' },
  tlsCertFile: { kind: 'optional', env: 'RTW_TLS_CERT_FILE', flag: '--tls-cert-file', default: '', doc: 'PEM certificate: serve https/wss and mqtts (with the key)' },
  tlsKeyFile: { kind: 'optional', env: 'RTW_TLS_KEY_FILE', flag: '--tls-key-file', default: '', doc: 'PEM private key for the certificate' },
  allowedOrigins: { kind: 'list', env: 'RTW_ALLOWED_ORIGINS', flag: '--allowed-origins', default: [], doc: 'Comma list of browser origins for CORS and WebSocket, "*" for any; empty = same origin only' },
  allowedHosts: { kind: 'list', env: 'RTW_ALLOWED_HOSTS', flag: '--allowed-hosts', default: [], doc: 'Comma list of Host names (".example.com" for a domain and its subdomains) served besides localhost, 127.0.0.1 and [::1]; checked against DNS rebinding when auth is off on loopback, or whenever set; "*" turns the check off' },
  trustedProxies: { kind: 'addresses', env: 'RTW_TRUSTED_PROXIES', flag: '--trusted-proxies', default: [], doc: 'Comma list of IP addresses and CIDR ranges of reverse proxies whose X-Forwarded-For names the client (REST and WebSocket); empty = trust nobody' },
  openReplies: { kind: 'list', env: 'RTW_OPEN_REPLIES', flag: '--open-replies', default: [], doc: 'Comma list of services whose replies are taken from any client allowed to publish them (a shell pipeline of mosquitto_sub into mosquitto_pub); for every other service only from a client that was sent the request' },
  forwardCredentials: { kind: 'list', env: 'RTW_FORWARD_CREDENTIALS', flag: '--forward-credentials', default: [], doc: 'Comma list of services whose requests carry the caller\'s Authorization and Cookie headers; for every other service they are removed' },
  maxPacketSize: { kind: 'int', env: 'RTW_MAX_PACKET_SIZE', flag: '--max-packet-size', default: 2_097_152, min: 64, doc: 'Largest MQTT packet in bytes; a larger one disconnects the client' },
  maxInFlightPerClient: { kind: 'int', env: 'RTW_MAX_IN_FLIGHT_PER_CLIENT', flag: '--max-in-flight-per-client', default: 1000, min: 1, doc: 'Requests one MQTT client or one REST token may have awaiting replies (429 above it)' },
  publishRate: { kind: 'int', env: 'RTW_PUBLISH_RATE', flag: '--publish-rate', default: 250_000, min: 1, doc: 'PUBLISH packets per second per client (bursts up to this many); a faster client is read more slowly, nothing is dropped' },
  connectRate: { kind: 'int', env: 'RTW_CONNECT_RATE', flag: '--connect-rate', default: 200, min: 1, doc: 'New MQTT connections per second per remote address (bursts up to this many); more wait for their turn, up to 20 s' },
  maxSubscriptions: { kind: 'int', env: 'RTW_MAX_SUBSCRIPTIONS', flag: '--max-subscriptions', default: 128, min: 1, doc: 'Subscriptions per client (SUBACK 0x80 above it)' },
  maxTopicLength: { kind: 'int', env: 'RTW_MAX_TOPIC_LENGTH', flag: '--max-topic-length', default: 1024, min: 16, doc: 'Longest topic or filter in bytes' },
  maxTopicLevels: { kind: 'int', env: 'RTW_MAX_TOPIC_LEVELS', flag: '--max-topic-levels', default: 32, min: 2, doc: 'Most levels in a topic or filter (at most 100)' },
  maxOutboundBytes: { kind: 'int', env: 'RTW_MAX_OUTBOUND_BYTES', flag: '--max-outbound-bytes', default: 1_048_576, min: 1024, doc: 'Unsent bytes queued for one client before it is disconnected as a slow consumer' },
  historySize: { kind: 'int', env: 'RTW_HISTORY_SIZE', flag: '--history-size', default: 100, min: 0, doc: 'Messages kept per topic for recovery (GET /events Last-Event-ID, GET /history); 0 turns the history off' },
  historyTtlMs: { kind: 'int', env: 'RTW_HISTORY_TTL_MS', flag: '--history-ttl-ms', default: 300_000, min: 1, doc: 'How long a message stays in the history' },
  historyMaxBytes: { kind: 'int', env: 'RTW_HISTORY_MAX_BYTES', flag: '--history-max-bytes', default: 67_108_864, min: 1024, doc: 'Memory for the whole history (topics and payloads); past it the oldest messages go first' },
  historyTopics: { kind: 'filters', env: 'RTW_HISTORY_TOPICS', flag: '--history-topics', default: ['#'], doc: 'Comma list of MQTT filters whose messages the history keeps ("#" = every topic not starting with "$")' },
  sseHeartbeatMs: { kind: 'int', env: 'RTW_SSE_HEARTBEAT_MS', flag: '--sse-heartbeat-ms', default: 15_000, min: 100, doc: 'Interval of the comment line sent on every GET /events stream, so proxies keep it open' },
  sseRetryMs: { kind: 'int', env: 'RTW_SSE_RETRY_MS', flag: '--sse-retry-ms', default: 2_000, min: 0, doc: 'The retry: hint of GET /events: how long EventSource waits before reconnecting' },
  sseMaxStreams: { kind: 'int', env: 'RTW_SSE_MAX_STREAMS', flag: '--sse-max-streams', default: 10_000, min: 1, doc: 'Open GET /events streams at once (503 RTW_TOO_MANY_STREAMS above it)' },
  sseMaxTopics: { kind: 'int', env: 'RTW_SSE_MAX_TOPICS', flag: '--sse-max-topics', default: 32, min: 1, doc: 'topic= filters one GET /events stream may name (400 above it)' },
  amqpUrl: { kind: 'optional', env: 'RTW_AMQP_URL', flag: '--amqp-url', default: '', doc: 'RabbitMQ URL (amqp://user:pass@host:5672/vhost); empty turns RabbitMQ off' },
  queuedServices: { kind: 'list', env: 'RTW_QUEUED_SERVICES', flag: '--queued-services', default: [], doc: 'Comma list of services whose requests go to the durable RabbitMQ queue rtw.req.<service> (needs amqpUrl)' },
  amqpExchange: { kind: 'string', env: 'RTW_AMQP_EXCHANGE', flag: '--amqp-exchange', default: 'amq.topic', doc: 'Topic exchange the MQTT<->AMQP bridge mirrors to and from' },
  amqpBridgeOut: { kind: 'list', env: 'RTW_AMQP_BRIDGE_OUT', flag: '--amqp-bridge-out', default: ['#'], doc: 'Comma list of MQTT filters whose publishes are mirrored to amqpExchange; empty turns it off ("$" topics never are)' },
  amqpBridgeIn: { kind: 'list', env: 'RTW_AMQP_BRIDGE_IN', flag: '--amqp-bridge-in', default: ['#'], doc: 'Comma list of MQTT filters: messages on amqpExchange whose routing key maps into them are delivered to MQTT; empty turns it off' },
  amqpReconnectMaxMs: { kind: 'int', env: 'RTW_AMQP_RECONNECT_MAX_MS', flag: '--amqp-reconnect-max-ms', default: 5_000, min: 100, doc: 'Longest wait between RabbitMQ reconnect attempts (exponential backoff with jitter, from 100 ms)' },
  asyncResultTtlMs: { kind: 'int', env: 'RTW_ASYNC_RESULT_TTL_MS', flag: '--async-result-ttl-ms', default: 600_000, min: 1, doc: 'How long the result of a respond-async request to a queued service stays readable at /requests/<handle>' },
  asyncResultMaxBytes: { kind: 'int', env: 'RTW_ASYNC_RESULT_MAX_BYTES', flag: '--async-result-max-bytes', default: 67_108_864, min: 1024, doc: 'Bytes of stored async results; past it the oldest are dropped early' },
  asyncResultMaxCount: { kind: 'int', env: 'RTW_ASYNC_RESULT_MAX_COUNT', flag: '--async-result-max-count', default: 100_000, min: 1, doc: 'Stored async results at most; past it the oldest are dropped early' },
  dataDir: { kind: 'optional', env: 'RTW_DATA_DIR', flag: '--data-dir', default: '', doc: 'Directory for state that survives a restart (LevelDB): retained messages, persistent sessions and wills in <dataDir>/broker, gateway state in <dataDir>/gateway; empty = memory only, the Mosquitto default. With redisUrl the broker keeps its state in Redis instead' },
  redisUrl: { kind: 'optional', env: 'RTW_REDIS_URL', flag: '--redis-url', default: '', doc: 'Redis URL (redis://[user:pass@]host:6379[/db], rediss:// for TLS): joins this node to a cluster of gateways sharing that Redis (docs/CLUSTER.md); empty = a single node' },
  nodeId: { kind: 'optional', env: 'RTW_NODE_ID', flag: '--node-id', default: '', doc: 'This node\'s name in its cluster (with redisUrl; letters, digits and . _ : / -, up to 100): the same after a restart, so replies and async results for requests it accepted still reach it; a node whose name a live node holds does not start (exit 78). Empty = <hostname>:<httpPort>, plus /<instance> under pm2 cluster mode' },
  idempotencyTtlMs: { kind: 'int', env: 'RTW_IDEMPOTENCY_TTL_MS', flag: '--idempotency-ttl-ms', default: 86_400_000, min: 1, doc: 'How long a REST call with an Idempotency-Key is remembered: a repeat within it is answered from the stored response' },
  idempotencyMaxKeys: { kind: 'int', env: 'RTW_IDEMPOTENCY_MAX_KEYS', flag: '--idempotency-max-keys', default: 100_000, min: 1, doc: 'Idempotency keys remembered at once; a new key past it is refused (503 RTW_IDEMPOTENCY_STORE_FULL), none is forgotten early' },
  idempotencyMaxBytes: { kind: 'int', env: 'RTW_IDEMPOTENCY_MAX_BYTES', flag: '--idempotency-max-bytes', default: 67_108_864, min: 1024, doc: 'Bytes of stored idempotent responses at most; a new key past it is refused like idempotencyMaxKeys' },
  sysIntervalS: { kind: 'int', env: 'RTW_SYS_INTERVAL_S', flag: '--sys-interval-s', default: 10, min: 0, doc: 'Seconds between the $SYS/broker/… and $SYS/rtw/… updates (retained, as Mosquitto publishes them); 0 turns them off' },
  metricsMaxServices: { kind: 'int', env: 'RTW_METRICS_MAX_SERVICES', flag: '--metrics-max-services', default: 100, min: 1, doc: 'Distinct service names that get their own service label in /metrics; later ones are counted as service="other"' },
  metricsPort: { kind: 'port', env: 'RTW_METRICS_PORT', flag: '--metrics-port', default: 0, doc: 'A port of its own for GET /metrics and GET /stats, plus the pm2 instance index (NODE_APP_INSTANCE): with RTW_INSTANCES=N each process is scraped on metricsPort … metricsPort+N-1; 0 = only on the HTTP port' },
  staticDir: { kind: 'optional', env: 'RTW_STATIC_DIR', flag: '--static-dir', default: '', doc: 'Directory of your own files, served at / (index.html for a directory); the demo page stays at /demo/' }
} as const satisfies Record<string, Field>

type Fields = typeof CONFIG_FIELDS
type ValueOf<K extends Kind> = K extends 'string' | 'optional' | 'level' ? string : K extends ListKind ? readonly string[] : K extends 'bool' ? boolean : number
export type Config = Readonly<{ -readonly [K in keyof Fields]: ValueOf<Fields[K]['kind']> }>
export type ConfigKey = keyof Fields
/** What a caller may give for each key in `overrides`: a list key also as a comma string, as env and flags give it. */
export type ConfigInput = { [K in keyof Fields]: Fields[K]['kind'] extends ListKind ? string | readonly string[] : Config[K] }

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

/**
 * sysexits' EX_CONFIG: a start that cannot succeed as configured (a bad value, a
 * port in use). ecosystem.config.js lists it in stop_exit_codes, so pm2 does not
 * restart the gateway into the same error, and `npm start` stops with it.
 */
export const EXIT_CONFIG = 78

export class ConfigError extends Error {
  readonly code = 'RTW_CONFIG_INVALID'
}

/** A list value's non-empty, trimmed entries: from a comma string, or from an array of strings; undefined for anything else. */
function listEntries (raw: unknown): string[] | undefined {
  if (typeof raw === 'string') return listOf(raw)
  if (!Array.isArray(raw) || !raw.every(e => typeof e === 'string')) return undefined
  return (raw as string[]).map(e => e.trim()).filter(e => e.length > 0)
}

function coerce (key: ConfigKey, raw: unknown, source: string): string | number | boolean | readonly string[] {
  const field: Field = CONFIG_FIELDS[key]
  const fail = (why: string): never => { throw new ConfigError(`${source}: ${key} ${why} (got ${JSON.stringify(raw)})`) }
  switch (field.kind) {
    case 'string':
      if (typeof raw !== 'string' || raw.length === 0) fail('must be a non-empty string')
      return raw as string
    case 'optional':
      if (typeof raw !== 'string') fail('must be a string')
      return raw as string
    case 'level':
      if (typeof raw !== 'string' || !LEVELS.has(raw)) fail('must be one of ' + [...LEVELS].join(', '))
      return raw as string
    case 'list':
    case 'addresses':
    case 'filters': {
      const entries = listEntries(raw) ?? fail('must be a comma list, or in a config file an array of strings')
      if (field.kind === 'addresses') {
        try {
          checkTrustedProxies(entries)
        } catch (err) {
          fail(`must be a comma list of IP addresses and CIDR ranges: ${(err as Error).message}`)
        }
      }
      const bad = field.kind === 'filters' ? entries.find(f => !isValidTopicFilter(f)) : undefined
      if (bad !== undefined) fail(`must be a list of MQTT topic filters: ${JSON.stringify(bad)} is not one`)
      return Object.freeze(entries)
    }
    case 'bool':
      if (typeof raw === 'boolean') return raw
      if (raw === '1' || raw === 'true') return true
      if (raw === '0' || raw === 'false') return false
      return fail('must be true or false')
    default: {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : NaN
      if (!Number.isSafeInteger(n)) fail('must be a whole number')
      if (field.kind === 'port' && (n < 0 || n > 65535)) fail('must be a port from 0 to 65535')
      if (field.kind === 'qos' && n !== 0 && n !== 1) fail('must be 0 or 1')
      if (field.min !== undefined && n < field.min) fail(`must be at least ${field.min}`)
      return n
    }
  }
}

export interface ConfigSources {
  file?: string
  env?: NodeJS.ProcessEnv
  argv?: string[]
  overrides?: Partial<ConfigInput>
}

const KEYS = Object.keys(CONFIG_FIELDS) as ConfigKey[]

/** Flags that are commands, not config values: main.ts acts on them. */
export const COMMAND_FLAGS = ['--help', '-h', '--print-config'] as const

/** True when the config turns auth on: JWT key material [P-11.1] or an API key file [P-11.9]. */
export function authEnabled (config: Pick<Config, 'jwtSecret' | 'jwtPublicKeyFile' | 'jwksFile' | 'apiKeysFile'>): boolean {
  return config.jwtSecret !== '' || config.jwtPublicKeyFile !== '' || config.jwksFile !== '' || config.apiKeysFile !== ''
}

/** True when JWTs can be verified at all; without it only API keys authenticate. */
export function jwtEnabled (config: Pick<Config, 'jwtSecret' | 'jwtPublicKeyFile' | 'jwksFile'>): boolean {
  return config.jwtSecret !== '' || config.jwtPublicKeyFile !== '' || config.jwksFile !== ''
}

// The parsed key file of each loaded config, so that it is read once, at start-up.
const apiKeys = new WeakMap<Config, readonly ApiKey[]>()

function readApiKeys (file: string): readonly ApiKey[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`apiKeysFile ${file}: cannot read it (${(err as Error).message})`)
  }
  try {
    return Object.freeze(parseApiKeys(text))
  } catch (err) {
    throw new ConfigError(`apiKeysFile ${file}: ${(err as Error).message}`)
  }
}

/** The API keys [P-11.9] of a config: read and validated by loadConfig, or now for a config built another way. */
export function apiKeysOf (config: Config): readonly ApiKey[] {
  if (config.apiKeysFile === '') return []
  let keys = apiKeys.get(config)
  if (keys === undefined) {
    keys = readApiKeys(config.apiKeysFile)
    apiKeys.set(config, keys)
  }
  return keys
}

/** 127.0.0.0/8, ::1 and localhost; 0.0.0.0 and :: are every interface, not loopback. */
export function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/** Where a value came from: `default`, `file <path>`, `env RTW_…`, `flag --…` or `overrides`. */
export type Sources = Readonly<Record<ConfigKey, string>>

export interface LoadedConfig { config: Config, flags: Set<string>, sources: Sources }

export function loadConfig (sources: ConfigSources = {}): LoadedConfig {
  const env = sources.env ?? {}
  const cli = parseArgv(sources.argv ?? [])
  const out: Record<string, unknown> = {}
  const from: Record<string, string> = {}
  for (const key of KEYS) {
    const d: Field['default'] = CONFIG_FIELDS[key].default
    out[key] = Array.isArray(d) ? Object.freeze([...d]) : d
    from[key] = 'default'
  }

  const file = cli.file ?? sources.file ?? env.RTW_CONFIG
  if (file !== undefined && file !== '') {
    let parsed: unknown
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'))
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`)
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`config file ${file}: must hold a JSON object`)
    for (const [k, v] of Object.entries(parsed)) {
      if (!(k in CONFIG_FIELDS)) throw new ConfigError(`config file ${file}: unknown key ${k}`)
      out[k] = coerce(k as ConfigKey, v, `config file ${file}`)
      from[k] = `file ${file}`
    }
  }
  for (const key of KEYS) {
    const v = env[CONFIG_FIELDS[key].env]
    if (v !== undefined && v !== '') { out[key] = coerce(key, v, `environment ${CONFIG_FIELDS[key].env}`); from[key] = `env ${CONFIG_FIELDS[key].env}` }
  }
  for (const [key, v] of cli.values) { out[key] = coerce(key, v, `command line ${CONFIG_FIELDS[key].flag}`); from[key] = `flag ${CONFIG_FIELDS[key].flag}` }
  for (const [k, v] of Object.entries(sources.overrides ?? {})) {
    if (!(k in CONFIG_FIELDS)) throw new ConfigError(`overrides: unknown key ${k}`)
    out[k] = coerce(k as ConfigKey, v, 'overrides')
    from[k] = 'overrides'
  }

  const config = out as Config
  if (config.requestTimeoutMs > config.maxTimeoutMs) {
    throw new ConfigError(`requestTimeoutMs (${config.requestTimeoutMs}) is above maxTimeoutMs (${config.maxTimeoutMs})`)
  }
  // [P-11.5] Like Mosquitto 2: no auth is allowed only on loopback unless asked for.
  if (!authEnabled(config) && !isLoopback(config.host) && !config.allowAnonymous) {
    throw new ConfigError(`refusing to listen on ${config.host} without auth: set RTW_JWT_SECRET (or a public key / JWKS / RTW_API_KEYS_FILE), or pass --allow-anonymous (RTW_ALLOW_ANONYMOUS=1) to accept anonymous clients`)
  }
  if (config.maxTopicLevels > 100) throw new ConfigError(`maxTopicLevels may be at most 100, the broker's own ceiling (got ${config.maxTopicLevels})`)
  if ((config.tlsCertFile === '') !== (config.tlsKeyFile === '')) throw new ConfigError('tlsCertFile and tlsKeyFile go together')
  if (!config.wsPath.startsWith('/')) throw new ConfigError(`wsPath must start with "/" (got ${config.wsPath})`)
  if (config.staticDir !== '' && statSync(config.staticDir, { throwIfNoEntry: false })?.isDirectory() !== true) {
    throw new ConfigError(`staticDir ${config.staticDir} is not a directory`)
  }
  if (config.nodeId !== '' && !/^[A-Za-z0-9._:/-]{1,100}$/.test(config.nodeId)) throw new ConfigError(`nodeId must be 1 to 100 letters, digits or . _ : / - (got ${JSON.stringify(config.nodeId)})`)
  if (config.redisUrl !== '' && !/^rediss?:\/\/[^/]/.test(config.redisUrl)) throw new ConfigError(`redisUrl must be a redis:// or rediss:// URL (got ${JSON.stringify(config.redisUrl)})`)
  Object.freeze(config)
  // [P-11.9] a bad key file stops start-up here, like any other bad value; so do the TLS and JWT files.
  apiKeysOf(config)
  configFiles(config)
  return { config, flags: cli.flags, sources: Object.freeze(from as Record<ConfigKey, string>) }
}

/** A comma list as its non-empty, trimmed entries. */
function listOf (raw: string): string[] {
  return raw.split(',').map(s => s.trim()).filter(s => s.length > 0)
}

export function defaultText (v: string | number | boolean | readonly string[]): string {
  const text = Array.isArray(v) ? v.join(',') : String(v)
  return text === '' ? '(unset)' : '`' + text + '`'
}

/** The documentation table, for `--help` and for the README. */
export function configTable (): string {
  const rows = KEYS.map(k => {
    const f: Field = CONFIG_FIELDS[k]
    return `| \`${k}\` | \`${f.env}\` | \`${f.flag}\` | ${defaultText(f.default)} | ${f.doc} |`
  })
  return ['| key | env | flag | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n')
}
