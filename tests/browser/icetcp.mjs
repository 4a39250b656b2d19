#!/usr/bin/env node
// ICE-TCP with real Chromium: a hall whose firewall drops UDP gets its media over TCP, by
// itself. The firewall is real: an iptables rule drops every UDP datagram to the server's media
// port on loopback (root needed, as in CI); the server offers its passive TCP candidate on
// --ice-tcp-port as it always does.
//   a. With UDP dropped, the chair and a point join: all four connections select a TCP pair
//      (Chromium's active TCP candidate → our passive one), the point decodes the chair's camera,
//      the chair decodes the point's, and the server counts the TCP connections.
//   b. With UDP allowed again, a second point joins: it selects UDP (the TCP candidate's lower
//      priority keeps UDP first) and decodes the chair (who may still be on TCP, or moving).
//   c. The chair and the first point then move to UDP by themselves (Chromium nominates the
//      better pair), and the server follows them (vendor/rtc-ice patch): media keeps flowing and
//      almost nothing more goes out over TCP.
//   d. UDP is cut again mid-call: the pages fall back to TCP within seconds, the server follows
//      (its selected pair went silent) and the point decodes the chair again.
//
//   cargo build --bin hoinghi && (cd tests/browser && npm ci && node icetcp.mjs)

import { execFileSync } from 'node:child_process';
import { Harness, decodesGrowing, kiosk, until } from './lib.mjs';

const WATCHDOG_MS = 240_000;
const ICE_TIMEOUT_MS = 30_000;
const MEDIA_TIMEOUT_MS = 45_000;

const h = new Harness('icetcp');
let rule = null;

/** Adds (or with '-D' removes) the rule that drops UDP to the media port. */
function iptables(op, port) {
  execFileSync('iptables', [op, 'INPUT', '-i', 'lo', '-p', 'udp', '--dport', String(port), '-j', 'DROP',
    '-m', 'comment', '--comment', `hoinghi-icetcp-${process.pid}`], { stdio: 'pipe' });
}

function unblock() {
  if (rule === null) return;
  try {
    iptables('-D', rule);
  } catch (e) {
    console.error(`could not remove the iptables rule for UDP ${rule}: ${e.message}`);
  }
  rule = null;
}
// Whatever ends the run (checks, watchdog, signals) goes through process.exit.
process.on('exit', unblock);

h.runMain(main, WATCHDOG_MS);

