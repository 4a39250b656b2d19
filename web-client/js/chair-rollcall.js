// Roll call (điểm danh) for the chair: start / end, and who answered "Có mặt" and when.
// The server stores the answers with the meeting's attendance.

import { el } from './dom.js';
import { clock } from './format.js';
import { setText } from './i18n.js';

export function mountRollCall(session, { nameOf, connectedPoints }) {
  const title = el('h2', { class: 'section-title', id: 'roll-title' });
  setText(title, 'roll.title');
  const toggle = el('button', { type: 'button', id: 'roll-toggle', class: 'primary' });
  const summary = el('p', { class: 'roll-summary', id: 'roll-summary', role: 'status' });
  const answers = el('ol', { class: 'roll-answers', id: 'roll-answers' });
  const missing = el('p', { class: 'roll-missing small' });
  const root = el('section', { class: 'side-section roll-panel', 'aria-labelledby': 'roll-title' }, title, toggle, summary, answers, missing);
  let running = false;
  toggle.addEventListener('click', () => session.control(running ? 'end_roll_call' : 'start_roll_call'));

  function update(state) {
    const rc = state?.roll_call;
    running = Boolean(rc && !rc.ended_at);
    setText(toggle, running ? 'roll.end' : 'roll.start');
    toggle.classList.toggle('danger', running);
    toggle.classList.toggle('primary', !running);
    if (!rc) {
      summary.textContent = '';
      answers.replaceChildren();
      missing.textContent = '';
      return;
    }
    const list = rc.answers ?? [];
    const answered = new Set(list.map((a) => a.point));
    const connected = connectedPoints();
    const total = new Set([...connected, ...answered]).size;
    if (running) setText(summary, 'roll.running', { n: list.length, total });
    else setText(summary, 'roll.ended', { n: list.length, time: clock(rc.ended_at) });
    answers.replaceChildren(
      ...list.map((a) => {
        const li = el('li', { 'data-point': a.point });
        setText(li, 'roll.answer', { name: nameOf(a.point), time: clock(a.at) });
        return li;
      }),
    );
    const notYet = connected.filter((code) => !answered.has(code)).map(nameOf);
    if (running && notYet.length) setText(missing, 'roll.missing', { names: notYet.join(', ') });
    else missing.textContent = '';
  }

  return { root, update, destroy: () => root.remove() };
}
