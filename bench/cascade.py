#!/usr/bin/env python3
"""The cascade on one machine (issue 13): 1 upstream + 4 downstream `hoinghi serve` on loopback.

The upstream server has a meeting with a chair, one directly joined reference point and 4 relay
seats; each downstream server has a meeting of N points linked to one relay link
(`PUT /api/v1/meetings/{id}/upstream`). One `hoinghi-loadtest fanout` runs against the upstream
(the chair publishing a simulcast camera, the reference point receiving it) and one against each
downstream server (its chair silent, its N points receiving the upstream chair through their
server's relay). Every synthetic frame carries its wall-clock send time in its payload (servers
rewrite SSRCs, sequence numbers and RTP timestamps, not payloads), so each point reports the
one-way delay of the chair's frames; downstream minus the reference point's is what the extra hop
adds. CPU and RSS of every server from /proc/<pid>/stat over the common window.

Whose stall: every point of a province shares one generator process, so a freeze all of them see
at once is the province server's, the upstream side's, or that generator's own. After each run,
per province, the common freezes (more than half of its points beginning one within 200 ms of
each other, from `per_point[].freezes_at`) are set beside, on the wall clock
(`generator.epoch_unix_s`), with 200 ms of slack:
  - its own generator's stalls (`generator.stalls`: the runtime woke over 50 ms late);
  - the upstream side: the upstream generator's stalls (it runs the chair's camera) and the
    reference point's freezes (a freeze there too is the upstream server's or the chair's);
  - the other provinces' common freezes (all at once: upstream, or the whole machine);
  - the CPU of each server and generator in that second (/proc, sampled every second).
Printed after the table (`| province | common freezes | own generator's stalls | with own
generator stall | upstream side (generator stall / reference freeze) | also in other provinces |
unexplained | CPU % at freezes / median |`, the last for the province's server, the upstream
server, its generator and the upstream's); "unexplained" (neither its generator nor the
upstream side) leaves the province's own server and relay. Saved in the run's cascade.json as
`whose_stall` (`t0_unix`: the upstream generator's epoch, time zero of every `at_s`;
`provinces.<name>`: the counts above, `own_generator_stalls {count, max_ms}`,
`cpu_pct_at_freezes {process: {at_freezes, median}}` and `events[]` (the first 200 common
freezes: `at_s`, `points`, `ms` (median length), `own_generator_stall_ms`,
`upstream_generator_stall_ms`, `reference_freeze_ms` (the largest coinciding, or null),
`other_provinces`, `cpu_pct` per process)) and `cpu_per_second` (per process, `[s since t0, % of
a core]`). The pure parts are doctests: `python3 -m doctest bench/cascade.py`.

    bench/cascade.py [--points 20] [--seconds 60] [--runs 1] [--out bench/results] [--no-build]

Every process started here is stopped on exit (normal, error or signal).
"""

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
HN = os.path.join(TARGET, "release", "hoinghi")
LT = os.path.join(TARGET, "release", "hoinghi-loadtest")
CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

children = []  # every Popen started here
tmpdirs = []


def cleanup(*_):
    for p in children:
        if p.poll() is None:
            try:
                p.terminate()
            except OSError:
                pass
    deadline = time.time() + 10
    for p in children:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for d in tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


def on_signal(sig, _frame):
    cleanup()
    sys.exit(128 + sig)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    children.append(p)
    return p


# --- /proc ------------------------------------------------------------------------------------


