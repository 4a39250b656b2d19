#!/usr/bin/env python3
"""The rows of docs/benchmarks.md's issue-11 loadtest table from `bench/simulcast-seeds.sh`'s
reports: each profile and seed against the issue's targets, then the per-second layer series of
flap. Usage: bench/simulcast-seeds.py [RESULTS_DIR] [TAG]  (defaults: bench/results, "").

Targets, read over every point of a run (20 points, not one browser):
- adsl: at least 95 % of the window's point-seconds on the mid layer or above; every point's
  freeze ratio < 0.5 %; no audio gap over 100 ms after RED at any point.
- bad: no audio gap over 100 ms after RED; every point on the lowest layer or paused in at least
  95 % of its steady seconds, with at most one change of the paused notice per point.
- flap: every point back on the top layer at most 8 s after the line recovers; every point's
  audio delay back within 30 ms of its floor at most 2 s after it.
"""
import json
import os
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else "bench/results"
TAG = sys.argv[2] if len(sys.argv) > 2 else ""


def load(name):
    p = os.path.join(OUT, name)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def fmt(x, d=1):
    if x is None:
        return "–"
    return f"{x:,.{d}f}"


def window_seconds(r, p):
    """The whole seconds of the window for a point's per-second series (epoch seconds)."""
    end = len(p["layer_per_second"])
    start = max(0, end - int(round(r["window_s"])))
    return start, end


def mid_or_better_share(r):
    """Share of the window's point-seconds on the second layer or above."""
    good = total = 0
    for p in r["per_point"]:
        a, b = window_seconds(r, p)
        for label in p["layer_per_second"][a:b]:
            total += 1
            good += label not in ("-", "q")
    return good / total if total else None


