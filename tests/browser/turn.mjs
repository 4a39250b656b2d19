#!/usr/bin/env node
// TURN end to end, with a real coturn and real Chromium: a commune hall whose network allows
// only TCP towards one port reaches the server through the relay. hoinghi runs with
// --turn-url turn:127.0.0.1:PORT?transport=tcp and a secret file; coturn runs with
// use-auth-secret (the TURN REST API scheme of hoinghi's credentials). The point's page is forced
// through the relay by an init script that wraps RTCPeerConnection with
// iceTransportPolicy 'relay'; the iceServers still come from the page's own code, i.e. from
// `joined`. The chair connects directly.
//   a. coturn with another secret refuses the point's credentials: its connections get a 401
//      candidate error, gather no candidate at all, and decode nothing: without a relay
//      candidate no media path exists, so this is checked on events, not by waiting.
//   b. coturn restarted on the same port with the right secret: a point's publish and subscribe
//      connections select a relay candidate over TCP, the point decodes the chair's camera (frame
//      counts growing) and the chair decodes the point's.
//
//   cargo build --bin hoinghi && (cd tests/browser && npm ci && node turn.mjs)

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Harness, decodesGrowing, freeTcpPort, kiosk, sample, until } from './lib.mjs';

// Above the sum of the deadlines below, so a slow machine fails a check, not the watchdog.
const WATCHDOG_MS = 240_000;
// Gathering through a loopback TURN takes well under a second; generous for a busy machine.
const ICE_TIMEOUT_MS = 30_000;
const MEDIA_TIMEOUT_MS = 45_000;

const h = new Harness('turn');
h.runMain(main, WATCHDOG_MS);

/** Runs in the page before its scripts: every RTCPeerConnection may use relay candidates only. */
function forceRelay() {
  const Native = window.RTCPeerConnection;
  const seen = { configs: [], errors: [] };
  window.__relayTest = seen;
  window.RTCPeerConnection = class RelayOnly extends Native {
    constructor(config = {}, ...rest) {
      super({ ...config, iceTransportPolicy: 'relay' }, ...rest);
      seen.configs.push((config.iceServers ?? []).map(({ urls, username }) => ({ urls, username })));
      this.addEventListener('icecandidateerror', (e) => seen.errors.push({ url: e.url, code: e.errorCode, text: e.errorText }));
    }
  };
}