def proc_cpu_rss(pid):
    """(utime+stime seconds, RSS bytes) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the comm: state is fields[0]; utime, stime are stat fields 14, 15; rss is 24.
    return (int(fields[11]) + int(fields[12])) / CLK, int(fields[21]) * PAGE


class Sampler(threading.Thread):
    """Samples CPU seconds and RSS of named pids once a second."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = pids
        self.samples = []  # (wall time, {name: (cpu, rss)})
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            now = time.time()
            snap = {n: proc_cpu_rss(pid) for n, pid in self.pids.items()}
            self.samples.append((now, snap))
            self.stop.wait(1.0)

    def per_second(self):
        """Per name: [(wall time of the interval's middle, % of one core)] between samples."""
        out = {n: [] for n in self.pids}
        for (a_t, a), (b_t, b) in zip(self.samples, self.samples[1:]):
            for n in self.pids:
                if a.get(n) and b.get(n) and b_t > a_t:
                    out[n].append(((a_t + b_t) / 2, 100 * (b[n][0] - a[n][0]) / (b_t - a_t)))
        return out

    def between(self, t0, t1):
        """Per name: % of one core over [t0, t1] and the largest RSS seen (MB)."""
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2:
            return {}
        (a_t, a), (b_t, b) = inside[0], inside[-1]
        out = {}
        for n in self.pids:
            if a.get(n) and b.get(n):
                rss = max(s[1][n][1] for s in inside if s[1].get(n))
                out[n] = {
                    "cpu_pct_of_core": round(100 * (b[n][0] - a[n][0]) / (b_t - a_t), 1),
                    "cpu_s": round(b[n][0] - a[n][0], 2),
                    "rss_mb": round(rss / 1e6, 1),
                }
        return out


# --- one `hoinghi serve` and its admin API -------------------------------------------------------


class Server:
    def __init__(self, name):
        self.name = name
        self.data = tempfile.mkdtemp(prefix=f"cascade-{name}-")
        tmpdirs.append(self.data)
        self.log_path = os.path.join(self.data, "stderr.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOINGHI_")}
        env["RUST_LOG"] = "warn"
        self.proc = spawn(
            ["nice", "-n", "10", HN, "serve", "--no-tls", "--listen", "127.0.0.1:0",
             "--media-port", "0", "--workers", "1", "--public-ip", "127.0.0.1",
             # Every simulated point comes from 127.0.0.1: the per-address join limits would
             # refuse some (429), as they would a NAT without `--max-connections-per-ip`.
             "--trust-loopback",
             "--data-dir", self.data],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=open(self.log_path, "w"), text=True, env=env)
        self.lines = []
        deadline = time.time() + 120
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{name} exited before ready: {self.lines}\n"
                                   + open(self.log_path).read()[-3000:])
            line = line.rstrip("\n")
            self.lines.append(line)
            if line.startswith("ready: "):
                self.base = line[len("ready: "):]
                break
            if time.time() > deadline:
                raise RuntimeError(f"{name}: no ready line")
        # Keep reading stdout so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        self.port = int(self.base.rsplit(":", 1)[1])
        self.pid = self.proc.pid  # nice execs hoinghi: same pid
        self.session = None

    def line(self, key):
        for l in self.lines:
            if l.startswith(key + ": "):
                return l[len(key) + 2:]
        return None

    def request(self, method, path, body=None, session=True):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method)
        req.add_header("Content-Type", "application/json")
        if session and self.session:
            req.add_header("Cookie", self.session[0])
            req.add_header("X-CSRF-Token", self.session[1])
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read().decode()
                return r.status, (json.loads(raw) if raw else None), r.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), e.headers

    def login(self, password):
        status, me, headers = self.request(
            "POST", "/api/v1/auth/login", {"username": "admin", "password": password},
            session=False)
        assert status == 200, (status, me)
        cookie = headers["set-cookie"].split(";")[0]
        self.session = (cookie, me["csrf_token"])
        return me

    def admin(self):
        """The bootstrap account, its password changed (as `tests/serve_harness` does)."""
        password = self.line("admin-bootstrap").split("password ")[1].split(" ")[0]
        me = self.login(password)
        if me.get("must_change_password"):
            new = "cascade bench " + self.name
            status, body, _ = self.request("POST", "/api/v1/auth/password",
                                           {"current_password": password, "new_password": new})
            assert status < 300, (status, body)
            self.login(new)

    def points(self, points):
        for p in points:
            status, body, _ = self.request("POST", "/api/v1/points", p)
            assert status == 201, (status, body)

    def meeting(self, title, chair, points, relays=()):
        starts = datetime.now(timezone.utc) + timedelta(seconds=60)  # open now, live in 1 min
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        body = {"title": title, "starts_at": starts.strftime(fmt),
                "ends_at": (starts + timedelta(hours=2)).strftime(fmt),
                "chair_point": chair, "points": list(points)}
        if relays:
            body["relays"] = list(relays)
        status, detail, _ = self.request("POST", "/api/v1/meetings", body)
        assert status == 201, (status, detail)
        return detail


