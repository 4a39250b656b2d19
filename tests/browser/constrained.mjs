#!/usr/bin/env node
// A real Chromium point behind a constrained downlink: the server's estimate (from Chromium's
// transport-wide feedback) and its layer allocator must move the point to a layer that fits,
// keep the picture going, and climb back when the line recovers. The constraint is the kernel's:
// an htb class on loopback shapes what the server's media port sends to that one point's port
// to 400 kbit/s (a short pfifo: a bottleneck drops, it does not buffer for seconds). Root
// needed, as in CI; the qdisc is removed on every exit path.
//   a. unconstrained, the point decodes the chair's camera at its top layer (720p);
//   b. at 400 kbit/s (the chair's layers are 150 / 500 / 1,200 kbit/s) the point is moved off
//      720p within 30 s to a layer that fits: 180p, or 360p without its top temporal layer
//      (~300 kbit/s, a rung since issue 11, which the allocator may take directly), then plays
//      it, never 720p, with little frozen time;
//   c. with the constraint lifted it climbs back to 720p.
//
//   cargo build --bin hoinghi && (cd tests/browser && npm ci && node constrained.mjs)
//
// By hand, one profile of issue 11 measured second by second (no pass/fail beyond the run
// itself): CONSTRAINED_PROFILE=adsl|bad|flap [CONSTRAINED_OUT=run.json] node constrained.mjs;
// with CONSTRAINED_AT_JOIN=1 the point joins behind the line instead of dropping to it from 720p.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { Harness, delta, kiosk, sample, sendLayers, sleep, until } from './lib.mjs';
import { Line, PROFILES, counters, recordPauses, row } from './linkprofile.mjs';

const WATCHDOG_MS = 360_000;
const RATE = '400kbit';
let shaped = false;

function tc(...args) {
  execFileSync('tc', args, { stdio: 'pipe' });
}

function unshape() {
  if (!shaped) return;
  try {
    tc('qdisc', 'del', 'dev', 'lo', 'root');
  } catch (e) {
    console.error(`could not remove the loopback qdisc: ${e.message}`);
  }
  shaped = false;
}
process.on('exit', unshape);

function shape(serverPort, pointPort) {
  const existing = execFileSync('tc', ['qdisc', 'show', 'dev', 'lo'], { encoding: 'utf8' });
  if (/qdisc (htb|tbf|netem|prio|hfsc)/.test(existing)) throw new Error(`loopback already has a qdisc: ${existing.trim()}`);
  tc('qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '1');
  shaped = true;
  tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '10gbit');
  tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', RATE, 'ceil', RATE);
  tc('qdisc', 'add', 'dev', 'lo', 'parent', '1:10', 'handle', '10:', 'pfifo', 'limit', '20');
  tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32',
    'match', 'ip', 'sport', String(serverPort), '0xffff', 'match', 'ip', 'dport', String(pointPort), '0xffff', 'flowid', '1:10');
}

const h = new Harness('constrained');
const PROFILE = process.env.CONSTRAINED_PROFILE;
h.runMain(PROFILE ? () => measure(PROFILE) : main, WATCHDOG_MS);

