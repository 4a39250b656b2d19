#!/usr/bin/env node
// The cascade (issue 13) in real Chromium, with two real servers on loopback: the upstream
// ("national", Trung ương) and a downstream one ("province", tỉnh), each with its own data dir
// and kernel-picked ports. Through the admin API, as IT staff do:
//   - the national staff schedule a meeting with a relay seat for the province, and send its link;
//   - the province staff schedule their own meeting (province chair, one commune) and link it to
//     that relay link (PUT /meetings/{id}/upstream).
// Then four pages with fake camera and microphone, as their users see them (the two chairs'
// and the commune's cameras each show a colour of their own, so a page tells whose picture it
// shows):
//   1. the national chair and a national point (upstream), the province chair and the commune
//      (downstream) join; the province chair's upward panel says the link is connected ("Đã kết
//      nối với cấp trên…");
//   2. the commune decodes the national chair's video (the `upstream` seat, its program) and
//      shows it big (red, the national camera); the national chair's grid shows the province
//      chair (blue) on the relay seat's tile;
//   3. the commune raises its hand with a note; the province chair raises it upward from its hand
//      queue; its upward panel names the commune, and the national chair's queue shows the
//      province's relay seat with "<commune>: <note>";
//   4. the national chair gives the province the floor: the province chair's panel shows "Cấp
//      trên đang mời tỉnh phát biểu" (room_state.upstream_floor), the hand upward is gone, and
//      the national chair and the national point decode the province's program (the relay
//      seat's video; the point receives none of it before the floor, and shows it big, blue);
//   4b. the province chair gives the commune the local floor and sends it up from the upward
//      panel: the national point shows the commune (green); the chair back: blue again;
//   5. the national chair takes the floor back: the panel no longer shows it, and the national
//      point stops receiving the province and shows its own chair again;
//   6. the national chair's page closes: the panel says the link is lost ("Mất kết nối với cấp
//      trên…"), the commune says so and shows its province chair (blue); the national chair
//      returns: connected again, the commune shows it (red).
// Every wait is on a condition with a deadline sized for a loaded 2-core machine.
//
//   cargo build && (cd tests/browser && npm ci && node cascade.mjs)

import fs from 'node:fs';
import path from 'node:path';
import { Harness, adminApi, adminLogin, decodesGrowing, delta, kiosk, sample, sleep, until } from './lib.mjs';

// Plus the soak below, when asked for.
const WATCHDOG_MS = 420_000 + Number(process.env.CASCADE_SOAK_S ?? 0) * 1000;
// The relay is started by the downstream's 5 s relay tick, joins upstream, and opens its local
// seat once the national chair's media arrives: allow for all of that on a busy machine.
const RELAY_TIMEOUT_MS = 90_000;
const MEDIA_TIMEOUT_MS = 60_000;
const STATE_TIMEOUT_MS = 30_000;

const RELAY_NAME = 'Tỉnh Cao Bằng';
const UPSTREAM_NAME = 'Điểm cầu Trung ương';
const COMMUNE_NAME = 'UBND xã Cao Sơn';
const NOTE = 'Xin báo cáo tình hình lũ';

const h = new Harness('cascade');
h.runMain(main, WATCHDOG_MS);

const iso = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * Writes a Y4M clip for Chromium's fake camera (--use-file-for-fake-video-capture): 640x480,
 * 20 fps, 20 frames looped, a field of colour `rgb` with a small grey square moving across it
 * (so every frame differs). Each camera of the test gets its own colour: a page then tells
 * whose picture it shows by the colour, not only by the participant id the server labels it
 * with.
 */
