// Shared by the browser tests (controls.mjs; run.mjs keeps its own copy for now): the server
// process (and more servers for the cascade, addServer), Chromium with fake media, pages,
// getStats() sampling, the admin API, and the PASS/FAIL report.

import { spawn, execFile } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = process.env.HOINGHI_BIN ?? path.join(ROOT, 'target/debug/hoinghi');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TURNSERVER = process.env.TURNSERVER ?? '/usr/bin/turnserver';
const READY_TIMEOUT_MS = 30_000;

// Verified on this machine (shared TESTING.md); Playwright adds --headless and a fresh profile.
// --use-fake-ui-for-media-stream also answers getDisplayMedia: headless Chromium then shares a
// synthetic 1280x720 "screen", so the real share path is tested (no canvas stand-in needed).
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-extensions',
  '--disable-default-apps',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost',
  '--autoplay-policy=no-user-gesture-required',
];

export class Harness {
  constructor(name) {
    this.name = name;
    this.checks = [];
    this.pageLogs = [];
    this.serverOutput = [];
    this.server = null;
    this.servers = []; // started by addServer(): {label, proc, output}
    this.browser = null;
    this.ownBrowsers = []; // launched by openPage(..., {ownBrowser: true})
    this.dataDir = null;
    this.tempDirs = []; // made by tempDir(), removed by finish()
    this.turn = null; // {proc, port, dir} of startTurn()
    this.turnOutput = [];
    // Playwright's own SIGINT handler calls process.exit() once the browsers are closed, which
    // can cut finish() short: what must not outlive the test goes on 'exit' too (sync calls only).
    process.on('exit', () => {
      if (this.turn) {
        this.turn.proc.kill('SIGKILL');
        fs.rmSync(this.turn.dir, { recursive: true, force: true });
      }
      for (const dir of this.tempDirs) fs.rmSync(dir, { recursive: true, force: true });
    });
    this.t0 = Date.now();
  }

  step(msg) {
    console.log(`• [${((Date.now() - this.t0) / 1000).toFixed(1)} s] ${msg}`);
  }

