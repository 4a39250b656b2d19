#!/usr/bin/env node
// The screens halls and IT staff use (issue 10, items 7–13), in real Chromium at 1366x768
// against the real server, with Bắc Kạn's 122 points imported and 121 of them invited:
//   13. one dictionary and one glossary (docs/glossary.md) for the pages and the admin panel;
//    7. the chair's grid with 100 points connected: names whole, connected first and absent
//       apart, search, "only connected", full screen, mute buttons showing the state;
//    8. microphones and floor: the chair's own microphone and camera, "Bật micrô tất cả" asks
//       first, a real Chromium point gets a chime and a banner with the floor, mutes itself and
//       hands the floor back;
//   11. roll call over every invited point, answers marked on tiles, non-answering kept after;
//    9. the pre-join: a bad link refused before the devices are opened; meeting, point and
//       role shown; a PC without a camera gets steps to fix it and a retry; the microphone and
//       camera switches decide what is on when joining; a hall without a camera (or without
//       any device) reads "Không có camera" / "Không có micrô" on the chair's tile;
//   10. an observer on a phone (360x800): the program fills the width, no sideways scroll,
//       buttons within reach of a thumb;
//   12. IT staff: the printed link list (whole links, every QR), copy all links, links CSV,
//       points by kind then code, the dashboard refreshing by itself with who is missing, one
//       date format, error banners cleared on navigation; and (13) server messages in the
//       chosen language and the audit log in sentences.
// The crowd of points joins by WebSocket only (no media) from one page: the grid needs their
// presence, not their pictures.
//
//   cargo build && (cd tests/browser && npm ci && node screens.mjs)
// Env: HOINGHI_BIN, CHROMIUM, VERBOSE=1, SCREENSHOTS=1 (writes docs/images/*.png).

import fs from 'node:fs';
import path from 'node:path';
import { Harness, ROOT, kiosk, until } from './lib.mjs';
import { AdminClient, crowdSend, joinCrowd, seedBacKan } from './seed.mjs';

const WATCHDOG_MS = 170_000;
const UI_TIMEOUT_MS = 15_000;
const CONNECTED = 100; // of the 120 invited points besides the chair

const h = new Harness('screens');
h.runMain(main, WATCHDOG_MS);

async function main() {
  await glossaryIsUsed();
  // A hundred simulated halls join from this one page, i.e. from 127.0.0.1, as a load test does.
  const { origin } = await h.start({ serverArgs: ['--trust-loopback'] });
  await firstLogin(origin);
  const admin = new AdminClient(origin, h.admin);
  await admin.login();
  h.step('importing Bắc Kạn and scheduling a meeting with every point invited');
  const seed = await seedBacKan(admin);
  h.check('a meeting with the chair and 120 invited points', seed.chair && seed.points.length >= 120, `${seed.points.length} points`);

  const chair = await h.openPage('chair', kiosk(seed.chair.link));
  if (!(await h.waitJoined(chair))) return false;
  const crowd = await h.openPage('crowd', `${origin}/`);
  const joined = await joinCrowd(crowd.page, seed.points.slice(0, CONNECTED).map((s) => s.link));
  h.check(`${CONNECTED} points join by WebSocket`, joined === CONNECTED, `${joined} joined`);

  await chairGrid(chair, seed, crowd);
  const hall = await h.openPage('hall', kiosk(seed.points[CONNECTED].link));
  if (!(await h.waitJoined(hall))) return false;
  await micsAndFloor(chair, hall);
  await rollCall(chair, hall, seed, crowd);
  await screenshots(chair, hall, crowd);
  await noDevicesOnTheChairsTiles(chair, seed);
  await observerOnPhone(seed);
  await prejoin(origin, seed);
  await adminScreens(origin, seed, crowd);
  const errors = h.pageLogs.filter((l) => l.includes('pageerror'));
  h.check('no uncaught error in any page', errors.length === 0, errors.slice(0, 3).join(' | ') || 'none');
  return true;
}

// --- 13. wording ------------------------------------------------------------------------------

/** Both languages have every key, no key is defined twice, and no Vietnamese text uses a word the glossary rules out. */
async function glossaryIsUsed() {
  const load = async (file) => import(path.join(ROOT, 'web-client/js', file));
  const { vi } = await load('strings-vi.js');
  const { en } = await load('strings-en.js');
  const { adminVi } = await load('strings-admin-vi.js');
  const { adminEn } = await load('strings-admin-en.js');
  const twice = Object.keys(adminVi).filter((k) => k in vi);
  h.check('the admin panel and the meeting pages share one dictionary without a key defined twice', twice.length === 0, twice.join(', '));
  const viAll = { ...vi, ...adminVi };
  const enAll = { ...en, ...adminEn };
  const onlyVi = Object.keys(viAll).filter((k) => !(k in enAll));
  const onlyEn = Object.keys(enAll).filter((k) => !(k in viAll));
  h.check('every text exists in Vietnamese and English', !onlyVi.length && !onlyEn.length, `only vi: ${onlyVi.join(', ')}; only en: ${onlyEn.join(', ')}`);

  const avoid = glossaryAvoid();
  const offences = [];
  for (const [key, text] of Object.entries(viAll)) {
    for (const rule of avoid) if (rule.test(text)) offences.push(`${key}: "${text}" (${rule})`);
  }
  h.check(`no Vietnamese text uses a word docs/glossary.md rules out (${avoid.length} rules)`, avoid.length > 5 && !offences.length, offences.join('; ').slice(0, 600));
}

