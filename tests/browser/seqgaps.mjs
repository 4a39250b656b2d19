#!/usr/bin/env node
// Issue 14 in real Chromium: on an unshaped loopback nothing is lost, so nothing a page receives
// may look lost. A chair (1280x720 fake camera, three simulcast layers) and two points (test
// room, kiosk autojoin) meet; Chromium's publishers probe their bandwidth with padding-only
// packets on the media SSRCs (the server negotiates no RTX), and the server forwards none of
// them. Every SAMPLE_MS, every inbound stream at every page (the chair's camera and microphone
// at the points, the points' thumbnails and microphones at the chair) must show packetsLost 0
// and nackCount 0, and the points must keep decoding the chair's camera at its largest layer.
// Before the fix the points' packetsLost for the chair's video grew by tens a second, the same
// at both points.
//
// SEQGAPS_SECONDS sets the watched time (default 90; bench/seqgaps.sh runs it for 600 and keeps
// the per-sample table).
//
//   cargo build && (cd tests/browser && npm ci && node seqgaps.mjs)

import { Harness, kiosk, until } from './lib.mjs';

const WATCH_MS = Number(process.env.SEQGAPS_SECONDS ?? 90) * 1000;
const SAMPLE_MS = 10_000;
const JOIN_TIMEOUT_MS = 60_000;
// Stepping up to the chair's top layer takes the allocator a few steps (see simulcast.mjs).
const STEP_UP_TIMEOUT_MS = 90_000;
const WATCHDOG_MS = WATCH_MS + 240_000;
const h = new Harness('seqgaps');
h.runMain(main, WATCHDOG_MS);

async function main() {
  const { links } = await h.start();
  if (links.points.length < 2) throw new Error(`the test room has ${links.points.length} points, need 2`);
  const chair = await h.openPage('chair', kiosk(links.chair), { ownBrowser: true });
  const pA = await h.openPage('pointA', kiosk(links.points[0]), { ownBrowser: true });
  const pB = await h.openPage('pointB', kiosk(links.points[1]), { ownBrowser: true });
  const all = [chair, pA, pB];
  const joined = await Promise.all(all.map((p) => h.waitJoined(p, JOIN_TIMEOUT_MS)));
  if (!joined.every(Boolean)) return false;

  // The points decode the chair's camera at its top layer: the full chain of layer switches
  // has happened (each one a place where numbering could skip).
  const top = await until(async () => {
    const rows = await Promise.all([pA, pB].map((p) => inbound(p)));
    const cams = rows.map((r) => r.find((s) => s.participant === chair.id && s.kind === 'video'));
    const ok = cams.every((c) => c && c.frameHeight >= 720);
    return { ok, detail: cams.map((c) => (c ? `${c.frameWidth}x${c.frameHeight}` : 'nothing')).join(', ') };
  }, STEP_UP_TIMEOUT_MS, 1000);
  h.check("the points decode the chair's camera at 720p", top.ok, top.detail);
  if (!top.ok) return false;

  const table = [];
  const t0 = Date.now();
  let clean = true;
  while (Date.now() - t0 < WATCH_MS) {
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    const at = Math.round((Date.now() - t0) / 1000);
    for (const p of all) {
      for (const s of await inbound(p)) {
        const from = all.find((x) => x.id === s.participant)?.name ?? s.participant;
        table.push({ at, page: p.name, from, ...s });
        if (s.packetsLost !== 0 || s.nackCount !== 0) clean = false;
      }
    }
  }
  console.log('\n  t(s)  page    from    kind   packets  lost  nacks  frames  size');
  for (const r of table) {
    console.log(
      `  ${String(r.at).padStart(4)}  ${r.page.padEnd(6)}  ${String(r.from).padEnd(6)}  ${r.kind.padEnd(5)}  ${String(r.packetsReceived).padStart(7)}  ${String(r.packetsLost).padStart(4)}  ${String(r.nackCount).padStart(5)}  ${String(r.framesDecoded).padStart(6)}  ${r.kind === 'video' ? `${r.frameWidth}x${r.frameHeight}` : ''}`,
    );
  }
  const last = (page, kind) => table.filter((r) => r.page === page && r.from === 'chair' && r.kind === kind).at(-1);
  const worst = table.reduce((w, r) => Math.max(w, r.packetsLost, r.nackCount), 0);
  h.check(
    `every stream at every page: packetsLost and nackCount 0 at each sample over ${WATCH_MS / 1000} s`,
    clean && table.length > 0,
    `${table.length} samples, worst ${worst}; pointA got ${last('pointA', 'video')?.packetsReceived ?? 0} video packets from the chair, pointB ${last('pointB', 'video')?.packetsReceived ?? 0}`,
  );
  const decoding = [pA, pB].every((p) => (last(p.name, 'video')?.framesDecoded ?? 0) > (WATCH_MS / 1000) * 10);
  h.check("the points kept decoding the chair's camera", decoding, [pA, pB].map((p) => `${p.name} ${last(p.name, 'video')?.framesDecoded ?? 0} frames`).join(', '));
  return true;
}

/** Inbound RTP of a page's subscribe connection with the loss counters Chromium keeps. */
function inbound(p) {
  return p.page.evaluate(async () => {
    const h = window.hoinghi;
    const pc = h?.subscribePc;
    if (!pc) return [];
    const byMid = new Map(h.tracks.map((t) => [t.mid, t]));
    const rows = [];
    (await pc.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      rows.push({
        kind: s.kind,
        participant: byMid.get(s.mid)?.participant ?? null,
        packetsReceived: s.packetsReceived ?? 0,
        packetsLost: s.packetsLost ?? 0,
        nackCount: s.nackCount ?? 0,
        framesDecoded: s.framesDecoded ?? 0,
        frameWidth: s.frameWidth ?? 0,
        frameHeight: s.frameHeight ?? 0,
      });
    });
    return rows;
  });
}
