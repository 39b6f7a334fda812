/* global document, location, performance, window */
// The demo page: connects by itself to /mqtt on this origin, then wires the
// request form, the live feed and the publish form to the client library.
import { connect, GatewayError } from '/client/realtime-web.js'
import { tokenField } from '/pages/token-field.js'

const $ = id => document.getElementById(id)
// With auth on, the token is the MQTT password and the REST Bearer token.
const token = tokenField()
const client = connect(token === '' ? {} : { token })
// Handy in the devtools console: rtw.request('echo', '/x', { body: 'hi' })
window.rtw = client

// ---- connection status ----------------------------------------------------
const status = $('status')
const statusText = $('status-text')
const statusDetail = $('status-detail')
let countdown

function showState (state, detail = '') {
  clearInterval(countdown)
  status.dataset.state = state
  statusText.textContent = { connecting: 'Connecting…', connected: 'Connected', disconnected: 'Reconnecting', closed: 'Closed' }[state]
  statusDetail.textContent = detail
}
// Which transport carries the page: the MQTT WebSocket, or the fallback when a proxy or network blocks it.
const transportLabel = () => client.transport === 'sse' ? 'EventSource + fetch (no WebSocket)' : 'MQTT over WebSocket'
client.on('transport', transport => { status.dataset.transport = transport })
status.dataset.transport = client.transport
client.on('state', state => { if (state !== 'disconnected') showState(state, state === 'connected' ? transportLabel() : '') })
client.on('disconnected', info => {
  // CONNACK 4 or 5: auth is on and the token is missing or refused.
  if (!info.willReconnect) return showState('closed', /return code [45]\b/.test(info.reason) ? `${info.reason}: the gateway has auth on; enter a token above` : info.reason)
  const at = Date.now() + info.delayMs
  const tick = () => { statusDetail.textContent = `in ${Math.max(0, (at - Date.now()) / 1000).toFixed(1)} s · attempt ${info.attempt}` }
  showState('disconnected')
  tick()
  countdown = setInterval(tick, 100)
})
client.on('connected', () => { setFeedState('live', filter) })
client.on('error', err => console.warn(`realtime-web: ${err.code}: ${err.message}`))
$('client-id').textContent = `client id ${client.clientId}`

// ---- request ---------------------------------------------------------------
const form = $('request-form')
const response = $('response')

function isJson (text) {
  try { JSON.parse(text); return true } catch { return false }
}

function showBody (body) {
  if (typeof body !== 'string') {
    const hex = Array.from(body.subarray(0, 256), b => b.toString(16).padStart(2, '0')).join(' ')
    return `${body.length} bytes of binary\n${hex}${body.length > 256 ? ' …' : ''}`
  }
  if (body === '') return '(empty body)'
  return isJson(body) ? JSON.stringify(JSON.parse(body), null, 2) : body
}

function showHeaders (headers) {
  const tbody = $('response-headers').tBodies[0]
  tbody.replaceChildren(...Object.keys(headers).sort().map(name => {
    const tr = document.createElement('tr')
    for (const text of [name, headers[name]]) tr.appendChild(document.createElement('td')).textContent = text
    return tr
  }))
}

function showResponse ({ status, headers, body }, via, ms, error) {
  response.dataset.state = error ? 'error' : status < 300 ? 'ok' : status < 500 ? 'warn' : 'error'
  $('response-status').textContent = status === 0 ? 'ERR' : String(status)
  $('response-meta').textContent = `via ${via.toUpperCase()} · ${ms.toFixed(1)} ms round trip`
  $('response-code').hidden = !error
  $('response-message').hidden = !error
  if (error) {
    $('response-code').textContent = error.code
    $('response-message').textContent = error.message
  }
  showHeaders(headers)
  $('response-body').textContent = showBody(body)
}