function writeClip(file, [r, g, b]) {
  const W = 640;
  const H = 480;
  // BT.601 full range (C420jpeg).
  const y = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
  const u = Math.round(128 - 0.168736 * r - 0.331264 * g + 0.5 * b);
  const v = Math.round(128 + 0.5 * r - 0.418688 * g - 0.081312 * b);
  const frames = [Buffer.from(`YUV4MPEG2 W${W} H${H} F20:1 Ip A1:1 C420jpeg\n`)];
  for (let f = 0; f < 20; f++) {
    const Y = Buffer.alloc(W * H, y);
    const x0 = 16 + f * 28;
    for (let row = 200; row < 248; row++) Y.fill(128, row * W + x0, row * W + x0 + 48);
    const U = Buffer.alloc((W / 2) * (H / 2), u);
    const V = Buffer.alloc((W / 2) * (H / 2), v);
    for (let row = 100; row < 124; row++) {
      U.fill(128, row * (W / 2) + x0 / 2, row * (W / 2) + x0 / 2 + 24);
      V.fill(128, row * (W / 2) + x0 / 2, row * (W / 2) + x0 / 2 + 24);
    }
    frames.push(Buffer.from('FRAME\n'), Y, U, V);
  }
  fs.writeFileSync(file, Buffer.concat(frames));
}

const RED = [200, 40, 40]; // the national chair's camera
const BLUE = [40, 40, 200]; // the province chair's camera
const GREEN = [40, 200, 40]; // the commune's camera

/**
 * The mean colour of the picture a <video> (`selector`) in page `p` plays now, and which of
 * the test's cameras it is: 'red', 'green', 'blue', or 'other' (e.g. Chromium's own fake
 * pattern).
 */
function pictureColour(p, selector) {
  return p.page.evaluate((sel) => {
    const v = document.querySelector(sel);
    if (!v) return { colour: 'none', detail: `no ${sel}` };
    if (!v.videoWidth) return { colour: 'none', detail: `${sel}: no picture yet (readyState ${v.readyState})` };
    const c = document.createElement('canvas');
    c.width = 64;
    c.height = 48;
    const ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(v, 0, 0, 64, 48);
    const d = ctx.getImageData(0, 0, 64, 48).data;
    let [r, g, b] = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) [r, g, b] = [r + d[i], g + d[i + 1], b + d[i + 2]];
    const n = d.length / 4;
    [r, g, b] = [r, g, b].map((x) => Math.round(x / n));
    let colour = 'other';
    if (r > g + 60 && r > b + 60) colour = 'red';
    else if (g > r + 60 && g > b + 60) colour = 'green';
    else if (b > r + 60 && b > g + 60) colour = 'blue';
    return { colour, detail: `${sel}: ${v.videoWidth}x${v.videoHeight}, mean rgb(${r}, ${g}, ${b})` };
  }, selector);
}

/** Waits until the picture in `selector` of `p` is `colour`. */
function waitColour(p, selector, colour, timeoutMs) {
  return until(async () => {
    const s = await pictureColour(p, selector);
    return { ok: s.colour === colour, detail: `expected ${colour}, saw ${s.colour} (${s.detail})` };
  }, timeoutMs, 500);
}

/** Frames of `from`'s video `at` decodes over 1.5 s (0 when it receives none). */
async function framesOver(at, from, ms = 1500) {
  const a = await sample(at);
  await sleep(ms);
  return delta(a, await sample(at), from, 'video').frames;
}

/** Text of `selector` in page `p` ('' when absent), and whether it is shown. */
function shown(p, selector) {
  return p.page.evaluate((sel) => {
    const n = document.querySelector(sel);
    if (!n) return { text: '', visible: false };
    return { text: n.textContent.trim(), visible: !n.closest('[hidden]') && n.getClientRects().length > 0 };
  }, selector);
}

/** Waits until `selector` in `p` is visible with exactly `text` (or hidden when `text` is null). */
async function waitText(p, selector, text, timeoutMs = STATE_TIMEOUT_MS) {
  return until(async () => {
    const s = await shown(p, selector);
    const ok = text === null ? !s.visible : s.visible && s.text === text;
    return { ok, detail: `expected ${text === null ? 'hidden' : JSON.stringify(text)}, saw ${s.visible ? JSON.stringify(s.text) : `hidden (${JSON.stringify(s.text)})`}` };
  }, timeoutMs, 250);
}