/** The "Không dùng" column of docs/glossary.md as regular expressions. */
function glossaryAvoid() {
  const text = fs.readFileSync(path.join(ROOT, 'docs/glossary.md'), 'utf8');
  const rules = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('|') || line.startsWith('|---') || line.startsWith('| Concept')) continue;
    const cells = line.split('|').map((c) => c.trim());
    const avoid = cells[4]?.replace(/^`|`$/g, '');
    if (!avoid) continue;
    const re = /^\/(.*)\/$/.exec(avoid);
    rules.push(re ? new RegExp(re[1], 'iu') : new RegExp(avoid.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'iu'));
  }
  return rules;
}

// --- 7. the chair's grid ----------------------------------------------------------------------

async function chairGrid(chair, seed, crowd) {
  const page = chair.page;
  const total = seed.points.length;
  const heading = await until(async () => {
    const text = await page.locator('#points-heading').textContent();
    return { ok: text.includes(`${CONNECTED}/${total}`), detail: text };
  }, UI_TIMEOUT_MS);
  h.check('the grid heading counts connected of invited points', heading.ok, heading.detail);

  const lists = await page.evaluate(() => {
    const present = [...document.querySelectorAll('#grid-present .ptile')];
    const absent = [...document.querySelectorAll('#grid-absent .ptile')];
    const order = document.querySelector('#grid-present').compareDocumentPosition(document.querySelector('#grid-absent'));
    return {
      present: present.length,
      presentAbsent: present.filter((li) => li.classList.contains('absent')).length,
      absent: absent.length,
      absentConnected: absent.filter((li) => !li.classList.contains('absent')).length,
      absentAfter: Boolean(order & Node.DOCUMENT_POSITION_FOLLOWING),
    };
  });
  h.check('connected points first, the others listed apart below them',
    lists.present === CONNECTED && lists.presentAbsent === 0 && lists.absent === total - CONNECTED && lists.absentConnected === 0 && lists.absentAfter,
    JSON.stringify(lists));

  const names = await page.evaluate(() => {
    const cut = [];
    let shown = 0;
    for (const li of document.querySelectorAll('.grid .ptile')) {
      const name = li.querySelector('.pt-name');
      const r = li.getBoundingClientRect();
      if (r.bottom < 0 || r.top > innerHeight || !r.height) continue;
      shown++;
      if (name.scrollHeight > name.clientHeight + 1 || name.scrollWidth > name.clientWidth + 1 || li.title !== name.textContent) cut.push(name.textContent);
    }
    return { shown, cut };
  });
  h.check('every name on screen is whole (two lines) and has a tooltip', names.shown >= 15 && names.cut.length === 0, `${names.shown} tiles on screen, cut: ${names.cut.slice(0, 5).join(', ')}`);

  // Search without Vietnamese marks finds the point; clearing shows everything again.
  const target = seed.points[3];
  const folded = target.name.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/đ/gi, 'd').toLowerCase();
  await page.fill('#grid-search', folded.split(' ').slice(-2).join(' '));
  const found = await page.evaluate((code) => {
    const shown = [...document.querySelectorAll('.grid .ptile')].filter((li) => !li.hidden);
    return { n: shown.length, has: shown.some((li) => li.dataset.point === code) };
  }, target.seat);
  h.check('search (without marks) narrows the grid to the matching point', found.has && found.n >= 1 && found.n <= 3, `${found.n} shown for "${folded}"`);
  await page.fill('#grid-search', '');
  await page.check('#grid-only-connected');
  const only = await page.evaluate(() => ({ absentHidden: document.querySelector('.absent-points').hidden, shown: [...document.querySelectorAll('#grid-present .ptile')].filter((li) => !li.hidden).length }));
  h.check('"only connected" hides the points not joined', only.absentHidden && only.shown === CONNECTED, JSON.stringify(only));
  await page.uncheck('#grid-only-connected');

  await page.click('#grid-fullscreen');
  const full = await until(async () => {
    const r = await page.evaluate(() => ({ el: document.fullscreenElement?.className ?? null, label: document.querySelector('#grid-fullscreen').textContent }));
    // The label follows on `fullscreenchange`, which fires after `fullscreenElement` is set:
    // wait for both (CI once read the element set and the label not yet changed).
    return { ok: r.el === 'chair-points' && r.label.includes('Thoát'), detail: JSON.stringify(r) };
  }, UI_TIMEOUT_MS, 200);
  h.check('the full-screen button puts the grid full screen and says how to leave', full.ok, full.detail);
  await page.click('#grid-fullscreen');
  await page.waitForFunction(() => !document.fullscreenElement, null, { timeout: UI_TIMEOUT_MS }).catch(() => {});

  // The mute button's icon shows the microphone as it is; its label says what a press does.
  const code = seed.points[0].seat;
  const button = page.locator(`.ptile[data-point="${code}"] button[data-action="mute"]`);
  const closed = await button.evaluate((b) => ({ label: b.getAttribute('aria-label'), icon: b.querySelector('svg').getAttribute('class') }));
  await button.click();
  const opened = await until(async () => {
    const r = await button.evaluate((b) => ({ label: b.getAttribute('aria-label'), icon: b.querySelector('svg').getAttribute('class') }));
    return { ok: r.icon.split(' ').includes('on'), detail: JSON.stringify(r) };
  }, UI_TIMEOUT_MS, 200);
  h.check('a closed microphone: the tile button shows it closed and offers "Bật micrô"',
    closed.icon.split(' ').includes('off') && closed.label.startsWith('Bật micrô'), JSON.stringify(closed));
  h.check('opened: the button shows it open and offers "Tắt micrô"', opened.ok && opened.detail.includes('Tắt micrô'), opened.detail);
  await button.click();
}

