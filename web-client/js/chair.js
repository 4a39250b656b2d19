// Chair view (province hall): own camera on the side, one tile per point in a grid.
// Tiles are keyed by the point's directory code, not by participant id: a point that drops and
// comes back gets a new id but keeps its place in the grid.

import { el } from './dom.js';
import { setText } from './i18n.js';
import { Tile } from './tile.js';

const byCode = (a, b) => a.localeCompare(b, 'vi', { numeric: true });

export function mountChair(container, session, { localStream }) {
  const off = new AbortController();
  const on = (type, fn) => session.addEventListener(type, fn, { signal: off.signal });

  const self = new Tile({ name: session.roster.get(session.participantId)?.name ?? '', badge: 'tile.you', mirror: true });
  const selfVideo = localStream?.getVideoTracks()[0] ?? null;
  self.setVideo(selfVideo);
  if (!selfVideo) self.setStatusKey('tile.noCamera');

  const heading = el('h2', { id: 'points-heading', class: 'section-title' });
  const empty = el('p', { class: 'empty-note' });
  setText(empty, 'chair.noPoints');
  const grid = el('div', { class: 'grid', role: 'list' });
  const view = el(
    'div',
    { class: 'chair-view' },
    el('aside', { class: 'chair-side', 'data-i18n-attr': 'aria-label:self.preview' }, self.root),
    el('section', { class: 'chair-points', 'aria-labelledby': 'points-heading' }, heading, empty, grid),
  );
  container.replaceChildren(view);

  const tiles = new Map(); // point code -> {tile, participant id or null, code}
  let lastTracks = []; // kept so a point announced after its media still gets its picture

  function updateCount() {
    const present = [...tiles.values()].filter((e) => e.participant).length;
    setText(heading, 'chair.points', { n: present });
    empty.hidden = tiles.size > 0;
    // Near-square grid: 2 columns for up to 4 points, 3 up to 9, … so that 40+ points still fit
    // a 1366x768 screen without scrolling, and a few points get big tiles.
    const cols = Math.min(8, Math.max(2, Math.ceil(Math.sqrt(tiles.size))));
    grid.style.setProperty('--cols', String(cols));
  }

  function insertSorted(entry) {
    const after = [...tiles.values()]
      .filter((e) => e !== entry && byCode(e.code, entry.code) > 0)
      .sort((a, b) => byCode(a.code, b.code))[0];
    grid.insertBefore(entry.tile.root, after ? after.tile.root : null);
  }

  function addPoint(p) {
    if (p.role !== 'point') return; // observers publish nothing; the chair is the side tile
    let entry = tiles.get(p.point);
    if (!entry) {
      entry = { code: p.point, tile: new Tile({ name: p.name }), participant: null };
      entry.tile.root.setAttribute('role', 'listitem');
      tiles.set(p.point, entry);
      insertSorted(entry);
    }
    entry.participant = p.id;
    entry.tile.setName(p.name);
    entry.tile.root.dataset.participant = p.id;
    entry.tile.root.classList.remove('left');
    entry.tile.setStatusKey('tile.notConnected');
    updateCount();
    applyMedia(lastTracks);
  }

  function markLeft(participantId) {
    for (const entry of tiles.values()) {
      if (entry.participant !== participantId) continue;
      entry.participant = null;
      delete entry.tile.root.dataset.participant;
      entry.tile.setVideo(null);
      entry.tile.setAudio(null);
      entry.tile.setStatusKey('tile.left');
      entry.tile.root.classList.add('left');
    }
    updateCount();
  }

  function loadRoster() {
    for (const entry of tiles.values()) if (entry.participant && !session.roster.has(entry.participant)) markLeft(entry.participant);
    for (const p of session.roster.values()) addPoint(p);
    updateCount();
  }

  function applyMedia(tracks) {
    lastTracks = tracks;
    const media = new Map(); // participant -> {audio, video}
    for (const t of tracks) {
      const m = media.get(t.participant) ?? {};
      m[t.kind] = t.track;
      media.set(t.participant, m);
    }
    for (const entry of tiles.values()) {
      const m = (entry.participant && media.get(entry.participant)) || {};
      entry.tile.setVideo(m.video ?? null);
      entry.tile.setAudio(m.audio ?? null);
    }
  }

  on('joined', loadRoster);
  on('participant-joined', (e) => addPoint(e.detail.participant));
  on('participant-left', (e) => markLeft(e.detail.participant));
  on('media', (e) => applyMedia(e.detail.tracks));
  loadRoster();
  applyMedia(session.receivedTracks());

  return {
    destroy() {
      off.abort();
      self.destroy();
      for (const entry of tiles.values()) entry.tile.destroy();
      view.remove();
    },
  };
}
