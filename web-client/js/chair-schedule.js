// The chair's warning before the planned end: the server sends `meeting_ending` 10 and 2
// minutes before it (docs/protocol.md); the banner says when the meeting ends by itself and
// offers +15 / +30 minutes (`extend_meeting`). `meeting_extended` says the new end.

import { el } from './dom.js';
import { setText } from './i18n.js';
import { dateTime } from './format.js';

/** The banner, hidden until a warning; returns {root, destroy}. */
export function mountScheduleBanner(session) {
  const off = new AbortController();
  const text = el('span', { id: 'ending-text' });
  const extend = (minutes) => {
    const b = el('button', { type: 'button', id: `extend-${minutes}`, class: 'primary' });
    setText(b, 'chair.extend', { minutes });
    b.addEventListener('click', () => session.control('extend_meeting', { minutes }));
    return b;
  };
  const buttons = el('span', { class: 'button-row' }, extend(15), extend(30));
  const root = el('section', { class: 'ending-banner', id: 'ending-banner', role: 'alert', hidden: true }, text, buttons);
  session.addEventListener('meeting-ending', (e) => {
    const { ends_at: endsAt, minutes_left: left } = e.detail;
    setText(text, 'chair.ending', { time: dateTime(new Date(endsAt)), minutes: left });
    buttons.hidden = false;
    root.hidden = false;
  }, { signal: off.signal });
  session.addEventListener('meeting-extended', (e) => {
    setText(text, 'chair.extended', { time: dateTime(new Date(e.detail.ends_at)), minutes: e.detail.minutes });
    buttons.hidden = true;
    root.hidden = false;
  }, { signal: off.signal });
  return { root, destroy: () => { off.abort(); root.remove(); } };
}
