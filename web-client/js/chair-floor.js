// The chair's floor panel: who speaks (with a speaking-time counter from room_state.floor.since),
// revoke / next, and the queue of raised hands in order with grant / lower buttons (and, in a
// meeting linked to an upstream server, one that raises the hand upstream for that point).

import { el } from './dom.js';
import { clock, duration } from './format.js';
import { setText } from './i18n.js';

export function mountFloorPanel(session, nameOf) {
  const title = el('h2', { class: 'section-title', id: 'floor-title' });
  setText(title, 'floor.title');
  const holder = el('p', { class: 'floor-holder', id: 'floor-holder' });
  const timer = el('span', { class: 'floor-timer', id: 'floor-timer', role: 'timer' });
  const revoke = el('button', { type: 'button', id: 'floor-revoke', class: 'danger' });
  setText(revoke, 'floor.revoke');
  const next = el('button', { type: 'button', id: 'floor-next' });
  setText(next, 'floor.next');
  const handsTitle = el('h3', { class: 'sub-title', id: 'hands-title' });
  const handsNone = el('p', { class: 'empty-note' });
  setText(handsNone, 'hands.none');
  const hands = el('ol', { class: 'hand-queue', id: 'hand-queue', 'aria-labelledby': 'hands-title' });
  const root = el(
    'section',
    { class: 'side-section floor-panel', 'aria-labelledby': 'floor-title' },
    title,
    el('div', { class: 'floor-now' }, holder, timer),
    el('div', { class: 'button-row' }, revoke, next),
    handsTitle,
    handsNone,
    hands,
  );

  revoke.addEventListener('click', () => session.control('revoke_floor'));
  next.addEventListener('click', () => session.control('next_floor'));
  hands.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action]');
    if (!b) return;
    const point = b.dataset.point;
    if (b.dataset.action === 'grant') session.control('grant_floor', { point });
    else if (b.dataset.action === 'up') {
      const text = queued.find((h) => h.point === point)?.text;
      session.control('raise_hand_up', text ? { point, text } : { point });
    } else session.control('lower_hand', { point });
  });

  let since = null;
  let queued = [];
  const tick = () => {
    timer.textContent = since ? duration((Date.now() - since) / 1000) : '';
  };
  const interval = setInterval(tick, 1000);

  function update(state) {
    const floor = state?.floor;
    if (floor) {
      setText(holder, floor.participant ? 'floor.holder' : 'floor.holderAway', { name: nameOf(floor.point) });
      since = floor.since;
    } else {
      setText(holder, 'floor.none');
      since = null;
    }
    tick();
    revoke.disabled = !floor;
    const queue = state?.hands ?? [];
    queued = queue;
    const linked = Boolean(state?.upstream);
    next.disabled = !queue.some((h) => h.participant);
    setText(handsTitle, 'hands.title', { n: queue.length });
    handsNone.hidden = queue.length > 0;
    hands.replaceChildren(
      ...queue.map((h) => {
        const grant = el('button', { type: 'button', class: 'primary small', 'data-action': 'grant', 'data-point': h.point, disabled: !h.participant });
        setText(grant, 'hands.grant');
        const lower = el('button', { type: 'button', class: 'small', 'data-action': 'lower', 'data-point': h.point });
        setText(lower, 'hands.lower');
        let up = null;
        if (linked) {
          up = el('button', { type: 'button', class: 'small', 'data-action': 'up', 'data-point': h.point });
          setText(up, 'hands.up');
        }
        return el(
          'li',
          { class: 'hand-item', 'data-point': h.point },
          el('div', { class: 'hand-head' }, el('strong', {}, nameOf(h.point)), el('time', {}, clock(h.at))),
          h.text ? el('p', { class: 'hand-text' }, h.text) : null,
          el('div', { class: 'button-row' }, grant, lower, up),
        );
      }),
    );
  }

  return {
    root,
    update,
    destroy() {
      clearInterval(interval);
      root.remove();
    },
  };
}
