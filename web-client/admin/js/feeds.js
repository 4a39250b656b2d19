// Calendar subscription feeds: the URL a calendar program subscribes to (no login: the key in
// it is the access), with a copy button and a re-issue button that stops the old URL.

import { get, post } from './api.js';
import { t as tr } from '/js/i18n.js';
import { button, el, flash, showError } from './ui.js';

/**
 * A card with the feed at `apiPath` (`/points/{code}/calendar-feed` or `/calendar/feed`);
 * `hintKey` explains what the feed holds. Loads the URL itself.
 */
export function feedSection(apiPath, hintKey) {
  const input = el('input', { class: 'link-input feed-url', readonly: true, 'aria-label': tr('feed.url') });
  const issued = el('span', { class: 'muted' });
  const card = el('section', { class: 'card feed no-print' },
    el('h2', {}, tr('feed.title')),
    el('p', { class: 'muted' }, tr(hintKey)),
    input,
    el('div', { class: 'buttons' },
      button('md.copyLink', async () => {
        input.select();
        try {
          await navigator.clipboard.writeText(input.value);
        } catch {
          document.execCommand?.('copy');
        }
        flash(tr('md.copied'));
      }),
      button('md.reissue', async () => {
        if (!window.confirm(tr('feed.confirmReissue'))) return;
        try {
          show(await post(`${apiPath}/reissue`));
          flash(tr('feed.reissued'));
        } catch (err) {
          showError(err);
        }
      }),
      issued));

  function show(feed) {
    input.value = feed.url;
    issued.textContent = tr('feed.issued', { at: feed.issued_local.slice(0, 16).replace('T', ' ') });
  }
  get(apiPath).then(show, showError);
  return card;
}
