// Roll call (điểm danh) for the chair: start / end, and who answered "Có mặt" and when.
// It counts every invited point, connected or not (a hall that never joined has not answered
// either), and the list of those who did not answer stays after the roll call ends. The grid
// marks the answers on the tiles. The server stores the answers with the meeting's attendance.

import { el } from './dom.js';
import { clock } from './format.js';
import { setText } from './i18n.js';

export function mountRollCall(session, { nameOf, invitedPoints }) {
  const title = el('h2', { class: 'section-title', id: 'roll-title' });
  setText(title, 'roll.title');
  const toggle = el('button', { type: 'button', id: 'roll-toggle', class: 'primary' });
  const summary = el('p', { class: 'roll-summary', id: 'roll-summary', role: 'status' });
  const answers = el('ol', { class: 'roll-answers', id: 'roll-answers' });
  const missingTitle = el('h3', { class: 'sub-title', id: 'roll-missing-title' });
  const missingList = el('ul', { class: 'roll-missing small', id: 'roll-missing', 'aria-labelledby': 'roll-missing-title' });
  const missing = el('div', { hidden: true }, missingTitle, missingList);
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
      missing.hidden = true;
      return;
    }
    const list = rc.answers ?? [];
    const answered = new Set(list.map((a) => a.point));
    const invited = invitedPoints();
    const total = new Set([...invited, ...answered]).size;
    if (running) setText(summary, 'roll.running', { n: list.length, total });
    else setText(summary, 'roll.ended', { n: list.length, total, time: clock(rc.ended_at) });
    answers.replaceChildren(
      ...list.map((a) => {
        const li = el('li', { 'data-point': a.point });
        setText(li, 'roll.answer', { name: nameOf(a.point), time: clock(a.at) });
        return li;
      }),
    );
    const notYet = invited.filter((code) => !answered.has(code));
    missing.hidden = notYet.length === 0;
    setText(missingTitle, running ? 'roll.missingRunning' : 'roll.missingEnded', { n: notYet.length });
    missingList.replaceChildren(...notYet.map((code) => el('li', { 'data-point': code }, nameOf(code))));
  }

  return { root, update, destroy: () => root.remove() };
}