// --- 8. microphones and floor -----------------------------------------------------------------

/** The enabled flag of the track a page publishes of `kind`. */
const sending = (p, kind) => p.page.evaluate((k) => window.hoinghi.publishPc?.getSenders().find((s) => s.track?.kind === k)?.track.enabled ?? null, kind);

async function micsAndFloor(chair, hall) {
  const page = chair.page;
  await page.click('#own-mic');
  const micOff = { sending: await sending(chair, 'audio'), label: await page.locator('#own-mic').textContent() };
  await page.click('#own-mic');
  h.check('the chair mutes its own microphone and unmutes it', micOff.sending === false && micOff.label === 'Bật micrô của tôi' && (await sending(chair, 'audio')) === true, JSON.stringify(micOff));
  await page.click('#own-cam');
  const camOff = { sending: await sending(chair, 'video'), status: await page.locator('.chair-left .tile .tile-status').first().textContent() };
  await page.click('#own-cam');
  h.check('the chair turns its own camera off (its tile says so) and on', camOff.sending === false && camOff.status === 'Camera đang tắt' && (await sending(chair, 'video')) === true, JSON.stringify(camOff));

  // "Bật micrô tất cả": a confirmation first; Cancel opens nothing.
  await page.click('#unmute-all');
  const asked = await page.locator('#unmute-all-dialog[open]').count();
  await page.click('#unmute-all-cancel');
  await page.waitForTimeout(300); // nothing is expected to arrive; a short look is enough
  const afterCancel = await page.evaluate(() => window.hoinghi.roomState?.unmuted?.length ?? 0);
  h.check('"Bật micrô tất cả" asks for confirmation, and Cancel opens no microphone', asked === 1 && afterCancel === 0, `dialog ${asked}, unmuted ${afterCancel}`);
  await page.click('#unmute-all');
  await page.click('#unmute-all-confirm');
  const all = await until(async () => {
    const n = await page.evaluate(() => window.hoinghi.roomState?.unmuted?.length ?? 0);
    return { ok: n > CONNECTED, detail: `${n} microphones open` };
  }, UI_TIMEOUT_MS, 200);
  h.check('confirmed, every connected microphone opens', all.ok, all.detail);
  await page.click('#mute-all');
  await page.waitForFunction(() => (window.hoinghi.roomState?.unmuted?.length ?? 0) === 0, null, { timeout: UI_TIMEOUT_MS }).catch(() => {});

  // The floor: chime and banner at the hall, self-mute, handing back.
  const chimesBefore = await hall.page.evaluate(() => window.hoinghi.chimes);
  await page.locator(`.ptile[data-point="${hall.point}"] button[data-action="grant"]`).click();
  const told = await until(async () => {
    const r = await hall.page.evaluate(() => ({ banner: document.querySelector('#attention')?.hidden === false ? document.querySelector('#attention').textContent : null, chimes: window.hoinghi.chimes }));
    return { ok: r.banner && r.chimes > 0, detail: JSON.stringify(r) };
  }, UI_TIMEOUT_MS, 200);
  h.check('a point given the floor hears a chime and sees a banner', told.ok && chimesBefore === 0 && told.detail.includes('mời bạn phát biểu'), told.detail);
  await hall.page.click('#self-mute');
  const muted = { sending: await sending(hall, 'audio'), state: await hall.page.locator('#mic-state').textContent() };
  await hall.page.click('#self-mute');
  h.check('the floor holder mutes itself and unmutes', muted.sending === false && muted.state === 'Bạn đã tự tắt micrô' && (await sending(hall, 'audio')) === true, JSON.stringify(muted));
  await hall.page.click('#hand-back');
  const back = await until(async () => {
    const floor = await page.evaluate(() => window.hoinghi.roomState?.floor ?? null);
    const hidden = await hall.page.locator('#hand-back').isHidden();
    return { ok: floor === null && hidden, detail: `chair's floor: ${JSON.stringify(floor)}, button hidden: ${hidden}` };
  }, UI_TIMEOUT_MS, 200);
  h.check('the floor holder hands the floor back', back.ok, back.detail);
}