def seat_links(detail):
    return {s["seat"]: s for s in detail["seats"]}


# --- a run -----------------------------------------------------------------------------------


def run_once(args, run_dir):
    os.makedirs(run_dir, exist_ok=True)
    load0 = open("/proc/loadavg").read().split()[:3]
    log(f"load average {' '.join(load0)}; starting 5 servers")
    up = Server("upstream")
    downs = [Server(f"tinh-{i + 1}") for i in range(4)]
    for s in [up] + downs:
        s.admin()

    # Upstream: chair, one directly joined reference point, 4 relay seats.
    up.points([{"code": "tw", "name": "Trung ương", "kind": "province_hall"},
               {"code": "ref", "name": "Điểm tham chiếu", "kind": "commune"}])
    relays = [f"Tỉnh {i + 1}" for i in range(4)]
    detail = up.meeting("Cascade bench", "tw", ["ref"], relays)
    seats = detail["seats"]
    chair_link = next(s["link"] for s in seats if s["role"] == "chair")
    ref_link = next(s["link"] for s in seats if s["seat"] == "ref")
    relay_links = [s["link"] for s in seats if s.get("role") == "relay"]
    assert len(relay_links) == 4, seats
    up_links = os.path.join(run_dir, "upstream-links.txt")
    with open(up_links, "w") as f:
        f.write(f"{chair_link}\n{ref_link}\n")

    # Downstream: chair + N communes, linked to one relay link each.
    down_links = []
    for i, s in enumerate(downs):
        codes = [f"xa-{k + 1}" for k in range(args.points)]
        s.points([{"code": "tinh", "name": f"UBND tỉnh {i + 1}", "kind": "province_hall"}]
                 + [{"code": c, "name": f"UBND xã {k + 1}", "kind": "commune"}
                    for k, c in enumerate(codes)])
        d = s.meeting(f"Tỉnh {i + 1} — cascade", "tinh", codes)
        by_seat = seat_links(d)
        path = os.path.join(run_dir, f"tinh-{i + 1}-links.txt")
        with open(path, "w") as f:
            f.write(next(x["link"] for x in d["seats"] if x["role"] == "chair") + "\n")
            for c in codes:
                f.write(by_seat[c]["link"] + "\n")
        down_links.append(path)
        # The relay link is local-looking (the upstream's public address is 127.0.0.1).
        status, body, _ = s.request("PUT", f"/api/v1/meetings/{d['meeting']['id']}/upstream",
                                    {"link": relay_links[i], "name": "Trung ương"})
        assert status == 200, (status, body)
        s.meeting_id = d["meeting"]["id"]

    pids = {s.name: s.pid for s in [up] + downs}
    sampler = Sampler(pids)
    sampler.start()

    common = ["--simulcast", "--layers", args.layers, "--fps", str(args.fps), "--per-point",
              "--ready-timeout", "90"]
    # The reference point's window covers the downstream joins and windows; it starts first.
    up_seconds = args.seconds + 45
    up_json = os.path.join(run_dir, "upstream.json")
    up_lt = spawn(["nice", "-n", "10", LT, "fanout", "-n", "1", "--seconds", str(up_seconds),
                   "--server", f"ws://127.0.0.1:{up.port}/ws", "--tokens", up_links,
                   "--server-pid", str(up.pid), "--json", up_json, "--progress"] + common,
                  stdout=open(os.path.join(run_dir, "upstream.out"), "w"),
                  stderr=open(os.path.join(run_dir, "upstream.err"), "w"))

    # Wait until every relay relays the upstream chair (event-driven, generous deadline).
    deadline = time.time() + 180
    while True:
        states = [s.request("GET", f"/api/v1/meetings/{s.meeting_id}/upstream")[1]
                  for s in downs]
        states = [st.get("relay") if isinstance(st, dict) else st for st in states]
        if all(st == "relaying" for st in states):
            break
        if time.time() > deadline or up_lt.poll() is not None:
            raise RuntimeError(f"relays not relaying: {states}")
        time.sleep(0.5)
    log("all 4 relays relaying; starting the downstream points")

    lt_procs = {}
    started = time.time()
    for i, s in enumerate(downs):
        out = os.path.join(run_dir, f"tinh-{i + 1}.json")
        lt_procs[s.name] = (spawn(
            ["nice", "-n", "10", LT, "fanout", "-n", str(args.points), "--seconds",
             str(args.seconds), "--chair-silent", "--server", f"ws://127.0.0.1:{s.port}/ws",
             "--tokens", down_links[i], "--server-pid", str(s.pid), "--json", out,
             "--progress"] + common,
            stdout=open(os.path.join(run_dir, f"tinh-{i + 1}.out"), "w"),
            stderr=open(os.path.join(run_dir, f"tinh-{i + 1}.err"), "w")), out)
    gen_pids = {f"loadtest-{n}": p.pid for n, (p, _) in lt_procs.items()}
    gen_pids["loadtest-upstream"] = up_lt.pid
    gen_sampler = Sampler(gen_pids)
    gen_sampler.start()
    ends = {}
    for n, (p, _) in lt_procs.items():
        p.wait()
        ends[n] = time.time()
        if p.returncode != 0:
            log(f"loadtest against {n} exited {p.returncode}")
    # The upstream run ends by itself (its window is longer than the downstream ones).
    try:
        up_lt.wait(up_seconds + 60)
    except subprocess.TimeoutExpired:
        log("the upstream loadtest did not end; killed")
        up_lt.kill()
    sampler.stop.set()
    gen_sampler.stop.set()

    reports = {}
    for n, (_, path) in lt_procs.items():
        try:
            reports[n] = json.load(open(path))
        except (OSError, ValueError) as e:
            log(f"no report from {n}: {e}")
    up_report = None
    try:
        up_report = json.load(open(up_json))
    except (OSError, ValueError):
        pass

    # The common window: every downstream measurement window at once.
    windows = [(ends[n] - r["window_s"] - 1.0, ends[n] - 1.0) for n, r in reports.items()]
    w0 = max(a for a, _ in windows) if windows else started
    w1 = min(b for _, b in windows) if windows else time.time()
    cpu = sampler.between(w0, w1)
    gen_cpu = gen_sampler.between(w0, w1)
    load1 = open("/proc/loadavg").read().split()[:3]
    result = summarise(args, reports, up_report, cpu, gen_cpu, w1 - w0, load0, load1, up_seconds)
    per_second = {**sampler.per_second(), **gen_sampler.per_second()}
    result["whose_stall"] = whose_stalls(reports, up_report, per_second)
    t0 = result["whose_stall"]["t0_unix"]
    result["cpu_per_second"] = {n: [[round(t - t0, 2), round(v, 1)] for t, v in s]
                                for n, s in sorted(per_second.items())}
    with open(os.path.join(run_dir, "cascade.json"), "w") as f:
        json.dump(result, f, indent=2)
    # The links were keys to throwaway servers; they are not kept with the results.
    for path in [up_links] + down_links:
        os.remove(path)
    # A clean stop of this run's servers before the next.
    for s in [up] + downs:
        s.proc.terminate()
    for s in [up] + downs:
        try:
            s.proc.wait(15)
        except subprocess.TimeoutExpired:
            s.proc.kill()
    return result


