// Meetings: the list, the scheduling form (create and edit), and a meeting's page with its
// links, QR codes and attendance.

import { get, post, put } from './api.js';
import { dateTime, localInput } from '/js/format.js';
import { getLang, t as tr } from '/js/i18n.js';
import { badge, button, el, field, fieldErrors, flash, showError, table } from './ui.js';
import { KINDS, byKindThenCode } from './points.js';
import { feedSection } from './feeds.js';
import { upstreamSection } from './upstream.js';

function stateBadge(state) {
  return badge(state, tr(`state.${state}`));
}

export async function meetingsView(view) {
  const meetings = await get('/meetings');
  const rows = meetings.map((m) => [
    el('a', { href: `#/meetings/${encodeURIComponent(m.id)}` }, m.title),
    `${dateTime(m.starts_at)} – ${dateTime(m.ends_at)}`,
    stateBadge(m.state),
    String(m.seat_count),
    String(m.live_count),
  ]);
  const formHolder = el('div', { id: 'meeting-form-holder' });
  const newButton = button('meetings.new', async () => {
    try {
      formHolder.replaceChildren(await meetingForm(null));
      formHolder.querySelector('input')?.focus();
    } catch (err) {
      showError(err);
    }
  }, 'primary');
  newButton.id = 'new-meeting';
  view.append(
    el('h1', {}, tr('meetings.title')),
    el('div', { class: 'buttons' }, newButton, el('a', { href: '/api/v1/calendar.ics', download: 'hoinghi.ics' }, tr('calendar.all'))),
    formHolder,
    rows.length ? table(['col.title', 'col.time', 'col.status', 'col.seats', 'col.live'], rows) : el('p', { class: 'muted' }, tr('meetings.none')),
    feedSection('/calendar/feed', 'feed.all'),
  );
}

