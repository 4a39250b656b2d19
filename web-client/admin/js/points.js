// The points directory: search, add, edit, disable/enable, CSV import with a preview.

import { api, get, post, put } from './api.js';
import { t as tr } from '/js/i18n.js';
import { badge, button, el, field, fieldErrors, flash, showError, table } from './ui.js';
import { feedSection } from './feeds.js';

export const KINDS = ['province_hall', 'department', 'district', 'commune', 'other'];

/** Province first, then departments, districts, communes; by code within a kind. */
export function byKindThenCode(a, b) {
  const rank = (p) => (KINDS.includes(p.kind) ? KINDS.indexOf(p.kind) : KINDS.length);
  return rank(a) - rank(b) || a.code.localeCompare(b.code, 'vi', { numeric: true });
}
const FIELDS = [
  ['name', 'col.name'], ['unit', 'col.unit'], ['district', 'col.district'],
  ['contact_name', 'col.contact'], ['contact_phone', 'col.phone'], ['expected_link', 'col.link'],
  ['notes', 'col.notes'],
];

export async function pointsView(view) {
  const q = el('input', { type: 'search', id: 'point-search', 'aria-label': tr('points.search'), placeholder: tr('points.search') });
  const kind = el('select', { id: 'point-kind', 'aria-label': tr('col.kind') }, el('option', { value: '' }, tr('kind.all')),
    ...KINDS.map((k) => el('option', { value: k }, tr(`kind.${k}`))));
  const showDisabled = el('input', { type: 'checkbox', id: 'show-disabled' });
  const count = el('p', { class: 'muted', id: 'point-count' });
  const list = el('div', { id: 'point-list' });
  const editor = el('div', { id: 'point-editor' });

  async function refresh() {
    const params = new URLSearchParams({ q: q.value, include_disabled: showDisabled.checked });
    if (kind.value) params.set('kind', kind.value);
    const points = (await get(`/points?${params}`)).sort(byKindThenCode);
    count.textContent = tr('points.count', { n: points.length });
    const rows = points.map((p) => [
      p.code, p.name, tr(`kind.${p.kind}`), p.district, [p.contact_name, p.contact_phone].filter(Boolean).join(' · '), p.expected_link,
      p.disabled ? badge('cancelled', tr('points.disabled')) : badge('on', tr('points.active')),
      el('div', { class: 'buttons' },
        button('points.edit', () => edit(p)),
        button(p.disabled ? 'points.enable' : 'points.disable', async () => {
          try {
            await post(`/points/${encodeURIComponent(p.code)}/${p.disabled ? 'enable' : 'disable'}`);
            await refresh();
          } catch (err) {
            showError(err);
          }
        })),
    ]);
    list.replaceChildren(table(['col.code', 'col.name', 'col.kind', 'col.district', 'col.contact', 'col.link', 'col.status', 'col.actions'], rows,
      (i) => (points[i].disabled ? 'disabled' : undefined)));
  }

  function edit(point) {
    const isNew = !point;
    const form = el('form', { class: 'card', id: 'point-form' });
    const inputs = {};
    const row = el('div', { class: 'row' });
    if (isNew) {
      const [label, input] = field('col.code', { name: 'code', required: true, maxlength: 32 });
      inputs.code = input;
      row.append(label);
    }
    const kindSel = el('select', { name: 'kind' }, ...KINDS.map((k) => el('option', { value: k }, tr(`kind.${k}`))));
    kindSel.value = point?.kind ?? 'commune';
    inputs.kind = kindSel;
    for (const [name, key] of FIELDS) {
      const [label, input] = field(key, { name, tag: name === 'notes' ? 'textarea' : 'input', maxlength: name === 'notes' ? 2000 : 200 });
      input.value = point?.[name] ?? '';
      inputs[name] = input;
      row.append(label);
      if (name === 'name') row.append(el('label', {}, tr('col.kind'), kindSel, el('span', { class: 'error-text', 'data-error-for': 'kind' })));
    }
    form.append(el('h2', {}, isNew ? tr('points.add') : `${point.code} – ${point.name}`), row,
      el('div', { class: 'buttons' }, el('button', { type: 'submit', class: 'primary' }, tr('points.save')),
        button('points.cancel', () => editor.replaceChildren(addButton))));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.value]));
      try {
        const saved = isNew ? await post('/points', body) : await put(`/points/${encodeURIComponent(point.code)}`, body);
        flash(tr('points.saved', { code: saved.code }));
        editor.replaceChildren(addButton);
        await refresh();
      } catch (err) {
        fieldErrors(form, err);
        showError(err);
      }
    });
    editor.replaceChildren(form);
    if (!isNew) editor.append(feedSection(`/points/${encodeURIComponent(point.code)}/calendar-feed`, 'feed.point'));
    (inputs.code ?? inputs.name).focus();
  }

  const addButton = button('points.add', () => edit(null), 'primary');
  editor.append(addButton);

  let pending;
  q.addEventListener('input', () => {
    clearTimeout(pending);
    pending = setTimeout(() => refresh().catch(showError), 250);
  });
  kind.addEventListener('change', () => refresh().catch(showError));
  showDisabled.addEventListener('change', () => refresh().catch(showError));

  view.append(
    el('h1', {}, tr('points.title')),
    el('div', { class: 'row card' }, q, kind, el('label', { class: 'field' }, el('span', {}, tr('points.showDisabled')), showDisabled)),
    editor,
    importSection(refresh),
    count,
    list,
  );
  await refresh();
}

function importSection(refresh) {
  const file = el('input', { type: 'file', id: 'import-file', accept: '.csv,text/csv' });
  const result = el('div', { id: 'import-result', 'aria-live': 'polite' });
  const run = async (dryRun) => {
    const f = file.files?.[0];
    if (!f) {
      file.focus();
      return;
    }
    result.replaceChildren();
    try {
      const report = await api('POST', `/points/import?dry_run=${dryRun}`, f, { raw: true, contentType: 'text/csv' });
      const summary = tr(dryRun ? 'import.summary' : 'import.done', report);
      flash(summary);
      result.append(el('p', { id: 'import-summary' }, dryRun ? summary : tr('import.done', report)));
      if (dryRun) {
        result.append(table(['import.line', 'col.code', 'col.name', 'col.kind', 'col.status'],
          report.preview.map((r) => [String(r.line), r.code, r.name, tr(`kind.${r.kind}`), tr(`import.action.${r.action}`)])));
      } else {
        await refresh();
      }
    } catch (err) {
      showError(err);
      const report = err.details;
      if (report?.errors) {
        result.append(el('p', { class: 'error-text' }, tr('import.errors', { n: report.error_count })),
          table(['import.line', 'col.code', 'col.kind', 'col.detail'],
            report.errors.map((e) => [String(e.line), e.code, e.column ?? '', e.message])));
      } else if (err.fields?.file) {
        result.append(el('p', { class: 'error-text' }, err.fields.file));
      }
    }
  };
  const apply = el('button', { type: 'button', class: 'primary', id: 'import-apply' }, tr('import.apply'));
  apply.addEventListener('click', () => run(false));
  const preview = button('import.preview', () => run(true));
  preview.id = 'import-preview';
  return el('details', { class: 'card', id: 'import' },
    el('summary', {}, tr('import.title')),
    el('p', { class: 'muted' }, tr('import.help')),
    el('div', { class: 'row' }, el('label', {}, tr('import.file'), file),
      preview, apply),
    result);
}