def common_gaps(r):
    """Gaps over 100 ms that at least half of the other points (and two or more) saw end within
    250 ms: the machine's, as `loadtest::targets::common_events` counts them."""
    t = r["targets"]
    if "audio_gaps_over_100ms_common" in t:
        return t["audio_gaps_over_100ms_common"]
    pts = [p.get("audio_gaps_over_100ms_at_s") for p in r["per_point"]]
    if any(x is None for x in pts):
        return None
    others = len(pts) - 1
    need = max(2, (others + 1) // 2)
    n = 0
    for i, mine in enumerate(pts):
        for g in mine:
            shared = sum(1 for j, theirs in enumerate(pts)
                         if j != i and any(abs(u - g) <= 0.25 for u in theirs))
            n += others >= 2 and shared >= need
    return n


def verdicts(profile, r):
    t = r["targets"]
    pts = r["per_point"]
    out = []
    if profile == "adsl":
        share = mid_or_better_share(r)
        out.append(("mid layer or better", share is not None and share >= 0.95))
        out.append(("freeze ratio < 0.5 %", max(p["freeze_ratio"] for p in pts) < 0.005))
        out.append(("no audio gap > 100 ms", t["audio_gaps_over_100ms_total"] == 0))
    elif profile == "bad":
        out.append(("no audio gap > 100 ms", t["audio_gaps_over_100ms_total"] == 0))
        steady = all((p["lowest_or_paused_share"] or 0) >= 0.95 for p in pts)
        calm = all(p["video_paused_changes"] <= 1 for p in pts)
        out.append(("lowest layer or paused, steadily", steady and calm))
    elif profile == "flap":
        n = t["points_with_recovery"]
        top = [p["top_layer_after_recovery_s"] for p in pts]
        out.append(("top layer ≤ 8 s after recovery",
                    n > 0 and all(x is not None and x <= 8 for x in top)))
        back = [p["audio_delay_back_to_floor_s"] for p in pts]
        out.append(("audio delay at its floor ≤ 2 s",
                    n > 0 and all(x is not None and x <= 2 for x in back)))
    return out


def row(profile, seed, r):
    t = r["targets"]
    v = r["video"]
    pts = r["per_point"]
    at_end = " / ".join(str(l["points_at_end"]) for l in v["layers"])
    secs = " / ".join(fmt(l["seconds"]["p50"]) for l in v["layers"])
    fr = [p["freeze_ratio"] for p in pts]
    share = mid_or_better_share(r)
    lop = t["lowest_or_paused_share"]
    flap = "–"
    if profile == "flap":
        def pm(summary):
            if not summary["count"]:
                return "– / –"
            return f"{fmt(summary['p50'])} / {fmt(summary['max'])}"
        flap = (f"{pm(t['top_layer_after_recovery_s'])} s ({t['points_back_on_top']} of "
                f"{t['points_with_recovery']}); delay {pm(t['audio_delay_back_to_floor_s'])} s "
                f"({t['points_audio_delay_back']} of "
                f"{t['points_with_recovery']}, floor p50 {fmt(t['audio_delay_floor_ms']['p50'], 0)} ms)")
    met = "; ".join(("**met**" if ok else "missed") + f": {name}" for name, ok in verdicts(profile, r))
    load = r["load_average"]
    return (f"| {profile} | {seed} | {load[0]:.1f}–{load[1]:.1f} | {at_end} | {secs} | "
            f"{fmt(100 * share if share is not None else None)} % | "
            f"{v['freezes_total']} | {fmt(100 * v['freeze_ratio']['p95'], 2)} / {fmt(100 * max(fr), 2)} % | "
            f"{t['audio_gaps_over_100ms_total']} ({t['audio_gaps_over_100ms_from_loss']} / "
            f"{t.get('audio_gaps_over_100ms_after_chair_gap', '–')} / {fmt(common_gaps(r), 0)} / "
            f"{t.get('audio_gaps_over_100ms_after_keyframe', '–')}) at "
            f"{t['points_with_audio_gap_over_100ms']} | {fmt(t['audio_longest_gap_ms']['max'], 0)} | "
            f"{t['chair_audio_send_gaps_over_100ms']} / {fmt(t['chair_audio_send_longest_gap_ms'], 0)} | "
            f"{fmt(v['loss_before_nack_pct']['mean'], 2)} → {fmt(v['loss_after_nack_pct']['mean'], 2)} "
            f"({fmt(t['video_loss_after_nack_without_padding_pct'], 2)}) | "
            f"{fmt(100 * lop['p50'], 0) if lop['count'] else '–'} / {fmt(100 * lop['min'], 0) if lop['count'] else '–'} % | "
            f"{t['video_paused_changes_total']} | {flap} | {met} |")


def lines(out=None, tag=None):
    """The section's markdown lines (no heading)."""
    global OUT, TAG
    if out is not None:
        OUT = out
    if tag is not None:
        TAG = tag
    L = []
    print = lambda *a: L.append(a[0] if a else "")  # noqa: E731
    machine = load(f"simulcast-seeds{TAG}-machine.json")
    if machine is None:
        return L
    print(f"Measured {machine.get('date', '?')} at commit `{machine.get('commit', '?')}`, "
          f"load average {machine.get('loadavg', '?')} at the start. Command: `{machine.get('command', '?')}`.")
    print()
    print("| line | seed | load | points at end q / h / f | s p50 on q / h / f | point-seconds on h or f "
          "| freezes | freeze ratio p95 / max | audio gaps > 100 ms after RED (from loss bursts / after the chair's own send gap / at most points at once / after a keyframe) at points "
          "| longest audio gap (ms) | chair's own send gaps > 100 ms / longest (ms) "
          "| video loss before → after NACK, mean % (without probe padding) "
          "| steady seconds on q or paused p50 / min | notice changes "
          "| flap: top layer after recovery p50 / max; audio delay back p50 / max | targets |")
    print("|" + "---|" * 16)
    seeds = machine.get("seeds", "1 2 3").split()
    met = {}
    for profile in ("adsl", "bad", "flap"):
        for seed in seeds:
            r = load(f"simulcast-seeds{TAG}-{profile}-s{seed}.json")
            if r is None:
                continue
            print(row(profile, seed, r))
            for name, ok in verdicts(profile, r):
                met.setdefault((profile, name), []).append(ok)
    print()
    for (profile, name), oks in met.items():
        print(f"- {profile}, {name}: met in {sum(oks)} of {len(oks)} seeds")
    print()
    for seed in seeds:
        r = load(f"simulcast-seeds{TAG}-flap-s{seed}.json")
        if r is None:
            continue
        series = r["targets"]["points_per_layer_series"]
        labels = [l["rid"] for l in r["video"]["layers"]] + ["none"]
        print(f"Flap, seed {seed}: points on each layer per second since the start "
              f"(the line dips {r['targets']['dip_s'][0]:.0f}–{r['targets']['dip_s'][1]:.0f} s after each "
              f"point's line starts; the first seconds are the joins):")
        print()
        for i, label in enumerate(labels):
            print(f"- `{label}`: `{' '.join(str(c[i]) for c in series)}`")
        p0 = r["per_point"][0]
        print(f"- {p0['name']}'s layer: `{' '.join(p0['layer_per_second'])}`")
        print(f"- audio delay above the lowest, mean over points (ms): "
              f"`{' '.join(str(round(x)) for x in r['audio']['delay_series_ms'])}`")
        print()
    return L


if __name__ == "__main__":
    import builtins
    for line in lines():
        builtins.print(line)
