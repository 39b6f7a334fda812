// Configuration: defaults → file → environment → command line (→ overrides),
// validated once, frozen; a bad value fails with ConfigError naming its source.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CONFIG_FIELDS, ConfigError, configTable, loadConfig, type ConfigKey } from '../../gateway/config.js'
import { describeConfig, printConfig, redact } from '../../gateway/config-print.js'

const dir = mkdtempSync(join(tmpdir(), 'rtw-config-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

let n = 0
function file (content: unknown): string {
  const p = join(dir, `c${n++}.json`)
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content))
  return p
}

function fails (fn: () => unknown, message: RegExp): void {
  let err: unknown
  try {
    fn()
  } catch (e) {
    err = e
  }
  expect(err).toBeInstanceOf(ConfigError)
  expect((err as ConfigError).code).toBe('RTW_CONFIG_INVALID')
  expect((err as Error).message).toMatch(message)
}

describe('loadConfig', () => {
  it('starts from the documented defaults, frozen', () => {
    const { config } = loadConfig()
    for (const key of Object.keys(CONFIG_FIELDS) as ConfigKey[]) expect(config[key], key).toEqual(CONFIG_FIELDS[key].default)
    expect(config).toMatchObject({ host: '127.0.0.1', httpPort: 8080, mqttPort: 1883, wsPath: '/mqtt', requestTimeoutMs: 10_000, maxTimeoutMs: 60_000 })
    expect(Object.isFrozen(config)).toBe(true)
    expect(() => { (config as { httpPort: number }).httpPort = 1 }).toThrow(TypeError)
  })

  it('applies file, then environment, then command line, then overrides', () => {
    const f = file({ httpPort: 1001, mqttPort: 2001, bodyLimit: 3001, maxInFlight: 4001 })
    const { config } = loadConfig({
      file: f,
      env: { RTW_MQTT_PORT: '2002', RTW_BODY_LIMIT: '3002', RTW_MAX_IN_FLIGHT: '4002' },
      argv: ['--body-limit', '3003', '--max-in-flight=4003'],
      overrides: { maxInFlight: 4004 }
    })
    expect(config.httpPort).toBe(1001)
    expect(config.mqttPort).toBe(2002)
    expect(config.bodyLimit).toBe(3003)
    expect(config.maxInFlight).toBe(4004)
  })

  it('finds the file through --config, --config=, or RTW_CONFIG; the command line wins', () => {
    const a = file({ httpPort: 1111 })
    const b = file({ httpPort: 2222 })
    expect(loadConfig({ env: { RTW_CONFIG: a } }).config.httpPort).toBe(1111)
    expect(loadConfig({ argv: ['--config', a] }).config.httpPort).toBe(1111)
    expect(loadConfig({ env: { RTW_CONFIG: a }, argv: [`--config=${b}`] }).config.httpPort).toBe(2222)
  })

  it('ignores empty environment variables', () => {
    expect(loadConfig({ env: { RTW_HTTP_PORT: '' } }).config.httpPort).toBe(8080)
  })

  it('reads every documented environment variable and flag', () => {
    expect(loadConfig({ env: { RTW_HOST: '127.0.0.2', RTW_HTTP_PORT: '0', RTW_MQTT_PORT: '0', RTW_WS_PATH: '/ws', RTW_REQUEST_QOS: '0', RTW_LOG_LEVEL: 'silent', RTW_SHUTDOWN_GRACE_MS: '0' } }).config)
      .toMatchObject({ host: '127.0.0.2', httpPort: 0, mqttPort: 0, wsPath: '/ws', requestQos: 0, logLevel: 'silent', shutdownGraceMs: 0 })
    expect(loadConfig({ argv: ['--host', 'localhost', '--http-port', '9', '--mqtt-port', '10', '--request-timeout-ms', '5', '--max-timeout-ms', '6'] }).config)
      .toMatchObject({ host: 'localhost', httpPort: 9, mqttPort: 10, requestTimeoutMs: 5, maxTimeoutMs: 6 })
  })

  it('takes a bare boolean flag as true, and collects unknown bare flags', () => {
    const { config, flags } = loadConfig({ argv: ['--allow-anonymous', '--help'] })
    expect(config.allowAnonymous).toBe(true)
    expect(flags.has('--help')).toBe(true)
  })

  it.each([
    ['a port above 65535 in the environment', { env: { RTW_HTTP_PORT: '70000' } }, /environment RTW_HTTP_PORT: httpPort must be a port/],
    ['a negative port', { env: { RTW_MQTT_PORT: '-1' } }, /mqttPort must be a port/],
    ['a port that is not a number', { env: { RTW_MQTT_PORT: 'abc' } }, /mqttPort must be a whole number/],
    ['a fractional number', { env: { RTW_BODY_LIMIT: '1.5' } }, /bodyLimit must be a whole number/],
    ['a number below its minimum', { argv: ['--max-in-flight', '0'] }, /command line --max-in-flight: maxInFlight must be at least 1/],
    ['a qos of 2', { env: { RTW_REQUEST_QOS: '2' } }, /requestQos must be 0 or 1/],
    ['an unknown log level', { env: { RTW_LOG_LEVEL: 'loud' } }, /logLevel must be one of/],
    ['a boolean that is not true/false', { env: { RTW_ALLOW_ANONYMOUS: 'yes' } }, /allowAnonymous must be true or false/],
    ['an empty host', { argv: ['--host', ''] }, /host must be a non-empty string/],
    ['a stray argument', { argv: ['serve'] }, /command line: unexpected argument "serve"/],
    ['an unknown bare flag', { argv: ['--bogus'] }, /command line: unknown flag --bogus;/],
    ['a mistyped flag with a value, named rather than its value', { argv: ['--http-prot', '9000'] }, /unknown flag --http-prot \(did you mean --http-port\?\)/],
    ['a mistyped flag with =', { argv: ['--mqtt-prot=1'] }, /unknown flag --mqtt-prot \(did you mean --mqtt-port\?\)/],
    ['a staticDir that is not a directory', { env: { RTW_STATIC_DIR: '/nonexistent/rtw' } }, /staticDir \/nonexistent\/rtw is not a directory/],
    ['a flag without its value', { argv: ['--http-port'] }, /--http-port needs a value/],
    ['a default timeout above the maximum', { env: { RTW_REQUEST_TIMEOUT_MS: '5000', RTW_MAX_TIMEOUT_MS: '1000' } }, /requestTimeoutMs \(5000\) is above maxTimeoutMs \(1000\)/],
    ['a WebSocket path without "/"', { env: { RTW_WS_PATH: 'mqtt' } }, /wsPath must start with "\/"/],
    ['a non-loopback host without auth', { env: { RTW_HOST: '0.0.0.0' } }, /refusing to listen on 0\.0\.0\.0 without auth/]
  ])('fails on %s', (_what, sources, message) => {
    fails(() => loadConfig(sources), message)
  })

  it('fails on a bad file: missing, not JSON, not an object, an unknown key, a bad value', () => {
    fails(() => loadConfig({ file: join(dir, 'missing.json') }), /config file .*missing\.json/)
    fails(() => loadConfig({ file: file('{nope') }), /config file .*c\d+\.json/)
    fails(() => loadConfig({ file: file([1, 2]) }), /must hold a JSON object/)
    fails(() => loadConfig({ file: file({ httpport: 1 }) }), /unknown key httpport/)
    fails(() => loadConfig({ file: file({ httpPort: '80a' }) }), /config file .*: httpPort must be a whole number/)
  })

  it('allows a non-loopback host with auth or with allowAnonymous', () => {
    expect(loadConfig({ env: { RTW_HOST: '0.0.0.0', RTW_ALLOW_ANONYMOUS: '1' } }).config.host).toBe('0.0.0.0')
    expect(loadConfig({ env: { RTW_HOST: '0.0.0.0', RTW_JWT_SECRET: 's3cret-s3cret-s3cret-s3cret-s3cret' } }).config.host).toBe('0.0.0.0')
  })

  it('takes dataDir and a redis:// or rediss:// redisUrl, and refuses any other URL', () => {
    const { config } = loadConfig({ env: { RTW_DATA_DIR: '/var/lib/rtw', RTW_REDIS_URL: 'redis://10.0.0.5:6379/2' } })
    expect(config.dataDir).toBe('/var/lib/rtw')
    expect(config.redisUrl).toBe('redis://10.0.0.5:6379/2')
    expect(loadConfig({ argv: ['--redis-url', 'rediss://user:pw@r.example:6380'] }).config.redisUrl).toBe('rediss://user:pw@r.example:6380')
    expect(loadConfig({ argv: ['--data-dir=/d'] }).config.dataDir).toBe('/d')
    expect(loadConfig().config.redisUrl).toBe('')
    fails(() => loadConfig({ env: { RTW_REDIS_URL: 'http://r:6379' } }), /redisUrl must be a redis:\/\/ or rediss:\/\/ URL/)
    fails(() => loadConfig({ env: { RTW_REDIS_URL: 'localhost:6379' } }), /redisUrl must be/)
  })

  it('takes a nodeId of letters, digits and . _ : / -, and refuses anything else', () => {
    expect(loadConfig({ env: { RTW_NODE_ID: 'gw-eu.1:8080/0' } }).config.nodeId).toBe('gw-eu.1:8080/0')
    expect(loadConfig({ argv: ['--node-id', 'b_2'] }).config.nodeId).toBe('b_2')
    expect(loadConfig().config.nodeId).toBe('')
    fails(() => loadConfig({ env: { RTW_NODE_ID: 'has space' } }), /nodeId must be 1 to 100 letters/)
    fails(() => loadConfig({ env: { RTW_NODE_ID: 'x'.repeat(101) } }), /nodeId must be/)
  })

  it('documents every key with its environment variable and flag', () => {
    const table = configTable()
    for (const [key, f] of Object.entries(CONFIG_FIELDS)) {
      expect(table).toContain(`| \`${key}\` | \`${f.env}\` | \`${f.flag}\` |`)
    }
  })
})