/** Joins a chair and a point, waits for 720p, then runs one profile and records each second. */
async function measure(name) {
  const phases = PROFILES[name];
  if (!phases) throw new Error(`unknown profile ${name}: ${Object.keys(PROFILES).join(', ')}`);
  const { links } = await h.start({ serverArgs: ['--no-ice-tcp'] });
  // The allocator's decisions (HOINGHI_LOG=info,sfu::worker::allocate=debug), timed against the phases.
  const trace = [];
  for (const stream of [h.server.stdout, h.server.stderr]) {
    stream.on('data', (chunk) => {
      for (const line of String(chunk).split('\n')) if (line.includes('allocation') || line.includes('probe ')) trace.push(`${Date.now()} ${line}`);
    });
  }
  const chair = await h.openPage('chair', kiosk(links.chair));
  if (!(await h.waitJoined(chair))) return false;
  await chairSendsItsTopLayer(chair);
  // CONSTRAINED_AT_JOIN=1: the point joins behind its line (a commune on its own line all day),
  // so no sudden drop from 720p is measured: the line is in place as soon as the point's
  // subscribe connection has a port, before its first seconds on the lowest layer are over.
  const atJoin = process.env.CONSTRAINED_AT_JOIN === '1';
  let line = null;
  const point = await h.openPage('point', kiosk(links.points[0]));
  if (!(await h.waitJoined(point))) return false;
  if (atJoin) {
    const port = await until(async () => {
      try {
        return { ok: true, detail: await subscribePort(point) };
      } catch (e) {
        return { ok: false, detail: e.message };
      }
    }, 30_000);
    if (!port.ok) throw new Error(`the point's subscribe connection has no port: ${port.detail}`);
    line = new Line(h.mediaPort, port.detail);
    line.set(phases[0]);
    trace.push(`${Date.now()} line at the join: ${JSON.stringify(phases[0])}`);
  }
  const rows = [];
  if (atJoin) {
    const first = await watch(point, chair.id, (v) => v.height > 0, 60_000);
    h.check('behind the line from its join, the point decodes the chair', first.ok, first.detail);
    await recordPauses(point, chair.id);
  } else {
    const top = await watch(point, chair.id, (v) => v.height >= 720, 60_000);
    h.check('unconstrained, the point decodes the chair at 720p', top.ok, top.detail);
    await recordPauses(point, chair.id);
  }
  let last = await counters(point, chair.id);
  // The unshaped floor of the audio delay, before anything is shaped (none behind a line from
  // the join).
  for (let t = -5; t < 0 && !atJoin; t++) {
    await sleep(1000);
    const now = await counters(point, chair.id);
    rows.push(row(t, 'clean', last, now));
    last = now;
  }
  line ??= new Line(h.mediaPort, await subscribePort(point));
  // Other work on the machine shows as delay and frozen frames: keep the load with the numbers.
  const loadStart = os.loadavg()[0];
  let t = 0;
  for (const [i, phase] of phases.entries()) {
    line.set(phase);
    trace.push(`${Date.now()} phase ${i}: ${JSON.stringify(phase)}`);
    h.step(`phase ${i}: ${phase.rate}, ${phase.loss * 100} % loss, ${phase.seconds} s`);
    for (let s = 0; s < phase.seconds; s++, t++) {
      await sleep(1000);
      const now = await counters(point, chair.id);
      rows.push({ ...row(t, i, last, now), sincePhase: s });
      last = now;
    }
  }
  line.remove();
  const summary = { ...summarize(name, phases, rows), loadStart, loadEnd: os.loadavg()[0] };
  console.log(JSON.stringify(summary));
  for (const r of rows) {
    console.log(`${String(r.t).padStart(3)} p${r.phase} ${String(r.height).padStart(4)}p ${r.fps.toFixed(0).padStart(2)} fps ${r.kbps.toFixed(0).padStart(5)} kbit/s frozen ${r.frozenMs.toFixed(0).padStart(4)} ms lost ${r.lost} nack ${r.nacks} audio concealed ${r.audioConcealedMs.toFixed(0).padStart(4)} ms delay ${r.audioDelayMs?.toFixed(0)} ms video delay ${r.videoDelayMs?.toFixed(0)} ms${r.paused ? ' PAUSED' : ''}${r.pauseChanges ? ` (${r.pauseChanges} notice changes)` : ''}`);
  }
  if (process.env.CONSTRAINED_OUT) {
    fs.writeFileSync(process.env.CONSTRAINED_OUT, JSON.stringify({ profile: name, atJoin, phases, summary, rows, commit: gitHead() }, null, 1));
    if (trace.length) fs.writeFileSync(`${process.env.CONSTRAINED_OUT}.trace`, `${trace.join('\n')}\n`);
  }
  return true;
}

function gitHead() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

