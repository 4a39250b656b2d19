#!/usr/bin/env node
// Redundant audio (RFC 2198 RED) end to end in Chromium. The chair's page puts RED first in its
// microphone's codec list, so it publishes RED; the server forwards RED to a point that accepts
// it and the primary Opus frame to a point that does not (its page strips RED from the server's
// offers, as a client without RED would). Then 10 % of the server's UDP towards the pages is
// dropped for real (iptables statistic match on loopback; root needed, as in CI), and the point
// with RED must conceal markedly less audio than the one without.
//   a. the chair's microphone negotiates RED first (so it sends RED); point A accepts RED from the
//      server, point B only Opus (Chromium's stats name Opus for RED too, so this is read from
//      the negotiated descriptions);
//   b. both play the chair on a clean line (samples growing, little concealment): B can only do
//      so if the server sent it the primary as Opus;
//   c. with 10 % loss, A conceals at most half of what B conceals, and B's concealment shows the
//      loss is real;
//   d. the server's video offers carry RTX (RFC 4588: `rtx/90000` with `apt` the VP8 payload
//      type, `a=ssrc-group:FID`), Chromium accepts it, and under the same loss the chair's video
//      is repaired on RTX: Chromium counts a packet as retransmitted only when it arrives on the
//      RTX stream, so without RTX `retransmittedPacketsReceived` stays at 0.
//
//   cargo build --bin hoinghi && (cd tests/browser && npm ci && node red.mjs)

import { execFileSync } from 'node:child_process';
import { Harness, kiosk, sleep, until } from './lib.mjs';

const WATCHDOG_MS = 240_000;
const MEDIA_TIMEOUT_MS = 45_000;
const LOSS = 0.1;
const LOSSY_WINDOW_MS = 15_000;

const h = new Harness('red');
let rule = null;

function lossRule(op, port) {
  execFileSync('iptables', [op, 'INPUT', '-i', 'lo', '-p', 'udp', '--sport', String(port),
    '-m', 'statistic', '--mode', 'random', '--probability', String(LOSS), '-j', 'DROP',
    '-m', 'comment', '--comment', `hoinghi-red-${process.pid}`], { stdio: 'pipe' });
}

function clearLoss() {
  if (rule === null) return;
  try {
    lossRule('-D', rule);
  } catch (e) {
    console.error(`could not remove the iptables loss rule for UDP ${rule}: ${e.message}`);
  }
  rule = null;
}
process.on('exit', clearLoss);

h.runMain(main, WATCHDOG_MS);

/** Runs in point B's page: the server's offers lose their RED codec before they are applied. */
function stripRed() {
  const apply = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (desc, ...rest) {
    if (desc?.type === 'offer' && desc.sdp) {
      const lines = desc.sdp.split('\r\n');
      const pts = lines.map((l) => /^a=rtpmap:(\d+) red\/48000\/2$/i.exec(l)?.[1]).filter(Boolean);
      const sdp = lines
        .filter((l) => !pts.some((pt) => l.startsWith(`a=rtpmap:${pt} `) || l.startsWith(`a=fmtp:${pt} `) || l.startsWith(`a=rtcp-fb:${pt} `)))
        .map((l) => (l.startsWith('m=audio ') ? l.split(' ').filter((f, i) => i < 3 || !pts.includes(f)).join(' ') : l))
        .join('\r\n');
      desc = { type: 'offer', sdp };
    }
    return apply.call(this, desc, ...rest);
  };
}