  check(name, ok, detail = '') {
    this.checks.push({ name, ok: Boolean(ok), detail });
    console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${name}${detail ? `  (${detail})` : ''}`);
    return Boolean(ok);
  }

  /**
   * Starts `hoinghi serve` with `serverArgs` added, every port chosen by the kernel (port 0: a
   * number picked "free" beforehand can be taken by any other process before the server binds
   * it). Sets `mediaPort`, `iceTcpPort` and `metricsUrl` from what the server printed; returns
   * {origin, links}.
   */
  async start({ serverArgs = [] } = {}) {
    if (!fs.existsSync(BIN)) throw new Error(`no server binary at ${BIN}: run \`cargo build\``);
    if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `hoinghi-${this.name}-`));
    const common = ['--no-tls', '--data-dir', this.dataDir, '--public-ip', '127.0.0.1'];
    this.step(`starting ${path.relative(ROOT, BIN) || BIN} on 127.0.0.1, every port 0`);
    const info = await this.#startServer([
      'serve', ...common, '--listen', '127.0.0.1:0', '--media-port', '0', '--metrics-listen', '127.0.0.1:0',
      '--workers', '1', ...serverArgs,
    ]);
    this.mediaPort = Number(info['media-udp']);
    this.iceTcpPort = info['ice-tcp'] ? Number(info['ice-tcp']) : null;
    this.metricsUrl = info.metrics;
    const port = new URL(info.base).port;
    this.step(`server on 127.0.0.1:${port}, media UDP ${this.mediaPort}, ICE-TCP ${this.iceTcpPort}`);
    const links = JSON.parse(await run(BIN, ['links', 'test-room', '--json', ...common, '--listen', `127.0.0.1:${port}`]));
    this.browser = await chromium.launch({ executablePath: CHROMIUM, headless: process.env.HEADED !== '1', args: CHROMIUM_ARGS });
    this.origin = new URL(links.chair).origin;
    return { origin: this.origin, links };
  }

  /**
   * Starts one more `hoinghi serve` beside start()'s (the cascade: a downstream server linked to
   * the first one), with a data dir of its own and every port chosen by the kernel, as start()
   * does. Its output is kept apart (printed by finish() under `label`); finish() stops it before
   * the first server. Resolves with {label, origin, admin, mediaPort, dataDir, proc}: `admin` the
   * bootstrap account ({username, password}) for adminLogin().
   */
  async addServer(label, { serverArgs = [] } = {}) {
    if (!fs.existsSync(BIN)) throw new Error(`no server binary at ${BIN}: run \`cargo build\``);
    const dataDir = this.tempDir();
    this.step(`starting a second server (${label}) on 127.0.0.1, every port 0`);
    const output = [];
    const server = spawnServer([
      'serve', '--no-tls', '--data-dir', dataDir, '--public-ip', '127.0.0.1', '--listen', '127.0.0.1:0',
      '--media-port', '0', '--workers', '1', ...serverArgs,
    ], output, READY_TIMEOUT_MS);
    this.servers.push({ label, proc: server.proc, output });
    process.once('exit', () => {
      if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill('SIGKILL');
    });
    const info = await server.ready;
    const origin = new URL(info.base).origin;
    this.step(`${label} on ${origin}, media UDP ${info['media-udp']}`);
    return { label, origin, admin: info.admin, mediaPort: Number(info['media-udp']), dataDir, proc: server.proc };
  }

  /**
   * GET an admin API path as the bootstrap admin (cookie session). Resolves with
   * {status, body} (body parsed as JSON when it is JSON).
   */
  async adminGet(apiPath) {
    if (!this.admin) return { status: 0, body: 'no bootstrap admin password on stdout' };
    if (!this.cookie) {
      const login = await adminLogin(this.origin, this.admin);
      if (!login.ok) return { status: login.status, body: login.body };
      this.cookie = login.cookie;
    }
    const res = await fetch(`${this.origin}${apiPath}`, { headers: { cookie: this.cookie } });
    const text = await res.text();
    let body = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body };
  }

  /**
   * Opens `url` in a new context of the shared browser, or with `ownBrowser` in a Chromium of its
   * own: pages of one browser share its one fake camera, whose capture format the first opener
   * settles, so a page asking a larger size later may not get it (seen: three pages all stuck at
   * 640x480 while asking 1280x720 and 960x540). `args` are more Chromium flags for a browser of
   * its own (e.g. `--use-file-for-fake-video-capture=FILE`, a camera showing a picture of the
   * test's choosing); they imply `ownBrowser`.
   */
  async openPage(name, url, { ownBrowser = false, initScript = null, args = [] } = {}) {
    let browser = this.browser;
    if (ownBrowser || args.length) {
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: process.env.HEADED !== '1', args: [...CHROMIUM_ARGS, ...args] });
      this.ownBrowsers.push(browser);
    }
    const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, permissions: ['camera', 'microphone'] });
    // Before any of the page's own scripts (e.g. to wrap RTCPeerConnection).
    if (initScript) await context.addInitScript(initScript);
    const page = await context.newPage();
    page.on('console', (m) => this.pageLogs.push(`[${name}] ${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => this.pageLogs.push(`[${name}] pageerror: ${e.message}`));
    this.step(`${name}: opening ${url.replace(/t=[^&]+/, 't=…')}`);
    await page.goto(url, { waitUntil: 'load' });
    return { name, page };
  }

  async waitJoined(p, timeout = 30_000) {
    const state = await p.page
      .waitForFunction(() => ['joined', 'failed', 'left'].includes(window.hoinghi?.state) && window.hoinghi.state, null, { timeout })
      .then((h) => h.jsonValue())
      .catch(() => p.page.evaluate(() => window.hoinghi?.state ?? 'no window.hoinghi'));
    const info = await p.page.evaluate(() => {
      const h = window.hoinghi;
      return { id: h.participantId, role: h.role, point: h.session?.roster.get(h.participantId)?.point, error: h.lastError };
    });
    Object.assign(p, info);
    return this.check(`${p.name} joins`, state === 'joined', state === 'joined' ? `${p.id}, point ${p.point}, ${p.role}` : `state=${state} error=${JSON.stringify(info.error)}`);
  }

  /** A fresh temporary directory, removed by finish(). */
  tempDir() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hoinghi-${this.name}-`));
    this.tempDirs.push(dir);
    return dir;
  }

  /**
   * Starts coturn's `turnserver` on 127.0.0.1:`port` (TCP and UDP), relaying on loopback, with
   * the TURN REST API shared secret `secret` (`use-auth-secret`: the credentials hoinghi hands
   * out). Resolves once it accepts TCP connections; finish() or stopTurn() stops it. Its output
   * goes to `turnOutput`, with the secret redacted.
   */
  async startTurn(secret, port) {
    if (!fs.existsSync(TURNSERVER)) throw new Error(`no coturn at ${TURNSERVER}: apt-get install -y coturn`);
    if (this.turn) throw new Error('a turnserver is already running');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hoinghi-${this.name}-turn-`));
    // -n: no config file; pid file and user database in the private dir, not /var.
    const args = [
      '-n', '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${port}`,
      '--use-auth-secret', `--static-auth-secret=${secret}`, '--realm=hoinghi.test',
      '--no-cli', '--no-tls', '--no-dtls', '--allow-loopback-peers',
      '--log-file=stdout', '--simple-log', `--pidfile=${path.join(dir, 'turnserver.pid')}`,
      `--userdb=${path.join(dir, 'turndb')}`,
    ];
    this.step(`starting turnserver on 127.0.0.1:${port}`);
    const proc = spawn(TURNSERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.turn = { proc, port, dir };
    const keep = (chunk) => {
      const lines = String(chunk).split('\n').filter(Boolean).map((l) => `(turn:${port}) ${l.replaceAll(secret, '…')}`);
      this.turnOutput.push(...lines);
      if (this.turnOutput.length > 800) this.turnOutput.splice(0, this.turnOutput.length - 400);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(`turnserver exited (code ${code}, signal ${signal})`)));
    const listening = until(async () => ({ ok: await canConnect(port) }), 10_000, 100).then((r) => (r.ok ? null : 'turnserver not listening within 10 s'));
    const failed = await Promise.race([listening, exited]);
    if (failed) throw new Error(failed);
  }

  /** Stops the turnserver of startTurn(), if any, and removes its directory. */
  async stopTurn() {
    const turn = this.turn;
    if (!turn) return;
    this.turn = null;
    await stopProcess(turn.proc);
    fs.rmSync(turn.dir, { recursive: true, force: true });
  }

  async #startServer(args) {
    const server = spawnServer(args, this.serverOutput, READY_TIMEOUT_MS);
    this.server = server.proc;
    // Playwright's own SIGINT handler exits before `finish` can stop the server: never leave one.
    process.once('exit', () => {
      if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill('SIGKILL');
    });
    const info = await server.ready;
    if (info.admin) this.admin = info.admin;
    return info;
  }

  /**
   * Runs `main` (async, returns whether it got to the end) under a watchdog: a check fails if it
   * takes longer than `watchdogMs`, if it throws, or on SIGINT/SIGTERM; then `finish`.
   */
  runMain(main, watchdogMs) {
    const watchdog = setTimeout(() => {
      this.check('the test ended in time', false, `watchdog ${watchdogMs} ms`);
      this.finish(false);
    }, watchdogMs);
    for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => this.finish(false));
    return main()
      .then((ok) => this.finish(ok))
      .catch((err) => {
        console.error(`\nERROR: ${err?.stack ?? err}`);
        this.check('the test ran to the end', false, err?.message ?? String(err));
        return this.finish(false);
      })
      .finally(() => clearTimeout(watchdog));
  }

  /** Prints the summary, cleans up, exits. */
  async finish(ok) {
    if (this.finishing) return;
    this.finishing = true;
    ok = ok && this.checks.length > 0 && this.checks.every((c) => c.ok);
    console.log(`\n${this.name} summary`);
    for (const c of this.checks) console.log(`  ${c.ok ? 'PASS' : 'FAIL'}  ${c.name}${c.detail ? `  (${c.detail})` : ''}`);
    if (!ok || process.env.VERBOSE === '1') {
      console.log('\n--- server output (tail) ---');
      for (const line of this.serverOutput.slice(-60)) console.log(`  ${line}`);
      for (const s of this.servers) {
        console.log(`--- ${s.label} server output (tail) ---`);
        for (const line of s.output.slice(-60)) console.log(`  ${line}`);
      }
      if (this.turnOutput.length) {
        console.log('--- turnserver output (tail) ---');
        for (const line of this.turnOutput.slice(-60)) console.log(`  ${line}`);
      }
      console.log('--- page console (tail) ---');
      for (const line of this.pageLogs.slice(-120)) console.log(`  ${line}`);
    }
    const passed = this.checks.filter((c) => c.ok).length;
    console.log(`\n${this.name}: ${passed} passed, ${this.checks.length - passed} failed, ${((Date.now() - this.t0) / 1000).toFixed(1)} s`);
    for (const b of this.ownBrowsers) await b.close().catch(() => {});
    await this.browser?.close().catch(() => {});
    for (const s of this.servers) await stopProcess(s.proc);
    await stopProcess(this.server);
    await this.stopTurn().catch(() => {});
    if (this.dataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
    for (const dir of this.tempDirs) fs.rmSync(dir, { recursive: true, force: true });
    process.exit(ok ? 0 : 1);
  }
}