/** The scheduling form; `detail` is the meeting being edited, or null for a new one. */
async function meetingForm(detail) {
  const points = (await get('/points')).sort(byKindThenCode);
  const m = detail?.meeting;
  const invited = new Set((detail?.seats ?? []).filter((s) => s.role === 'point').map((s) => s.point_code));
  const chairNow = (detail?.seats ?? []).find((s) => s.role === 'chair')?.point_code;
  const observersNow = (detail?.seats ?? []).filter((s) => s.role === 'observer').map((s) => s.name);
  const relaysNow = (detail?.seats ?? []).filter((s) => s.role === 'relay').map((s) => s.name);

  const form = el('form', { class: 'card', id: 'meeting-form' });
  const [titleL, title] = field('mf.title', { name: 'title', required: true, maxlength: 200 });
  const [agendaL, agenda] = field('mf.agenda', { name: 'agenda', tag: 'textarea', maxlength: 10000 });
  const [startL, start] = field('mf.start', { name: 'starts_at', type: 'datetime-local', required: true });
  const [endL, end] = field('mf.end', { name: 'ends_at', type: 'datetime-local', required: true });
  const [openL, open] = field('mf.open', { name: 'open_minutes', type: 'number', min: 0, max: 1440 });
  const [capL, cap] = field('mf.capacity', { name: 'capacity', type: 'number', min: 2, max: 1000 });
  const chair = el('select', { name: 'chair_point', id: 'chair-point' },
    ...points.map((p) => el('option', { value: p.code }, `${p.code} – ${p.name}`)));
  const soon = new Date(Date.now() + 60 * 60 * 1000);
  title.value = m?.title ?? '';
  agenda.value = m?.agenda ?? '';
  start.value = m ? m.starts_local.slice(0, 16) : localInput(soon);
  end.value = m ? m.ends_local.slice(0, 16) : localInput(new Date(soon.getTime() + 2 * 3600 * 1000));
  open.value = String(m?.open_minutes ?? 30);
  cap.value = String(m?.capacity ?? 500);
  chair.value = chairNow ?? points.find((p) => p.kind === 'province_hall')?.code ?? points[0]?.code ?? '';

  const kindBoxes = KINDS.map((k) => {
    const box = el('input', { type: 'checkbox', value: k, name: 'invite_kinds' });
    return [box, el('label', {}, box, tr(`kind.${k}`))];
  });
  const all = el('input', { type: 'checkbox', id: 'invite-all' });
  const filter = el('input', { type: 'search', id: 'point-filter', placeholder: tr('mf.filter'), 'aria-label': tr('mf.filter') });
  const selected = el('span', { class: 'muted', id: 'selected-count' });
  const pickBoxes = points.map((p) => {
    const box = el('input', { type: 'checkbox', value: p.code, 'data-code': p.code });
    box.checked = invited.has(p.code);
    const label = el('label', {}, box, `${p.code} – ${p.name}`);
    return { p, box, label };
  });
  const updateCount = () => (selected.textContent = tr('mf.selected', { n: pickBoxes.filter((b) => b.box.checked).length }));
  for (const b of pickBoxes) b.box.addEventListener('change', updateCount);
  updateCount();
  filter.addEventListener('input', () => {
    const needle = fold(filter.value);
    for (const b of pickBoxes) b.label.hidden = needle && !fold(`${b.p.code} ${b.p.name} ${b.p.district}`).includes(needle);
  });
  const [obsL, observers] = field('mf.observers', { name: 'observers', tag: 'textarea' });
  observers.value = observersNow.join('\n');
  // Relay seats (downstream servers of the cascade): kept across edits like observers.
  const [relaysL, relays] = field('mf.relays', { name: 'relays', tag: 'textarea' });
  relays.value = relaysNow.join('\n');

  form.append(
    el('h2', {}, m ? `${tr('md.edit')}: ${m.title}` : tr('meetings.new')),
    el('div', { class: 'row' }, titleL, startL, endL, openL, capL),
    el('div', { class: 'row' }, agendaL, el('label', {}, tr('mf.chair'), chair, el('span', { class: 'error-text', 'data-error-for': 'chair_point' }))),
    el('fieldset', {}, el('legend', {}, tr('mf.kinds')), el('div', { class: 'row' }, ...kindBoxes.map((k) => k[1]), el('label', {}, all, tr('mf.all'))),
      el('span', { class: 'error-text', 'data-error-for': 'invite_kinds' })),
    el('fieldset', {}, el('legend', {}, tr('mf.points')), el('div', { class: 'row' }, filter, selected),
      el('div', { class: 'pick-list', id: 'pick-list' }, ...pickBoxes.map((b) => b.label)),
      el('span', { class: 'error-text', 'data-error-for': 'points' })),
    obsL,
    relaysL,
    el('div', { class: 'buttons' }, el('button', { type: 'submit', class: 'primary', id: 'meeting-submit' }, tr(m ? 'mf.update' : 'mf.create'))),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {
      title: title.value,
      agenda: agenda.value,
      starts_at: start.value,
      ends_at: end.value,
      open_minutes: Number(open.value),
      capacity: Number(cap.value),
      chair_point: chair.value,
      points: pickBoxes.filter((b) => b.box.checked).map((b) => b.p.code),
      invite_kinds: kindBoxes.filter((k) => k[0].checked).map((k) => k[0].value),
      invite_all: all.checked,
      observers: observers.value.split('\n').map((s) => s.trim()).filter(Boolean),
      relays: relays.value.split('\n').map((s) => s.trim()).filter(Boolean),
    };
    try {
      const saved = m ? await put(`/meetings/${encodeURIComponent(m.id)}`, body) : await post('/meetings', body);
      flash('');
      location.hash = `#/meetings/${encodeURIComponent(saved.meeting.id)}`;
    } catch (err) {
      fieldErrors(form, err);
      showError(err);
    }
  });
  return form;
}

function fold(s) {
  return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/đ/g, 'd').replace(/Đ/g, 'd').toLowerCase();
}