// --- 11. roll call ----------------------------------------------------------------------------

async function rollCall(chair, hall, seed, crowd) {
  const page = chair.page;
  const total = seed.points.length;
  const chimesBefore = await hall.page.evaluate(() => window.hoinghi.chimes);
  await page.click('#roll-toggle');
  const running = await until(async () => {
    const text = await page.locator('#roll-summary').textContent();
    return { ok: text.includes(`0/${total}`), detail: text };
  }, UI_TIMEOUT_MS, 200);
  h.check('the roll call counts every invited point, connected or not', running.ok, running.detail);
  const called = await until(async () => {
    const r = await hall.page.evaluate(() => ({ banner: document.querySelector('#attention')?.hidden === false ? document.querySelector('#attention').textContent : null, chimes: window.hoinghi.chimes }));
    return { ok: r.banner?.includes('điểm danh') && r.chimes > chimesBefore, detail: JSON.stringify(r) };
  }, UI_TIMEOUT_MS, 200);
  h.check('a point hears a chime and sees a banner when the roll call starts', called.ok, called.detail);

  await hall.page.click('#present-button');
  for (const i of [0, 1, 2]) await crowdSend(crowd.page, i, { type: 'answer_roll_call' });
  const answeredCodes = [hall.point, ...seed.points.slice(0, 3).map((s) => s.seat)];
  const marked = await until(async () => {
    const codes = await page.evaluate(() => [...document.querySelectorAll('.ptile.answered')].map((li) => li.dataset.point));
    return { ok: answeredCodes.every((c) => codes.includes(c)) && codes.length === answeredCodes.length, detail: codes.join(', ') };
  }, UI_TIMEOUT_MS, 200);
  h.check('answers are marked on the tiles', marked.ok, marked.detail);

  await page.click('#roll-toggle');
  const ended = await until(async () => {
    const r = await page.evaluate(() => ({
      summary: document.querySelector('#roll-summary').textContent,
      missingTitle: document.querySelector('#roll-missing-title').textContent,
      missing: document.querySelectorAll('#roll-missing li').length,
      marked: document.querySelectorAll('.ptile.answered').length,
    }));
    return { ok: r.summary.startsWith('Kết quả') && r.missing === total - 4, detail: JSON.stringify(r) };
  }, UI_TIMEOUT_MS, 200);
  h.check('after the roll call ends, the points that did not answer stay listed, and the marks stay', ended.ok && ended.detail.includes('"marked":4'), ended.detail);
}

// --- docs/images ----------------------------------------------------------------------------

const SHOTS = process.env.SCREENSHOTS === '1';

async function shot(page, name) {
  if (!SHOTS) return;
  const dir = path.join(ROOT, 'docs/images');
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
  h.step(`screenshot docs/images/${name}.png`);
}

/** With SCREENSHOTS=1: the chair's page with 120 points, a raised hand and the hall speaking. */
async function screenshots(chair, hall, crowd) {
  if (!SHOTS) return;
  await crowdSend(crowd.page, 7, { type: 'raise_hand', text: 'Xin báo cáo tiến độ giải ngân vốn đầu tư công' });
  await chair.page.locator(`.ptile[data-point="${hall.point}"] button[data-action="grant"]`).click();
  await chair.page.waitForFunction(() => window.hoinghi.roomState?.floor && window.hoinghi.roomState.hands?.length, null, { timeout: UI_TIMEOUT_MS }).catch(() => {});
  await hall.page.waitForFunction(() => document.querySelector('#attention')?.hidden === false, null, { timeout: UI_TIMEOUT_MS }).catch(() => {});
  await chair.page.evaluate(() => (document.querySelector('.chair-points').scrollTop = 0));
  await chair.page.waitForTimeout(1500); // the pictures settle (a screenshot, not a check)
  await shot(chair.page, 'chair');
  await shot(hall.page, 'point');
  await chair.page.click('#floor-revoke');
}

// --- 9. pre-join -------------------------------------------------------------------------------

/**
 * A hall PC without a camera: the pre-join says what the link joins, as whom, how to fix the
 * camera and retries; the switches decide what is on at the start. A bad link is refused before
 * the camera is touched.
 */