/** The issue's targets per profile, from the per-second rows (the first phase's first 3 s are the line settling). */
function summarize(name, phases, rows) {
  const shaped = rows.filter((r) => r.phase !== 'clean');
  const share = (rs, f) => rs.filter(f).length / Math.max(1, rs.length);
  const heights = {};
  for (const r of shaped) heights[r.paused ? 'paused' : r.height] = (heights[r.paused ? 'paused' : r.height] ?? 0) + 1;
  const floor = median(rows.filter((r) => r.phase === 'clean').map((r) => r.audioDelayMs).filter((x) => x != null));
  const out = {
    profile: name,
    heights,
    freezes: shaped.reduce((a, r) => a + r.freezes, 0),
    freezeRatio: shaped.reduce((a, r) => a + r.frozenMs, 0) / (shaped.length * 1000),
    audioConcealedMaxMs: Math.max(...shaped.map((r) => r.audioConcealedMs)),
    audioSecondsOver100ms: shaped.filter((r) => r.audioConcealedMs > 100).length,
    // The same from 5 s after each change of the line on: what the line gives once the server
    // has reacted (the first seconds measure how fast it reacts to a sudden drop).
    audioConcealedMaxSteadyMs: Math.max(0, ...shaped.filter((r) => r.sincePhase >= 5).map((r) => r.audioConcealedMs)),
    freezeRatioSteady: ((rs) => rs.reduce((a, r) => a + r.frozenMs, 0) / (Math.max(1, rs.length) * 1000))(shaped.filter((r) => r.sincePhase >= 5)),
    audioDelayFloorMs: floor,
    audioDelayMaxMs: Math.max(...shaped.map((r) => r.audioDelayMs ?? 0)),
    pauseChanges: shaped.reduce((a, r) => a + r.pauseChanges, 0),
    pausedShare: share(shaped, (r) => r.paused),
    lost: shaped.reduce((a, r) => a + r.lost, 0),
    nacks: shaped.reduce((a, r) => a + r.nacks, 0),
  };
  if (name === 'flap') {
    const dip = shaped.filter((r) => r.phase === 1);
    const after = shaped.filter((r) => r.phase === 2);
    const back = after.findIndex((r) => r.height >= 720 && r.fps > 0 && !r.paused);
    const settled = after.findIndex((r, i) => after.slice(i).every((x) => x.audioDelayMs == null || x.audioDelayMs <= floor + 30));
    out.dip = {
      frozenShare: dip.reduce((a, r) => a + r.frozenMs, 0) / (dip.length * 1000),
      pauseChanges: dip.reduce((a, r) => a + r.pauseChanges, 0),
      videoDelayMeanMs: mean(dip.map((r) => r.videoDelayMs).filter((x) => x != null)),
      audioDelayMaxMs: Math.max(...dip.map((r) => r.audioDelayMs ?? 0)),
    };
    out.topLayerAfterRecoveryS = back < 0 ? null : back + 1;
    out.audioDelayBackToFloorS = settled < 0 ? null : settled;
  }
  return out;
}

/**
 * Waits until the chair's camera is raised to 1280x720 and sends its 720p layer, before the
 * point's page opens its camera. Once in 13 runs on a loaded machine both pages sent at most
 * 240p for the whole run (two simulcast layers each, failing (a) with "heights seen
 * 0→120→240"): both share one Chromium and its one fake camera, and our reading is that the
 * point's page, opening it at its pre-join 640x360 while the chair's raise to 720p was under
 * way, held the device at that format. Each hall has a camera of its own. Not met in 30 s, the
 * run goes on and says what the chair sends.
 */
async function chairSendsItsTopLayer(chair) {
  const top = await until(async () => {
    const layers = await sendLayers(chair);
    return {
      ok: layers.some((l) => l.frameHeight >= 720 && l.framesEncoded > 0),
      detail: layers.map((l) => `${l.rid}:${l.frameWidth}x${l.frameHeight}${l.limitation && l.limitation !== 'none' ? ` (${l.limitation})` : ''}`).join(' '),
    };
  }, 30_000);
  if (!top.ok) console.log(`the chair does not send 720p yet: ${top.detail || 'nothing'}`);
}