export async function meetingDetailView(view, id) {
  const d = await get(`/meetings/${encodeURIComponent(id)}`);
  const m = d.meeting;
  const path = `/meetings/${encodeURIComponent(m.id)}`;
  const editable = !['cancelled', 'ended'].includes(m.state);
  const formHolder = el('div');
  const act = (key, confirmKey, action) => button(key, async () => {
    if (confirmKey && !window.confirm(tr(confirmKey))) return;
    try {
      await post(`${path}/${action}`);
      await rerender();
    } catch (err) {
      showError(err);
    }
  });
  const actions = el('div', { class: 'buttons no-print' });
  if (editable) {
    actions.append(
      button('md.edit', async () => {
        try {
          formHolder.replaceChildren(await meetingForm(d));
        } catch (err) {
          showError(err);
        }
      }),
      act('md.cancel', 'md.confirmCancel', 'cancel'),
      act('md.end', 'md.confirmEnd', 'end'),
    );
  }
  const print = button('md.print', () => printLinks(view).catch(showError));
  print.id = 'print-links';
  const copyAll = button('md.copyAll', () => copyText(allLinksText(d.seats)).then(() => flash(tr('md.copiedAll', { n: d.seats.length })), showError));
  copyAll.id = 'copy-all-links';
  const csv = csvLink(d.seats, m);
  csv.id = 'links-csv';
  actions.append(button('md.copy', () => formHolder.replaceChildren(copyForm(m))), print, copyAll, csv);

  const seatRows = d.seats.map((s) => {
    const link = el('input', { class: 'link-input no-print', readonly: true, value: s.link, 'aria-label': `${tr('col.joinLink')}: ${s.name}`, 'data-seat': s.seat });
    // On paper the whole link, wrapped; the input above cuts it at its box.
    const linkText = el('span', { class: 'link-print print-only', 'data-seat': s.seat }, s.link);
    const qr = el('div', { class: 'qr', 'data-seat': s.seat, 'data-src': `/api/v1${path}/seats/${encodeURIComponent(s.seat)}/qr.svg`, 'data-alt': `${tr('md.qr')}: ${s.name}` });
    const buttons = el('div', { class: 'buttons no-print' },
      button('md.copyLink', async () => {
        link.select();
        try {
          await copyText(s.link);
        } catch {
          document.execCommand?.('copy');
        }
        flash(tr('md.copied'));
      }),
      button('md.qr', () => {
        qr.replaceChildren(qr.firstChild ? '' : el('img', { src: `/api/v1${path}/seats/${encodeURIComponent(s.seat)}/qr.svg`, alt: `${tr('md.qr')}: ${s.name}` }));
      }));
    if (editable) {
      buttons.append(button('md.reissue', async () => {
        if (!window.confirm(tr('md.confirmReissue', { name: s.name }))) return;
        try {
          await post(`${path}/seats/${encodeURIComponent(s.seat)}/reissue`);
          await rerender();
          flash(tr('md.reissued', { name: s.name }));
        } catch (err) {
          showError(err);
        }
      }));
    }
    return [s.point_code ?? '', s.name, tr(`role.${s.role}`), s.connected ? badge('on', tr('yes')) : '', el('div', {}, link, linkText, buttons, qr)];
  });

  // The link to an upstream server (the cascade); the page shows without it if it fails.
  const upstream = await upstreamSection(path, editable).catch(() => null);
  const att = await get(`${path}/attendance`);
  const attRows = att.rows.map((r) => [r.point_code ?? '', r.name, tr(`role.${r.role}`), badge(r.status, tr(`att.${r.status}`)),
    r.first_join ? dateTime(r.first_join) : '', String(r.joins), String(r.minutes), rollCallCell(r.roll_call), linkCell(r.link)]);
  const chatRows = d.chat.map((c) => [showSeconds(c.sent_ms), `${c.name ?? c.seat} (${c.seat})`,
    tr(c.to_chair ? 'md.toChair' : 'md.toAll'), el('span', { class: 'chat-text' }, c.text)]);

  async function rerender() {
    view.replaceChildren();
    await meetingDetailView(view, id);
  }

  const parts = [
    el('h1', { id: 'meeting-title' }, m.title),
    el('p', {}, `${dateTime(m.starts_at)} – ${dateTime(m.ends_at)} `, stateBadge(m.state), ` ${m.live_count} / ${m.seat_count}`),
    el('p', { class: 'muted' }, tr('md.opens', { min: m.open_minutes })),
    m.agenda ? el('p', { class: 'agenda' }, m.agenda) : null,
    actions,
    formHolder,
    el('h2', {}, tr('md.links')),
    table(['col.code', 'col.name', 'col.role', 'dash.connected', 'col.joinLink'], seatRows),
    upstream,
    el('h2', { class: 'no-print' }, tr('md.attendance')),
    el('p', { class: 'no-print', id: 'attendance-summary' }, tr('md.attSummary', att)),
    el('div', { class: 'buttons no-print' }, el('a', { href: `/api/v1${path}/attendance.csv?lang=${getLang()}`, id: 'attendance-csv', download: `attendance-${m.id}.csv` }, tr('md.csv'))),
    el('div', { class: 'no-print', id: 'attendance-table' }, table(['col.code', 'col.name', 'col.role', 'col.status', 'col.firstJoin', 'col.joins', 'col.minutes', 'col.rollCall', 'col.linkQuality'], attRows)),
    el('h2', { class: 'no-print' }, tr('md.chat')),
    d.chat_total > d.chat.length ? el('p', { class: 'muted no-print' }, tr('md.chatMore', { shown: d.chat.length, total: d.chat_total })) : null,
    el('div', { class: 'no-print', id: 'meeting-chat' }, chatRows.length ? table(['col.when', 'col.from', 'col.to', 'col.text'], chatRows) : el('p', { class: 'muted' }, tr('md.chatNone'))),
  ];
  view.append(...parts.filter(Boolean));
}

