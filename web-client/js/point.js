// Point view (commune hall). The stage shows the program big:
//   the chair's screen share when it is on (chair camera small beside it), else the floor
//   holder when another point has the floor (chair camera small), else the chair's camera.
// Own camera small in a corner; the control bar below (point-bar.js); chat in a side panel.
// A banner says so when the link brings sound but no picture (audio only): at once when the
// server says it paused the program's video for our link (`video_paused`), else when the
// chair's picture has stopped for 5 s while connected.
// In a meeting linked to an upstream server, the upstream program takes the chair's place, and a
// banner says when the upstream is lost and the province's own chair is shown instead.
// Observers get the same view without own camera and controls.

import { el } from './dom.js';
import { FrameMonitor } from './framewatch.js';
import { setText } from './i18n.js';
import { mountChat } from './chat.js';
import { mountPointBar } from './point-bar.js';
import { playAudio } from './media.js';
import { Tile } from './tile.js';

const AUDIO_ONLY_AFTER_MS = 5000;

export function mountPoint(container, session, ctx) {
  const { localStream } = ctx;
  const off = new AbortController();
  const on = (type, fn) => session.addEventListener(type, fn, { signal: off.signal });
  const observer = session.role === 'observer';

  const main = new Tile({ name: '' });
  main.root.classList.add('main-tile');
  main.root.id = 'program';
  const others = el('div', { class: 'stage-others' });
  const banner = el('p', { class: 'audio-only', id: 'audio-only', role: 'alert', hidden: true });
  setText(banner, 'point.audioOnly');
  // A linked meeting whose upstream is lost shows its own chair: say why (`room_state.upstream`).
  const upstreamLost = el('p', { class: 'audio-only upstream-lost', id: 'upstream-lost', role: 'status', hidden: true });
  setText(upstreamLost, 'point.upstreamLost');
  const stage = el('section', { class: 'stage' }, main.root, others, banner, upstreamLost);
  const sounds = el('div', { class: 'sounds', hidden: true });
  const body = el('div', { class: 'point-body' }, stage);
  const view = el('div', { class: 'point-view' }, body, sounds);

  let self = null;
  let bar = null;
  let chat = null;
  let chatOpen = false;
  if (!observer) {
    self = new Tile({ name: session.roster.get(session.participantId)?.name ?? '', badge: 'tile.you', mirror: true });
    const video = localStream?.getVideoTracks()[0] ?? null;
    self.setVideo(video);
    if (!video) self.setStatusKey('tile.noCamera');
    self.root.classList.add('self-pip');
    stage.append(self.root);
    chat = mountChat(session, { recipients: ['all', 'chair'], onUnread: (n) => bar?.setChatOpen(chatOpen, n) });
    chat.root.classList.add('point-chat');
    chat.root.hidden = true;
    chat.setVisible(false);
    bar = mountPointBar(session, {
      micTrack: () => ctx.localStream?.getAudioTracks()[0] ?? null,
      onChatToggle: () => {
        chatOpen = !chatOpen;
        chat.root.hidden = !chatOpen;
        chat.setVisible(chatOpen);
        bar.setChatOpen(chatOpen);
        if (chatOpen) chat.focus();
      },
    });
    body.append(chat.root);
    view.append(bar.root);
    stage.append(bar.attention);
  }
  container.replaceChildren(view);

  const extra = new Map(); // participant id + source -> Tile beside the big picture
  const audio = new Map(); // participant id -> <audio>
  let tracks = [];
  let program = 'none';
  let audioOnly = false;
  const frames = new FrameMonitor(session, () => render());

  // In a linked meeting the upstream program is the chair while it is here (its seat has the
  // role `upstream`); the local chair is the program again when it leaves.
  const chair = () => {
    const all = [...session.roster.values()];
    return all.find((p) => p.role === 'upstream' && p.point === 'upstream') ?? all.find((p) => p.role === 'chair') ?? null;
  };
  // The upstream's floor holder comes on a second upstream seat: the floor when no local
  // point holds it.
  const upstreamFloor = () => [...session.roster.values()].find((p) => p.role === 'upstream' && p.point === 'upstream-floor') ?? null;
  // Once the chair was here, its absence is a reconnect (its own, or everyone's after a server
  // restart), not a meeting that has not begun: "waiting for the chair" would blame it.
  let chairSeen = false;
  const nameOf = (id) => session.roster.get(id)?.name ?? '';

  // Active speakers are kept, not only applied: the event may come before the tiles know whose
  // picture they show, and `render` re-applies them whenever that changes.
  let speakers = new Set();

  function render() {
    const c = chair();
    const state = session.roomState;
    const video = new Map(); // `${participant}/${source}` -> {track, mid}
    for (const tr of tracks) if (tr.kind === 'video') video.set(`${tr.participant}/${tr.source ?? 'camera'}`, tr);
    const chairCam = c && video.get(`${c.id}/camera`);
    const chairShare = c && video.get(`${c.id}/screen`);
    const floorId = state?.floor?.participant ?? upstreamFloor()?.id;
    const floorOther = floorId && floorId !== session.participantId ? floorId : null;
    const floorCam = floorOther && video.get(`${floorOther}/camera`);
    const floorShare = floorOther && state?.share_allowed && video.get(`${floorOther}/screen`);

    let big = null;
    let label = '';
    if (chairShare && frames.isLive(chairShare.mid)) [big, program, label] = [chairShare, 'share', 'point.chairShare'];
    else if (floorShare && frames.isLive(floorShare.mid)) [big, program, label] = [floorShare, 'floor-share', 'point.floorHolder'];
    else if (floorCam) [big, program, label] = [floorCam, 'floor', 'point.floorHolder'];
    else if (chairCam) [big, program, label] = [chairCam, 'chair', 'role.chair'];
    else program = 'none';
    main.setVideo(big?.track ?? null);
    main.setBadge(big ? label : 'role.chair', big && label === 'point.floorHolder' ? { name: nameOf(floorOther) } : undefined);
    main.setName(big === chairCam || big === chairShare || !big ? c?.name ?? '' : '');
    main.root.dataset.program = program;
    upstreamLost.hidden = state?.upstream !== 'lost';
    main.root.dataset.participant = big?.participant ?? '';
    if (c) chairSeen = true;
    let waiting = 'point.waitingChair';
    if (session.state !== 'joined') waiting = 'point.reconnecting';
    else if (c) waiting = 'tile.notConnected';
    else if (chairSeen) waiting = 'point.chairReconnecting';
    main.setStatusKey(waiting);

    // Beside the big picture: the chair camera and the floor holder when not big, and in
    // discussion mode whoever else the server sends.
    const side = new Map();
    if (chairCam && big !== chairCam) side.set(`${c.id}/camera`, chairCam);
    if (floorCam && big !== floorCam) side.set(`${floorOther}/camera`, floorCam);
    if (state?.discussion) {
      for (const [key, tr] of video) if (tr.source !== 'screen' && tr !== big && tr.participant !== c?.id) side.set(key, tr);
    }
    for (const [key, tile] of extra) {
      if (!side.has(key)) {
        tile.destroy();
        extra.delete(key);
      }
    }
    for (const [key, tr] of side) {
      let tile = extra.get(key);
      if (!tile) {
        tile = new Tile({ name: nameOf(tr.participant), badge: tr.participant === c?.id ? 'role.chair' : undefined });
        tile.root.dataset.participant = tr.participant;
        extra.set(key, tile);
        others.append(tile.root);
      }
      tile.setVideo(tr.track);
    }

    // Every received microphone plays, whatever is on screen.
    const mics = new Map(tracks.filter((tr) => tr.kind === 'audio').map((tr) => [tr.participant, tr.track]));
    for (const [id, a] of audio) {
      if (mics.get(id) !== a.srcObject?.getAudioTracks()[0]) {
        a.srcObject = null;
        a.remove();
        audio.delete(id);
      }
    }
    for (const [id, track] of mics) {
      if (audio.has(id)) continue;
      const a = el('audio', { autoplay: true, 'data-participant': id });
      a.srcObject = new MediaStream([track]);
      sounds.append(a);
      audio.set(id, a);
      playAudio(a);
    }

    const paused = session.videoPaused;
    const programPaused = [big, chairCam].some((tr) => tr && paused.has(`${tr.participant}/${tr.source ?? 'camera'}`));
    audioOnly = programPaused || frames.starved(chairCam ? [chairCam.mid] : [], AUDIO_ONLY_AFTER_MS);
    banner.hidden = !audioOnly;
    bar?.update(state);
    markSpeakers();
  }

  on('joined', render);
  on('state', render);
  on('participant-joined', render);
  on('participant-left', render);
  on('room-state', render);
  on('video-paused', render);
  on('media', (e) => {
    tracks = e.detail.tracks;
    render();
  });
  function markSpeakers() {
    main.root.classList.toggle('speaking', speakers.has(main.root.dataset.participant));
    for (const tile of extra.values()) tile.root.classList.toggle('speaking', speakers.has(tile.root.dataset.participant));
    self?.root.classList.toggle('speaking', speakers.has(session.participantId));
  }
  on('active-speakers', (e) => {
    speakers = new Set(e.detail.participants ?? []);
    markSpeakers();
  });
  tracks = session.receivedTracks();
  render();

  return {
    get debug() {
      return { program, audioOnly };
    },
    destroy() {
      off.abort();
      frames.stop();
      main.destroy();
      self?.destroy();
      bar?.destroy();
      chat?.destroy();
      for (const tile of extra.values()) tile.destroy();
      for (const a of audio.values()) a.srcObject = null;
      view.remove();
    },
  };
}