describe('list keys', () => {
  const LISTS = (Object.keys(CONFIG_FIELDS) as ConfigKey[]).filter(k => Array.isArray(CONFIG_FIELDS[k].default))

  it('are every "Comma list" key, arrays once loaded, frozen like the rest', () => {
    const documented = (Object.keys(CONFIG_FIELDS) as ConfigKey[]).filter(k => CONFIG_FIELDS[k].doc.startsWith('Comma list'))
    expect(LISTS.sort()).toEqual(documented.sort())
    expect(LISTS.length).toBeGreaterThanOrEqual(9)
    const { config } = loadConfig()
    for (const key of LISTS) {
      expect(Array.isArray(config[key]), key).toBe(true)
      expect(Object.isFrozen(config[key]), key).toBe(true)
    }
    expect(config.historyTopics).toEqual(['#'])
    expect(config.allowedOrigins).toEqual([])
  })

  it('take a comma list from env and flags, and a JSON array or a comma string from the file', () => {
    const trimmed = ['a/#', 'b/+/c']
    expect(loadConfig({ env: { RTW_HISTORY_TOPICS: ' a/# , b/+/c ,' } }).config.historyTopics).toEqual(trimmed)
    expect(loadConfig({ argv: ['--history-topics', 'a/#,b/+/c'] }).config.historyTopics).toEqual(trimmed)
    expect(loadConfig({ argv: ['--history-topics=a/#,b/+/c'] }).config.historyTopics).toEqual(trimmed)
    expect(loadConfig({ file: file({ historyTopics: ['a/#', ' b/+/c', ''] }) }).config.historyTopics).toEqual(trimmed)
    expect(loadConfig({ file: file({ historyTopics: 'a/#, b/+/c' }) }).config.historyTopics).toEqual(trimmed)
    expect(loadConfig({ overrides: { historyTopics: 'a/#,b/+/c' } }).config.historyTopics).toEqual(trimmed)
    expect(loadConfig({ overrides: { queuedServices: ['jobs', 'mail'] } }).config.queuedServices).toEqual(['jobs', 'mail'])
    // An empty value on the command line or in the file empties a list whose default is not empty.
    expect(loadConfig({ argv: ['--amqp-bridge-out', ''] }).config.amqpBridgeOut).toEqual([])
    expect(loadConfig({ file: file({ amqpBridgeIn: [] }) }).config.amqpBridgeIn).toEqual([])
  })

  it('refuse what is neither, and a filter list checks each filter, naming the key and the source', () => {
    fails(() => loadConfig({ file: file({ openReplies: 3 }) }), /config file .*: openReplies must be a comma list, or in a config file an array of strings/)
    fails(() => loadConfig({ file: file({ allowedOrigins: ['https://a.example', 1] }) }), /allowedOrigins must be a comma list, or in a config file an array/)
    fails(() => loadConfig({ env: { RTW_HISTORY_TOPICS: 'a/#,b/#/c' } }), /^environment RTW_HISTORY_TOPICS: historyTopics must be a list of MQTT topic filters: "b\/#\/c" is not one/)
    fails(() => loadConfig({ file: file({ historyTopics: ['a/+', 'x#'] }) }), /config file .*: historyTopics must be a list of MQTT topic filters: "x#"/)
  })

  it('are shown by --print-config as the comma list env and flags take', () => {
    const { config, sources } = loadConfig({ file: file({ allowedHosts: ['gw.example', '.corp.example'] }) })
    const shown = describeConfig(config, sources)
    expect(shown.allowedHosts.value).toBe('gw.example,.corp.example')
    expect(shown.openReplies.value).toBe('')
    expect(printConfig(config, sources)).toMatch(/^openReplies +\(unset\) +default$/m)
  })
})

