// The chair's upward panel, shown only in a meeting linked to an upstream server
// (room_state.upstream): who goes up on the province's relay seat (docs/protocol.md `send_up`):
// the chair by default, or the local floor holder the chair sends up in its place, e.g. a
// commune the national chair wants to hear; and the hand raised in the upstream meeting
// (`raise_hand_up`, for the province itself here, for a commune from the hand queue), gone
// when the upstream chair grants or lowers it there; and whether the upstream chair gives the
// province the floor (room_state.upstream_floor). Its first line says whether the link to the
// upstream carries its program (room_state.upstream: `live`, or `lost` while the communes see
// the province's own chair).

import { el } from './dom.js';
import { setText } from './i18n.js';

export function mountUpwardPanel(session, nameOf) {
  const title = el('h2', { class: 'section-title', id: 'upward-title' });
  setText(title, 'upward.title');
  const link = el('p', { class: 'upward-link', id: 'upward-link', role: 'status' });
  const now = el('p', { class: 'upward-now', id: 'upward-now', role: 'status' });
  const sendFloor = el('button', { type: 'button', id: 'upward-send-floor', class: 'primary' });
  setText(sendFloor, 'upward.sendFloor');
  const sendChair = el('button', { type: 'button', id: 'upward-send-chair' });
  setText(sendChair, 'upward.sendChair');
  const floorUp = el('p', {
    class: 'upward-floor',
    id: 'upward-floor',
    role: 'status',
    hidden: true,
  });
  setText(floorUp, 'upward.floor');
  const hand = el('p', { class: 'upward-hand', id: 'upward-hand', role: 'status' });
  const raise = el('button', { type: 'button', id: 'upward-raise' });
  setText(raise, 'upward.raise');
  const lower = el('button', { type: 'button', id: 'upward-lower' });
  setText(lower, 'upward.lower');
  const root = el(
    'section',
    { class: 'side-section upward-panel', 'aria-labelledby': 'upward-title', hidden: true },
    title,
    link,
    floorUp,
    now,
    el('div', { class: 'button-row' }, sendFloor, sendChair),
    hand,
    el('div', { class: 'button-row' }, raise, lower),
  );
  raise.addEventListener('click', () => session.control('raise_hand_up'));
  lower.addEventListener('click', () => session.control('lower_hand_up'));

  let floorPoint = null;
  sendFloor.addEventListener('click', () => {
    if (floorPoint) session.control('send_up', { point: floorPoint });
  });
  sendChair.addEventListener('click', () => session.control('send_up'));

  function update(state) {
    root.hidden = !state?.upstream;
    const live = state?.upstream === 'live';
    setText(link, live ? 'upward.live' : 'upward.lost');
    link.classList.toggle('lost', !live);
    floorUp.hidden = state?.upstream_floor !== true;
    const sent = state?.sent_up ?? null;
    floorPoint = state?.floor?.point ?? null;
    if (sent) setText(now, 'upward.sendingPoint', { name: nameOf(sent) });
    else setText(now, 'upward.sendingChair');
    sendFloor.disabled = !floorPoint || floorPoint === sent;
    sendChair.disabled = !sent;
    const up = state?.hand_up ?? null;
    const own = session.roster.get(session.participantId)?.point;
    if (up && up.point === own) setText(hand, 'upward.handForChair');
    else if (up) setText(hand, 'upward.handFor', { name: nameOf(up.point) });
    else setText(hand, 'upward.noHand');
    lower.disabled = !up;
  }

  return {
    root,
    update,
    destroy() {
      root.remove();
    },
  };
}