# --- whose stall: the provinces' common freezes against the generators' stalls ---------------

TOGETHER_S = 0.2  # freezes starting within this of each other are one; also the slack below
LISTED = 200  # common freezes listed per province at most


def freezes_unix(report):
    """Per point of a loadtest report: its freezes as (start, wall clock s; length ms)."""
    e = ((report or {}).get("generator") or {}).get("epoch_unix_s")
    if not e:
        return []
    return [[(e + a, ms) for a, ms in p.get("freezes_at") or []]
            for p in report.get("per_point") or []]


def stalls_unix(report):
    """The generator's stalls as (when the late wake-up was due, wall clock s; lateness ms)."""
    g = (report or {}).get("generator") or {}
    e = g.get("epoch_unix_s")
    if not e:
        return []
    return [(e + a, ms) for a, ms in (g.get("stalls") or {}).get("at") or []]


def common_freezes(per_point, together=TOGETHER_S):
    """The freezes most points (more than half) began within `together` s of each other.

    `per_point`: per point, [(start s, length ms)]. Greedy from the earliest start: the starts
    within `together` after it are one freeze if they come from more than half of the points;
    else the next start is tried. Returns [(earliest start, median length ms, points)].

    >>> common_freezes([[(10.0, 300)], [(10.1, 310)], [(10.15, 305), (20.0, 400)]])
    [(10.0, 305, 3)]
    >>> common_freezes([[(1.0, 300)], [(1.3, 300)], [(1.6, 300)]])
    []
    >>> common_freezes([[(5.0, 200)], [(5.3, 250)], [(5.4, 260)]])
    [(5.3, 255.0, 2)]
    """
    n = len(per_point)
    need = n // 2 + 1
    starts = sorted((t, ms, i) for i, fs in enumerate(per_point) for t, ms in fs)
    out = []
    k = 0
    while k < len(starts):
        t0 = starts[k][0]
        j = k
        while j < len(starts) and starts[j][0] <= t0 + together:
            j += 1
        group = starts[k:j]
        points = {i for _, _, i in group}
        if len(points) >= need:
            lens = sorted(ms for _, ms, _ in group)
            mid = len(lens) // 2
            median = lens[mid] if len(lens) % 2 else (lens[mid - 1] + lens[mid]) / 2
            out.append((t0, median, len(points)))
            k = j
        else:
            k += 1
    return out


