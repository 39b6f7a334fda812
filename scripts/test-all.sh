#!/usr/bin/env bash
# The one test command (README): installs what the suite needs on a fresh
# Debian machine, then runs lint, typecheck, build and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: real MQTT clients nobody here wrote, mosquitto (a reference broker),
# a real RabbitMQ and Redis, a real browser.
need=()
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
[ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
[ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || [ -n "${RTW_TEST_AMQP_URL:-}" ] || need+=(rabbitmq-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-all: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # Debian starts the packaged RabbitMQ service on install where it can; the tests run their own node.
    if command -v service >/dev/null 2>&1; then
      for s in rabbitmq-server redis-server mosquitto; do service "$s" stop >/dev/null 2>&1 || true; done
    fi
  else
    echo "test-all: missing system packages. Install them first, as root:" >&2
    echo "  apt-get update && apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi

npm ci --no-audit --no-fund
npm run lint
npm run typecheck
npm run build

mkdir -p .tmp
set +e
npx vitest run --reporter=default --reporter=json --outputFile=.tmp/vitest.json
status=$?
set -e
# A closing line any CI reader understands, from vitest's own counts.
node -e '
  const r = JSON.parse(require("fs").readFileSync(".tmp/vitest.json", "utf8"));
  const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0);
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  if (r.numTotalTests === 0) process.exit(1);
' || status=1
exit $status