form.addEventListener('submit', async ev => {
  ev.preventDefault()
  const via = form.elements.via.value
  const method = $('req-method').value
  const text = $('req-body').value
  const body = text === '' ? undefined : text
  const headers = body !== undefined && isJson(body) ? { 'content-type': 'application/json' } : {}
  const button = $('req-send')
  button.disabled = true
  response.dataset.state = 'pending'
  $('response-meta').textContent = `waiting for the reply via ${via.toUpperCase()}…`
  const t0 = performance.now()
  try {
    const res = await client.request($('req-service').value.trim(), $('req-path').value.trim(), { method, body, headers, via })
    showResponse(res, via, performance.now() - t0)
  } catch (err) {
    const ms = performance.now() - t0
    if (!(err instanceof GatewayError)) throw err
    showResponse(err.response ?? { status: err.status, headers: {}, body: '' }, via, ms, err)
  } finally {
    button.disabled = false
  }
})

// ---- live feed -------------------------------------------------------------
const feed = $('feed')
const feedState = $('feed-state')
let filter = $('feed-filter').value
let unsubscribe = () => {}

function setFeedState (state, text) {
  feedState.dataset.state = state
  feedState.textContent = state === 'live' ? `live · ${text}` : text
}
client.on('disconnected', () => setFeedState('pending', 'paused'))
client.on('recovered', info => { if (info.filter === filter) setFeedState('live', info.recovered ? `${filter} · caught up` : `${filter} · some missed`) })

function addToFeed (msg) {
  const li = document.createElement('li')
  const time = li.appendChild(document.createElement('time'))
  time.textContent = new Date().toLocaleTimeString([], { hour12: false }) + '.' + String(Date.now() % 1000).padStart(3, '0')
  const topic = li.appendChild(document.createElement('span'))
  topic.className = 'topic'
  topic.textContent = msg.topic
  if (msg.retain) topic.appendChild(Object.assign(document.createElement('span'), { className: 'tag', textContent: 'retained' }))
  const payload = li.appendChild(document.createElement('div'))
  payload.className = 'payload'
  const text = msg.text
  payload.textContent = text.includes('\uFFFD') ? `${msg.payload.length} bytes of binary` : text.length > 2000 ? text.slice(0, 2000) + ' …' : text
  feed.prepend(li)
  while (feed.children.length > 200) feed.lastChild.remove()
}

function follow (next) {
  unsubscribe()
  filter = next
  setFeedState('pending', 'subscribing…')
  let sub
  try {
    // recover: messages published while the page was offline arrive when it is back, in order.
    sub = client.subscribe(filter, addToFeed, { qos: 1, recover: true })
  } catch (err) {
    return setFeedState('refused', err.code ?? 'invalid filter')
  }
  unsubscribe = sub
  sub.ready.then(() => { if (filter === next && client.state === 'connected') setFeedState('live', next) },
    err => setFeedState('refused', err.code))
}

$('feed-form').addEventListener('submit', ev => {
  ev.preventDefault()
  follow($('feed-filter').value.trim())
})
$('feed-clear').addEventListener('click', () => feed.replaceChildren())
follow(filter)

// ---- publish ---------------------------------------------------------------
$('publish-form').addEventListener('submit', async ev => {
  ev.preventDefault()
  const result = $('publish-result')
  const qos = Number($('pub-qos').value)
  result.textContent = 'publishing…'
  try {
    await client.publish($('pub-topic').value.trim(), $('pub-payload').value, { qos, retain: $('pub-retain').checked })
    result.textContent = qos === 1 ? 'published · acknowledged by the gateway' : 'published'
  } catch (err) {
    result.textContent = `${err.code ?? 'error'}: ${err.message}`
  }
})

// ---- terminal examples -----------------------------------------------------
$('cli').textContent = [
  '# the same request over REST',
  `curl -X POST ${location.origin}/api/echo/hello -H 'content-type: text/plain' -d 'hi'`,
  '',
  '# publish into the live feed over MQTT (TCP port 1883 by default)',
  `mosquitto_pub -h ${location.hostname} -t demo/hello -m 'hi from mosquitto'`,
  '',
  '# or over HTTP',
  `curl -X POST ${location.origin}/publish -d '{"topic":"demo/hello","payload":"hi from curl"}'`
].join('\n')