/**
 * Inbound RTP of a page's subscribe connection, labelled with the sender and source from the
 * last subscribe_offer's `tracks` (mid -> participant, source).
 */
export function sample(p) {
  return p.page.evaluate(async () => {
    const h = window.hoinghi;
    const pc = h?.subscribePc;
    if (!pc) return [];
    const byMid = new Map(h.tracks.map((t) => [t.mid, t]));
    const midOfTrack = new Map(pc.getTransceivers().map((tr) => [tr.receiver.track.id, tr.mid]));
    const rows = [];
    (await pc.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const mid = s.mid ?? midOfTrack.get(s.trackIdentifier);
      const info = byMid.get(mid);
      rows.push({
        key: `${s.kind}/${s.ssrc}`,
        kind: s.kind,
        mid,
        participant: info?.participant ?? null,
        source: info?.source ?? null,
        framesDecoded: s.framesDecoded ?? 0,
        packetsReceived: s.packetsReceived ?? 0,
        frameWidth: s.frameWidth ?? 0,
        frameHeight: s.frameHeight ?? 0,
      });
    });
    return rows;
  });
}

/**
 * The video encodings a page's publish connection sends (one outbound-rtp per simulcast layer),
 * in the order of the offer's a=simulcast line when the page exposes it, else by frame height:
 * [{rid, source, frameWidth, frameHeight, framesEncoded, bytesSent, fps, limitation}].
 */
