// Seeding a real meeting for the browser tests through the admin REST API (the bootstrap admin's
// cookie session), and a crowd of points joined by WebSocket only (no media) from one page.

import fs from 'node:fs';
import path from 'node:path';
import { ROOT, adminLogin } from './lib.mjs';

export const BAC_KAN_CSV = path.join(ROOT, 'tests/fixtures/points-bac-kan.csv');

/** The admin API as one staff session: `call(method, path, body, {csv})` → {status, body}. */
export class AdminClient {
  /** `credentials` ({username, password}) is kept as given: a forced change updates it in place. */
  constructor(origin, credentials) {
    this.origin = origin;
    this.credentials = credentials;
    this.cookie = '';
    this.csrf = '';
  }

  async login() {
    const r = await adminLogin(this.origin, this.credentials);
    if (!r.ok) throw new Error(`admin login: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    this.cookie = r.cookie;
    this.csrf = r.csrf;
    return r.body;
  }

  async call(method, apiPath, body, { csv = false } = {}) {
    const headers = { cookie: this.cookie };
    if (method !== 'GET') headers['x-csrf-token'] = this.csrf;
    let payload;
    if (body !== undefined) {
      headers['content-type'] = csv ? 'text/csv' : 'application/json';
      payload = csv ? body : JSON.stringify(body);
    }
    const res = await fetch(`${this.origin}/api/v1${apiPath}`, { method, headers, body: payload });
    const text = await res.text();
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed };
  }

  async ok(method, apiPath, body, opts) {
    const r = await this.call(method, apiPath, body, opts);
    if (r.status >= 300) throw new Error(`${method} ${apiPath}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    return r.body;
  }
}

/**
 * Imports Bắc Kạn's 122 points and schedules a meeting that is open now with every point
 * invited, the province hall chairing. Returns {meeting, seats, chair, points}: seats are the
 * API's seat views (with `link`), `points` the point seats in code order.
 */
export async function seedBacKan(admin, { title = 'Giao ban trực tuyến tháng 12', startInMinutes = 1, hours = 2 } = {}) {
  await admin.ok('POST', '/points/import?dry_run=false', fs.readFileSync(BAC_KAN_CSV, 'utf8'), { csv: true });
  const start = new Date(Date.now() + startInMinutes * 60_000);
  const end = new Date(start.getTime() + hours * 3600_000);
  const created = await admin.ok('POST', '/meetings', {
    title,
    starts_at: start.toISOString().replace(/\.\d+Z$/, 'Z'),
    ends_at: end.toISOString().replace(/\.\d+Z$/, 'Z'),
    chair_point: '06',
    invite_all: true,
    observers: ['Lãnh đạo tỉnh'],
  });
  const detail = await admin.ok('GET', `/meetings/${encodeURIComponent(created.meeting.id)}`);
  const byCode = (a, b) => a.seat.localeCompare(b.seat, 'vi', { numeric: true });
  return {
    meeting: detail.meeting,
    seats: detail.seats,
    chair: detail.seats.find((s) => s.role === 'chair'),
    observer: detail.seats.find((s) => s.role === 'observer'),
    points: detail.seats.filter((s) => s.role === 'point').sort(byCode),
  };
}

/**
 * Joins `links` as points over WebSocket from inside `page` (a browser answers the server's
 * pings by itself, so the sockets stay up as long as the page). Resolves with how many joined.
 */
export async function joinCrowd(page, links) {
  return page.evaluate(async (urls) => {
    window.crowd ??= [];
    const joinOne = (link) =>
      new Promise((resolve) => {
        const u = new URL(link);
        const ws = new WebSocket(`${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}/ws`);
        const timer = setTimeout(() => resolve(false), 20_000);
        ws.onopen = () => ws.send(JSON.stringify({ v: 1, type: 'join', token: u.searchParams.get('t') }));
        ws.onmessage = (e) => {
          const msg = JSON.parse(e.data);
          if (msg.type === 'joined') {
            clearTimeout(timer);
            ws.participant = msg.participant;
            resolve(true);
          }
          if (msg.type === 'error' && msg.fatal) resolve(false);
        };
        ws.onclose = () => resolve(false);
        window.crowd.push(ws);
      });
    // A few at a time: a burst of 100 joins from one address is not what halls do.
    const results = [];
    for (let i = 0; i < urls.length; i += 10) results.push(...(await Promise.all(urls.slice(i, i + 10).map(joinOne))));
    return results.filter(Boolean).length;
  }, links);
}

/** Sends a control message as crowd member `index` (in the order of `joinCrowd`'s links). */
export function crowdSend(page, index, msg) {
  return page.evaluate(([i, m]) => window.crowd[i].send(JSON.stringify({ v: 1, ...m })), [index, msg]);
}