async function prejoin(origin, seed) {
  // getUserMedia counted, and refusing video while window.noCamera is set (a PC without one).
  const initScript = () => {
    window.gumCalls = 0;
    window.noCamera = true;
    const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = (c) => {
      window.gumCalls++;
      if (c?.video && window.noCamera) return Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));
      return real(c);
    };
  };
  const bad = await h.openPage('bad-link', `${origin}/join?t=not-a-token`, { initScript });
  const refused = await until(async () => {
    const r = await bad.page.evaluate(() => ({ title: document.querySelector('main h1')?.textContent ?? '', gum: window.gumCalls }));
    return { ok: r.title.length > 0, detail: JSON.stringify(r) };
  }, UI_TIMEOUT_MS, 200);
  h.check('a bad link is refused before the camera and microphone are opened', refused.ok && refused.detail.includes('không hợp lệ') && refused.detail.includes('"gum":0'), refused.detail);
  await bad.page.context().close();

  const seat = seed.points[CONNECTED + 1];
  const p = await h.openPage('prejoin', seat.link, { initScript });
  const page = p.page;
  await page.waitForSelector('#prejoin-help:not([hidden])', { timeout: UI_TIMEOUT_MS }).catch(() => {});
  const before = await page.evaluate(() => ({
    meeting: document.querySelector('#prejoin-meeting')?.textContent,
    point: document.querySelector('#prejoin-point')?.textContent,
    role: document.querySelector('#prejoin-role')?.textContent,
    top: document.querySelector('#meeting-title').textContent,
    help: document.querySelector('#prejoin-help')?.hidden === false ? document.querySelector('#prejoin-help-title').textContent : null,
    steps: document.querySelectorAll('#prejoin-help-steps li').length,
    camOff: document.querySelector('#prejoin-cam-on').disabled,
  }));
  h.check('the pre-join shows the meeting title, the point name and its role', before.meeting === seed.meeting.title && before.point === seat.name && before.role === 'Điểm cầu' && before.top === seed.meeting.title,
    JSON.stringify({ meeting: before.meeting, point: before.point, role: before.role, top: before.top }));
  h.check('a PC without a camera gets how-to-fix steps and a retry', before.help?.startsWith('Không dùng được camera') && before.steps >= 2 && before.camOff, JSON.stringify(before));
  await page.evaluate(() => (window.noCamera = false)); // the camera is plugged in
  await page.click('#prejoin-retry');
  const fixed = await until(async () => {
    const r = await page.evaluate(() => ({ help: document.querySelector('#prejoin-help').hidden, cam: !document.querySelector('#prejoin-cam-on').disabled, video: document.querySelector('video.preview')?.srcObject?.getVideoTracks().length ?? 0 }));
    return { ok: r.help && r.cam && r.video === 1, detail: JSON.stringify(r) };
  }, UI_TIMEOUT_MS, 200);
  h.check('after "Thử lại" the camera works and the help is gone', fixed.ok, fixed.detail);

  await page.uncheck('#prejoin-mic-on');
  await page.click('#join-button');
  await h.waitJoined(p);
  const sent = await until(async () => {
    const r = await page.evaluate(() => Object.fromEntries(window.hoinghi.publishPc?.getSenders().filter((s) => s.track).map((s) => [s.track.kind, s.track.enabled]) ?? []));
    return { ok: r.audio === false && r.video === true, detail: JSON.stringify(r) };
  }, UI_TIMEOUT_MS, 200);
  h.check('the switches decide what is on: joined with the microphone off, the camera on', sent.ok, sent.detail);
  await page.context().close();
}

/**
 * Two kiosk halls whose PCs lack devices (getUserMedia refuses them as Chromium does with none
 * plugged in): one without a camera, one with nothing at all (it never sends a publish offer).
 * The chair's tiles say so, in both languages, instead of a "connected" that never gets a picture.
 */
