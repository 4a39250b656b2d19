// Point view (commune hall): the chair fills the screen, own camera small in a corner.
// Anyone else the server sends (later: the point holding the floor) gets a smaller tile beside
// the chair. Observers use this view without the own-camera corner.

import { el } from './dom.js';
import { Tile } from './tile.js';

export function mountPoint(container, session, { localStream }) {
  const off = new AbortController();
  const on = (type, fn) => session.addEventListener(type, fn, { signal: off.signal });

  const main = new Tile({ name: '', badge: 'role.chair' });
  main.root.classList.add('main-tile');
  const others = el('div', { class: 'stage-others' });
  const stage = el('section', { class: 'stage' }, main.root, others);
  const view = el('div', { class: 'point-view' }, stage);

  let self = null;
  if (session.role !== 'observer') {
    self = new Tile({ name: session.roster.get(session.participantId)?.name ?? '', badge: 'tile.you', mirror: true });
    const video = localStream?.getVideoTracks()[0] ?? null;
    self.setVideo(video);
    if (!video) self.setStatusKey('tile.noCamera');
    self.root.classList.add('self-pip');
    view.append(self.root);
  }
  container.replaceChildren(view);

  const extra = new Map(); // participant id -> Tile, for non-chair media
  let lastTracks = [];

  function chair() {
    for (const p of session.roster.values()) if (p.role === 'chair') return p;
    return null;
  }

  function render() {
    const c = chair();
    main.setName(c?.name ?? '');
    main.root.dataset.participant = c?.id ?? '';
    const media = new Map();
    for (const t of lastTracks) {
      const m = media.get(t.participant) ?? {};
      m[t.kind] = t.track;
      media.set(t.participant, m);
    }
    const cm = (c && media.get(c.id)) || {};
    main.setVideo(cm.video ?? null);
    main.setAudio(cm.audio ?? null);
    main.setStatusKey(c ? 'tile.notConnected' : 'point.waitingChair');

    for (const [id, tile] of extra) {
      if (!media.has(id) || id === c?.id) {
        tile.destroy();
        extra.delete(id);
      }
    }
    for (const [id, m] of media) {
      if (id === c?.id) continue;
      let tile = extra.get(id);
      if (!tile) {
        tile = new Tile({ name: session.roster.get(id)?.name ?? '' });
        tile.root.dataset.participant = id;
        extra.set(id, tile);
        others.append(tile.root);
      }
      tile.setName(session.roster.get(id)?.name ?? '');
      tile.setVideo(m.video ?? null);
      tile.setAudio(m.audio ?? null);
    }
  }

  on('joined', render);
  on('participant-joined', render);
  on('participant-left', render);
  on('media', (e) => {
    lastTracks = e.detail.tracks;
    render();
  });
  lastTracks = session.receivedTracks();
  render();

  return {
    destroy() {
      off.abort();
      main.destroy();
      self?.destroy();
      for (const tile of extra.values()) tile.destroy();
      view.remove();
    },
  };
}
