// Small UI helpers shared by the admin views. Every piece of text goes through textContent.

import { el } from '/js/dom.js';
import { localMessage, t as tr } from '/js/i18n.js';

export { el };

export function flash(message, isError = false) {
  const box = document.getElementById('flash');
  box.textContent = message;
  box.classList.toggle('error', isError);
  box.hidden = !message;
  if (isError) box.setAttribute('role', 'alert');
  else box.setAttribute('role', 'status');
}

export function showError(err) {
  // The server writes "Tiếng Việt. / English.": show the half of the chosen language.
  flash(err?.message ? localMessage(err.message) : tr('error.network'), true);
}

/** A table: headers are string keys, rows are arrays of strings or nodes. */
export function table(headKeys, rows, rowClass) {
  const thead = el('thead', {}, el('tr', {}, ...headKeys.map((k) => el('th', { scope: 'col' }, tr(k)))));
  const tbody = el('tbody');
  rows.forEach((cells, i) => {
    const tr_ = el('tr', { class: rowClass ? rowClass(i) : undefined });
    for (const c of cells) tr_.append(el('td', {}, c ?? ''));
    tbody.append(tr_);
  });
  return el('table', { class: 'data' }, thead, tbody);
}

export function badge(cls, text) {
  return el('span', { class: `badge ${cls}` }, text);
}

export function button(key, onClick, cls) {
  const b = el('button', { type: 'button', class: cls }, tr(key));
  b.addEventListener('click', onClick);
  return b;
}

/** A labelled input; returns [label, input]. */
export function field(key, attrs = {}) {
  const input = el(attrs.tag || 'input', { ...attrs, tag: undefined });
  const label = el('label', {}, tr(key), input, el('span', { class: 'error-text', 'data-error-for': attrs.name }));
  return [label, input];
}

/** Shows the server's field messages next to the matching inputs of a form. */
export function fieldErrors(form, err) {
  for (const span of form.querySelectorAll('[data-error-for]')) span.textContent = '';
  for (const [name, message] of Object.entries(err?.fields || {})) {
    const span = form.querySelector(`[data-error-for="${CSS.escape(name.replace(/\[\d+\]$/, ''))}"]`);
    if (span) span.textContent = localMessage(message);
  }
}

export function confirmText(message) {
  return window.confirm(message);
}