async function main() {
  // UDP only: with ICE-TCP offered, Chromium moves a connection whose checks go missing to the
  // lossless TCP pair, and the comparison would no longer be of RED against no RED.
  const { links } = await h.start({ serverArgs: ['--no-ice-tcp'] });
  const chair = await h.openPage('chair', kiosk(links.chair));
  if (!(await h.waitJoined(chair))) return false;
  const a = await h.openPage('point-red', kiosk(links.points[0]));
  if (!(await h.waitJoined(a))) return false;
  const b = await h.openPage('point-opus', kiosk(links.points[1]), { initScript: stripRed });
  if (!(await h.waitJoined(b))) return false;

  // Chromium's stats name the primary codec (Opus) for RED too, so what is sent is read from
  // the negotiation: the codec a sender uses is the first of the answer's list.
  const sent = await until(async () => {
    const codecs = await audioCodecs(chair, 'publish', 'remote');
    return { ok: codecs?.[0] === 'red/48000/2', detail: `server's answer for the chair's microphone: ${codecs?.join(', ')}` };
  }, MEDIA_TIMEOUT_MS);
  h.check('(a) the chair publishes its microphone as RED (first in the answer)', sent.ok, sent.detail);
  const accepted = await until(async () => {
    const [ca, cb] = await Promise.all([audioCodecs(a, 'subscribe', 'local'), audioCodecs(b, 'subscribe', 'local')]);
    const ok = ca?.includes('red/48000/2') && cb?.length > 0 && !cb.includes('red/48000/2') && cb.includes('opus/48000/2');
    return { ok, detail: `A accepts ${ca?.join(', ')}; B accepts ${cb?.join(', ')}` };
  }, MEDIA_TIMEOUT_MS);
  h.check('(a) point A accepts RED from the server, point B only Opus', accepted.ok, accepted.detail);

  // b. Clean line: both points play the chair, each in its own codec.
  const playing = await until(async () => {
    const [ra, rb] = await Promise.all([audioFrom(a, chair.id), audioFrom(b, chair.id)]);
    await sleep(2000);
    const [ra2, rb2] = await Promise.all([audioFrom(a, chair.id), audioFrom(b, chair.id)]);
    const sa = window2(ra, ra2);
    const sb = window2(rb, rb2);
    const ok = sa.samples > 40_000 && sb.samples > 40_000 && sa.concealed < 0.05 && sb.concealed < 0.05;
    return { ok, detail: `A ${show(ra2, sa)}; B ${show(rb2, sb)}` };
  }, MEDIA_TIMEOUT_MS, 0);
  h.check('(b) clean line: A plays the chair from RED, B from the Opus the server took out of it', playing.ok, playing.detail);

  // c. 10 % of what the server sends is dropped.
  lossRule('-I', h.mediaPort);
  rule = h.mediaPort;
  h.step(`dropping ${LOSS * 100} % of UDP from 127.0.0.1:${h.mediaPort} for ${LOSSY_WINDOW_MS / 1000} s`);
  await sleep(1000);
  const [ra, rb] = await Promise.all([audioFrom(a, chair.id), audioFrom(b, chair.id)]);
  const va = await videoFrom(a, chair.id);
  await sleep(LOSSY_WINDOW_MS);
  const [ra2, rb2] = await Promise.all([audioFrom(a, chair.id), audioFrom(b, chair.id)]);
  const va2 = await videoFrom(a, chair.id);
  clearLoss();
  const sa = window2(ra, ra2);
  const sb = window2(rb, rb2);
  h.check(
    '(c) 10 % loss: the point with RED conceals at most half as much audio as the point without',
    sb.concealed > 0.02 && sa.concealed <= 0.5 * sb.concealed && sa.samples > 0 && sa.lost > 0 && sb.lost > 0,
    `concealed A (RED) ${(sa.concealed * 100).toFixed(2)} %, B (Opus) ${(sb.concealed * 100).toFixed(2)} % of ${sa.samples} / ${sb.samples} samples; packets lost A ${sa.lost}, B ${sb.lost}`,
  );
  const rtx = await videoRtx(a);
  h.check(
    "(d) the server offers RTX for VP8 with an FID group, and the point's answer keeps it",
    rtx.offered && rtx.fid && rtx.answered,
    JSON.stringify(rtx),
  );
  const repaired = va && va2 ? va2.retransmitted - va.retransmitted : 0;
  const lostVideo = va && va2 ? va2.lost - va.lost : 0;
  h.check(
    "(d) 10 % loss: the chair's video is repaired on RTX (retransmitted packets received)",
    repaired > 0,
    `${repaired} packets received on RTX in ${LOSSY_WINDOW_MS / 1000} s; video packets lost ${lostVideo}, frames decoded +${(va2?.decoded ?? 0) - (va?.decoded ?? 0)}`,
  );
  return true;
}

