// The point's control bar: microphone state, raise / lower hand (with a short text), "Có mặt"
// during a roll call, own link quality, and the chat button. While its microphone is open the
// point can mute itself (locally: the chair still sees it open), and while it holds the floor
// it can hand the floor back. Getting the floor or a roll call rings a chime and shows a banner
// (`attention`, placed over the stage by point.js).

import { el } from './dom.js';
import { chime } from './chime.js';
import { clock } from './format.js';
import { setText, t } from './i18n.js';
import { handIcon, micIcon, qualityBars, setQuality } from './icons.js';
import { watchOwnLink } from './linkquality.js';

const HAND_TEXT_MAX = 140;
const ATTENTION_MS = 12_000;

export function mountPointBar(session, { onChatToggle, micTrack = () => null }) {
  const mic = el('p', { class: 'mic-state off', id: 'mic-state', role: 'status' });
  const selfMute = el('button', { type: 'button', id: 'self-mute', hidden: true });
  const handBack = el('button', { type: 'button', id: 'hand-back', hidden: true });
  setText(handBack, 'point.handBack');
  const attention = el('p', { class: 'attention', id: 'attention', role: 'alert', hidden: true });
  const handText = el('input', {
    type: 'text',
    id: 'hand-text',
    maxlength: String(HAND_TEXT_MAX),
    'data-i18n-attr': 'placeholder:point.handText;aria-label:point.handText',
  });
  const raise = el('button', { type: 'submit', id: 'raise-hand', class: 'primary' }, handIcon(), el('span'));
  setText(raise.lastChild, 'point.raiseHand');
  const lower = el('button', { type: 'button', id: 'lower-hand', hidden: true });
  setText(lower, 'point.lowerHand');
  const handStatus = el('p', { class: 'hand-status', id: 'hand-status', role: 'status' });
  const present = el('button', { type: 'button', id: 'present-button', class: 'present', hidden: true });
  setText(present, 'point.present');
  const rollNote = el('p', { class: 'roll-note', id: 'roll-note', role: 'status' });
  const bars = qualityBars();
  const quality = el('p', { class: 'own-quality', id: 'own-quality' }, bars, el('span'));
  setText(quality.lastChild, 'quality.unknown');
  const chat = el('button', { type: 'button', id: 'chat-toggle', 'aria-expanded': 'false' });
  setText(chat, 'chat.open');
  const root = el(
    'div',
    { class: 'point-bar', role: 'toolbar', 'data-i18n-attr': 'aria-label:chair.controls' },
    mic,
    selfMute,
    handBack,
    el('form', { class: 'hand-form', id: 'hand-form' }, handText, raise, lower),
    handStatus,
    present,
    rollNote,
    quality,
    chat,
  );

  const ownCode = () => session.roster.get(session.participantId)?.point;
  root.querySelector('#hand-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = handText.value.trim();
    session.control('raise_hand', text ? { text } : {});
  });
  lower.addEventListener('click', () => session.control('lower_hand'));
  handBack.addEventListener('click', () => session.control('revoke_floor'));
  selfMute.addEventListener('click', () => {
    const track = micTrack();
    if (track) track.enabled = !track.enabled;
    update(lastState);
  });
  let lastState = null;
  let wasOpen = false;
  let wasFloor = false;
  let wasRollCall = false;
  let attentionTimer = null;
  const call = (key) => {
    chime();
    setText(attention, key);
    attention.hidden = false;
    clearTimeout(attentionTimer);
    attentionTimer = setTimeout(() => (attention.hidden = true), ATTENTION_MS);
  };
  present.addEventListener('click', () => session.control('answer_roll_call'));
  chat.addEventListener('click', () => onChatToggle());

  const stopLink = watchOwnLink(session, (q) => {
    setQuality(bars, q.quality);
    const label = t(`quality.${q.quality}`);
    const text = q.rtt_ms != null ? t('quality.detail', { label, rtt: q.rtt_ms, loss: Math.round(q.loss * 100) }) : label;
    quality.lastChild.textContent = text;
    quality.dataset.quality = q.quality;
    quality.dataset.source = q.source;
  });

  function update(state) {
    lastState = state;
    const code = ownCode();
    const floor = Boolean(code && state?.floor?.point === code);
    const open = floor || Boolean(code && state?.unmuted?.includes(code));
    const track = micTrack();
    // Opened again by the chair: whoever muted itself before is heard again.
    if (open && !wasOpen && track) track.enabled = true;
    const selfMuted = open && Boolean(track && !track.enabled);
    mic.className = `mic-state ${selfMuted ? 'off' : floor ? 'speaking' : open ? 'on' : 'off'}`;
    mic.replaceChildren(micIcon(!open || selfMuted), el('span'));
    setText(mic.lastChild, selfMuted ? 'point.selfMuted' : floor ? 'point.speaking' : open ? 'point.micOn' : 'point.micOff');
    selfMute.hidden = !open || !track;
    setText(selfMute, selfMuted ? 'point.selfUnmute' : 'point.selfMute');
    handBack.hidden = !floor;

    const hands = state?.hands ?? [];
    const pos = hands.findIndex((h) => h.point === code);
    raise.hidden = pos >= 0 || floor;
    handText.hidden = pos >= 0 || floor;
    lower.hidden = pos < 0;
    if (pos >= 0) setText(handStatus, 'point.handRaised', { n: pos + 1 });
    else handStatus.textContent = '';

    const rc = state?.roll_call;
    const running = Boolean(rc && !rc.ended_at);
    const mine = rc?.answers?.find((a) => a.point === code);
    present.hidden = !running || Boolean(mine);
    if (floor && !wasFloor) call('point.floorBanner');
    else if (running && !wasRollCall && !mine) call('point.rollCallBanner');
    if ((!floor && wasFloor) || (!running && wasRollCall)) attention.hidden = true;
    wasOpen = open;
    wasFloor = floor;
    wasRollCall = running;
    if (mine) setText(rollNote, 'point.presentDone', { time: clock(mine.at) });
    else if (running) setText(rollNote, 'point.rollCall');
    else rollNote.textContent = '';
  }

  return {
    root,
    attention,
    update,
    setChatOpen(open, unread = 0) {
      chat.setAttribute('aria-expanded', String(open));
      if (open) setText(chat, 'chat.close');
      else if (unread > 0) setText(chat, 'chat.new', { n: unread });
      else setText(chat, 'chat.open');
      chat.classList.toggle('unread', !open && unread > 0);
    },
    destroy() {
      clearTimeout(attentionTimer);
      attention.remove();
      stopLink();
      root.remove();
    },
  };
}
