// A meeting's link to an upstream server's relay seat (the cascade, docs/admin.md "Linked
// meetings"): shown with its token cut short, set, replaced or removed. Text through textContent.

import { api, get, put } from './api.js';
import { t as tr } from '/js/i18n.js';
import { button, el, field, fieldErrors, flash, showError } from './ui.js';

/** The section for the meeting at `path` (`/meetings/<id>`); a form only while `editable`. */
export async function upstreamSection(path, editable) {
  const box = el('section', { id: 'upstream', class: 'no-print' }, el('h2', {}, tr('up.title')));
  let current = null;
  try {
    current = await get(`${path}/upstream`);
  } catch (err) {
    if (err.status !== 404) throw err;
  }
  const again = async () => box.replaceWith(await upstreamSection(path, editable));
  if (current) {
    box.append(el('p', { id: 'upstream-current' }, tr('up.current', {
      name: current.name,
      link: current.link,
      relay: tr(`up.relay.${current.relay}`),
    })));
  } else {
    box.append(el('p', { class: 'muted', id: 'upstream-none' }, tr('up.none')));
  }
  if (!editable) return box;
  const form = el('form', { class: 'upstream-form', id: 'upstream-form' });
  const [linkLabel, link] = field('up.link', { name: 'link', type: 'url', maxlength: 4096, required: true, autocomplete: 'off' });
  const [nameLabel, name] = field('up.name', { name: 'name', maxlength: 100, value: current?.name ?? '' });
  const [fpLabel, fp] = field('up.fingerprint', { name: 'fingerprint', maxlength: 200, value: current?.fingerprint ?? '' });
  form.append(linkLabel, nameLabel, fpLabel, el('div', { class: 'buttons' }, el('button', { type: 'submit' }, tr('up.save'))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { link: link.value.trim() };
    if (name.value.trim()) body.name = name.value.trim();
    if (fp.value.trim()) body.fingerprint = fp.value.trim();
    try {
      await put(`${path}/upstream`, body);
      flash(tr('up.saved'));
      await again();
    } catch (err) {
      fieldErrors(form, err);
      showError(err);
    }
  });
  box.append(form);
  if (current) {
    box.append(el('div', { class: 'buttons' }, button('up.remove', async () => {
      if (!window.confirm(tr('up.confirmRemove'))) return;
      try {
        await api('DELETE', `${path}/upstream`);
        flash(tr('up.removed'));
        await again();
      } catch (err) {
        showError(err);
      }
    })));
  }
  return box;
}