/** The page's inbound `kind` stream from `from`: codec, audio samples received and concealed,
 * video packets received on RTX and frames decoded, packets lost. */
function inboundFrom(p, from, kind) {
  return p.page.evaluate(async ({ from, kind }) => {
    const h = window.hoinghi;
    const pc = h?.subscribePc;
    if (!pc) return null;
    const byMid = new Map(h.tracks.map((t) => [t.mid, t]));
    const stats = await pc.getStats();
    let row = null;
    stats.forEach((s) => {
      if (s.type !== 'inbound-rtp' || s.kind !== kind || byMid.get(s.mid)?.participant !== from) return;
      row = {
        codec: s.codecId ? stats.get(s.codecId)?.mimeType ?? null : null,
        samples: s.totalSamplesReceived ?? 0,
        concealed: s.concealedSamples ?? 0,
        retransmitted: s.retransmittedPacketsReceived ?? 0,
        decoded: s.framesDecoded ?? 0,
        lost: s.packetsLost ?? 0,
      };
    });
    return row;
  }, { from, kind });
}

const audioFrom = (p, from) => inboundFrom(p, from, 'audio');
const videoFrom = (p, from) => inboundFrom(p, from, 'video');

/** Whether the subscribe connection's video m-lines offer RTX for VP8 and the answer keeps it. */
function videoRtx(p) {
  return p.page.evaluate(() => {
    const pc = window.hoinghi?.subscribePc;
    const video = (sdp) => (sdp ?? '').split(/\r\nm=/).filter((m) => m.startsWith('video '));
    const rtxForVp8 = (section) => {
      const vp8 = /a=rtpmap:(\d+) VP8\/90000/i.exec(section)?.[1];
      const rtx = [...section.matchAll(/a=rtpmap:(\d+) rtx\/90000/gi)].map((m) => m[1]);
      return vp8 != null && rtx.some((pt) => new RegExp(`a=fmtp:${pt} apt=${vp8}(\r|$)`).test(section));
    };
    const offer = video(pc?.currentRemoteDescription?.sdp);
    const answer = video(pc?.currentLocalDescription?.sdp);
    return {
      videoSections: offer.length,
      offered: offer.length > 0 && offer.every(rtxForVp8),
      fid: offer.some((m) => /a=ssrc-group:FID \d+ \d+/.test(m)),
      answered: answer.length > 0 && answer.every(rtxForVp8),
    };
  });
}


function window2(before, after) {
  if (!before || !after) return { samples: 0, concealed: 1, lost: 0 };
  const samples = after.samples - before.samples;
  return {
    samples,
    concealed: samples > 0 ? (after.concealed - before.concealed) / samples : 1,
    lost: after.lost - before.lost,
  };
}

function show(r, w) {
  if (!r) return 'no audio from the chair';
  return `+${w.samples} samples, ${(w.concealed * 100).toFixed(2)} % concealed`;
}

/** The audio codecs (rtpmap names, in order) of a connection's local or remote description. */
function audioCodecs(p, which, side) {
  return p.page.evaluate(({ which, side }) => {
    const pc = which === 'publish' ? window.hoinghi?.publishPc : window.hoinghi?.subscribePc;
    const sdp = (side === 'local' ? pc?.currentLocalDescription : pc?.currentRemoteDescription)?.sdp;
    if (!sdp) return null;
    const section = sdp.split(/\r\nm=/).find((m) => m.startsWith('audio ') || m.startsWith('m=audio '));
    if (!section) return null;
    const lines = section.split('\r\n');
    const pts = lines[0].split(' ').slice(3);
    const names = new Map(lines.map((l) => /^a=rtpmap:(\d+) (.+)$/.exec(l)).filter(Boolean).map((m) => [m[1], m[2].toLowerCase()]));
    return pts.map((pt) => names.get(pt) ?? pt);
  }, { which, side });
}