function median(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function mean(xs) {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

async function main() {
  // UDP only: the point's subscribe connection must stay on the port we shape.
  const { links } = await h.start({ serverArgs: ['--no-ice-tcp'] });
  const chair = await h.openPage('chair', kiosk(links.chair));
  if (!(await h.waitJoined(chair))) return false;
  await chairSendsItsTopLayer(chair);
  const point = await h.openPage('point', kiosk(links.points[0]));
  if (!(await h.waitJoined(point))) return false;

  const top = await watch(point, chair.id, (v) => v.height >= 720, 60_000);
  h.check('(a) unconstrained, the point decodes the chair at 720p', top.ok, top.detail);

  const port = await subscribePort(point);
  shape(h.mediaPort, port);
  const t0 = Date.now();
  h.step(`server UDP ${h.mediaPort} → point ${port} shaped to ${RATE}`);
  const down = await watch(point, chair.id, (v) => v.height > 0 && v.height <= 360, 30_000);
  h.check(`(b) at ${RATE} the point is moved off 720p to 180p or 360p`, down.ok, `${((Date.now() - t0) / 1000).toFixed(1)} s: ${down.detail}`);
  // Then it plays, on a layer that fits: over 20 s, frames keep coming with little frozen time,
  // and the picture is never 720p. Frames: at least 7 a second. The layers that fit 400 kbit/s
  // may go without their top temporal layer, half the camera's 20 frames/s, and a loaded CI
  // machine's fake camera gives fewer (CI at load 15: 9.5 frames/s, 0 freezes, 0 s frozen, against
  // a bound of 10 then); a stall shows in the frozen time. Before VP8 PictureID/TL0PICIDX
  // rewriting, Chromium froze 3.5-9.7 s in such 20 s windows.
  const heights = [];
  const before = await freezeStats(point, chair.id);
  let frames = 0;
  let last = await sample(point);
  // The per-second series goes into the output, so that a failure says when the picture froze
  // and on which layer (the server's allocation log at that second tells why).
  const series = [];
  let frozenSoFar = before.seconds;
  for (let i = 0; i < 20; i++) {
    await sleep(1000);
    const now = await sample(point);
    const d = delta(last, now, chair.id, 'video').frames;
    frames += d;
    last = now;
    const v = videoOf(now, chair.id);
    if (v?.frameHeight) heights.push(v.frameHeight);
    const f = await freezeStats(point, chair.id);
    series.push(`${v?.frameHeight ?? 0}p+${d}${f.seconds > frozenSoFar ? `(frozen ${(f.seconds - frozenSoFar).toFixed(1)} s)` : ''}`);
    frozenSoFar = f.seconds;
  }
  h.step(`(b) each second: ${series.join(' ')}`);
  const after = await freezeStats(point, chair.id);
  const fps = frames / 20;
  const low = heights.filter((x) => x <= 360).length / Math.max(1, heights.length);
  const frozen = after.seconds - before.seconds;
  h.check(`(b) at ${RATE} the point plays 180p or 360p and keeps playing`, fps >= 7 && low >= 0.95 && frozen < 2.5,
    `${fps.toFixed(1)} frames/s over 20 s, ${(low * 100).toFixed(0)} % of seconds at 180p or 360p (${[...new Set(heights)].join(', ')}); Chromium counted ${after.freezes - before.freezes} freezes, ${frozen.toFixed(1)} s frozen`);

  unshape();
  const t1 = Date.now();
  h.step('constraint lifted');
  // Up to the allocator's longest step-up back-off (120 s) after failed steps while shaped.
  const up = await watch(point, chair.id, (x) => x.height >= 720, 150_000);
  h.check('(c) with the line recovered the point climbs back to 720p', up.ok, `${((Date.now() - t1) / 1000).toFixed(1)} s: ${up.detail}`);
  return true;
}


function videoOf(rows, from) {
  return rows.find((r) => r.kind === 'video' && r.participant === from && r.source !== 'screen');
}

/** Polls the point's video from `from` until `ok({height, fps})` holds with frames growing. */
async function watch(p, from, ok, timeoutMs) {
  let before = await sample(p);
  const heights = [];
  return until(async () => {
    const after = await sample(p);
    const d = delta(before, after, from, 'video');
    before = after;
    const v = videoOf(after, from);
    const height = v?.frameHeight ?? 0;
    if (heights[heights.length - 1] !== height) heights.push(height);
    return { ok: d.frames > 0 && ok({ height }), detail: `decoding ${v?.frameWidth}x${height}, +${d.frames} frames in the last second; heights seen ${heights.join('→')}` };
  }, timeoutMs, 1000);
}

/** The local UDP port of the point's subscribe connection (where the server sends to it). */
function subscribePort(p) {
  return p.page.evaluate(async () => {
    const pc = window.hoinghi.subscribePc;
    const stats = await pc.getStats();
    let port = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = stats.get(s.selectedCandidatePairId);
        port = stats.get(pair.localCandidateId)?.port ?? null;
      }
    });
    if (!port) throw new Error('no selected candidate pair on the subscribe connection');
    return port;
  });
}

/** Chromium's freeze count and total frozen seconds for the video from `from`. */
function freezeStats(p, from) {
  return p.page.evaluate(async (from) => {
    const h = window.hoinghi;
    const byMid = new Map(h.tracks.map((t) => [t.mid, t]));
    let out = { freezes: 0, seconds: 0 };
    (await h.subscribePc.getStats()).forEach((s) => {
      const t = byMid.get(s.mid);
      if (s.type === 'inbound-rtp' && s.kind === 'video' && t?.participant === from && t.source !== 'screen') {
        out = { freezes: s.freezeCount ?? 0, seconds: s.totalFreezesDuration ?? 0 };
      }
    });
    return out;
  }, from);
}
