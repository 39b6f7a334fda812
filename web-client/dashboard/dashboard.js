/* global document, window, location, URLSearchParams */
// The dashboard: subscribes to $SYS/rtw/stats over this origin's /mqtt (no
// polling; the gateway publishes it every sysIntervalS) and draws the last
// five minutes of each number as a small line chart.
import { connect } from '/client/realtime-web.js'
import { tokenField } from '/pages/token-field.js'

// The last five minutes, or ?window=<seconds> (10 s to 1 h).
const asked = Number(new URLSearchParams(location.search).get('window'))
const WINDOW_MS = (Number.isFinite(asked) && asked >= 10 && asked <= 3600 ? asked : 300) * 1000
const COLORS = ['#4f46e5', '#12805c', '#d97706', '#db2777', '#0891b2', '#7c3aed', '#65a30d', '#b42318']

const $ = id => document.getElementById(id)
$('window-text').textContent = WINDOW_MS % 60_000 === 0 ? `${WINDOW_MS / 60_000} minute${WINDOW_MS === 60_000 ? '' : 's'}` : `${WINDOW_MS / 1000} seconds`
const token = tokenField()

const client = connect(token === '' ? {} : { token })
window.rtw = client

function showState (state, detail = '') {
  $('status').dataset.state = state
  $('status-text').textContent = { connecting: 'Connecting…', connected: 'Live', disconnected: 'Reconnecting', closed: 'Closed' }[state]
  $('status-detail').textContent = detail
}
function showProblem (text) {
  $('problem').hidden = text === ''
  $('problem').textContent = text
}
client.on('state', state => showState(state, state === 'connected' ? 'MQTT over WebSocket' : ''))
client.on('error', err => {
  if (err.code === 'RTW_CLIENT_CONNECT_REFUSED' || /refused|not authorized|bad user name/i.test(err.message)) {
    showProblem(`The gateway refused the connection (${err.message}). With auth on, enter a token above whose grants include subscribe "$SYS/#".`)
  }
})

// ---- the data: one $SYS/rtw/stats message per interval ----------------------
const history = []
const sub = client.subscribe('$SYS/rtw/stats', msg => {
  let stats
  try { stats = JSON.parse(msg.text) } catch { return }
  // A retained message can repeat the last one after a reconnect.
  if (history.length > 0 && history[history.length - 1].at >= stats.at) return
  history.push(stats)
  while (history.length > 0 && history[0].at < stats.at - WINDOW_MS) history.shift()
  if (stats.intervalS > 0) $('interval').textContent = `${Math.round(stats.intervalS)} s`
  showProblem('')
  render()
})
sub.ready.catch(err => showProblem(`Not allowed to read $SYS/rtw/stats (${err.message}): with auth on, the token needs a subscribe grant covering "$SYS/#".`))

/** Per-interval rate of a cumulative count: (now - before) / seconds between the two messages. */
function rate (i, read) {
  if (i === 0) return null
  const a = history[i - 1]
  const b = history[i]
  const dt = (b.at - a.at) / 1000
  return dt > 0 ? Math.max(0, (read(b) ?? 0) - (read(a) ?? 0)) / dt : null
}

function keysOf (read) {
  const keys = new Set()
  for (const s of history) for (const k of Object.keys(read(s) ?? {})) keys.add(k)
  return [...keys].sort()
}

/** The series of each chart: name → one value (or null) per history entry. */
const CHARTS = {
  connections: () => Object.fromEntries(keysOf(s => s.connections).map(t => [t, history.map(s => s.connections[t] ?? 0)])),
  messages: () => ({
    received: history.map((_s, i) => i === 0 ? null : history[i].rates.received),
    sent: history.map((_s, i) => i === 0 ? null : history[i].rates.sent)
  }),
  requests: () => {
    const series = {}
    for (const service of keysOf(s => s.requests)) {
      for (const status of keysOf(s => s.requests[service])) {
        series[`${service} ${status}`] = history.map((_s, i) => rate(i, s => s.requests[service]?.[status]))
      }
    }
    return series
  },
  inflight: () => ({ 'in flight': history.map(s => s.inFlight) }),
  latency: () => ({ p50: history.map(s => s.latencyMs.p50), p99: history.map(s => s.latencyMs.p99) }),
  dropped: () => Object.fromEntries(keysOf(s => s.dropped)
    .filter(r => history.some(s => (s.dropped[r] ?? 0) > 0))
    .map(r => [r, history.map((s, i) => i === 0 ? null : Math.max(0, (s.dropped[r] ?? 0) - (history[i - 1].dropped[r] ?? 0)))])),
  deps: () => Object.fromEntries(keysOf(s => s.up).map(name => [name, history.map(s => s.up[name] ? 1 : 0)]))
}

const fmt = v => v === null || v === undefined ? '–' : Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1)

function draw (canvas, series) {
  const ratio = window.devicePixelRatio || 1
  const w = canvas.clientWidth || canvas.width
  const h = canvas.clientHeight || canvas.height
  canvas.width = w * ratio
  canvas.height = h * ratio
  const g = canvas.getContext('2d')
  g.scale(ratio, ratio)
  g.clearRect(0, 0, w, h)
  const now = history.length === 0 ? 0 : history[history.length - 1].at
  const values = Object.values(series).flat().filter(v => v !== null)
  const max = Math.max(1, ...values) * 1.15
  const x = at => w - ((now - at) / WINDOW_MS) * w
  const y = v => h - 4 - (v / max) * (h - 8)
  g.strokeStyle = 'rgba(128,128,128,0.25)'
  g.beginPath(); g.moveTo(0, h - 4); g.lineTo(w, h - 4); g.stroke()
  Object.values(series).forEach((points, n) => {
    g.strokeStyle = COLORS[n % COLORS.length]
    g.lineWidth = 2
    g.beginPath()
    let pen = false
    points.forEach((v, i) => {
      if (v === null) { pen = false; return }
      const px = x(history[i].at)
      if (pen) g.lineTo(px, y(v)); else g.moveTo(px, y(v))
      pen = true
    })
    g.stroke()
  })
}

function render () {
  for (const section of document.querySelectorAll('[data-chart]')) {
    const series = CHARTS[section.dataset.chart]()
    section.dataset.points = String(history.length)
    draw(section.querySelector('canvas'), series)
    const entries = Object.entries(series)
    if (entries.length === 0) {
      const none = document.createElement('li')
      none.textContent = 'none so far'
      section.querySelector('.legend').replaceChildren(none)
      continue
    }
    section.querySelector('.legend').replaceChildren(...entries.map(([name, points], n) => {
      const li = document.createElement('li')
      li.dataset.series = name
      const swatch = li.appendChild(document.createElement('span'))
      swatch.className = 'swatch'
      swatch.style.background = COLORS[n % COLORS.length]
      li.appendChild(document.createElement('span')).textContent = name
      const value = li.appendChild(document.createElement('span'))
      value.className = 'value'
      value.textContent = fmt(points[points.length - 1])
      return li
    }))
  }
}
window.addEventListener('resize', render)
