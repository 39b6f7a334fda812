// Preloaded (`node --import`) into the gateway of the gateway-nometrics bench
// row: turns the per-request counting of rtw_requests_total and
// rtw_request_duration_seconds into a no-op, so that row beside the gateway
// row is what counting costs per request. ESM loads a module once per URL, so
// this patches the very class the gateway's metrics plugin uses.
import { Metrics } from '../../gateway/metrics/registry.js'

Metrics.prototype.settled = function settled () {}
