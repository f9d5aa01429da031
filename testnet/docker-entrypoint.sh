#!/bin/sh
# Starts an aistack node in a container.
# - AISTACK_ROLE=bootstrap: publishes its own bootstrap address in /shared/bootstrap.addr.
# - AISTACK_BOOTSTRAP_HOST=<name>: waits for that file and joins through the address in it.
# The API listens on all interfaces inside the container so the port can be published;
# publish it on the host's loopback only (see docker-compose.yml).
set -eu
AISTACK="node /app/packages/node/dist/src/bin.js"
[ "${1:-start}" = "start" ] || exec $AISTACK "$@"
shift || true
args="--home ${AISTACK_HOME:-/data} --api 0.0.0.0:5454 --listen /ip4/0.0.0.0/tcp/4011 --listen /ip4/0.0.0.0/udp/4011/quic-v1 --network ${AISTACK_NETWORK:-local}"
if [ -n "${AISTACK_BOOTSTRAP_HOST:-}" ]; then
  i=0
  while [ ! -s /shared/bootstrap.addr ]; do
    i=$((i + 1))
    [ "$i" -gt 120 ] && { echo "no bootstrap address from ${AISTACK_BOOTSTRAP_HOST} after 60 s" >&2; exit 1; }
    sleep 0.5
  done
  args="$args --bootstrap $(cat /shared/bootstrap.addr)"
fi
if [ "${AISTACK_ROLE:-}" = "bootstrap" ]; then
  $AISTACK init --home "${AISTACK_HOME:-/data}" >/dev/null 2>&1 || true
  peer=$(node -e "import('@libp2p/crypto/keys').then(async ({ privateKeyFromProtobuf }) => { const { peerIdFromPrivateKey } = await import('@libp2p/peer-id'); const fs = await import('node:fs'); console.log(peerIdFromPrivateKey(privateKeyFromProtobuf(fs.readFileSync(process.argv[1]))).toString()) })" "${AISTACK_HOME:-/data}/identity.key")
  echo "/dns4/$(hostname)/tcp/4011/p2p/$peer" > /shared/bootstrap.addr
fi
# once the node is up (run.json naming this pid: exec keeps it), its API token goes to the
# shared volume for Prometheus, which mounts it read-only
pid=$$
(
  i=0
  while [ "$i" -lt 240 ]; do
    node -e "const r = JSON.parse(require('node:fs').readFileSync(process.argv[1], 'utf8')); if (r.pid !== Number(process.argv[2])) process.exit(1); process.stdout.write(r.api.token)" \
      "${AISTACK_HOME:-/data}/run.json" "$pid" > "/shared/api-token-$(hostname).tmp" 2>/dev/null \
      && mv "/shared/api-token-$(hostname).tmp" "/shared/api-token-$(hostname)" && break
    i=$((i + 1))
    sleep 0.5
  done
) &
# shellcheck disable=SC2086
exec $AISTACK start $args "$@"