async function noDevicesOnTheChairsTiles(chair, seed) {
  const lacking = (kinds) => `(() => {
    const lack = ${JSON.stringify(kinds)};
    const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = (c) => lack.some((k) => c?.[k])
      ? Promise.reject(new DOMException('Requested device not found', 'NotFoundError'))
      : real(c);
  })();`;
  const noCam = seed.points[CONNECTED + 2];
  const nothing = seed.points[CONNECTED + 3];
  const pages = [
    await h.openPage('hall-no-camera', kiosk(noCam.link), { initScript: lacking(['video']) }),
    await h.openPage('hall-no-devices', kiosk(nothing.link), { initScript: lacking(['video', 'audio']) }),
  ];
  for (const p of pages) if (!(await h.waitJoined(p))) return;
  const tiles = () => chair.page.evaluate((codes) => codes.map((code) => {
    const li = document.querySelector(`.ptile[data-point="${CSS.escape(code)}"]`);
    const status = li?.querySelector('.pt-status');
    const noMic = li?.querySelector('.pt-no-mic');
    return { code, status: status && !status.hidden ? status.textContent : null, noMic: noMic && !noMic.hidden ? noMic.textContent : null };
  }), [noCam.seat, nothing.seat]);
  const expect = async (camera, mic) => until(async () => {
    const [a, b] = await tiles();
    return { ok: a.status === camera && a.noMic === null && b.status === camera && b.noMic === mic, detail: JSON.stringify([a, b]) };
  }, UI_TIMEOUT_MS, 200);
  const vi = await expect('Không có camera', 'Không có micrô');
  h.check('the chair\'s tile of a hall without a camera says "Không có camera", and "Không có micrô" for one without any device', vi.ok, vi.detail);
  await chair.page.click('#lang-button');
  const en = await expect('No camera', 'No microphone');
  await chair.page.click('#lang-button');
  h.check('… and "No camera" / "No microphone" in English', en.ok, en.detail);
  for (const p of pages) await p.page.context().close();
}

// --- 10. observers on a phone ------------------------------------------------------------------

async function observerOnPhone(seed) {
  const leader = await h.openPage('leader', kiosk(seed.observer.link));
  await leader.page.setViewportSize({ width: 360, height: 800 });
  if (!(await h.waitJoined(leader))) return;
  await leader.page.waitForSelector('#program.has-video', { timeout: 30_000 }).catch(() => {});
  const r = await leader.page.evaluate(() => {
    const box = (sel) => document.querySelector(sel)?.getBoundingClientRect().toJSON() ?? null;
    return {
      scrollWidth: document.documentElement.scrollWidth,
      picture: document.querySelector('#program').classList.contains('has-video'),
      program: box('#program'),
      leave: box('#leave-button'),
      lang: box('#lang-button'),
    };
  });
  h.check('on a phone the program fills the width without sideways scrolling', r.picture && r.scrollWidth <= 360 && r.program.width >= 350, JSON.stringify({ scrollWidth: r.scrollWidth, program: r.program?.width, picture: r.picture }));
  const thumb = (b) => b && b.top >= 800 * 0.75 && b.bottom <= 800 && b.height >= 44;
  h.check('the buttons are at the bottom, within reach of a thumb, 44 px or more', thumb(r.leave) && thumb(r.lang), JSON.stringify({ leave: r.leave, lang: r.lang }));
  await leader.page.context().close();
}

// --- 12. IT staff ---------------------------------------------------------------------------

/** The bootstrap password (printed on the terminal) only lets IT staff change it. */
async function firstLogin(origin) {
  const { page } = await h.openPage('first-login', `${origin}/admin`);
  await page.waitForFunction(() => window.hoinghiAdmin?.ready, null, { timeout: UI_TIMEOUT_MS });
  await page.fill('input[name=username]', h.admin.username);
  await page.fill('input[name=password]', h.admin.password);
  await page.keyboard.press('Enter');
  const form = await page.waitForSelector('#password-change-form', { timeout: UI_TIMEOUT_MS }).then(() => true, () => false);
  const refused = await page.evaluate(async () => (await (await fetch('/api/v1/points')).json())?.error?.code);
  await page.goto(`${origin}/admin#/points`);
  await page.waitForFunction(() => window.hoinghiAdmin?.ready, null, { timeout: UI_TIMEOUT_MS });
  const still = { form: await page.locator('#password-change-form').count(), nav: await page.locator('#nav').isVisible(), points: await page.locator('#point-list').count() };
  h.check('the first login with the bootstrap password shows only the password change; the API refuses the rest',
    form && refused === 'password_change_required' && still.form === 1 && !still.nav && still.points === 0, JSON.stringify({ form, refused, ...still }));
  const next = `${h.admin.password} mới`;
  await page.fill('#password-change-form input[name=current_password]', h.admin.password);
  await page.fill('#password-change-form input[name=new_password]', next);
  await page.click('#password-change-form button[type=submit]');
  const back = await page.waitForSelector('#login-form', { timeout: UI_TIMEOUT_MS }).then(() => page.locator('#flash').textContent(), () => null);
  h.admin.password = next;
  await page.fill('input[name=username]', h.admin.username);
  await page.fill('input[name=password]', next);
  await page.keyboard.press('Enter');
  // Back on the page it was asked for (#/points), now allowed.
  const inside = await page.waitForSelector('#point-list', { timeout: UI_TIMEOUT_MS }).then(() => true, () => false);
  const after = inside ? '' : await page.evaluate(() => `${location.hash} ${document.querySelector('#flash').textContent} ${document.querySelector('#view').innerText.slice(0, 200)}`);
  h.check('after the change, the new password opens the panel', back?.includes('Đã đổi mật khẩu') && inside, `${back} / points page ${inside} ${after}`);
  await page.context().close();
}

