// Link test against this server (src/linktest.rs): round-trip time from a few pings, then
// download and upload throughput with transfers that grow until one takes about a second
// (so a slow commune link is not kept busy for long, and a fast one is still measured).
// Verdicts in plain words: what a point can expect in the meeting. Every request carries the
// point's join token (the server runs link tests only for invited points, within byte budgets
// per point and per address); a budget spent after a first measurement ends that direction with
// the figure so far instead of failing the whole test.

const BASE = '/api/linktest';
const PINGS = 5;
const TARGET_MS = 1000; // a transfer this long gives a fair figure
const MAX_BYTES = 4 * 1024 * 1024;
const UP_MAX_BYTES = 2 * 1024 * 1024;
const BUDGET_MS = 4000; // per direction

// What a point needs (media.js caps): program down ~1.5–2.5 Mbit/s (chair camera and share),
// own camera up 0.6 Mbit/s; audio alone needs well under 0.1 Mbit/s each way.
const GOOD = { down: 2.0, up: 0.8, rtt: 150 };
const FAIR = { down: 0.8, up: 0.4, rtt: 400 };
const POOR = { down: 0.1, up: 0.06 };

/** Runs the whole test; resolves with {rttMs, downMbps, upMbps, verdict} or {verdict: 'failed'}. */
export async function runLinkTest({ token, onBusy } = {}) {
  const auth = { authorization: `Bearer ${token ?? ''}` };
  try {
    const rttMs = await measureRtt(auth);
    const down = await measure((n) => download(n, auth), 64 * 1024, MAX_BYTES, onBusy);
    const sample = down.sample; // incompressible bytes from the server, reused for the upload
    const up = await measure((n) => upload(sample, n, auth), 32 * 1024, UP_MAX_BYTES, onBusy);
    const result = { rttMs: Math.round(rttMs), downMbps: round(down.mbps), upMbps: round(up.mbps) };
    return { ...result, verdict: verdict(result) };
  } catch (err) {
    console.warn('[hoinghi] link test failed', err);
    return { verdict: 'failed', error: String(err?.message ?? err) };
  }
}

export function verdict({ rttMs, downMbps, upMbps }) {
  if (downMbps >= GOOD.down && upMbps >= GOOD.up && rttMs < GOOD.rtt) return 'good';
  if (downMbps >= FAIR.down && upMbps >= FAIR.up && rttMs < FAIR.rtt) return 'fair';
  if (downMbps >= POOR.down && upMbps >= POOR.up) return 'poor';
  return 'bad';
}

const round = (x) => Math.round(x * 100) / 100;

async function measureRtt(auth) {
  const times = [];
  for (let i = 0; i < PINGS; i++) {
    const t0 = performance.now();
    const res = await fetch(`${BASE}/ping`, { cache: 'no-store', headers: auth });
    if (res.status !== 204) throw new Error(`ping: HTTP ${res.status}`);
    times.push(performance.now() - t0);
  }
  // The first ping may include opening a connection: the median of the rest.
  const rest = times.slice(1).sort((a, b) => a - b);
  return rest[Math.floor(rest.length / 2)];
}

/** Grows the transfer size until one takes ~TARGET_MS (or the cap/budget is reached). */
async function measure(transfer, startBytes, maxBytes, onBusy) {
  let n = startBytes;
  let best = { mbps: 0, sample: null };
  const end = performance.now() + BUDGET_MS;
  for (;;) {
    let r;
    try {
      r = await withRetry(() => transfer(n), onBusy, best.mbps > 0);
    } catch (err) {
      if (err?.busy && best.mbps > 0) return best; // budget spent: keep what was measured
      throw err;
    }
    const mbps = (r.bytes * 8) / Math.max(1, r.ms) / 1000;
    best = { mbps: Math.max(best.mbps, mbps), sample: r.sample ?? best.sample };
    if (r.ms >= TARGET_MS || n >= maxBytes || performance.now() > end) return best;
    // Aim the next transfer at the target duration, at most 8x bigger.
    n = Math.min(maxBytes, Math.ceil(n * Math.min(8, Math.max(2, TARGET_MS / Math.max(1, r.ms)))));
  }
}

async function withRetry(fn, onBusy, haveResult) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (err?.busy && attempt < 3 && !haveResult) {
        onBusy?.();
        await new Promise((r) => setTimeout(r, (err.retryAfter ?? 5) * 1000));
        continue;
      }
      throw err;
    }
  }
}

function httpError(res, what) {
  const err = new Error(`${what}: HTTP ${res.status}`);
  if (res.status === 503) {
    err.busy = true;
    err.retryAfter = Number(res.headers.get('retry-after')) || 5;
  }
  return err;
}

async function download(n, auth) {
  const t0 = performance.now();
  const res = await fetch(`${BASE}/download?bytes=${n}`, { cache: 'no-store', headers: auth });
  if (!res.ok) throw httpError(res, 'download');
  const body = new Uint8Array(await res.arrayBuffer());
  return { bytes: body.length, ms: performance.now() - t0, sample: body };
}

async function upload(sample, n, auth) {
  const body = new Uint8Array(n);
  // Repeat the server's random bytes (or fresh ones) so nothing on the way can compress them.
  const src = sample?.length ? sample : crypto.getRandomValues(new Uint8Array(65536));
  for (let off = 0; off < n; off += src.length) body.set(src.subarray(0, Math.min(src.length, n - off)), off);
  const t0 = performance.now();
  const res = await fetch(`${BASE}/upload`, { method: 'POST', body, cache: 'no-store', headers: { ...auth, 'content-type': 'application/octet-stream' } });
  if (!res.ok) throw httpError(res, 'upload');
  const { bytes } = await res.json();
  return { bytes, ms: performance.now() - t0 };
}