/** Unix milliseconds as Vietnam time with seconds (roll-call answers, chat): HH:mm:ss dd/MM/yyyy. */
function showSeconds(ms) {
  const [hm, date] = dateTime(new Date(ms)).split(' ');
  const v = new Date(ms + 7 * 3600 * 1000);
  return `${hm}:${String(v.getUTCSeconds()).padStart(2, '0')} ${date}`;
}

/** Every seat's QR code on the page, loaded, then the browser's print dialog. */
async function printLinks(root) {
  const loads = [];
  for (const box of root.querySelectorAll('.qr[data-src]')) {
    let img = box.querySelector('img');
    if (!img) {
      img = el('img', { src: box.dataset.src, alt: box.dataset.alt });
      box.replaceChildren(img);
    }
    if (img.complete) continue;
    loads.push(new Promise((resolve) => {
      img.addEventListener('load', resolve, { once: true });
      img.addEventListener('error', resolve, { once: true });
    }));
  }
  await Promise.all(loads);
  window.print();
}

async function copyText(text) {
  await navigator.clipboard.writeText(text);
}

/** One line per seat, "name: link", ready to paste into Zalo or an e-mail. */
function allLinksText(seats) {
  return seats.map((s) => `${s.name} (${tr(`role.${s.role}`)}): ${s.link}`).join('\n');
}

/** The links as a CSV file (UTF-8 with BOM for Excel), in the panel's language. */
function csvLink(seats, m) {
  const cell = (v) => (/[",;\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  // A cell Excel would run as a formula stays text.
  const safe = (v) => (/^[=+\-@\t\r]/.test(v) ? `'${v}` : v);
  const header = ['col.code', 'col.name', 'col.role', 'col.joinLink'].map((k) => tr(k));
  const rows = seats.map((s) => [s.point_code ?? s.seat, safe(s.name), tr(`role.${s.role}`), s.link]);
  const text = [header, ...rows].map((r) => r.map(cell).join(',')).join('\r\n');
  const url = URL.createObjectURL(new Blob(['\uFEFF', text, '\r\n'], { type: 'text/csv;charset=utf-8' }));
  return el('a', { href: url, download: `links-${m.id}.csv`, class: 'button-link' }, tr('md.linksCsv'));
}

function rollCallCell(times) {
  if (!times.length) return '';
  const last = showSeconds(times[times.length - 1] * 1000);
  return times.length === 1 ? last : tr('md.rollCallTimes', { n: times.length, time: last });
}

function linkCell(link) {
  if (!link) return '';
  const pct = (x) => (x * 100).toFixed(1);
  const stats = tr('md.linkStats', { rtt: link.rtt_ms_mean === null ? '?' : Math.round(link.rtt_ms_mean), mean: pct(link.loss_mean), max: pct(link.loss_max) });
  return el('span', {}, badge(`q-${link.quality}`, tr(`quality.${link.quality}`)), ` ${stats}`);
}

function copyForm(m) {
  const [sL, s] = field('md.copyStart', { name: 'starts_at', type: 'datetime-local', required: true });
  const [eL, e] = field('md.copyEnd', { name: 'ends_at', type: 'datetime-local', required: true });
  const dayLater = (local) => localInput(new Date(new Date(`${local}:00+07:00`).getTime() + 7 * 24 * 3600 * 1000));
  s.value = dayLater(m.starts_local.slice(0, 16));
  e.value = dayLater(m.ends_local.slice(0, 16));
  const form = el('form', { class: 'card row' }, sL, eL, el('button', { type: 'submit', class: 'primary' }, tr('md.copyGo')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const copy = await post(`/meetings/${encodeURIComponent(m.id)}/copy`, { starts_at: s.value, ends_at: e.value });
      location.hash = `#/meetings/${encodeURIComponent(copy.meeting.id)}`;
    } catch (err) {
      fieldErrors(form, err);
      showError(err);
    }
  });
  return form;
}