const DATE = /^\d\d:\d\d \d\d\/\d\d\/\d{4}$/;

async function adminScreens(origin, seed, crowd) {
  const { page } = await h.openPage('admin', `${origin}/admin`);
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const ready = () => page.waitForFunction(() => window.hoinghiAdmin?.ready, null, { timeout: UI_TIMEOUT_MS });
  await ready();

  // A refusal in the chosen language only, not "Vietnamese / English" in one string.
  await page.click('#lang-button');
  await page.fill('input[name=username]', h.admin.username);
  await page.fill('input[name=password]', 'not-the-password');
  await page.keyboard.press('Enter');
  const refusal = await until(async () => {
    const text = await page.locator('#flash').textContent();
    return { ok: text.length > 0, detail: text };
  }, UI_TIMEOUT_MS, 200);
  h.check('a server refusal shows only the English half when English is chosen', refusal.ok && !refusal.detail.includes(' / ') && /[a-z]/.test(refusal.detail) && !/[ăâđêôơư]/i.test(refusal.detail), refusal.detail);
  await page.click('#lang-button');
  await page.fill('input[name=username]', h.admin.username);
  await page.fill('input[name=password]', h.admin.password);
  await page.keyboard.press('Enter');
  const inside = await page.waitForSelector('#dashboard', { timeout: UI_TIMEOUT_MS }).then(() => null, async () => page.locator('#flash').textContent());
  if (!h.check('IT staff log in', inside === null, inside ?? '')) return;

  // The dashboard: one date format, who is missing, and it refreshes by itself.
  const missingCell = page.locator(`.missing[data-meeting="${seed.meeting.id}"]`);
  const before = await missingCell.textContent();
  const times = await page.locator('#dashboard tbody td:nth-child(2)').first().textContent();
  h.check('dates read HH:mm dd/MM/yyyy', times.split(' – ').every((t) => DATE.test(t)), times);
  const expectMissing = seed.points.length + 1 - CONNECTED - 2; // + chair, - the hall page and the chair
  // The pre-join page that just left may still count for a moment (a dropped socket is given
  // time to resume): the dashboard's own refresh brings it to the list.
  const listed = await until(async () => {
    const text = await missingCell.textContent().catch(() => '');
    return { ok: text.startsWith(`${expectMissing}: `), detail: text.slice(0, 80) };
  }, 25_000, 500);
  h.check('the dashboard lists who is missing', listed.ok, `${listed.detail} (first: ${before.slice(0, 40)})`);
  await crowd.page.evaluate(() => window.crowd[5].close());
  const refreshed = await until(async () => {
    const text = await missingCell.textContent().catch(() => '');
    return { ok: text.startsWith(`${expectMissing + 1}: `), detail: text.slice(0, 80) };
  }, 25_000, 500);
  h.check('the dashboard refreshes by itself when a point drops', refreshed.ok, refreshed.detail);

  // Points sorted by kind, then code.
  await shot(page, 'admin-dashboard');
  await page.goto(`${origin}/admin#/points`);
  await ready();
  await shot(page, 'admin-points');
  const kinds = await page.locator('#point-list tbody td:nth-child(3)').allTextContents();
  const rank = ['Hội trường tỉnh', 'Sở, ngành', 'Huyện', 'Xã, phường'];
  const sorted = kinds.every((k, i) => i === 0 || rank.indexOf(kinds[i - 1]) <= rank.indexOf(k));
  h.check('points are listed by kind (province, departments, districts, communes)', sorted && kinds.length >= 120, `${kinds.length} rows, first ${kinds.slice(0, 3).join(', ')}`);

  // An error banner does not follow to the next page.
  await page.goto(`${origin}/admin#/meetings/m-none`);
  await page.waitForFunction(() => !document.querySelector('#flash').hidden, null, { timeout: UI_TIMEOUT_MS }).catch(() => {});
  const shown = await page.locator('#flash').isVisible();
  await page.click('a[href="#/points"]');
  await ready();
  h.check('an error banner is cleared on navigation', shown && !(await page.locator('#flash').isVisible()), `shown before: ${shown}`);

  await meetingLinks(page, origin, seed);
  await attendanceCsv(page, origin, seed);

  await page.goto(`${origin}/admin#/audit`);
  await ready();
  const actions = await page.locator('table.data tbody td:nth-child(4)').allTextContents();
  h.check('the audit log shows sentences, not codes', actions.includes('Lên lịch cuộc họp') && actions.includes('Mời điểm cầu phát biểu') && !actions.some((a) => /^[a-z_]+\.[a-z_.]+$/.test(a)),
    [...new Set(actions)].slice(0, 6).join(' | '));
}

