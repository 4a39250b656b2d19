// The admin panel: one page, hash routes, the REST API under /api/v1 only.
//   #/            dashboard: today's meetings, who is connected
//   #/points      directory and CSV import
//   #/meetings    list and scheduling; #/meetings/<id> detail with links, QR, attendance
//   #/accounts    accounts (admins);  #/audit  audit log

import { dateTime } from '/js/format.js';
import { initI18n, onLangChange, t as tr } from '/js/i18n.js';
import { api, get, post, setCsrf } from './api.js';
import { badge, button, el, field, fieldErrors, flash, showError, table } from './ui.js';
import { pointsView } from './points.js';
import { meetingsView, meetingDetailView } from './meetings.js';

const view = document.getElementById('view');
let me = null;
let timer = null;
/// Which call of `route` is current: a view still waiting for the server when the page moves on
/// renders into its own detached container and its error is not shown. Under load (CI), a slow
/// meeting page rendered twice into the panel (every QR code twice on the printed list) and a
/// late "not found" banner stayed on the next page.
let generation = 0;

window.hoinghiAdmin = { ready: false };

async function start() {
  initI18n(document.getElementById('lang-button'));
  onLangChange(() => route());
  document.getElementById('logout').addEventListener('click', logout);
  // A new page starts without the last page's error banner.
  window.addEventListener('hashchange', () => {
    flash('');
    route();
  });
  try {
    me = await get('/auth/me');
    setCsrf(me.csrf_token);
  } catch {
    me = null;
  }
  route();
}

function shell() {
  // Until the bootstrap password is changed the panel offers nothing else.
  const logged = !!me && !me.must_change_password;
  document.getElementById('nav').hidden = !logged;
  document.getElementById('logout').hidden = !me;
  document.getElementById('nav-accounts').hidden = !(me && me.role === 'admin');
  document.getElementById('who').textContent = me ? `${me.username} (${tr(`role.${me.role}`)})` : '';
  const hash = location.hash || '#/';
  for (const a of document.querySelectorAll('#nav a')) {
    const target = a.getAttribute('href');
    const current = target === '#/' ? hash === '#/' : hash.startsWith(target);
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

export async function route() {
  const mine = ++generation;
  clearInterval(timer);
  shell();
  const page = el('div', { class: 'page' });
  view.replaceChildren(page);
  window.hoinghiAdmin.ready = false;
  if (!me) {
    loginView(page);
    return;
  }
  if (me.must_change_password) {
    passwordChangeView(page);
    return;
  }
  const parts = (location.hash || '#/').slice(2).split('/');
  try {
    switch (parts[0]) {
      case '':
        await dashboard(page);
        if (mine === generation) timer = setInterval(() => dashboard(page).catch(() => {}), 10_000);
        break;
      case 'points':
        await pointsView(page);
        break;
      case 'meetings':
        if (parts[1]) await meetingDetailView(page, decodeURIComponent(parts[1]));
        else await meetingsView(page);
        break;
      case 'accounts':
        await accountsView(page);
        break;
      case 'audit':
        await auditView(page);
        break;
      default:
        location.hash = '#/';
        return;
    }
  } catch (err) {
    if (mine !== generation) return;
    if (err.status === 401) {
      me = null;
      route();
      return;
    }
    if (err.code === 'password_change_required') {
      me.must_change_password = true;
      route();
      return;
    }
    showError(err);
  }
  if (mine === generation) window.hoinghiAdmin.ready = true;
}

/**
 * The first login of the bootstrap account (its password was printed on the server's
 * terminal): the server refuses everything else until the password is changed. Changing it
 * ends the session; the new password logs in again.
 */
function passwordChangeView(view) {
  const [cLabel, c] = field('acc.current', { name: 'current_password', type: 'password', autocomplete: 'current-password', required: true });
  const [nLabel, n] = field('acc.newPassword', { name: 'new_password', type: 'password', autocomplete: 'new-password', required: true });
  const submit = el('button', { type: 'submit', class: 'primary' }, tr('pw.submit'));
  const form = el('form', { id: 'password-change-form' }, cLabel, nLabel, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    try {
      await post('/auth/password', { current_password: c.value, new_password: n.value });
      me = null;
      setCsrf('');
      route();
      flash(tr('pw.done'));
    } catch (err) {
      fieldErrors(form, err);
      showError(err);
    } finally {
      submit.disabled = false;
    }
  });
  view.append(el('section', { class: 'card login', id: 'password-change' }, el('h1', {}, tr('pw.title')), el('p', {}, tr('pw.body')), form));
  c.focus();
  window.hoinghiAdmin.ready = true;
}

function loginView(view) {
  const [userLabel, user] = field('login.user', { name: 'username', autocomplete: 'username', required: true });
  const [pwLabel, pw] = field('login.password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = el('button', { type: 'submit', class: 'primary' }, tr('login.submit'));
  const form = el('form', { id: 'login-form' }, userLabel, pwLabel, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    try {
      me = await post('/auth/login', { username: user.value, password: pw.value });
      setCsrf(me.csrf_token);
      flash('');
      route();
    } catch (err) {
      showError(err);
      pw.value = '';
      pw.focus();
    } finally {
      submit.disabled = false;
    }
  });
  view.append(el('section', { class: 'card login' }, el('h1', {}, tr('login.title')), form));
  user.focus();
  window.hoinghiAdmin.ready = true;
}

async function logout() {
  try {
    await post('/auth/logout');
  } catch {
    // The session is gone either way.
  }
  me = null;
  setCsrf('');
  location.hash = '#/';
  route();
}

export function stateBadge(state) {
  return badge(state, tr(`state.${state}`));
}

/**
 * Today's meetings, refreshed every 10 s by `route`: who is connected and, for a meeting open
 * or live now, who is missing (invited points and chair not connected), for IT staff to call.
 */
async function dashboard(view) {
  const d = await get('/dashboard');
  const missingOf = async (m) => {
    if (!['open', 'live'].includes(m.state)) return null;
    const detail = await get(`/meetings/${encodeURIComponent(m.id)}`);
    return detail.seats.filter((s) => s.role !== 'observer' && !s.connected).map((s) => s.name);
  };
  const missing = await Promise.all(d.today.map(({ meeting }) => missingOf(meeting).catch(() => null)));
  const rows = d.today.map(({ meeting: m, live }, i) => [
    el('a', { href: `#/meetings/${encodeURIComponent(m.id)}` }, m.title),
    `${dateTime(m.starts_at)} – ${dateTime(m.ends_at)}`,
    stateBadge(m.state),
    `${live.length} / ${m.seat_count}`,
    live.map((p) => p.name).join(', '),
    missing[i] === null ? '' : el('span', { class: 'missing', 'data-meeting': m.id }, `${missing[i].length}: ${missing[i].join(', ')}`),
  ]);
  const section = el(
    'section',
    { id: 'dashboard' },
    el('h1', {}, tr('dash.title')),
    el('p', { class: 'muted', id: 'dash-updated' }, tr('dash.updated', { time: dateTime(new Date()).split(' ')[0] })),
    rows.length
      ? table(['col.title', 'col.time', 'col.status', 'col.live', 'dash.connected', 'dash.missing'], rows)
      : el('p', { class: 'muted' }, tr('dash.none')),
    el('h2', {}, tr('dash.testRoom')),
    el('p', {}, d.test_room.length ? d.test_room.map((p) => p.name).join(', ') : tr('dash.nobody')),
  );
  view.replaceChildren(section);
}

async function accountsView(view) {
  const list = await get('/accounts');
  const rows = list.map((a) => {
    const actions = el('div', { class: 'buttons' });
    actions.append(
      button('acc.reset', async () => {
        const pw = window.prompt(tr('acc.newPassword'));
        if (!pw) return;
        try {
          await post(`/accounts/${encodeURIComponent(a.username)}/password`, { password: pw });
          flash(tr('acc.done'));
        } catch (err) {
          showError(err);
        }
      }),
      button(a.disabled ? 'acc.enable' : 'acc.disable', async () => {
        try {
          await post(`/accounts/${encodeURIComponent(a.username)}/${a.disabled ? 'enable' : 'disable'}`);
          route();
        } catch (err) {
          showError(err);
        }
      }),
    );
    return [a.username, tr(`role.${a.role}`), a.disabled ? tr('points.disabled') : tr('points.active'), actions];
  });
  const [uLabel, u] = field('col.user', { name: 'username', required: true });
  const [pLabel, p] = field('login.password', { name: 'password', type: 'password', autocomplete: 'new-password', required: true });
  const role = el('select', { name: 'role' }, el('option', { value: 'operator' }, tr('role.operator')), el('option', { value: 'admin' }, tr('role.admin')));
  const form = el('form', { class: 'row' }, uLabel, pLabel, el('label', {}, tr('acc.role'), role), el('button', { type: 'submit', class: 'primary' }, tr('acc.create')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await post('/accounts', { username: u.value, password: p.value, role: role.value });
      flash(tr('acc.done'));
      route();
    } catch (err) {
      fieldErrors(form, err);
      showError(err);
    }
  });
  view.append(
    el('h1', {}, tr('acc.title')),
    table(['col.user', 'acc.role', 'col.status', 'col.actions'], rows),
    el('h2', {}, tr('acc.new')),
    el('div', { class: 'card' }, form),
    ownPasswordForm(),
  );
}

