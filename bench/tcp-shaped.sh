#!/bin/sh
# ICE-TCP on a shaped path: what a commune hall whose firewall drops UDP gets from the real
# `hoinghi serve` behind a slow line, beside the same capacity on UDP. Needs root (tc, iptables).
#   bench/tcp-shaped.sh                 2 Mbit/s, 1 Mbit/s and 300 kbit/s, TCP and UDP
# For each rate R, two runs of `hoinghi-loadtest fanout -n N --simulcast --layers 150,500,1200`
# against a fresh `hoinghi serve`:
#  - tcp: `--link tcp-only` (the emulator drops every UDP datagram, so the points reach the media
#    plane over ICE-TCP) and the kernel shapes the server→point direction of ICE-TCP: one htb
#    class per point (one hall, one line; a watcher gives each new connection from the ICE-TCP
#    port its own class, matched by the point's port, within ~50 ms; until then it sits in a
#    shared class of the same rate), each with a tbf leaf of rate R, burst 1600 B and a drop-tail
#    limit of 200 ms at R: a shallow access-line buffer (TCP retransmits what it drops, so the
#    backlog moves into the server's socket and queue, which is what we want to see). tbf, not a
#    plain fifo, because it cuts the kernel's TCP super-segments (GSO, up to 64 KiB on loopback)
#    into MSS-sized packets as a real line would see them; an iptables TCPMSS rule makes the
#    points' SYNs announce MSS 1448 as on an Ethernet path (loopback's MTU is 64 KiB). Without
#    both, whole 64 KiB bursts were dropped or serialised for half a second at a time.
#  - udp: `--link rate=R,queue=200` (the loadtest's own UDP emulator: same rate, same 200 ms
#    drop-tail queue, no loss, no added delay), no tc.
# Everything runs in a network namespace of its own (`hn-tcpshaped`, deleted on exit): its
# loopback is ours alone, so nobody else's tc on the machine's lo meets ours, and its TCP
# congestion control is set per run (TCP_CCS; the server's ICE-TCP sockets use the namespace's
# default). This machine's default is bbr; stock Linux's is cubic, which a namespace may not pick
# here (net.ipv4.tcp_allowed_congestion_control is "reno bbr", a machine-wide setting we leave
# alone), so reno stands for the loss-based kind: like cubic, it fills the line's buffer until
# it drops.
# Each JSON gets a `shaping` object: the setup, the server's ICE-TCP counters and RTT histogram
# from /metrics at the end of the run, the shaper's own counters, and the kernel's view of each
# ICE-TCP connection (srtt, bytes in the send buffer, retransmissions) sampled every second by `ss`.
# Environment: OUT (bench/results), RATES ("2000 1000 300", kbit/s), TCP_N (3 points per run),
# SECONDS_RUN (30), TCP_CCS ("reno bbr"), TRANSPORTS ("tcp udp"), HOINGHI, LOADTEST, LAYERS
# (150,500,1200), MSS (1448), COMMIT (what the binaries were built from; default HEAD).
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
LT=${LOADTEST:-target/release/hoinghi-loadtest}
HN=${HOINGHI:-target/release/hoinghi}
PORT=18453
MEDIA_PORT=41020
ICE=41021
RATES=${RATES:-2000 1000 300}
N=${TCP_N:-3}
SECS=${SECONDS_RUN:-30}
LAYERS=${LAYERS:-150,500,1200}
MSS=${MSS:-1448}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD)}
NS=hn-tcpshaped
X="ip netns exec $NS"
H=4c7
[ "$(id -u)" = 0 ] || { echo "tcp-shaped.sh: needs root (ip netns, tc, iptables)" >&2; exit 1; }
for c in ip tc iptables ss python3; do
  command -v "$c" >/dev/null || { echo "tcp-shaped.sh: needs $c" >&2; exit 1; }
done
mkdir -p "$OUT"
[ -x "$LT" ] && [ -x "$HN" ] || cargo build --release -p hoinghi -p loadtest

