// Chair view (province hall). Three columns sized for 1366x768:
//   left   – the program it sends (own camera, own screen share; below them, in a meeting linked
//            to an upstream server, the upstream program it receives) and the meeting controls;
//   middle – the grid of points (chair-grid.js);
//   right  – floor and raised hands (chair-floor.js), in a linked meeting who goes up to the
//            upstream meeting (chair-upward.js), roll call (chair-rollcall.js), chat.

import { el } from './dom.js';
import { mountFloorPanel } from './chair-floor.js';
import { PointGrid } from './chair-grid.js';
import { mountRollCall } from './chair-rollcall.js';
import { mountScheduleBanner } from './chair-schedule.js';
import { mountUpwardPanel } from './chair-upward.js';
import { mountChat } from './chat.js';
import { onLangChange, setText } from './i18n.js';
import { shareController } from './share.js';
import { Tile } from './tile.js';

export function mountChair(container, session, ctx) {
  const { localStream, notify } = ctx;
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
  // In a linked meeting, the upstream program it receives (docs/protocol.md §3), below its own
  // (its own camera stays the column's first tile).
  const upstreamTile = new Tile({ name: '', badge: 'role.upstream' });
  upstreamTile.root.classList.add('upstream-program');
  upstreamTile.root.hidden = true;
  const programTitle = el('h2', { class: 'section-title', id: 'program-title' });
  setText(programTitle, 'chair.program');

  const shareButton = el('button', { type: 'button', id: 'share-button', class: 'primary' });
  const allowShare = checkbox('allow-share', 'chair.allowShare');
  const discussion = checkbox('discussion', 'chair.discussion');
  const ownMic = button('own-mic', 'chair.ownMicOff');
  const ownCam = button('own-cam', 'chair.ownCamOff');
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
    upstreamTile.root,
    el(
      'section',
      { class: 'side-section controls', 'aria-labelledby': 'controls-title' },
      controlsTitle,
      el('div', { class: 'button-row' }, ownMic, ownCam),
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
  const invitedPoints = () => [...grid.entries.keys()];
  const floor = mountFloorPanel(session, nameOf);
  const upward = mountUpwardPanel(session, nameOf);
  const roll = mountRollCall(session, { nameOf, invitedPoints });
  const chat = mountChat(session, { recipients: ['all'] });
  const right = el('aside', { class: 'chair-right' }, floor.root, upward.root, roll.root, chat.root);

  const schedule = mountScheduleBanner(session);
  const view = el('div', { class: 'chair-view' }, left, grid.root, right);
  const confirm = confirmDialog('end', 'chair.endConfirm', () => session.control('end_meeting'));
  // With a hundred halls, every microphone open at once means echo: ask first.
  const confirmUnmute = confirmDialog('unmute-all', 'chair.unmuteAllConfirm', () => session.control('set_mute', { muted: false }), 'primary');
  container.replaceChildren(schedule.root, view, confirm.root, confirmUnmute.root);

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
  unmuteAll.addEventListener('click', () => confirmUnmute.open());
  // The chair's own microphone and camera: the track keeps flowing (silence / black), so turning
  // it back on needs no renegotiation.
  const ownTrack = (kind) => ctx.localStream?.getTracks().find((tr) => tr.kind === kind) ?? null;
  const renderOwn = () => {
    const mic = ownTrack('audio');
    const cam = ownTrack('video');
    setText(ownMic, mic && !mic.enabled ? 'chair.ownMicOn' : 'chair.ownMicOff');
    setText(ownCam, cam && !cam.enabled ? 'chair.ownCamOn' : 'chair.ownCamOff');
    ownMic.classList.toggle('active', Boolean(mic && !mic.enabled));
    ownCam.classList.toggle('active', Boolean(cam && !cam.enabled));
    ownMic.disabled = !mic;
    ownCam.disabled = !cam;
    self.setVideo(cam?.enabled ? cam : null);
    self.setStatusKey(!cam ? 'tile.noCamera' : 'tile.cameraOff');
  };
  ownMic.addEventListener('click', () => {
    const mic = ownTrack('audio');
    if (mic) mic.enabled = !mic.enabled;
    renderOwn();
  });
  ownCam.addEventListener('click', () => {
    const cam = ownTrack('video');
    if (cam) cam.enabled = !cam.enabled;
    renderOwn();
  });
  renderOwn();
  end.addEventListener('click', () => confirm.open());

  // Its microphone plays with every other received one (the grid's sounds). The upstream's
  // slides, when it shares, take the tile's place of its camera: they are what the national
  // meeting is looking at.
  function renderUpstream(tracks) {
    const seat = [...session.roster.values()].find((p) => p.role === 'upstream' && p.point === 'upstream');
    const video = (source) => seat && tracks.find((tr) => tr.participant === seat.id && tr.kind === 'video' && (tr.source ?? 'camera') === source);
    const shown = video('screen') ?? video('camera');
    upstreamTile.setName(seat?.name ?? '');
    upstreamTile.setVideo(shown?.track ?? null);
    upstreamTile.root.hidden = !seat;
  }

  function applyState(state) {
    grid.setRoomState(state);
    floor.update(state);
    upward.update(state);
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
    renderUpstream(session.receivedTracks());
  });
  on('participant-media', (e) => grid.setMedia(e.detail.participant, e.detail.media));
  on('media', (e) => {
    grid.setTracks(e.detail.tracks);
    renderUpstream(e.detail.tracks);
  });
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
  renderUpstream(session.receivedTracks());
  applyState(session.roomState);

  return {
    destroy() {
      off.abort();
      share.destroy();
      self.destroy();
      upstreamTile.destroy();
      shareTile.destroy();
      grid.destroy();
      floor.destroy();
      upward.destroy();
      roll.destroy();
      chat.destroy();
      view.remove();
      confirm.root.remove();
      confirmUnmute.root.remove();
      schedule.destroy();
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

/**
 * A confirmation ("End the meeting?", "Open every microphone?"): `${key}Title` and `${key}Body`
 * say what happens, `key` is the confirming button. Cancel has the focus so a stray Enter does
 * nothing.
 */
function confirmDialog(id, key, onConfirm, cls = 'danger') {
  const title = el('h2', { id: `${id}-title` });
  setText(title, `${key}Title`);
  const body = el('p');
  setText(body, `${key}Body`);
  const yes = button(`${id}-confirm`, key, cls);
  const no = button(`${id}-cancel`, 'cancel');
  const root = el('dialog', { class: 'confirm', id: `${id}-dialog`, 'aria-labelledby': `${id}-title` }, title, body, el('div', { class: 'button-row' }, no, yes));
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