/** Seats by kind then code; the attendance CSV in the panel's language, "Chưa vào" before the end. */
async function attendanceCsv(page, origin, seed) {
  const ready = () => page.waitForFunction(() => window.hoinghiAdmin?.ready, null, { timeout: UI_TIMEOUT_MS });
  await page.goto(`${origin}/admin#/meetings/${encodeURIComponent(seed.meeting.id)}`);
  await ready();
  const kindOf = new Map(fs.readFileSync(path.join(ROOT, 'tests/fixtures/points-bac-kan.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')).map((c) => [c[0], c[2]]));
  const KINDS = ['province_hall', 'department', 'district', 'commune', 'other'];
  const codes = (await page.locator('table.data').first().locator('tbody tr td:nth-child(1)').allTextContents()).filter(Boolean);
  const ranks = codes.slice(1).map((c) => KINDS.indexOf(kindOf.get(c)));
  const kindOrder = ranks.every((r, i) => i === 0 || ranks[i - 1] <= r) && new Set(ranks).size >= 3;
  h.check("the meeting's seats are listed by kind (province, departments, districts, communes), then code", kindOrder && codes[0] === seed.chair.seat,
    `${codes.length} seats: ${codes.slice(0, 4).join(', ')} … ${codes.slice(-2).join(', ')}`);

  const download = async () => {
    const [d] = await Promise.all([page.waitForEvent('download'), page.click('#attendance-csv')]);
    return fs.readFileSync(await d.path(), 'utf8').replace(/^\uFEFF/, '').split('\r\n');
  };
  const vi = await download();
  // Not joined: the invited points neither in the crowd, nor the hall, nor the two halls
  // without devices, nor the pre-join check.
  const absentVi = vi.filter((l) => l.includes(',Chưa vào,')).length;
  h.check('the attendance CSV is in Vietnamese, with "Chưa vào" (not "Vắng mặt") before the meeting ends',
    vi[0].startsWith('Mã,Tên,Vai trò,Trạng thái,') && absentVi === seed.points.length - CONNECTED - 4 && !vi.some((l) => l.includes('Vắng mặt')), `${vi[0]}; ${absentVi} Chưa vào`);
  await page.click('#lang-button');
  await ready();
  const en = await download();
  await page.click('#lang-button');
  await ready();
  h.check('with the English switch the attendance CSV is in English', en[0].startsWith('Code,Name,Role,Status,') && en.some((l) => l.includes(',Not joined yet,')), en[0]);
}

async function meetingLinks(page, origin, seed) {
  const ready = () => page.waitForFunction(() => window.hoinghiAdmin?.ready, null, { timeout: UI_TIMEOUT_MS });
  await page.goto(`${origin}/admin#/meetings/${encodeURIComponent(seed.meeting.id)}`);
  await ready();
  await shot(page, 'admin-meeting');
  const n = seed.seats.length;

  await page.click('#copy-all-links');
  const copied = await until(async () => {
    const text = await page.evaluate(() => navigator.clipboard.readText()).catch(() => '');
    return { ok: seed.seats.every((s) => text.includes(s.link)), detail: `${text.split('\n').length} lines` };
  }, UI_TIMEOUT_MS, 300);
  h.check('"copy all links" puts every link on the clipboard', copied.ok, copied.detail);

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#links-csv')]);
  const csv = fs.readFileSync(await download.path(), 'utf8');
  const lines = csv.replace(/^\uFEFF/, '').trim().split('\r\n');
  h.check('a CSV of the links, in Vietnamese, for sending by Zalo', csv.startsWith('\uFEFF') && lines[0] === 'Mã,Tên,Vai trò,Liên kết tham gia' && lines.length === n + 1 && seed.seats.every((s) => csv.includes(s.link)),
    `${lines.length} lines, header ${lines[0]}`);

  // Printing: every QR code loaded, every link whole on paper.
  await page.evaluate(() => {
    window.printed = 0;
    window.print = () => window.printed++;
  });
  await page.click('#print-links');
  await page.waitForFunction(() => window.printed > 0, null, { timeout: 30_000 }).catch(() => {});
  await page.emulateMedia({ media: 'print' });
  const paper = await page.evaluate(() => {
    const qrs = [...document.querySelectorAll('.qr img')];
    const links = [...document.querySelectorAll('.link-print')];
    return {
      printed: window.printed,
      qrs: qrs.length,
      qrLoaded: qrs.filter((img) => img.complete && img.naturalWidth > 0).length,
      links: links.length,
      cut: links.filter((l) => l.scrollWidth > l.clientWidth + 1 || getComputedStyle(l).display === 'none').length,
      inputs: [...document.querySelectorAll('.link-input')].filter((i) => getComputedStyle(i).display !== 'none').length,
    };
  });
  await page.emulateMedia({ media: 'screen' });
  h.check('the printed list shows every QR code and every whole link', paper.printed === 1 && paper.qrs === n && paper.qrLoaded === n && paper.links === n && paper.cut === 0 && paper.inputs === 0, JSON.stringify(paper));
}