async function main() {
  const { links } = await h.start();
  const tcpPort = h.iceTcpPort;
  iptables('-I', h.mediaPort);
  rule = h.mediaPort;
  h.step(`UDP to 127.0.0.1:${h.mediaPort} dropped by iptables; ICE-TCP on ${tcpPort}`);

  // a. UDP dropped.
  const chair = await h.openPage('chair', kiosk(links.chair));
  if (!(await h.waitJoined(chair))) return false;
  const point = await h.openPage('point-tcp', kiosk(links.points[0]));
  if (!(await h.waitJoined(point))) return false;
  const onTcp = await until(async () => {
    const pcs = await Promise.all([chair, point].flatMap((p) => ['publish', 'subscribe'].map((w) => pair(p, w))));
    const ok = pcs.every((s) => s?.state === 'succeeded' && s.local.protocol === 'tcp' && s.remote.protocol === 'tcp'
      && s.remote.port === tcpPort);
    return { ok, detail: pcs.map(show).join('; ') };
  }, ICE_TIMEOUT_MS);
  h.check('(a) UDP dropped: the chair and the point select TCP pairs to the ICE-TCP port', onTcp.ok, onTcp.detail);
  const program = await decodesGrowing(point, chair.id, MEDIA_TIMEOUT_MS);
  h.check("(a) the point decodes the chair's camera over TCP", program.ok, program.detail);
  const thumb = await decodesGrowing(chair, point.id, MEDIA_TIMEOUT_MS);
  h.check("(a) the chair decodes the point's camera over TCP", thumb.ok, thumb.detail);
  const metrics = await (await fetch(h.metricsUrl)).text();
  const links4 = gaugeSum(metrics, 'hoinghi_ice_tcp_connections');
  const bytesOut = gaugeSum(metrics, 'hoinghi_ice_tcp_bytes_out_total');
  h.check('(a) the server counts the TCP connections and what it sent over them', links4 >= 4 && bytesOut > 100_000,
    `hoinghi_ice_tcp_connections ${links4}, hoinghi_ice_tcp_bytes_out_total ${bytesOut}`);
  // The chair's grid tells IT staff that this hall is on TCP (link_quality.transport).
  const told = await until(async () => {
    const t = await transports(chair);
    return { ok: t[point.point] === 'tcp', detail: `transports on the chair's grid: ${JSON.stringify(t)}` };
  }, 20_000);
  h.check("(a) the chair's grid shows the point's link as TCP", told.ok, told.detail);

  // b. UDP allowed again.
  unblock();
  h.step('UDP allowed again');
  const udpPoint = await h.openPage('point-udp', kiosk(links.points[1]));
  if (!(await h.waitJoined(udpPoint))) return false;
  const onUdp = await until(async () => {
    const pcs = await Promise.all(['publish', 'subscribe'].map((w) => pair(udpPoint, w)));
    const ok = pcs.every((s) => s?.state === 'succeeded' && s.local.protocol === 'udp' && s.remote.protocol === 'udp'
      && s.remote.port === h.mediaPort);
    return { ok, detail: pcs.map(show).join('; ') };
  }, ICE_TIMEOUT_MS);
  h.check('(b) with UDP open a new point selects UDP, though the TCP candidate is offered too', onUdp.ok, onUdp.detail);
  const both = await until(async () => {
    const t = await transports(chair);
    return { ok: t[udpPoint.point] === 'udp', detail: `transports on the chair's grid: ${JSON.stringify(t)}` };
  }, 20_000);
  h.check("(b) the chair's grid shows the new point on UDP", both.ok, both.detail);
  const mixed = await decodesGrowing(udpPoint, chair.id, MEDIA_TIMEOUT_MS);
  h.check("(b) the UDP point decodes the chair's camera", mixed.ok, mixed.detail);

  // c. The pages that started on TCP move to UDP once it gets through (Chromium nominates the
  // better pair): the server must follow, sending on UDP too, not on the TCP connections that
  // Chromium no longer uses and will close.
  const moved = await until(async () => {
    const pcs = await Promise.all([chair, point].flatMap((p) => ['publish', 'subscribe'].map((w) => pair(p, w))));
    return { ok: pcs.every((s) => s?.local?.protocol === 'udp'), detail: pcs.map(show).join('; ') };
  }, 60_000, 1000);
  h.check('(c) with UDP back, the chair and the TCP point move to UDP pairs', moved.ok, moved.detail);
  const tcpBytes = async () => gaugeSum(await (await fetch(h.metricsUrl)).text(), 'hoinghi_ice_tcp_bytes_out_total');
  const before = await tcpBytes();
  const still = await decodesGrowing(point, chair.id, MEDIA_TIMEOUT_MS);
  const sentOnTcp = (await tcpBytes()) - before;
  h.check('(c) the server follows them: the point decodes the chair and almost nothing more goes out over TCP',
    still.ok && sentOnTcp < 20_000, `${still.detail}; ${sentOnTcp} bytes sent over TCP meanwhile`);

  // d. UDP is cut again mid-call: the pages fall back to their TCP pairs and the server follows
  // (the selected pair went silent), so the meeting goes on.
  iptables('-I', h.mediaPort);
  rule = h.mediaPort;
  const cut = Date.now();
  h.step('UDP dropped again, mid-call');
  const fellBack = await until(async () => {
    const pcs = await Promise.all([chair, point].flatMap((p) => ['publish', 'subscribe'].map((w) => pair(p, w))));
    return { ok: pcs.every((s) => s?.state === 'succeeded' && s.local.protocol === 'tcp'), detail: pcs.map(show).join('; ') };
  }, 45_000, 1000);
  h.check('(d) UDP cut mid-call: the chair and the point fall back to TCP pairs', fellBack.ok,
    `after ${((Date.now() - cut) / 1000).toFixed(1)} s: ${fellBack.detail}`);
  // The server follows once its UDP pairs have gone silent: what it sends goes over TCP again.
  let lastTcp = await tcpBytes();
  const following = await until(async () => {
    const now = await tcpBytes();
    const d = now - lastTcp;
    lastTcp = now;
    return { ok: d > 20_000, detail: `${d} bytes over TCP in the last second` };
  }, 30_000, 1000);
  const resumed = await decodesGrowing(point, chair.id, MEDIA_TIMEOUT_MS);
  h.check('(d) the server sends over TCP again and the point decodes the chair', following.ok && resumed.ok,
    `${((Date.now() - cut) / 1000).toFixed(1)} s after the cut: ${following.detail}; ${resumed.detail}`);
  return true;
}


function gaugeSum(text, name) {
  return text.split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}


/** The selected candidate pair of one of a page's connections. */
function pair(p, which) {
  return p.page.evaluate(async (which) => {
    const pc = which === 'publish' ? window.hoinghi?.publishPc : window.hoinghi?.subscribePc;
    if (!pc) return null;
    const stats = await pc.getStats();
    let selected = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) selected = stats.get(s.selectedCandidatePairId);
    });
    if (!selected) return { which, state: null, ice: pc.iceConnectionState };
    const end = (c) => ({ protocol: c.protocol, type: c.candidateType, tcpType: c.tcpType ?? null, port: c.port, address: c.address });
    return {
      which,
      ice: pc.iceConnectionState,
      state: selected.state,
      local: end(stats.get(selected.localCandidateId)),
      remote: end(stats.get(selected.remoteCandidateId)),
    };
  }, which);
}

function show(s) {
  if (!s) return 'no connection yet';
  if (!s.state) return `${s.which}: ice ${s.ice}, no pair selected`;
  const end = (c) => `${c.protocol}${c.tcpType ? `/${c.tcpType}` : ''} ${c.address}:${c.port}`;
  return `${s.which}: ice ${s.ice}, pair ${s.state} ${end(s.local)} → ${end(s.remote)}`;
}

/** Point code → transport, as the chair's grid shows them (link_quality.transport). */
function transports(p) {
  return p.page.evaluate(() => Object.fromEntries([...document.querySelectorAll('[data-transport]')]
    .filter((e) => e.dataset.transport)
    .map((e) => [e.closest('[data-point]')?.dataset.point, e.dataset.transport])));
}