describe('files the config names are read and checked by loadConfig', () => {
  const missing = join(dir, 'no-such-file.pem')

  it.each([
    ['jwtPublicKeyFile', { jwtPublicKeyFile: missing }, /^jwtPublicKeyFile .*no-such-file\.pem: cannot read it/],
    ['jwksFile', { jwksFile: missing }, /^jwksFile .*: cannot read it/],
    ['tlsCertFile', { tlsCertFile: missing, tlsKeyFile: missing }, /^tlsCertFile .*: cannot read it/]
  ])('a missing %s: RTW_CONFIG_INVALID naming the key, not ENOENT at first use', (_key, overrides, message) => {
    fails(() => loadConfig({ overrides }), message)
  })

  it('a file that does not hold what its key says: RTW_CONFIG_INVALID naming the key', () => {
    fails(() => loadConfig({ overrides: { jwtPublicKeyFile: file('not a key') } }), /^jwtPublicKeyFile .*: not a PEM public key/)
    fails(() => loadConfig({ overrides: { jwksFile: file('{"nokeys": 1}') } }), /^jwksFile .*: not a JWKS \(no "keys" array\)/)
    fails(() => loadConfig({ overrides: { jwksFile: file('{') } }), /^jwksFile .*: not a JWKS/)
  })
})