async function main() {
  const secret = randomBytes(24).toString('base64url');
  const secretFile = path.join(h.tempDir(), 'turn.secret');
  fs.writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const turnPort = await freeTcpPort();
  const turnUrl = `turn:127.0.0.1:${turnPort}?transport=tcp`;

  await h.startTurn(randomBytes(24).toString('base64url'), turnPort);
  const { links } = await h.start({ serverArgs: ['--turn-url', turnUrl, '--turn-secret-file', secretFile] });
  const chair = await h.openPage('chair', kiosk(links.chair));
  if (!(await h.waitJoined(chair))) return false;

  // a. Wrong secret at coturn.
  const denied = await h.openPage('point-denied', kiosk(links.points[0]), { initScript: forceRelay });
  if (!(await h.waitJoined(denied))) return false;
  const refused = await until(async () => {
    const pcs = await Promise.all(['publish', 'subscribe'].map((which) => iceState(denied, which)));
    const errors = await denied.page.evaluate(() => window.__relayTest.errors);
    const ok = pcs.every((s) => s && s.gathering === 'complete') && errors.some((e) => e.code === 401);
    return { ok, pcs, errors, detail: `${pcs.map(show).join('; ')}; candidate errors ${JSON.stringify(errors)}` };
  }, ICE_TIMEOUT_MS);
  h.check('(a) coturn with another secret answers 401 and both connections finish gathering', refused.ok, refused.detail);
  h.check(
    '(a) no candidate is gathered and neither connection connects',
    refused.pcs.every((s) => s && s.candidates === 0 && !['connected', 'completed'].includes(s.ice)),
    refused.pcs.map(show).join('; '),
  );
  const nothing = (await sample(denied)).filter((r) => r.kind === 'video');
  h.check('(a) the point decodes no video', nothing.every((r) => r.framesDecoded === 0), nothing.length ? JSON.stringify(nothing) : 'no inbound video at all');
  await denied.page.context().close();

  // b. Same port, right secret.
  await h.stopTurn();
  await h.startTurn(secret, turnPort);
  const point = await h.openPage('point', kiosk(links.points[1]), { initScript: forceRelay });
  if (!(await h.waitJoined(point))) return false;

  const configs = await point.page.evaluate(() => window.__relayTest.configs);
  const fromJoined = configs.length > 0 && configs.every((servers) =>
    servers.length === 1 && servers[0].urls?.[0] === turnUrl && servers[0].username?.endsWith(`:${point.id}`));
  h.check("(b) both connections use the joined message's TURN server and credentials", fromJoined, JSON.stringify(configs));

  const relayed = await until(async () => {
    const pcs = await Promise.all(['publish', 'subscribe'].map((which) => iceState(point, which)));
    const ok = pcs.every((s) => s?.local?.candidateType === 'relay' && s.local.relayProtocol === 'tcp' && s.pair === 'succeeded');
    return { ok, detail: pcs.map(show).join('; ') };
  }, ICE_TIMEOUT_MS);
  h.check("(b) the point's publish and subscribe connections select a relay candidate over TCP", relayed.ok, relayed.detail);

  const program = await decodesGrowing(point, chair.id, MEDIA_TIMEOUT_MS);
  h.check("(b) the point decodes the chair's camera through the relay", program.ok, program.detail);
  const thumb = await decodesGrowing(chair, point.id, MEDIA_TIMEOUT_MS);
  h.check("(b) the chair decodes the point's camera (sent through the relay)", thumb.ok, thumb.detail);
  const errors = await point.page.evaluate(() => window.__relayTest.errors);
  h.check('(b) no TURN candidate error with the right secret', errors.length === 0, JSON.stringify(errors));
  return true;
}



/** ICE of one of a page's connections: states, local candidates, the selected pair's ends. */
function iceState(p, which) {
  return p.page.evaluate(async (which) => {
    const pc = which === 'publish' ? window.hoinghi?.publishPc : window.hoinghi?.subscribePc;
    if (!pc) return null;
    const stats = await pc.getStats();
    let candidates = 0;
    let selected = null;
    stats.forEach((s) => {
      if (s.type === 'local-candidate') candidates += 1;
      if (s.type === 'transport' && s.selectedCandidatePairId) selected = stats.get(s.selectedCandidatePairId);
    });
    const local = selected && stats.get(selected.localCandidateId);
    const remote = selected && stats.get(selected.remoteCandidateId);
    return {
      which,
      ice: pc.iceConnectionState,
      gathering: pc.iceGatheringState,
      policy: pc.getConfiguration().iceTransportPolicy,
      candidates,
      pair: selected?.state ?? null,
      local: local ? { candidateType: local.candidateType, relayProtocol: local.relayProtocol, url: local.url, address: `${local.address}:${local.port}` } : null,
      remote: remote ? { candidateType: remote.candidateType, address: `${remote.address}:${remote.port}` } : null,
    };
  }, which);
}

function show(s) {
  if (!s) return 'no connection yet';
  const local = s.local ? `${s.local.candidateType}/${s.local.relayProtocol ?? '-'} ${s.local.address}` : 'none';
  const remote = s.remote ? `${s.remote.candidateType} ${s.remote.address}` : 'none';
  return `${s.which}: ice ${s.ice}, gathering ${s.gathering}, policy ${s.policy}, ${s.candidates} local candidates, pair ${s.pair ?? 'none'} ${local} → ${remote}`;
}
