// Chair view (province hall). Three columns sized for 1366x768:
//   left   – the program it sends (own camera, own screen share) and the meeting controls;
//   middle – the grid of points (chair-grid.js);
//   right  – floor and raised hands (chair-floor.js), roll call (chair-rollcall.js), chat.

import { el } from './dom.js';
import { mountFloorPanel } from './chair-floor.js';
import { PointGrid } from './chair-grid.js';
import { mountRollCall } from './chair-rollcall.js';
import { mountChat } from './chat.js';
import { onLangChange, setText } from './i18n.js';
import { shareController } from './share.js';
import { Tile } from './tile.js';

export function mountChair(container, session, { localStream, notify }) {
  const off = new AbortController();
  const on = (type, fn) => session.addEventListener(type, fn, { signal: off.signal });

  // --- left: program and controls ---
  const self = new Tile({ name: session.roster.get(session.participantId)?.name ?? '', badge: 'tile.you', mirror: true });
  const selfVideo = localStream?.getVideoTracks()[0] ?? null;
  self.setVideo(selfVideo);
  if (!selfVideo) self.setStatusKey('tile.noCamera');
  const shareTile = new Tile({ name: '', badge: 'chair.sharePreview' });
  shareTile.root.classList.add('share-preview');
  shareTile.root.hidden = true;
  const programTitle = el('h2', { class: 'section-title', id: 'program-title' });
  setText(programTitle, 'chair.program');

  const shareButton = el('button', { type: 'button', id: 'share-button', class: 'primary' });
  const allowShare = checkbox('allow-share', 'chair.allowShare');
  const discussion = checkbox('discussion', 'chair.discussion');
  const muteAll = button('mute-all', 'chair.muteAll');
  const unmuteAll = button('unmute-all', 'chair.unmuteAll');
  const end = button('end-meeting', 'chair.end', 'danger');
  const controlsTitle = el('h2', { class: 'section-title', id: 'controls-title' });
  setText(controlsTitle, 'chair.controls');
  const left = el(
    'aside',
    { class: 'chair-left', 'aria-labelledby': 'program-title' },
    programTitle,
    self.root,
    shareTile.root,
    el(
      'section',
      { class: 'side-section controls', 'aria-labelledby': 'controls-title' },
      controlsTitle,
      shareButton,
      allowShare.label,
      discussion.label,
      el('div', { class: 'button-row' }, muteAll, unmuteAll),
      end,
    ),
  );

  // --- middle and right ---
  const grid = new PointGrid(session);
  const nameOf = (code) => grid.entries.get(code)?.name ?? code;
  const connectedPoints = () => [...grid.entries.values()].filter((e) => e.participant).map((e) => e.code);
  const floor = mountFloorPanel(session, nameOf);
  const roll = mountRollCall(session, { nameOf, connectedPoints });
  const chat = mountChat(session, { recipients: ['all'] });
  const right = el('aside', { class: 'chair-right' }, floor.root, roll.root, chat.root);

  const view = el('div', { class: 'chair-view' }, left, grid.root, right);
  const confirm = endDialog(() => session.control('end_meeting'));
  container.replaceChildren(view, confirm.root);

  const share = shareController(session, {
    button: shareButton,
    onChange: (track) => {
      shareTile.setVideo(track);
      shareTile.root.hidden = !track;
    },
    onError: (err) => notify?.('chair.shareFailed', { reason: err?.name ?? 'error' }),
  });
  allowShare.input.addEventListener('change', () => session.control('allow_share', { allowed: allowShare.input.checked }));
  discussion.input.addEventListener('change', () => session.control('set_discussion', { on: discussion.input.checked }));
  muteAll.addEventListener('click', () => session.control('set_mute', { muted: true }));
  unmuteAll.addEventListener('click', () => session.control('set_mute', { muted: false }));
  end.addEventListener('click', () => confirm.open());

  function applyState(state) {
    grid.setRoomState(state);
    floor.update(state);
    roll.update(state);
    allowShare.input.checked = Boolean(state?.share_allowed);
    discussion.input.checked = Boolean(state?.discussion);
  }

  on('joined', () => {
    grid.addInvited(session.invited);
    grid.loadRoster(session.roster);
    grid.resetViewport();
  });
  on('participant-joined', (e) => {
    grid.addParticipant(e.detail.participant);
    roll.update(session.roomState);
  });
  on('participant-left', (e) => {
    grid.markLeft(e.detail.participant);
    roll.update(session.roomState);
  });
  on('media', (e) => grid.setTracks(e.detail.tracks));
  on('room-state', (e) => applyState(e.detail));
  on('active-speakers', (e) => {
    grid.setSpeakers(e.detail.participants ?? []);
    self.root.classList.toggle('speaking', (e.detail.participants ?? []).includes(session.participantId));
  });
  on('link-quality', (e) => grid.setLinkQuality(e.detail));
  on('video-paused', () => grid.setPaused());
  onLangChange(() => grid.relabel());

  grid.addInvited(session.invited);
  grid.loadRoster(session.roster);
  grid.setTracks(session.receivedTracks());
  applyState(session.roomState);

  return {
    destroy() {
      off.abort();
      share.destroy();
      self.destroy();
      shareTile.destroy();
      grid.destroy();
      floor.destroy();
      roll.destroy();
      chat.destroy();
      view.remove();
      confirm.root.remove();
    },
  };
}

function button(id, key, cls = '') {
  const b = el('button', { type: 'button', id, class: cls });
  setText(b, key);
  return b;
}

function checkbox(id, key) {
  const input = el('input', { type: 'checkbox', id });
  const text = el('span');
  setText(text, key);
  return { input, label: el('label', { class: 'check', for: id }, input, text) };
}

/** "End the meeting?" confirmation; Cancel has the focus so a stray Enter ends nothing. */
function endDialog(onConfirm) {
  const title = el('h2', { id: 'end-title' });
  setText(title, 'chair.endConfirmTitle');
  const body = el('p');
  setText(body, 'chair.endConfirmBody');
  const yes = button('end-confirm', 'chair.endConfirm', 'danger');
  const no = button('end-cancel', 'cancel');
  const root = el('dialog', { class: 'confirm', 'aria-labelledby': 'end-title' }, title, body, el('div', { class: 'button-row' }, no, yes));
  yes.addEventListener('click', () => {
    root.close();
    onConfirm();
  });
  no.addEventListener('click', () => root.close());
  return {
    root,
    open() {
      root.showModal();
      no.focus();
    },
  };
}