def overlapping(at, ms, events, slack=TOGETHER_S):
    """The largest (in ms) of `events` [(start s, ms)] whose span meets [at, at + ms] widened
    by `slack` s on each side, or None.

    >>> overlapping(10.0, 300, [(10.1, 120), (12.0, 500)])
    120
    >>> overlapping(10.0, 300, [(9.5, 100), (10.6, 80)]) is None
    True
    """
    hits = [m for s, m in events
            if s <= at + ms / 1000 + slack and s + m / 1000 >= at - slack]
    return max(hits) if hits else None


def cpu_at(series, t):
    """% of a core of the sample interval whose middle is nearest `t` (within 1 s), or None."""
    best = min(series, key=lambda x: abs(x[0] - t), default=None)
    return best[1] if best and abs(best[0] - t) <= 1.0 else None


def align(province, commons, own_stalls, up_stalls, ref_freezes, cpu, t0):
    """One province's common freezes set beside the stalls that might explain them.

    `commons`: per province, its common freezes (`common_freezes`); `own_stalls`, `up_stalls`:
    its generator's and the upstream generator's stalls; `ref_freezes`: the reference point's
    freezes upstream; `cpu`: per process, % of a core per second (`Sampler.per_second`);
    times on the wall clock, reported in seconds since `t0`.

    >>> r = align("a", {"a": [(10.0, 300, 40), (20.0, 300, 40), (30.0, 300, 40)],
    ...                 "b": [(20.05, 310, 40)]},
    ...           own_stalls=[(10.05, 250)], up_stalls=[], ref_freezes=[(20.0, 300)],
    ...           cpu={"a": [(10.0, 90.0), (20.0, 10.0), (30.0, 10.0), (40.0, 10.0)]}, t0=0)
    >>> [r[k] for k in ("common_freezes", "with_own_generator_stall", "upstream_side",
    ...                 "in_other_provinces", "unexplained")]
    [3, 1, 1, 1, 1]
    >>> r["cpu_pct_at_freezes"]["a"]
    {'at_freezes': 36.7, 'median': 10.0}
    """
    events = []
    for at, ms, points in commons.get(province, []):
        own = overlapping(at, ms, own_stalls)
        up = overlapping(at, ms, up_stalls)
        ref = overlapping(at, ms, ref_freezes)
        others = sorted(p for p, cs in commons.items() if p != province
                        and overlapping(at, ms, [(a, m) for a, m, _ in cs]) is not None)
        events.append({"at_s": round(at - t0, 3), "points": points, "ms": ms,
                       "own_generator_stall_ms": own, "upstream_generator_stall_ms": up,
                       "reference_freeze_ms": ref, "other_provinces": others,
                       "cpu_pct": {n: cpu_at(s, at) for n, s in sorted(cpu.items())}})
    upstream = [e for e in events if e["upstream_generator_stall_ms"] is not None
                or e["reference_freeze_ms"] is not None]

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if xs else None

    cpu_cmp = {}
    for n, s in sorted(cpu.items()):
        at = [e["cpu_pct"][n] for e in events if e["cpu_pct"][n] is not None]
        cpu_cmp[n] = {"at_freezes": round(sum(at) / len(at), 1) if at else None,
                      "median": None if median([v for _, v in s]) is None
                      else round(median([v for _, v in s]), 1)}
    return {
        "common_freezes": len(events),
        "with_own_generator_stall": sum(e["own_generator_stall_ms"] is not None for e in events),
        "with_upstream_generator_stall": sum(
            e["upstream_generator_stall_ms"] is not None for e in events),
        "with_reference_freeze": sum(e["reference_freeze_ms"] is not None for e in events),
        "upstream_side": len(upstream),
        "in_other_provinces": sum(bool(e["other_provinces"]) for e in events),
        "unexplained": sum(e["own_generator_stall_ms"] is None and e not in upstream
                           for e in events),
        "cpu_pct_at_freezes": cpu_cmp,
        "events": events[:LISTED],
    }