DATA=
SPID=
WPID=
WORK=$(mktemp -d)
unshape() {
  [ -n "$WPID" ] && kill "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null || true
  WPID=
  if $X tc qdisc show dev lo 2>/dev/null | grep -q "^qdisc htb $H: root"; then
    $X tc qdisc del dev lo root
  fi
}
stop() {
  [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null || true
  SPID=
  [ -n "$DATA" ] && rm -rf "$DATA"
  DATA=
}
cleanup() {
  unshape
  stop
  # The namespace takes its qdiscs, iptables rules and sysctls with it.
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
# A leftover of an interrupted run of ours goes first.
ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
$X ip link set lo up
# The load generator's WebRTC stack joins a multicast group (mDNS), which needs a route: a veth
# pair inside the namespace with the default route gives it one. No traffic leaves the namespace.
$X ip link add hn0 type veth peer name hn1
$X ip addr add 10.254.0.1/24 dev hn0
$X ip link set hn0 up
$X ip link set hn1 up
$X ip route add default dev hn0
# The points' SYNs announce MSS 1448, as on an Ethernet path (see above).
$X iptables -t mangle -A OUTPUT -o lo -p tcp --dport "$ICE" --tcp-flags SYN,RST SYN \
  -j TCPMSS --set-mss "$MSS"

start() {
  DATA=$(mktemp -d)
  LOG="$WORK/serve.log"
  : > "$LOG"
  $X env RUST_LOG=warn "$HN" serve --no-tls --listen "127.0.0.1:$PORT" --data-dir "$DATA" \
    --public-ip 127.0.0.1 --media-port "$MEDIA_PORT" --ice-tcp-port "$ICE" --workers 1 \
    --metrics-listen 127.0.0.1:0 > "$LOG" 2>&1 &
  SPID=$!
  i=0
  until grep -q '^ready: ' "$LOG"; do
    i=$((i + 1))
    if [ $i -ge 300 ] || ! kill -0 "$SPID" 2>/dev/null; then cat "$LOG" >&2; exit 1; fi
    sleep 0.1
  done
  # /metrics is served on its own listener only, printed before `ready:`.
  METRICS=$(sed -n 's/^metrics: //p' "$LOG" | head -n 1)
}

# Drop-tail limit: 200 ms at the rate (at least 4 full-size segments).
bfifo_bytes() { b=$(($1 * 1000 / 8 / 5)); [ "$b" -ge 6000 ] && echo "$b" || echo 6000; }

shape() { # rate in kbit/s
  r=$1
  q=$(bfifo_bytes "$r")
  $X tc qdisc add dev lo root handle "$H:" htb default 1
  $X tc class add dev lo parent "$H:" classid "$H:1" htb rate 20gbit quantum 60000
  # New ICE-TCP connections wait here (rate R, shared) until the watcher gives them a class.
  $X tc class add dev lo parent "$H:" classid "$H:2" htb rate 1gbit quantum 60000
  $X tc qdisc add dev lo parent "$H:2" tbf rate "${r}kbit" burst 1600 limit "$q"
  $X tc filter add dev lo parent "$H:" protocol ip prio 2 u32 \
    match ip protocol 6 0xff match ip sport "$ICE" 0xffff flowid "$H:2"
  # The watcher: one class of rate R per ICE-TCP connection (matched by the point's port), and
  # the kernel's view of every such connection once a second.
  (
    k=16
    seen=" "
    tick=0
    while :; do
      for p in $($X ss -Htn state established "( sport = :$ICE )" | awk '{n=split($4,a,":"); print a[n]}'); do
        case "$seen" in *" $p "*) continue ;; esac
        seen="$seen$p "
        k=$((k + 1))
        c=$(printf '%x' "$k")
        $X tc class add dev lo parent "$H:" classid "$H:$c" htb rate 1gbit quantum 60000 &&
          $X tc qdisc add dev lo parent "$H:$c" tbf rate "${r}kbit" burst 1600 limit "$q" &&
          $X tc filter add dev lo parent "$H:" protocol ip prio 1 u32 match ip protocol 6 0xff \
            match ip sport "$ICE" 0xffff match ip dport "$p" 0xffff flowid "$H:$c" ||
          echo "tcp-shaped.sh: could not give port $p a class" >&2
        echo "class $p $H:$c $(date +%s.%N)" >> "$WORK/watch.log"
      done
      tick=$((tick + 1))
      if [ $((tick % 20)) = 0 ]; then
        echo "t $(date +%s.%N)" >> "$WORK/ss.log"
        $X ss -Htni state established "( sport = :$ICE )" >> "$WORK/ss.log" || true
      fi
      sleep 0.05
    done
  ) &
  WPID=$!
}

run() { # transport rate [congestion control]
  t=$1 r=$2 cc=${3:-}
  if [ "$t" = tcp ]; then json="$OUT/tcp-tcp-$cc-$r.json"; else json="$OUT/tcp-udp-$r.json"; fi
  : > "$WORK/watch.log"
  : > "$WORK/ss.log"
  : > "$WORK/tc.txt"
  [ -n "$cc" ] && $X sysctl -qw net.ipv4.tcp_congestion_control="$cc"
  start
  if [ "$t" = tcp ]; then
    shape "$r"
    link=tcp-only
  else
    link="rate=${r}k,queue=200"
  fi
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  $X "$LT" fanout -n "$N" --simulcast --layers "$LAYERS" --link "$link" --seconds "$SECS" \
    --ready-timeout 30 --per-point --server "ws://127.0.0.1:$PORT/ws" --tokens "$DATA" \
    --server-pid "$SPID" --metrics "$METRICS" --json "$json" || true
  [ "$t" = tcp ] && $X tc -s qdisc show dev lo > "$WORK/tc.txt"
  $X python3 - "$json" "$t" "$r" "$(bfifo_bytes "$r")" "$MSS" "$ICE" "$load" \
    "$METRICS" "$WORK" "$COMMIT" "$cc" "$N" <<'PY'
import json, re, sys, urllib.request
path, t, rate, q, mss, ice, load, murl, work, commit, cc, n = sys.argv[1:]
try:
    r = json.load(open(path))
except (OSError, ValueError):
    sys.exit(f"tcp-shaped.sh: no report in {path}")
m, rtt = {}, []
try:
    for line in urllib.request.urlopen(murl, timeout=5).read().decode().splitlines():
        if line.startswith("hoinghi_ice_tcp_"):
            k, v = line.rsplit(" ", 1)
            m[k] = float(v)
        mm = re.match(r'hoinghi_link_rtt_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if mm:
            rtt.append((float(mm.group(1)), float(mm.group(2))))
except OSError as e:
    m["error"] = str(e)
def hq(b, q):
    # histogram_quantile over cumulative buckets (whole run: a fresh server per run).
    if not b or b[-1][1] == 0:
        return None
    rank, prev_le, prev_c = q * b[-1][1], 0.0, 0.0
    for le, c in b:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-9)
        prev_le, prev_c = le, c
    return None
rtt.sort()
# ss -tni: per connection, one line of addresses then one of tcp_info.
conns = {}
port = None
for line in open(f"{work}/ss.log"):
    f = line.split()
    if not f or f[0] == "t":
        continue
    if re.match(r"^\d+$", f[0]) and len(f) >= 4:
        port = f[3].rsplit(":", 1)[1]
        c = conns.setdefault(port, {"srtt_ms": [], "send_q_bytes": [], "retrans": 0})
        c["send_q_bytes"].append(int(f[1]))
        continue
    if port is None:
        continue
    c = conns[port]
    mm = re.search(r"\brtt:([\d.]+)/", line)
    if mm:
        c["srtt_ms"].append(float(mm.group(1)))
    mm = re.search(r"\bretrans:\d+/(\d+)", line)
    if mm:
        c["retrans"] = int(mm.group(1))
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else None
kern = [{"port": p, "srtt_ms_p50": pct(c["srtt_ms"], 50), "srtt_ms_max": max(c["srtt_ms"], default=None),
         "send_q_bytes_p50": pct(c["send_q_bytes"], 50), "send_q_bytes_max": max(c["send_q_bytes"], default=None),
         "retransmitted_segments": c["retrans"], "samples": len(c["srtt_ms"])} for p, c in sorted(conns.items())]
# tc -s qdisc: each tbf leaf's packets sent and dropped (the point's down line).
tbf = []
cur = None
for line in open(f"{work}/tc.txt"):
    mm = re.match(r"qdisc tbf \S+ parent (\S+)", line)
    if mm:
        cur = {"class": mm.group(1)}
        tbf.append(cur)
        continue
    mm = re.match(r"\s*Sent (\d+) bytes (\d+) pkt \(dropped (\d+)", line)
    if mm and cur is not None and "sent_bytes" not in cur:
        cur.update(sent_bytes=int(mm.group(1)), sent_packets=int(mm.group(2)), dropped_packets=int(mm.group(3)))
tbf = [x for x in tbf if x.get("sent_packets", 0) > 10]
r["shaping"] = {
    "transport": t, "rate_kbps": int(rate), "commit": commit, "loadavg_start": load,
    "tcp_congestion_control": cc or None,
    "setup": (f"per point: htb class (u32 sport {ice} + the point's dport) with a tbf leaf, rate {rate} kbit/s, "
              f"burst 1600 B, limit {q} B (200 ms); iptables TCPMSS --set-mss {mss} on the points' SYNs; "
              f"TCP {cc}") if t == "tcp"
             else f"loadtest emulator --link rate={rate}k,queue=200 (UDP), no tc",
    "shaper": tbf,
    "classes": sum(1 for l in open(f"{work}/watch.log") if l.startswith("class")),
    "ice_tcp_metrics": m,
    # hoinghi_link_rtt_seconds: RTT from the points' receiver reports (LSR/DLSR), every 2 s; the
    # sender report waits in every queue on the way down, so this is the server's view of it.
    "server_rtt_ms": {"count": rtt[-1][1] if rtt else 0,
                      **{f"p{int(q*100)}": (None if hq(rtt, q) is None else round(hq(rtt, q) * 1e3, 1))
                         for q in (0.5, 0.9, 0.99)},
                      "over_1600ms": (rtt[-1][1] - dict(rtt).get(1.6, 0)) if rtt else 0},
    "kernel_tcp": kern,
}
json.dump(r, open(path, "w"), indent=1)
print(f"{path}: decodable {r['points']['decodable']}/{r['points']['requested']}, "
      f"dropped {sum(v for k, v in m.items() if k.startswith('hoinghi_ice_tcp_send_dropped_total'))}, kernel {kern}")
PY
  unshape
  stop
}

for r in $RATES; do
  for t in ${TRANSPORTS:-tcp udp}; do
    if [ "$t" = tcp ]; then
      for cc in ${TCP_CCS:-reno bbr}; do run tcp "$r" "$cc"; done
    else
      run udp "$r"
    fi
  done
done
