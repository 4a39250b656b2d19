// Early arrival: before anything else the join page asks the server what the link is for
// (POST /api/v1/join/check, docs/admin.md). A point that opens tomorrow's link sees the meeting's
// title, its own name and when joins open, with a countdown on the server's clock, and the page
// goes on by itself when the meeting opens (a kiosk with autojoin joins then, nobody pressing
// anything). A link the server refuses is said so at once, before the device check.

import { el } from './dom.js';
import { setText } from './i18n.js';
import { dateTime, duration } from './format.js';

/** Re-asks this often while waiting, in case the meeting was moved (seconds). */
const RECHECK_S = 60;

/** The join refusal code the page already explains, for each of the check's error codes. */
const ERROR_CODES = { invalid: 'bad_token', expired: 'token_expired', replaced: 'revoked' };

/**
 * POST /api/v1/join/check. Resolves with {ok: true, check} or {ok: false, error: {code, message}}
 * (code in the join's vocabulary when there is one), or null when the server could not be asked
 * (offline, throttled, an older server): the join itself will then say what is wrong.
 */
export async function checkLink(token) {
  let res;
  try {
    res = await fetch('/api/v1/join/check', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
      cache: 'no-store',
    });
  } catch {
    return null;
  }
  const body = await res.json().catch(() => null);
  if (res.ok && body?.state) return { ok: true, check: body };
  if (!body?.error || res.status === 429 || res.status === 404) return null;
  return { ok: false, error: { code: ERROR_CODES[body.error] ?? body.error, message: body.message, fatal: true } };
}

/**
 * Waits in `container` until the link's meeting is open or live. Resolves with
 * {ok: true, check} to go on, or {ok: false, error} for the page's error panel; null when the
 * server could not tell (go on: the join decides). `onCheck(check)` sees every answer (test hook).
 */
export async function waitUntilOpen(container, token, { onCheck = () => {} } = {}) {
  for (;;) {
    const result = await checkLink(token);
    if (!result) return null;
    if (!result.ok) return result;
    const c = result.check;
    onCheck(c);
    // A relay seat's link is for another hoinghi server (docs/admin.md), never a browser:
    // joined here it would take the province's seat and receive every layer of the chair.
    if (c.role === 'relay') return { ok: false, error: { code: 'relay_link', fatal: true } };
    if (c.state === 'open' || c.state === 'live') return result;
    if (c.state === 'ended') return { ok: false, error: { code: 'token_expired', message: c.message, fatal: true } };
    if (c.state === 'cancelled') return { ok: false, error: { code: 'cancelled', message: c.message, fatal: true } };
    await countdown(container, c);
  }
}

/** Shows the waiting panel and resolves when joins open or a re-check is due. */
function countdown(container, c) {
  // The server's clock, not the PC's: a commune PC's clock is often minutes off.
  const skewMs = c.server_now * 1000 - Date.now();
  const opensMs = c.opens_at * 1000;
  const title = el('h1', { id: 'early-title', tabindex: '-1' });
  setText(title, 'early.title');
  const meeting = el('p', { class: 'early-meeting', id: 'early-meeting' });
  meeting.textContent = c.meeting_title;
  const point = el('p', { id: 'early-point' });
  setText(point, 'early.point', { name: c.point_name });
  const opens = el('p', { id: 'early-opens' });
  setText(opens, 'early.opens', { time: dateTime(c.opens_at), start: dateTime(c.starts_at) });
  const left = el('p', { class: 'early-countdown', id: 'early-countdown', role: 'timer', 'aria-live': 'off' });
  const note = el('p', { class: 'small' });
  setText(note, 'early.note');
  const panel = el('section', { class: 'panel message early', 'aria-labelledby': 'early-title' }, title, meeting, point, opens, left, note);
  container.replaceChildren(panel);
  title.focus();
  return new Promise((resolve) => {
    const shownAt = Date.now();
    const recheckAt = shownAt + RECHECK_S * 1000;
    const tick = () => {
      const remaining = Math.ceil((opensMs - (Date.now() + skewMs)) / 1000);
      setText(left, 'early.countdown', { time: duration(Math.max(0, remaining)) });
      // At the opening time ask again, but not more than every 2 s if the server still says
      // "not yet" (its clock decides; the limit is 30 checks a minute).
      const opened = remaining <= 0 && Date.now() - shownAt >= 2000;
      if (opened || Date.now() >= recheckAt) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(tick, 1000);
    tick();
  });
}
