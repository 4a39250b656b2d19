#!/usr/bin/env node
// End-to-end test of the web client against the real server, in real Chromium with fake
// camera and microphone: one chair and two points join `test-room`; the test passes when, from
// getStats() on each page's subscribe connection,
//   - each point decodes the chair's video and receives the chair's audio,
//   - the chair decodes the video of each point (points' microphones are closed until the chair
//     opens them or gives the floor: controls.mjs tests audio from points),
//   - no point receives another point (the program routing),
// all measured as counters that grow between two samples, plus the pages showing those videos
// in their tiles and a bad link showing "Liên kết không hợp lệ".
//
//   cargo build && (cd tests/browser && npm ci && node run.mjs)
// Env: HOINGHI_BIN (default target/debug/hoinghi), CHROMIUM (default /usr/bin/chromium),
//      MEDIA_TIMEOUT_MS (default 60000),
//      HEADED=1 (show the browser, needs a display), VERBOSE=1 (print server and page logs even
//      when the test passes).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
// Chromium flags verified on this machine (shared TESTING.md) are kept in lib.mjs.
import { CHROMIUM_ARGS, run, spawnServer } from './lib.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.HOINGHI_BIN ?? path.join(ROOT, 'target/debug/hoinghi');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const MEDIA_TIMEOUT_MS = Number(process.env.MEDIA_TIMEOUT_MS ?? 60_000);
const READY_TIMEOUT_MS = 30_000;
const JOIN_TIMEOUT_MS = 30_000;
const SAMPLE_EVERY_MS = 1_000;
// Whatever happens, the test ends: a hung browser or server must not hang CI.
const WATCHDOG_MS = READY_TIMEOUT_MS + 2 * JOIN_TIMEOUT_MS + MEDIA_TIMEOUT_MS + 60_000;

const checks = []; // {name, ok, detail}
const pageLogs = []; // console output of every page, printed on failure
let serverProc = null;
const serverOutput = [];
let browser = null;
let dataDir = null;

const watchdog = setTimeout(() => {
  console.error(`\nERROR: watchdog: the test took longer than ${WATCHDOG_MS} ms`);
  check('the test ended in time', false, `watchdog ${WATCHDOG_MS} ms`);
  finish(false);
}, WATCHDOG_MS);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => finish(false));

main()
  .then((ok) => finish(ok))
  .catch((err) => {
    console.error(`\nERROR: ${err?.stack ?? err}`);
    check('the test ran to the end', false, err?.message ?? String(err));
    return finish(false);
  });