export function sendLayers(p) {
  return p.page.evaluate(async () => {
    const pc = window.hoinghi?.publishPc;
    if (!pc) return [];
    const sourceOfMid = new Map();
    const share = window.hoinghi.session?.shareTransceiver?.mid;
    for (const tr of pc.getTransceivers()) {
      if (tr.receiver.track.kind === 'video') sourceOfMid.set(tr.mid, tr.mid === share ? 'screen' : 'camera');
    }
    const rows = [];
    (await pc.getStats()).forEach((s) => {
      if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
      rows.push({
        rid: s.rid ?? null,
        source: sourceOfMid.get(s.mid) ?? null,
        frameWidth: s.frameWidth ?? 0,
        frameHeight: s.frameHeight ?? 0,
        framesEncoded: s.framesEncoded ?? 0,
        bytesSent: s.bytesSent ?? 0,
        fps: s.framesPerSecond ?? 0,
        limitation: s.qualityLimitationReason ?? null,
      });
    });
    return rows.sort((x, y) => x.frameHeight - y.frameHeight);
  });
}

/** Growth of one sender's media between two samples: {frames, packets} deltas per kind/source. */
export function delta(before, after, participant, kind, source) {
  let frames = 0;
  let packets = 0;
  for (const row of after) {
    if (row.participant !== participant || row.kind !== kind) continue;
    if (source && row.source !== source) continue;
    const old = before.find((b) => b.key === row.key);
    if (!old) continue;
    frames += row.framesDecoded - old.framesDecoded;
    packets += row.packetsReceived - old.packetsReceived;
  }
  return { frames, packets };
}

/** Polls `fn` (async, returns {ok, detail}) until ok or timeout; returns the last result. */
/** A join link that joins at once (the kiosk mode of the join page). */
/**
 * Logs in to the admin API as `admin` ({username, password}); the bootstrap account's first
 * login must change its printed password (docs/admin.md): then it is changed and `admin.password`
 * updated in place, so every later login (API or page) uses the new one.
 * Resolves with {ok, status, body, cookie, csrf}.
 */