function ownPasswordForm() {
  const [cLabel, c] = field('acc.current', { name: 'current_password', type: 'password', autocomplete: 'current-password' });
  const [nLabel, n] = field('acc.newPassword', { name: 'new_password', type: 'password', autocomplete: 'new-password' });
  const form = el('form', { class: 'row' }, cLabel, nLabel, el('button', { type: 'submit' }, tr('acc.own')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await post('/auth/password', { current_password: c.value, new_password: n.value });
      me = null;
      route();
    } catch (err) {
      fieldErrors(form, err);
      showError(err);
    }
  });
  return el('div', {}, el('h2', {}, tr('acc.own')), el('div', { class: 'card' }, form));
}

async function auditView(view) {
  const holder = el('div');
  view.append(el('h1', {}, tr('audit.title')), holder);
  let before = null;
  const rows = [];
  const more = button('audit.more', () => load().catch(showError));
  async function load() {
    const page = await api('GET', `/audit?limit=100${before ? `&before=${before}` : ''}`);
    for (const e of page) rows.push([dateTime(e.at), e.actor, e.ip, auditAction(e.action), e.target, e.detail]);
    if (page.length) before = page[page.length - 1].id;
    more.hidden = page.length < 100;
    holder.replaceChildren(table(['col.when', 'col.who', 'col.ip', 'col.action', 'col.target', 'col.detail'], rows), more);
  }
  await load();
}

/** An audit action as a sentence of the dictionary (`audit.<action>`), else its code. */
function auditAction(action) {
  const key = `audit.${action}`;
  const text = tr(key);
  return text === key ? action : text;
}

start();