async function main() {
  if (!fs.existsSync(BIN)) throw new Error(`no server binary at ${BIN}: run \`cargo build\` (or set HOINGHI_BIN)`);
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);

  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoinghi-browser-'));
  const common = ['--no-tls', '--data-dir', dataDir, '--public-ip', '127.0.0.1'];

  // Every port 0: a number picked "free" beforehand can be taken before the server binds it.
  step(`starting ${path.relative(ROOT, BIN) || BIN} on 127.0.0.1, every port 0`);
  const base = await startServer(['serve', ...common, '--listen', '127.0.0.1:0', '--media-port', '0', '--workers', '1']);
  const port = new URL(base).port;

  const links = JSON.parse(await run(BIN, ['links', 'test-room', '--json', ...common, '--listen', `127.0.0.1:${port}`]));
  if (typeof links.chair !== 'string' || !Array.isArray(links.points) || links.points.length < 2) {
    throw new Error(`unexpected \`hoinghi links\` output: ${JSON.stringify(links)}`);
  }
  const origin = new URL(links.chair).origin;

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: process.env.HEADED !== '1', args: CHROMIUM_ARGS });

  // 1. A forged link must end on the error screen, not in a reconnect loop.
  await checkBadLink(`${origin}/join?t=not-a-real-token&autojoin=1`);

  // 2. The chair goes through the pre-join check and presses Join; points use kiosk autojoin.
  const chair = await openPage('chair', links.chair);
  await chair.page.locator('#join-button:enabled').click({ timeout: JOIN_TIMEOUT_MS });
  const points = [];
  for (const [i, link] of links.points.slice(0, 2).entries()) {
    const url = new URL(link);
    url.searchParams.set('autojoin', '1');
    points.push(await openPage(`point${i + 1}`, url.href));
  }
  const all = [chair, ...points];
  await Promise.all(all.map(waitJoined));
  for (const p of all) {
    p.id = await p.page.evaluate(() => window.hoinghi.participantId);
    p.role = await p.page.evaluate(() => window.hoinghi.role);
  }
  check('chair link joins as chair', chair.role === 'chair', `role=${chair.role}`);
  for (const p of points) check(`${p.name} link joins as point`, p.role === 'point', `role=${p.role}`);
  if (checks.some((c) => !c.ok)) return false;

  // 3. Media: poll getStats() until every expectation holds between two consecutive samples.
  step(`waiting up to ${MEDIA_TIMEOUT_MS / 1000} s for media (chair ${chair.id}, points ${points.map((p) => p.id).join(', ')})`);
  const expectations = [
    ...points.flatMap((p) => [
      { page: p, from: chair, kind: 'video', label: `${p.name} decodes the chair's video` },
      { page: p, from: chair, kind: 'audio', label: `${p.name} receives the chair's audio` },
    ]),
    ...points.flatMap((p) => [
      { page: chair, from: p, kind: 'video', label: `chair decodes ${p.name}'s video` },
    ]),
  ];
  const deadline = Date.now() + MEDIA_TIMEOUT_MS;
  let prev = await sampleAll(all);
  let results = [];
  while (true) {
    await sleep(SAMPLE_EVERY_MS);
    const cur = await sampleAll(all);
    results = expectations.map((e) => ({ ...e, ...growth(prev.get(e.page), cur.get(e.page), e.from.id, e.kind) }));
    const crossTalk = points.flatMap((p) => strangers(prev.get(p), cur.get(p), chair.id).map((s) => `${p.name} gets ${s}`));
    prev = cur;
    if (results.every((r) => r.ok) && crossTalk.length === 0) break;
    if (Date.now() > deadline) {
      for (const r of results) check(r.label, r.ok, r.detail);
      check('points receive only the chair', crossTalk.length === 0, crossTalk.join('; ') || 'none');
      console.error('\nlast stats sample:');
      for (const p of all) console.error(`  ${p.name}: ${JSON.stringify(cur.get(p))}`);
      return false;
    }
  }
  for (const r of results) check(r.label, true, r.detail);
  check('points receive only the chair', true, 'no other participant at the points');

  // 4. The pages show it: picture in the chair's grid tiles and on each point's main tile.
  // Every invited point has a tile (the test room invites three; one never joins here).
  const invitedTiles = await chair.page.locator('.grid .ptile').count();
  const absentTiles = await chair.page.locator('.grid .ptile.absent').count();
  check('chair grid shows every invited point', invitedTiles === 3 && absentTiles === 1, `${invitedTiles} tiles, ${absentTiles} absent`);
  const chairTiles = await chair.page.locator('.grid .ptile.has-video').count();
  check('chair page shows a picture for each point', chairTiles === points.length, `${chairTiles} tiles with video`);
  for (const p of points) {
    const shown = await p.page.locator('.main-tile.has-video').count();
    check(`${p.name} page shows the chair big`, shown === 1, shown ? 'main tile has video' : 'no picture');
  }

  // 5. Active speaker: the server judges voice activity from the audio-level header extension of
  // the chair's (fake, beeping) microphone and says so; each point highlights the chair.
  for (const p of points) {
    const lit = await p.page
      .waitForSelector('.main-tile.speaking', { timeout: 15_000 })
      .then(() => true)
      .catch(() => false);
    check(`${p.name} highlights the chair as active speaker`, lit, lit ? 'main tile marked speaking' : 'never marked');
  }

  // A normal session draws no `error` from the server (session.js logs each one it gets).
  const refused = pageLogs.filter((l) => !l.startsWith('[bad-link]') && l.includes('[hoinghi] server error'));
  check('the server refused nothing the pages sent', refused.length === 0, refused.join('; ') || 'no error messages');

  // Screenshots of the pages are taken by controls.mjs, with the meeting controls in use.
  return checks.every((c) => c.ok);
}

// --- the pages ---------------------------------------------------------------------------------