export async function adminLogin(origin, admin) {
  const login = async () => {
    const res = await fetch(`${origin}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: admin.username, password: admin.password }),
    });
    const body = await res.json().catch(() => null);
    const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    return { ok: res.ok, status: res.status, body, cookie, csrf: body?.csrf_token ?? '' };
  };
  const first = await login();
  if (!first.ok || !first.body?.must_change_password) return first;
  const next = `${admin.password}.doi-mat-khau`;
  const res = await fetch(`${origin}/api/v1/auth/password`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: first.cookie, 'x-csrf-token': first.csrf },
    body: JSON.stringify({ current_password: admin.password, new_password: next }),
  });
  if (!res.ok) return { ok: false, status: res.status, body: await res.text(), cookie: '', csrf: '' };
  admin.password = next;
  return login();
}

/**
 * Calls the admin API at `origin` with a session of adminLogin() (cookie and CSRF token).
 * Resolves with the parsed JSON answer (null when empty); throws with the status and the
 * answer's text when it is not a success.
 */
export async function adminApi(origin, session, method, apiPath, body) {
  const res = await fetch(`${origin}/api/v1${apiPath}`, {
    method,
    headers: { 'content-type': 'application/json', cookie: session.cookie, 'x-csrf-token': session.csrf },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${apiPath} at ${origin}: ${res.status} ${text}`);
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return text;
  }
}

export function kiosk(link) {
  const url = new URL(link);
  url.searchParams.set('autojoin', '1');
  return url.href;
}

/** Waits until frames of `from`'s video decoded by `at` grow in two polls in a row (1 s apart). */
export async function decodesGrowing(at, from, timeoutMs) {
  let before = await sample(at);
  let increases = 0;
  return until(async () => {
    const after = await sample(at);
    const d = delta(before, after, from, 'video');
    before = after;
    increases = d.frames > 0 ? increases + 1 : 0;
    return { ok: increases >= 2, detail: `+${d.frames} frames, +${d.packets} packets in the last poll` };
  }, timeoutMs, 1000);
}

export async function until(fn, timeoutMs, everyMs = 500) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last.ok || Date.now() > end) return last;
    await sleep(everyMs);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `hoinghi` with `args`. Its output goes into `output` (kept to the last few hundred
 * lines) with the bootstrap admin password and join tokens redacted, since test logs end up in
 * CI logs. Returns `{proc, ready}`: `ready` resolves at the `ready:` line with `{base, admin}`
 * (`admin` = `{username, password}` on a first start) plus every `name: value` line printed
 * before it (`media-udp`, `ice-tcp`, `metrics`, ...), and rejects if the server exits first or
 * says nothing in `timeoutMs`. `proc` is there for cleanup either way.
 */
export function spawnServer(args, output, timeoutMs) {
  const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { RUST_LOG: 'info', ...process.env } });
  // HOINGHI_TEST_SERVER_LOG=FILE keeps the whole server log (redacted as below) for tracing a
  // run by hand, e.g. with HOINGHI_LOG=info,sfu::worker::allocate=debug.
  const logFile = process.env.HOINGHI_TEST_SERVER_LOG;
  const keep = (lines) => {
    output.push(...lines);
    if (output.length > 600) output.splice(0, output.length - 300);
    if (logFile) fs.appendFileSync(logFile, lines.map((l) => `${l}\n`).join(''));
  };
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "ready: " line within ${timeoutMs} ms`)), timeoutMs);
    let admin = null;
    const info = {};
    let pending = '';
    proc.stdout.on('data', (chunk) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) {
        const bootstrap = /account "([^"]+)" created with password (\S+)/.exec(line);
        if (bootstrap) admin = { username: bootstrap[1], password: bootstrap[2] };
        keep([`(stdout) ${bootstrap ? 'admin-bootstrap: …' : line.replace(/t=[^&\s]+/g, 't=…')}`]);
        if (line.startsWith('ready: ')) {
          clearTimeout(timer);
          resolve({ ...info, base: line.slice(7).trim(), admin });
        }
        const named = /^([a-z0-9-]+): (\S+)$/.exec(line);
        if (named) info[named[1]] = named[2];
      }
    });
    proc.stderr.on('data', (chunk) => keep(String(chunk).split('\n').filter(Boolean)));
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      keep([`(server exited: code ${code}, signal ${signal})`]);
      reject(new Error(`server exited early (code ${code}, signal ${signal})`));
    });
  });
  return { proc, ready };
}

export function run(file, args) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

export function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Whether a TCP connection to 127.0.0.1:`port` is accepted. */
export function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

export function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', reject);
    sock.bind(0, '0.0.0.0', () => {
      const { port } = sock.address();
      sock.close(() => resolve(port));
    });
  });
}

async function stopProcess(proc) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
