#!/bin/sh
# Side-by-side fan-out: hoinghi vs Janus on this machine, same publisher stream, same
# subscribers, same duration, same client stack (hoinghi-loadtest's async webrtc peers).
#
#   bench/compare-janus.sh [N ...]        default: 50 150 300
#
# Installs Debian's janus when missing, runs it from a throwaway config (VideoRoom + HTTP
# transport on 127.0.0.1:8088 only, ICE on this machine's non-loopback address), runs
# `hoinghi-loadtest compare` per N, and stops Janus. JSON results go to $OUT (default
# bench/results). Environment: SECONDS_PER_RUN (20), VIDEO_KBPS (800), FPS (30), LOADTEST
# (path of the hoinghi-loadtest binary; default target/release/hoinghi-loadtest).
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
SECS=${SECONDS_PER_RUN:-20}
KBPS=${VIDEO_KBPS:-800}
FPS=${FPS:-30}
LOADTEST=${LOADTEST:-target/release/hoinghi-loadtest}
NS=${*:-50 150 300}
mkdir -p "$OUT"

if ! command -v janus >/dev/null 2>&1; then
  echo "installing janus (Debian package)" >&2
  apt-get install -y janus >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y janus >/dev/null; }
fi
[ -x "$LOADTEST" ] || cargo build --release -p loadtest

IP=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1)
[ -n "$IP" ] || { echo "no non-loopback IPv4 address: Janus gathers no loopback candidates" >&2; exit 1; }
LIB=/usr/lib/x86_64-linux-gnu/janus
CONF=$(mktemp -d /tmp/janus-bench.XXXXXX)
cat > "$CONF/janus.jcfg" <<JCFG
general: {
  configs_folder = "$CONF"
  plugins_folder = "$LIB/plugins"
  transports_folder = "$LIB/transports"
  events_folder = "$LIB/events"
  loggers_folder = "$LIB/loggers"
  debug_level = 3
  session_timeout = 0
  admin_secret = "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
}
media: {
  rtp_port_range = "30000-39999"
}
nat: {
  nice_debug = false
  ice_enforce_list = "$IP"
  ignore_mdns = true
}
plugins: {
  disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so"
}
transports: {
  disable = "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so,libjanus_websockets.so"
}
loggers: {
  disable = "libjanus_jsonlog.so"
}
events: {
  broadcast = false
}
JCFG
cat > "$CONF/janus.transport.http.jcfg" <<JCFG
general: {
  json = "plain"
  base_path = "/janus"
  http = true
  ip = "127.0.0.1"
  port = 8088
  https = false
}
admin: {
  admin_http = false
  admin_https = false
}
JCFG
cat > "$CONF/janus.plugin.videoroom.jcfg" <<JCFG
general: {
}
JCFG

janus -F "$CONF" -C "$CONF/janus.jcfg" -o > "$CONF/janus.log" 2>&1 &
JPID=$!
cleanup() { kill "$JPID" 2>/dev/null || true; wait "$JPID" 2>/dev/null || true; rm -rf "$CONF"; }
trap cleanup EXIT INT TERM
i=0
until curl -sf -X POST -d '{"janus":"info","transaction":"x"}' http://127.0.0.1:8088/janus >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "janus did not start:" >&2; tail -20 "$CONF/janus.log" >&2; exit 1; }
  sleep 0.1
done
echo "janus $(janus --version 2>/dev/null | head -n1) pid $JPID, ICE on $IP" >&2

for N in $NS; do
  echo "== fan-out to $N subscribers ==" >&2
  "$LOADTEST" compare -n "$N" --seconds "$SECS" --video-kbps "$KBPS" --fps "$FPS" \
    --janus-pid "$JPID" --janus-ip "$IP" --json "$OUT/compare-$N.json" --progress
done