describe('--print-config', () => {
  it('names the source of every value: default, file, env, flag', () => {
    const f = file({ mqttPort: 2001, requestTimeoutMs: 500 })
    const { config, sources } = loadConfig({ env: { RTW_CONFIG: f, RTW_REQUEST_TIMEOUT_MS: '700', RTW_BODY_LIMIT: '99' }, argv: ['--body-limit', '100'] })
    const shown = describeConfig(config, sources)
    expect(shown.host).toEqual({ value: '127.0.0.1', source: 'default' })
    expect(shown.mqttPort).toEqual({ value: '2001', source: `file ${f}` })
    expect(shown.requestTimeoutMs).toEqual({ value: '700', source: 'env RTW_REQUEST_TIMEOUT_MS' })
    expect(shown.bodyLimit).toEqual({ value: '100', source: 'flag --body-limit' })
    const text = printConfig(config, sources)
    for (const key of Object.keys(CONFIG_FIELDS)) expect(text).toMatch(new RegExp(`^${key} `, 'm'))
    expect(text).toMatch(/^bodyLimit +100 +flag --body-limit$/m)
  })

  it('redacts secrets and URL passwords', () => {
    const { config, sources } = loadConfig({ env: { RTW_JWT_SECRET: 'hunter2-very-secret', RTW_AMQP_URL: 'amqp://alice:pa55word@rabbit:5672/vh' } })
    const text = printConfig(config, sources)
    expect(text).not.toContain('hunter2')
    expect(text).not.toContain('pa55word')
    expect(text).toMatch(/^jwtSecret +\(redacted\) +env RTW_JWT_SECRET$/m)
    expect(text).toContain('amqp://alice:(redacted)@rabbit:5672/vh')
    expect(redact('amqpBridgeOut', 'a/#,b/#')).toBe('a/#,b/#')
  })
})
