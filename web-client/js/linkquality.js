// Link quality of this participant, for its own indicator. The server's `link_quality` message
// (docs/protocol.md) is authoritative; until one arrives (older server) or when it is stale,
// the page estimates the class from its own getStats(): loss on what it receives and the
// round-trip time of the active candidate pair. Same thresholds as the server.

const GOOD = { loss: 0.02, rtt: 150 };
const FAIR = { loss: 0.08, rtt: 400 };
const SERVER_FRESH_MS = 25_000; // the server repeats its verdict at least every 10 s

export function classify(loss, rttMs) {
  if (loss < GOOD.loss && (rttMs == null || rttMs < GOOD.rtt)) return 'good';
  if (loss < FAIR.loss && (rttMs == null || rttMs < FAIR.rtt)) return 'fair';
  return 'poor';
}

/**
 * Watches the session's own link; calls onChange({quality, rtt_ms, loss, source}) when it
 * changes. source: 'server' | 'estimate'.
 */
export function watchOwnLink(session, onChange, everyMs = 2000) {
  let serverAt = 0;
  let last = null;
  let prev = null; // previous inbound totals, for loss over the last interval
  const emit = (q) => {
    const key = `${q.quality}/${q.rtt_ms}/${q.loss}/${q.source}`;
    if (key === last) return;
    last = key;
    onChange(q);
  };
  const onServer = (e) => {
    const m = e.detail;
    if (m.participant !== session.participantId) return;
    serverAt = Date.now();
    emit({ quality: m.quality, rtt_ms: m.rtt_ms ?? null, loss: m.loss ?? 0, source: 'server' });
  };
  session.addEventListener('link-quality', onServer);
  const timer = setInterval(async () => {
    if (Date.now() - serverAt < SERVER_FRESH_MS) return;
    const est = await estimate(session, prev).catch(() => null);
    if (!est) return;
    prev = est.totals;
    if (est.quality) emit({ quality: est.quality, rtt_ms: est.rtt_ms, loss: est.loss, source: 'estimate' });
  }, everyMs);
  return () => {
    clearInterval(timer);
    session.removeEventListener('link-quality', onServer);
  };
}

async function estimate(session, prev) {
  const pcs = [session.subscribePc, session.publishPc].filter(Boolean);
  if (pcs.length === 0) return null;
  let lost = 0;
  let received = 0;
  let rtt = null;
  for (const pc of pcs) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp') {
        lost += Math.max(0, s.packetsLost ?? 0);
        received += s.packetsReceived ?? 0;
      } else if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime != null) {
        const ms = s.currentRoundTripTime * 1000;
        rtt = rtt == null ? ms : Math.max(rtt, ms);
      } else if (s.type === 'remote-inbound-rtp' && s.roundTripTime != null && rtt == null) {
        rtt = s.roundTripTime * 1000;
      }
    });
  }
  const totals = { lost, received };
  if (!prev) return { totals, quality: null };
  const dLost = lost - prev.lost;
  const dRecv = received - prev.received;
  const loss = dLost + dRecv > 0 ? Math.max(0, dLost) / (dLost + dRecv) : 0;
  const rttMs = rtt == null ? null : Math.round(rtt);
  return { totals, quality: classify(loss, rttMs), rtt_ms: rttMs, loss: Math.round(loss * 1000) / 1000 };
}