def whose_stalls(reports, up_report, cpu):
    """Per province, `align` over this run's reports; times since the upstream's epoch."""
    up_epoch = ((up_report or {}).get("generator") or {}).get("epoch_unix_s")
    t0 = up_epoch or min((r["generator"].get("epoch_unix_s") or 0 for r in reports.values()),
                         default=0)
    commons = {n: common_freezes(freezes_unix(r)) for n, r in reports.items()}
    ref = freezes_unix(up_report)
    ref = ref[0] if ref else []
    up_stalls = stalls_unix(up_report)
    out = {}
    for n in sorted(reports):
        a = align(n, commons, stalls_unix(reports[n]), up_stalls, ref, cpu, t0)
        g = reports[n].get("generator", {}).get("stalls") or {}
        a["own_generator_stalls"] = {k: g.get(k) for k in ("count", "max_ms")}
        out[n] = a
    ug = ((up_report or {}).get("generator") or {}).get("stalls") or {}
    return {"t0_unix": t0, "together_s": TOGETHER_S,
            "upstream_generator_stalls": {k: ug.get(k) for k in ("count", "max_ms")},
            "reference_freezes": len(ref), "provinces": out}


def layer_name(p):
    return p.get("final_layer") or "-"


def summarise(args, reports, up_report, cpu, gen_cpu, window, load0, load1, up_seconds):
    def med(xs):
        xs = sorted(x for x in xs if x is not None)
        return xs[len(xs) // 2] if xs else None

    def pct(xs, q):
        xs = sorted(x for x in xs if x is not None)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None

    ref = None
    if up_report and up_report.get("per_point"):
        p = up_report["per_point"][0]
        ref = {"join_s": p.get("join_latency_s"), "layer": layer_name(p),
               "freezes": p.get("freezes"), "fps": p.get("fps"),
               "delay_ms_p50": p.get("video_send_delay_ms"),
               "delay_ms_p95": p.get("video_send_delay_p95_ms")}
    nodes = []
    for n in sorted(reports):
        r = reports[n]
        pp = r.get("per_point", [])
        layers = {}
        for p in pp:
            layers[layer_name(p)] = layers.get(layer_name(p), 0) + 1
        d50 = med([p.get("video_send_delay_ms") for p in pp])
        nodes.append({
            "server": n,
            "points": r["points"],
            "failures": r["failures"],
            "join_s_p50": med([p.get("join_latency_s") for p in pp]),
            "join_s_max": max([p["join_latency_s"] for p in pp if p.get("join_latency_s")],
                              default=None),
            "layers_at_end": layers,
            "kbps_p50": r["video"]["kbps"]["p50"],
            "fps_p50": r["video"]["fps"]["p50"],
            "freezes_total": r["video"]["freezes_total"],
            "points_with_freezes": sum(1 for p in pp if p.get("freezes")),
            "freeze_ratio_p95": r["video"]["freeze_ratio"]["p95"],
            "loss_after_nack_pct_mean": r["video"]["loss_after_nack_pct"]["mean"],
            "delay_ms_p50": d50,
            "delay_ms_p95": pct([p.get("video_send_delay_p95_ms") for p in pp], 0.5),
            "delay_ms_max": max([p["video_send_delay_max_ms"] for p in pp
                                 if p.get("video_send_delay_max_ms") is not None],
                                default=None),
            "hop_ms_p50": (d50 - ref["delay_ms_p50"]) if (
                d50 is not None and ref and ref["delay_ms_p50"] is not None) else None,
            "window_s": r["window_s"],
            "server_report": r.get("server"),
        })
    return {
        "schema": "hoinghi-cascade/1",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
        "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip(),
        "cores": os.cpu_count(),
        "load_average_start": load0, "load_average_end": load1,
        "config": {"points_per_downstream": args.points, "seconds": args.seconds,
                   "layers_kbps": args.layers, "fps": args.fps,
                   "upstream_run_seconds": up_seconds},
        "common_window_s": round(window, 1),
        "reference_point": ref,
        "downstream": nodes,
        "cpu": cpu,
        "generator_cpu": gen_cpu,
    }


def table(r):
    out = []
    ref = r["reference_point"] or {}
    out.append(f"load average {' '.join(r['load_average_start'])} -> "
               f"{' '.join(r['load_average_end'])}; common window {r['common_window_s']} s")
    out.append(f"reference point upstream: join {fmt(ref.get('join_s'))} s, layer "
               f"{ref.get('layer')}, freezes {ref.get('freezes')}, delay p50 "
               f"{fmt(ref.get('delay_ms_p50'))} ms p95 {fmt(ref.get('delay_ms_p95'))} ms")
    out.append("| server | joined/media | join p50 / max (s) | layer at end | kbit/s p50 | fps p50 "
               "| freezes (points) | delay p50 / p95 (ms) | hop p50 (ms) | CPU % core | RSS MB |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    up = r["cpu"].get("upstream", {})
    out.append(f"| upstream | 1 ref + 4 relays | {fmt(ref.get('join_s'))} | {ref.get('layer')} | "
               f"- | {fmt(ref.get('fps'))} | {ref.get('freezes')} | "
               f"{fmt(ref.get('delay_ms_p50'))} / {fmt(ref.get('delay_ms_p95'))} | - | "
               f"{up.get('cpu_pct_of_core')} | {up.get('rss_mb')} |")
    for n in r["downstream"]:
        c = r["cpu"].get(n["server"], {})
        layers = ", ".join(f"{k}×{v}" for k, v in sorted(n["layers_at_end"].items()))
        out.append(
            f"| {n['server']} | {n['points']['joined']}/{n['points']['media']} of "
            f"{n['points']['requested']} | {fmt(n['join_s_p50'])} / {fmt(n['join_s_max'])} | "
            f"{layers} | {fmt(n['kbps_p50'], 0)} | {fmt(n['fps_p50'])} | "
            f"{n['freezes_total']} ({n['points_with_freezes']}) | "
            f"{fmt(n['delay_ms_p50'])} / {fmt(n['delay_ms_p95'])} | {fmt(n['hop_ms_p50'])} | "
            f"{c.get('cpu_pct_of_core')} | {c.get('rss_mb')} |")
    g = r["generator_cpu"]
    out.append("load generators, % of a core: " + ", ".join(
        f"{k.removeprefix('loadtest-')} {v['cpu_pct_of_core']}" for k, v in sorted(g.items())))
    out.extend(whose_table(r.get("whose_stall")))
    return "\n".join(out)


def whose_table(w):
    """The `whose_stall` lines of the printed summary."""
    if not w:
        return []
    ug = w["upstream_generator_stalls"]
    out = [f"whose stall (freezes of more than half of a province's points starting within "
           f"{int(w['together_s'] * 1000)} ms; a stall or freeze within that of it coincides): "
           f"upstream generator stalls {ug.get('count')} (largest {fmt(ug.get('max_ms'), 0)} ms), "
           f"reference point freezes {w['reference_freezes']}",
           "| province | common freezes | own generator's stalls (count, largest ms) "
           "| with own generator stall | upstream side (generator stall / reference freeze) "
           "| also in other provinces | unexplained | CPU % at freezes / median |",
           "|---|---|---|---|---|---|---|---|"]
    for n, a in sorted(w["provinces"].items()):
        og = a["own_generator_stalls"]
        # The processes that could be the stall's (all of them are in the JSON).
        shown = [(n, "server"), ("upstream", "upstream"), (f"loadtest-{n}", "generator"),
                 ("loadtest-upstream", "upstream generator")]
        c = a["cpu_pct_at_freezes"]
        cpu = ", ".join(f"{label} {fmt(c[k]['at_freezes'], 0)}/{fmt(c[k]['median'], 0)}"
                        for k, label in shown if k in c)
        out.append(f"| {n} | {a['common_freezes']} | {og.get('count')}, "
                   f"{fmt(og.get('max_ms'), 0)} | {a['with_own_generator_stall']} | "
                   f"{a['upstream_side']} ({a['with_upstream_generator_stall']} / "
                   f"{a['with_reference_freeze']}) | {a['in_other_provinces']} | "
                   f"{a['unexplained']} | {cpu} |")
    return out


def fmt(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=20, help="points per downstream meeting")
    ap.add_argument("--seconds", type=float, default=60, help="downstream measurement window")
    ap.add_argument("--layers", default="150,500,1200", help="chair's simulcast kbit/s")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if not args.no_build:
            subprocess.run(["nice", "-n", "10", "cargo", "build", "--release", "-p", "hoinghi",
                            "--bin", "hoinghi", "-p", "loadtest", "--bin", "hoinghi-loadtest"],
                           cwd=ROOT, check=True)
        results = []
        for k in range(args.runs):
            run_dir = os.path.join(args.out, f"cascade-run{k + 1}")
            log(f"run {k + 1}/{args.runs} in {run_dir}")
            r = run_once(args, run_dir)
            results.append(r)
            print(table(r), flush=True)
        with open(os.path.join(args.out, "cascade.json"), "w") as f:
            json.dump(results, f, indent=2)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