async function openPage(name, url) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, permissions: ['camera', 'microphone'] });
  const page = await context.newPage();
  page.on('console', (m) => pageLogs.push(`[${name}] ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageLogs.push(`[${name}] pageerror: ${e.message}`));
  step(`${name}: opening ${url.replace(/t=[^&]+/, 't=…')}`);
  await page.goto(url, { waitUntil: 'load' });
  return { name, page };
}

async function waitJoined(p) {
  const state = await p.page
    .waitForFunction(() => ['joined', 'failed', 'left'].includes(window.hoinghi?.state) && window.hoinghi.state, null, {
      timeout: JOIN_TIMEOUT_MS,
    })
    .then((h) => h.jsonValue())
    .catch(() => p.page.evaluate(() => window.hoinghi?.state ?? 'no window.hoinghi'));
  const error = await p.page.evaluate(() => window.hoinghi?.lastError ?? null);
  check(`${p.name} joins`, state === 'joined', state === 'joined' ? 'joined' : `state=${state} error=${JSON.stringify(error)}`);
}

async function checkBadLink(url) {
  const p = await openPage('bad-link', url);
  const state = await p.page
    .waitForFunction(() => window.hoinghi?.state === 'failed', null, { timeout: JOIN_TIMEOUT_MS })
    .then(() => 'failed')
    .catch(() => p.page.evaluate(() => window.hoinghi?.state));
  const code = await p.page.evaluate(() => window.hoinghi?.lastError?.code);
  const title = await p.page.locator('.panel.message h1').textContent().catch(() => null);
  check(
    'a forged link shows "Liên kết không hợp lệ"',
    state === 'failed' && code === 'bad_token' && title === 'Liên kết không hợp lệ',
    `state=${state} code=${code} title=${JSON.stringify(title)}`,
  );
  await p.page.context().close();
}

/** Inbound RTP of each page's subscribe connection, labelled with the sending participant. */
async function sampleAll(pages) {
  const out = new Map();
  for (const p of pages) {
    out.set(
      p,
      await p.page.evaluate(async () => {
        const h = window.hoinghi;
        const pc = h?.subscribePc;
        if (!pc) return [];
        const byMid = new Map(h.tracks.map((t) => [t.mid, t.participant]));
        const midOfTrack = new Map(pc.getTransceivers().map((tr) => [tr.receiver.track.id, tr.mid]));
        const rows = [];
        (await pc.getStats()).forEach((s) => {
          if (s.type !== 'inbound-rtp') return;
          const mid = s.mid ?? midOfTrack.get(s.trackIdentifier);
          rows.push({
            key: `${s.kind}/${s.ssrc}`,
            kind: s.kind,
            mid,
            participant: byMid.get(mid) ?? null,
            framesDecoded: s.framesDecoded ?? 0,
            packetsReceived: s.packetsReceived ?? 0,
            size: s.frameWidth ? `${s.frameWidth}x${s.frameHeight}` : undefined,
          });
        });
        return rows;
      }),
    );
  }
  return out;
}

/** Did media of `kind` from `participant` grow between two samples? Video: frames decoded. */
function growth(before = [], after = [], participant, kind) {
  const counter = kind === 'video' ? 'framesDecoded' : 'packetsReceived';
  for (const row of after) {
    if (row.participant !== participant || row.kind !== kind) continue;
    const old = before.find((b) => b.key === row.key);
    const delta = row[counter] - (old?.[counter] ?? 0);
    if (old && delta > 0) {
      return { ok: true, detail: `${counter} +${delta}/s (total ${row[counter]}${row.size ? `, ${row.size}` : ''})` };
    }
  }
  const seen = after.filter((r) => r.participant === participant && r.kind === kind);
  return { ok: false, detail: seen.length ? `${counter} not growing: ${JSON.stringify(seen)}` : `no inbound ${kind} from ${participant}` };
}

/** Growing inbound streams at a point from anyone but the chair. */
function strangers(before = [], after = [], chairId) {
  return after
    .filter((r) => r.participant !== chairId)
    .filter((r) => {
      const old = before.find((b) => b.key === r.key);
      return old && r.packetsReceived > old.packetsReceived;
    })
    .map((r) => `${r.kind} from ${r.participant ?? `unlabelled mid ${r.mid}`}`);
}

// --- the server --------------------------------------------------------------------------------

async function startServer(args) {
  const server = spawnServer(args, serverOutput, READY_TIMEOUT_MS);
  serverProc = server.proc;
  const { base } = await server.ready;
  step(`server ready: ${base}`);
  return base;
}




// --- reporting and cleanup -----------------------------------------------------------------------

function step(msg) {
  console.log(`• ${msg}`);
}

function check(name, ok, detail = '') {
  checks.push({ name, ok, detail });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let finishing = false;
async function finish(ok) {
  if (finishing) return;
  finishing = true;
  clearTimeout(watchdog);
  ok = ok && checks.length > 0 && checks.every((c) => c.ok);
  console.log('\nbrowser test summary');
  for (const c of checks) console.log(`  ${c.ok ? 'PASS' : 'FAIL'}  ${c.name}${c.detail ? `  (${c.detail})` : ''}`);
  if (!ok || process.env.VERBOSE === '1') {
    console.log('\n--- server output (tail) ---');
    for (const line of serverOutput.slice(-80)) console.log(`  ${line}`);
    console.log('--- page console (tail) ---');
    for (const line of pageLogs.slice(-150)) console.log(`  ${line}`);
  }
  const passed = checks.filter((c) => c.ok).length;
  console.log(`\nbrowser: ${passed} passed, ${checks.length - passed} failed`);
  await browser?.close().catch(() => {});
  await stopServer();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  process.exit(ok ? 0 : 1);
}

async function stopServer() {
  const proc = serverProc;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