/** Participant id of the first roster entry of `p`'s session matching `role` and `point`. */
function rosterId(p, role, point) {
  return p.page.evaluate(
    ([r, pt]) => [...(window.hoinghi?.session?.roster.values() ?? [])].find((x) => x.role === r && (!pt || x.point === pt))?.id ?? null,
    [role, point],
  );
}

async function main() {
  // Upstream (national): a meeting with a relay seat for the province.
  const { origin: upOrigin } = await h.start();
  const up = await adminLogin(upOrigin, h.admin);
  if (!h.check('national admin login', up.ok, `status ${up.status}`)) return false;
  await adminApi(upOrigin, up, 'POST', '/points', { code: 'TW', name: 'Hội trường Trung ương', kind: 'province_hall' });
  await adminApi(upOrigin, up, 'POST', '/points', { code: 'BN01', name: 'Bộ Nông nghiệp', kind: 'department' });
  const now = Date.now();
  const national = await adminApi(upOrigin, up, 'POST', '/meetings', {
    title: 'Hội nghị trực tuyến phòng chống thiên tai',
    starts_at: iso(now),
    ends_at: iso(now + 3 * 3600 * 1000),
    open_minutes: 0,
    chair_point: 'TW',
    points: ['BN01'],
    relays: [RELAY_NAME],
  });
  const relaySeat = national.seats.find((s) => s.role === 'relay');
  if (!h.check('the national meeting has a relay seat with a link', relaySeat?.link?.includes('/join?t='), relaySeat ? `seat ${relaySeat.seat}` : JSON.stringify(national.seats.map((s) => s.role)))) return false;
  const nationalLink = national.seats.find((s) => s.seat === 'TW').link;

  // Downstream (province): its own meeting, linked to the relay link.
  const down = await h.addServer('province');
  const prov = await adminLogin(down.origin, down.admin);
  if (!h.check('province admin login', prov.ok, `status ${prov.status}`)) return false;
  await adminApi(down.origin, prov, 'POST', '/points', { code: 'CT', name: 'Hội trường UBND tỉnh', kind: 'province_hall' });
  await adminApi(down.origin, prov, 'POST', '/points', { code: 'X01', name: COMMUNE_NAME, kind: 'commune' });
  const local = await adminApi(down.origin, prov, 'POST', '/meetings', {
    title: 'Hội nghị phòng chống thiên tai (điểm cầu tỉnh)',
    starts_at: iso(now),
    ends_at: iso(now + 3 * 3600 * 1000),
    open_minutes: 0,
    chair_point: 'CT',
    points: ['X01'],
  });
  const localLink = (seat) => local.seats.find((s) => s.seat === seat).link;
  const linked = await adminApi(down.origin, prov, 'PUT', `/meetings/${local.meeting.id}/upstream`, { link: relaySeat.link, name: UPSTREAM_NAME });
  h.check(
    'the province links its meeting to the relay link (token not shown back whole)',
    linked?.name === UPSTREAM_NAME && typeof linked?.link === 'string' && !linked.link.includes(new URL(relaySeat.link).searchParams.get('t')),
    JSON.stringify({ ...linked, link: linked?.link?.replace(/t=.*/, 't=…') }),
  );

  // The pages, each joining at once (kiosk). The two chairs' cameras show a colour of their
  // own (a Chromium each), and so does the commune's; the national point has Chromium's own.
  const clips = h.tempDir();
  writeClip(path.join(clips, 'national.y4m'), RED);
  writeClip(path.join(clips, 'province.y4m'), BLUE);
  writeClip(path.join(clips, 'commune.y4m'), GREEN);
  const camera = (name) => [`--use-file-for-fake-video-capture=${path.join(clips, name)}`];
  const nationalChair = await h.openPage('national chair', kiosk(nationalLink), { args: camera('national.y4m') });
  const nationalPoint = await h.openPage('national point', kiosk(national.seats.find((s) => s.seat === 'BN01').link));
  const provinceChair = await h.openPage('province chair', kiosk(localLink('CT')), { args: camera('province.y4m') });
  const commune = await h.openPage('commune', kiosk(localLink('X01')), { args: camera('commune.y4m') });
  const joined = await Promise.all([nationalChair, nationalPoint, provinceChair, commune].map((p) => h.waitJoined(p, 60_000)));
  if (!joined.every(Boolean)) return false;

  // 1. The relay runs (admin API), and the province chair's panel says it is connected.
  const relaying = await until(async () => {
    const r = await adminApi(down.origin, prov, 'GET', `/meetings/${local.meeting.id}/upstream`).catch((e) => ({ relay: String(e) }));
    return { ok: r?.relay === 'relaying', detail: `relay state ${JSON.stringify(r?.relay)}` };
  }, RELAY_TIMEOUT_MS, 1000);
  h.check('the province server relays the national meeting (admin API: "relaying")', relaying.ok, relaying.detail);
  const panelLive = await waitText(provinceChair, '#upward-link', 'Đã kết nối với cấp trên: đang nhận hình ảnh điểm cầu cấp trên', RELAY_TIMEOUT_MS);
  h.check("the province chair's upward panel shows the link to the national meeting as connected", panelLive.ok, panelLive.detail);
  const panelNow = await shown(provinceChair, '#upward-now');
  h.check('the panel says the province chair goes up', panelNow.text === 'Đang gửi lên: điểm cầu chủ trì (tôi)', JSON.stringify(panelNow));

  // 2. The commune decodes the national chair (the upstream seat is its program).
  const seatOnCommune = await until(async () => {
    const id = await rosterId(commune, 'upstream', 'upstream');
    return { ok: Boolean(id), id, detail: `upstream seat in the commune's roster: ${id}` };
  }, RELAY_TIMEOUT_MS, 500);
  if (!h.check("the national program joins the commune's meeting as the upstream seat", seatOnCommune.ok, seatOnCommune.detail)) return false;
  const communeDecodes = await decodesGrowing(commune, seatOnCommune.id, MEDIA_TIMEOUT_MS);
  h.check("the commune decodes the national chair's video (frames decoded rising)", communeDecodes.ok, communeDecodes.detail);
  const stage = await until(async () => {
    const s = await commune.page.evaluate(() => {
      const m = document.querySelector('#program');
      return { program: m?.dataset.program, participant: m?.dataset.participant, text: m?.textContent ?? '' };
    });
    return { ok: s.program === 'chair' && s.participant === seatOnCommune.id && s.text.includes(UPSTREAM_NAME), detail: JSON.stringify(s) };
  }, STATE_TIMEOUT_MS, 250);
  h.check(`the commune's stage shows the national program big, named "${UPSTREAM_NAME}"`, stage.ok, stage.detail);
  const communeSees = await waitColour(commune, '#program video', 'red', MEDIA_TIMEOUT_MS);
  h.check("the commune's big picture is the national chair's camera (red), not the province chair's (blue)", communeSees.ok, communeSees.detail);
  const provinceSees = await waitColour(provinceChair, '.upstream-program video', 'red', MEDIA_TIMEOUT_MS);
  h.check("the province chair's page shows the national program (red) in its upstream tile", provinceSees.ok, provinceSees.detail);

  // 3. A hand raised upward for the commune.
  const relayOnNational = await until(async () => {
    const id = await rosterId(nationalChair, 'relay', relaySeat.seat);
    return { ok: Boolean(id), id, detail: `relay seat ${relaySeat.seat} in the national roster: ${id}` };
  }, RELAY_TIMEOUT_MS, 500);
  if (!h.check('the province joins the national meeting on its relay seat', relayOnNational.ok, relayOnNational.detail)) return false;
  const relayTile = `.ptile[data-point="${relaySeat.seat}"] video`;
  const thumbnail = await waitColour(nationalChair, relayTile, 'blue', MEDIA_TIMEOUT_MS);
  h.check("the national chair's grid shows the province chair's camera (blue) on the relay seat's tile", thumbnail.ok, thumbnail.detail);
  // Control for step 4: a national point does not receive the province before it has the floor.
  const before = await framesOver(nationalPoint, relayOnNational.id);
  h.check('before the floor, the national point decodes nothing from the province', before === 0, `${before} frames of the relay seat in 1.5 s`);
  await commune.page.locator('#hand-text').fill(NOTE);
  await commune.page.locator('#raise-hand').click();
  const localHand = provinceChair.page.locator('#hand-queue li[data-point="X01"]');
  const queued = await localHand.waitFor({ timeout: STATE_TIMEOUT_MS }).then(() => true, () => false);
  h.check("the province chair sees the commune's hand in its queue", queued, queued ? 'queued' : `no #hand-queue li[data-point="X01"]: ${(await shown(provinceChair, '#hand-queue')).text}`);
  if (!queued) return false;
  await localHand.locator('button[data-action="up"]').click();
  const panelHand = await waitText(provinceChair, '#upward-hand', `Đã giơ tay ở cấp trên cho ${COMMUNE_NAME}`);
  h.check('the upward panel says the hand is raised upward for the commune', panelHand.ok, panelHand.detail);
  const wanted = `${COMMUNE_NAME}: ${NOTE}`;
  const nationalHand = nationalChair.page.locator(`#hand-queue li[data-point="${relaySeat.seat}"]`);
  const upHand = await until(async () => {
    const n = await nationalHand.count();
    const text = n ? ((await nationalHand.locator('.hand-text').textContent().catch(() => '')) ?? '').trim() : '';
    const who = n ? ((await nationalHand.locator('strong').textContent().catch(() => '')) ?? '').trim() : '';
    return { ok: text === wanted && who === RELAY_NAME, detail: `expected "${RELAY_NAME}" with "${wanted}", saw ${n ? `"${who}" with "${text}"` : `no hand of ${relaySeat.seat}: ${JSON.stringify((await shown(nationalChair, '#hand-queue')).text)}`}` };
  }, STATE_TIMEOUT_MS, 250);
  h.check(`the national chair's queue shows the province's hand "${wanted}"`, upHand.ok, upHand.detail);
  if (!upHand.ok) return false;

  // 4. The national chair gives the province the floor.
  await nationalHand.locator('button[data-action="grant"]').click();
  const floorShown = await waitText(provinceChair, '#upward-floor', 'Cấp trên đang mời tỉnh phát biểu');
  h.check('the province chair\'s panel shows "Cấp trên đang mời tỉnh phát biểu"', floorShown.ok, floorShown.detail);
  const handGone = await waitText(provinceChair, '#upward-hand', 'Chưa giơ tay ở cấp trên.');
  h.check('the hand upward is gone once granted (the panel says so)', handGone.ok, handGone.detail);
  const holder = await waitText(nationalChair, '#floor-holder', `${RELAY_NAME} đang phát biểu`);
  const floorTile = await nationalChair.page.locator(`.ptile.floor[data-point="${relaySeat.seat}"]`).count();
  h.check("the national chair's page shows the province holding the floor", holder.ok && floorTile === 1, `${holder.detail}; floor tile ${floorTile}`);
  const provinceDecoded = await decodesGrowing(nationalChair, relayOnNational.id, MEDIA_TIMEOUT_MS);
  h.check("the national chair decodes the province's program (relay seat video, frames decoded rising)", provinceDecoded.ok, provinceDecoded.detail);
  const pointDecodes = await decodesGrowing(nationalPoint, relayOnNational.id, MEDIA_TIMEOUT_MS);
  h.check("the national point decodes the province's program once it has the floor", pointDecodes.ok, pointDecodes.detail);
  const pointSees = await waitColour(nationalPoint, '#program video', 'blue', MEDIA_TIMEOUT_MS);
  h.check("the national point's big picture is the province chair's camera (blue)", pointSees.ok, pointSees.detail);
  const communeFloor = await until(async () => {
    const f = await commune.page.evaluate(() => window.hoinghi.session?.roomState?.upstream_floor ?? null);
    return { ok: f === true, detail: `room_state.upstream_floor at the commune: ${f}` };
  }, STATE_TIMEOUT_MS, 250);
  h.check('the commune is told the province holds the national floor too (room_state.upstream_floor)', communeFloor.ok, communeFloor.detail);

  // 4b. The province chair sends the commune up in its place (the upward panel's button), then
  // itself again: the national point sees the commune (green), then the province chair (blue).
  const grantLocal = provinceChair.page.locator('#hand-queue li[data-point="X01"] button[data-action="grant"]');
  const granted = await grantLocal.click({ timeout: STATE_TIMEOUT_MS }).then(() => true, (e) => e.message.split('\n')[0]);
  h.check('the commune still has its hand in the province queue, and the province chair gives it the floor', granted === true, granted === true ? 'granted' : granted);
  const enabled = await until(async () => {
    const d = await provinceChair.page.locator('#upward-send-floor').isDisabled();
    return { ok: !d, detail: `"Gửi điểm cầu đang phát biểu lên" ${d ? 'disabled' : 'enabled'}; floor: ${(await shown(provinceChair, '#floor-holder')).text}` };
  }, STATE_TIMEOUT_MS, 250);
  h.check('the upward panel offers to send the floor holder up', enabled.ok, enabled.detail);
  await provinceChair.page.locator('#upward-send-floor').click();
  const sendingCommune = await waitText(provinceChair, '#upward-now', `Đang gửi lên: ${COMMUNE_NAME}`);
  h.check('the upward panel says the commune goes up', sendingCommune.ok, sendingCommune.detail);
  const communeUp = await waitColour(nationalPoint, '#program video', 'green', MEDIA_TIMEOUT_MS);
  h.check("the national point's big picture is the commune's camera (green), sent up by the province", communeUp.ok, communeUp.detail);
  await provinceChair.page.locator('#upward-send-chair').click();
  const sendingChair = await waitText(provinceChair, '#upward-now', 'Đang gửi lên: điểm cầu chủ trì (tôi)');
  h.check('the upward panel says the province chair goes up again', sendingChair.ok, sendingChair.detail);
  const chairUp = await waitColour(nationalPoint, '#program video', 'blue', MEDIA_TIMEOUT_MS);
  h.check("the national point's big picture is the province chair (blue) again", chairUp.ok, chairUp.detail);
  await provinceChair.page.locator('#floor-revoke').click();

  // 5. The national chair takes the floor back.
  await nationalChair.page.locator('#floor-revoke').click();
  const floorBack = await waitText(provinceChair, '#upward-floor', null);
  h.check('the national chair takes the floor back: the panel no longer shows it', floorBack.ok, floorBack.detail);
  const nationalNone = await until(async () => {
    const n = await nationalChair.page.locator('.ptile.floor').count();
    return { ok: n === 0, detail: `${n} floor tile(s) on the national chair's page` };
  }, STATE_TIMEOUT_MS, 250);
  h.check("the national chair's page shows no floor holder", nationalNone.ok, nationalNone.detail);
  // Packets in flight still arrive for a moment: wait for a quiet 1.5 s.
  const stopped = await until(async () => {
    const n = await framesOver(nationalPoint, relayOnNational.id);
    return { ok: n === 0, detail: `${n} frames of the relay seat in 1.5 s` };
  }, STATE_TIMEOUT_MS, 0);
  h.check("floor taken back, the national point no longer decodes the province", stopped.ok, stopped.detail);
  const backToChair = await waitColour(nationalPoint, '#program video', 'red', MEDIA_TIMEOUT_MS);
  h.check("the national point's big picture is its own chair (red) again", backToChair.ok, backToChair.detail);
  const stillLive = await shown(provinceChair, '#upward-link');
  h.check('the link is still connected afterwards', stillLive.text.startsWith('Đã kết nối'), JSON.stringify(stillLive));

  // 6. The national program stops (its chair's page closes): after 5 s without its media the
  // province falls back to its own chair, and the panel says the link is lost; it comes back
  // with the national chair.
  await nationalChair.page.context().close();
  const panelLost = await waitText(provinceChair, '#upward-link', 'Mất kết nối với cấp trên: các điểm cầu đang xem điểm cầu chủ trì tỉnh', RELAY_TIMEOUT_MS);
  h.check('the national chair gone, the upward panel says the link is lost', panelLost.ok, panelLost.detail);
  const banner = await waitText(commune, '#upstream-lost', 'Mất kết nối tới điểm cầu Trung ương, đang phát hình ảnh điểm cầu chủ trì tỉnh');
  h.check('the commune says the national program is lost', banner.ok, banner.detail);
  const fallback = await waitColour(commune, '#program video', 'blue', MEDIA_TIMEOUT_MS);
  h.check("the commune's big picture falls back to the province chair (blue)", fallback.ok, fallback.detail);
  const again = await h.openPage('national chair (again)', kiosk(nationalLink), { args: camera('national.y4m') });
  if (!(await h.waitJoined(again, 60_000))) return false;
  const panelBack = await waitText(provinceChair, '#upward-link', 'Đã kết nối với cấp trên: đang nhận hình ảnh điểm cầu cấp trên', RELAY_TIMEOUT_MS);
  h.check('the national chair back, the panel says connected again', panelBack.ok, panelBack.detail);
  const communeBack = await waitColour(commune, '#program video', 'red', MEDIA_TIMEOUT_MS);
  const bannerGone = await shown(commune, '#upstream-lost');
  h.check("the commune shows the national chair (red) again, without the banner", communeBack.ok && !bannerGone.visible, `${communeBack.detail}; banner ${bannerGone.visible ? 'shown' : 'hidden'}`);

  // CASCADE_SOAK_S=300: the linked meeting stays on that long, then the province server's log
  // must hold no queue of the relay that overflowed (an RTCP channel nobody reads fills in
  // about 256 s: relay/src/publisher.rs, spawn_rtcp_drain). Off by default (CI time).
  const soakS = Number(process.env.CASCADE_SOAK_S ?? 0);
  if (soakS > 0) {
    h.step(`soak: the linked meeting stays on for ${soakS} s`);
    const end = Date.now() + soakS * 1000;
    while (Date.now() < end) {
      await sleep(Math.min(30_000, end - Date.now()));
      const live = await shown(provinceChair, '#upward-link');
      h.step(`soak: ${Math.round((end - Date.now()) / 1000)} s left, panel "${live.text}"`);
    }
    const overflow = h.servers.flatMap((x) => x.output).filter((l) => l.includes('Failed to send RtcpPacket'));
    h.check(`after ${soakS} s, the province server logged no overflowing RTCP queue`, overflow.length === 0, overflow.length ? `${overflow.length} lines, first: ${overflow[0].slice(0, 200)}` : 'none');
  }

  const refused = h.pageLogs.filter((l) => l.includes('[hoinghi] server error'));
  h.check('the servers refused nothing the pages sent', refused.length === 0, refused.join('; ') || 'no error messages');
  const crashed = h.pageLogs.filter((l) => l.includes('pageerror'));
  h.check('no uncaught error in any page', crashed.length === 0, crashed.join('; ') || 'none');
  return true;
}
