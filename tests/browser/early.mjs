#!/usr/bin/env node
// Early arrival, in real Chromium: a point opens its link before the meeting opens.
//   1. the page shows the meeting's title, the point's name, the opening time and a countdown
//      (not "Liên kết không hợp lệ");
//   2. a kiosk (autojoin) page waits on the same screen and joins by itself when joins open;
//   3. a replaced link is said at once ("Liên kết đã được thay"), before any device check, and
//      so is a relay seat's link (for another hoinghi server, not a browser);
//   4. the scheduled end: a meeting ending 40 s after it is made warns its chair (banner with
//      +15 / +30 minutes), and its points read "Cuộc họp đã hết giờ theo lịch" at the end.
// The meetings are scheduled through the admin API.
//
//   cargo build && (cd tests/browser && npm ci && node early.mjs)

import { Harness, adminLogin, kiosk, until } from './lib.mjs';

const WATCHDOG_MS = 200_000;
const ENDS_IN_S = 40;
const OPENS_IN_S = 20;
const h = new Harness('early');
h.runMain(main, WATCHDOG_MS);

async function api(origin, session, method, path, body) {
  const res = await fetch(`${origin}/api/v1${path}`, {
    method,
    headers: { 'content-type': 'application/json', cookie: session.cookie, 'x-csrf-token': session.csrf },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return json;
}

async function main() {
  const { origin } = await h.start();
  const session = await adminLogin(origin, h.admin);
  if (!h.check('admin login', session.ok, `status ${session.status}`)) return false;
  for (const p of [
    { code: 'CT', name: 'Hội trường UBND tỉnh', kind: 'province_hall' },
    { code: 'X01', name: 'UBND xã Cao Sơn', kind: 'commune' },
    { code: 'X02', name: 'UBND xã Vũ Muộn', kind: 'commune' },
  ]) {
    await api(origin, session, 'POST', '/points', p);
  }
  // Joins open (open_minutes 0) at the start, OPENS_IN_S seconds from now.
  const now = Date.now();
  const startsAt = new Date(now + OPENS_IN_S * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const endsAt = new Date(now + 3600 * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const d = await api(origin, session, 'POST', '/meetings', {
    title: 'Giao ban sáng thứ hai',
    starts_at: startsAt,
    ends_at: endsAt,
    open_minutes: 0,
    chair_point: 'CT',
    points: ['X01', 'X02'],
    relays: ['Tỉnh Cao Bằng'],
  });
  const link = (seat) => d.seats.find((s) => s.seat === seat).link;

  // 1 and 2: the same waiting screen, then the kiosk joins by itself.
  const point = await h.openPage('point X01 (kiosk)', kiosk(link('X01')));
  const waiting = await until(async () => {
    const s = await point.page.evaluate(() => ({
      state: window.hoinghi?.state,
      title: document.querySelector('#early-meeting')?.textContent ?? '',
      name: document.querySelector('#early-point')?.textContent ?? '',
      opens: document.querySelector('#early-opens')?.textContent ?? '',
      left: document.querySelector('#early-countdown')?.textContent ?? '',
    }));
    return { ok: s.state === 'waiting' && /^Còn \d\d:\d\d$/.test(s.left), detail: JSON.stringify(s), s };
  }, 15_000, 250);
  h.check(
    'a link opened before the meeting opens shows title, point name, opening time and a countdown',
    waiting.ok && waiting.s.title === 'Giao ban sáng thứ hai' && waiting.s.name.includes('UBND xã Cao Sơn') && /Có thể vào từ \d\d:\d\d \d\d\/\d\d\/\d{4}/.test(waiting.s.opens),
    waiting.detail,
  );
  const first = await point.page.evaluate(() => document.querySelector('#early-countdown')?.textContent);
  const counted = await until(async () => {
    const now = await point.page.evaluate(() => document.querySelector('#early-countdown')?.textContent);
    return { ok: now && now !== first, detail: `${first} -> ${now}` };
  }, 5_000, 250);
  h.check('the countdown counts down', counted.ok, counted.detail);
  const check = await point.page.evaluate(() => window.hoinghi.check);
  h.check('the page asked the server (scheduled, server clock)', check?.state === 'scheduled' && check.server_now > 0, JSON.stringify(check));
  h.check('no "invalid link" while waiting', !(await point.page.locator('text=Liên kết không hợp lệ').count()));
  const joinedAt = Date.now();
  const joined = await h.waitJoined(point, (OPENS_IN_S + 30) * 1000);
  h.check(
    'the kiosk joins by itself when the meeting opens',
    joined && Date.now() >= now + OPENS_IN_S * 1000 - 2000,
    `joined ${((Date.now() - now) / 1000).toFixed(1)} s after scheduling (opens at ${OPENS_IN_S} s), waited ${((Date.now() - joinedAt) / 1000).toFixed(1)} s`,
  );

  // 3. A replaced link: said at once, no device check.
  await api(origin, session, 'POST', `/meetings/${d.meeting.id}/seats/X02/reissue`);
  const old = await h.openPage('point X02 (old link)', link('X02'));
  const refused = await until(async () => {
    const s = await old.page.evaluate(() => ({ state: window.hoinghi?.state, error: window.hoinghi?.lastError, prejoin: Boolean(document.querySelector('#join-button')) }));
    return { ok: s.state === 'failed', detail: JSON.stringify(s), s };
  }, 15_000, 250);
  h.check('a replaced link is refused before the device check', refused.ok && refused.s.error?.code === 'revoked' && !refused.s.prejoin, refused.detail);

  // A relay seat's link (for another hoinghi server) opened in a browser: said at once, before
  // the countdown and any device check, and the page never joins in the province's seat.
  const relaySeat = d.seats.find((s) => s.role === 'relay');
  const relay = await h.openPage('relay link in a browser', relaySeat.link);
  const told = await until(async () => {
    const s = await relay.page.evaluate(() => ({
      state: window.hoinghi?.state,
      error: window.hoinghi?.lastError,
      prejoin: Boolean(document.querySelector('#join-button')),
      countdown: Boolean(document.querySelector('#early-countdown')),
      text: document.querySelector('#main')?.textContent ?? '',
    }));
    return { ok: s.state === 'failed', detail: JSON.stringify(s), s };
  }, 15_000, 250);
  h.check(
    'a relay link opened in a browser says it is for a server, and does not join',
    told.ok && told.s.error?.code === 'relay_link' && !told.s.prejoin && !told.s.countdown && told.s.text.includes('máy chủ chuyển tiếp')
      && (await relay.page.evaluate(() => window.hoinghi.session)) === null,
    told.detail,
  );

  // 4. A meeting that ends by the schedule.
  const t0 = Date.now();
  const short = await api(origin, session, 'POST', '/meetings', {
    title: 'Họp ngắn',
    starts_at: new Date(t0).toISOString().replace(/\.\d+Z$/, 'Z'),
    ends_at: new Date(t0 + ENDS_IN_S * 1000).toISOString().replace(/\.\d+Z$/, 'Z'),
    open_minutes: 0,
    chair_point: 'CT',
    points: ['X01'],
  });
  const shortLink = (seat) => short.seats.find((s) => s.seat === seat).link;
  const chair = await h.openPage('chair (short meeting)', kiosk(shortLink('CT')));
  const hall = await h.openPage('point X01 (short meeting)', kiosk(shortLink('X01')));
  if (!(await h.waitJoined(chair)) || !(await h.waitJoined(hall))) return false;
  const warned = await until(async () => {
    const s = await chair.page.evaluate(() => {
      const b = document.querySelector('#ending-banner');
      return { shown: Boolean(b && !b.hidden), text: document.querySelector('#ending-text')?.textContent ?? '', plus15: Boolean(document.querySelector('#extend-15')), plus30: Boolean(document.querySelector('#extend-30')) };
    });
    return { ok: s.shown && s.plus15 && s.plus30, detail: JSON.stringify(s), s };
  }, 20_000, 250);
  h.check('the chair is warned before the planned end, with +15 and +30 minutes', warned.ok && warned.s.text.includes('tự kết thúc theo lịch'), warned.detail);
  const ended = await until(async () => {
    const s = await hall.page.evaluate(() => ({ state: window.hoinghi?.state, code: window.hoinghi?.lastError?.code, text: document.querySelector('#main h1')?.textContent ?? '' }));
    return { ok: s.state === 'failed', detail: JSON.stringify(s), s };
  }, (ENDS_IN_S + 30) * 1000, 500);
  h.check(
    'at the planned end the point reads "Cuộc họp đã hết giờ theo lịch", not that the chair ended it',
    ended.ok && ended.s.code === 'schedule_ended' && ended.s.text === 'Cuộc họp đã hết giờ theo lịch',
    `${ended.detail}, ${((Date.now() - t0) / 1000).toFixed(1)} s after scheduling (ends at ${ENDS_IN_S} s)`,
  );
  return true;
}
