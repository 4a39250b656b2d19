#!/usr/bin/env node
// A real Chromium point behind a constrained downlink: the server's estimate (from Chromium's
// transport-wide feedback) and its layer allocator must move the point to a layer that fits,
// keep the picture going, and climb back when the line recovers. The constraint is the kernel's:
// an htb class on loopback shapes what the server's media port sends to that one point's port
// to 400 kbit/s (a short pfifo: a bottleneck drops, it does not buffer for seconds). Root
// needed, as in CI; the qdisc is removed on every exit path.
//   a. unconstrained, the point decodes the chair's camera at its top layer (720p);
//   b. at 400 kbit/s (the chair's layers are 150 / 500 / 1,200 kbit/s) the point is moved to
//      the 180p layer within 30 s, stays on it and keeps playing with little frozen time;
//   c. with the constraint lifted it climbs back to 720p.
//
//   cargo build --bin hoinghi && (cd tests/browser && npm ci && node constrained.mjs)

import { execFileSync } from 'node:child_process';
import { Harness, delta, kiosk, sample, sleep, until } from './lib.mjs';

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
h.runMain(main, WATCHDOG_MS);

async function main() {
  // UDP only: the point's subscribe connection must stay on the port we shape.
  const { links } = await h.start({ serverArgs: ['--no-ice-tcp'] });
  const chair = await h.openPage('chair', kiosk(links.chair));
  if (!(await h.waitJoined(chair))) return false;
  const point = await h.openPage('point', kiosk(links.points[0]));
  if (!(await h.waitJoined(point))) return false;

  const top = await watch(point, chair.id, (v) => v.height >= 720, 60_000);
  h.check('(a) unconstrained, the point decodes the chair at 720p', top.ok, top.detail);

  const port = await subscribePort(point);
  shape(h.mediaPort, port);
  const t0 = Date.now();
  h.step(`server UDP ${h.mediaPort} → point ${port} shaped to ${RATE}`);
  const down = await watch(point, chair.id, (v) => v.height > 0 && v.height <= 180, 30_000);
  h.check(`(b) at ${RATE} the point is moved to the 180p layer`, down.ok, `${((Date.now() - t0) / 1000).toFixed(1)} s: ${down.detail}`);
  // Then it plays, on the layer that fits: over 20 s, frames keep coming (the layer is sent at
  // 15 frames/s) with little frozen time, and the picture is 180p nearly all the time (a step up
  // the link cannot carry may show 360p for a moment: stepping up is the probe). Before VP8
  // PictureID/TL0PICIDX rewriting, Chromium froze 3.5-9.7 s in such 20 s windows.
  const heights = [];
  const before = await freezeStats(point, chair.id);
  let frames = 0;
  let last = await sample(point);
  for (let i = 0; i < 20; i++) {
    await sleep(1000);
    const now = await sample(point);
    frames += delta(last, now, chair.id, 'video').frames;
    last = now;
    const v = videoOf(now, chair.id);
    if (v?.frameHeight) heights.push(v.frameHeight);
  }
  const after = await freezeStats(point, chair.id);
  const fps = frames / 20;
  const low = heights.filter((x) => x <= 180).length / Math.max(1, heights.length);
  const frozen = after.seconds - before.seconds;
  h.check(`(b) at ${RATE} the point stays on 180p and keeps playing`, fps >= 10 && low >= 0.8 && frozen < 2.5,
    `${fps.toFixed(1)} frames/s over 20 s, ${(low * 100).toFixed(0)} % of seconds at 180p (${[...new Set(heights)].join(', ')}); Chromium counted ${after.freezes - before.freezes} freezes, ${frozen.toFixed(1)} s frozen`);

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
