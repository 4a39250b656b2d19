// The chair's grid of points, built to stay light with 150 of them:
//   - one small <li> per point, keyed by point code (a point that re-joins keeps its place);
//   - a <video> exists only while the tile is on screen and has a camera track; tiles scrolled
//     away lose it, and the server is told which thumbnails are visible (`viewport`, debounced)
//     so it stops sending the others;
//   - sound does not depend on the screen: one hidden <audio> per received microphone.
// Shows per point: name (up to two lines), absent/connected, link quality (`link_quality`),
// raised hand and its text, microphone state, floor holder, active speaker, roll-call answer,
// "no camera" / "no microphone" when its page said so (roster `media`, `participant_media`);
// buttons to give the floor and to open/close the microphone, labelled with what they do while
// their icon shows the state now.
// Connected points come first; invited points not connected are listed apart below them. A
// search box and "only connected" filter the list; a button puts the grid full screen (the
// hall's TV).

import { el } from './dom.js';
import { debounce } from './format.js';
import { setText, t } from './i18n.js';
import { checkIcon, floorIcon, handIcon, micIcon, qualityBars, setQuality } from './icons.js';
import { playAudio, playVideo } from './media.js';

const VIEWPORT_DEBOUNCE_MS = 500;
const byCode = (a, b) => a.localeCompare(b, 'vi', { numeric: true });

/** Lower case without Vietnamese marks, so "cao son" finds "Cao Sơn" and "đồn" finds "Đồn". */
export function foldText(text) {
  return text.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/đ/gi, 'd').toLowerCase();
}

export class PointGrid {
  constructor(session) {
    this.session = session;
    this.entries = new Map(); // point code -> entry
    this.videoOf = new Map(); // participant id -> camera track
    this.state = null;
    this.speaking = new Set();
    this.sentViewport = null;
    this.query = '';
    this.heading = el('h2', { id: 'points-heading', class: 'section-title' });
    this.empty = el('p', { class: 'empty-note' });
    setText(this.empty, 'chair.noPoints');
    this.noMatch = el('p', { class: 'empty-note', id: 'grid-no-match', hidden: true });
    setText(this.noMatch, 'grid.noMatch');
    this.list = el('ul', { class: 'grid', id: 'grid-present', 'aria-labelledby': 'points-heading' });
    this.absentHeading = el('h3', { class: 'sub-title', id: 'absent-heading' });
    this.absentList = el('ul', { class: 'grid grid-absent', id: 'grid-absent', 'aria-labelledby': 'absent-heading' });
    this.absentSection = el('section', { class: 'absent-points', 'aria-labelledby': 'absent-heading' }, this.absentHeading, this.absentList);
    this.sounds = el('div', { class: 'sounds', hidden: true });
    this.audio = new Map(); // participant id -> <audio>
    this.toolbar = this.#toolbar();
    this.root = el(
      'section',
      { class: 'chair-points', 'aria-labelledby': 'points-heading' },
      el('div', { class: 'grid-head' }, this.heading, this.toolbar),
      this.empty,
      this.noMatch,
      this.list,
      this.absentSection,
      this.sounds,
    );
    this.sendViewport = debounce(() => this.#sendViewport(), VIEWPORT_DEBOUNCE_MS);
    this.observer = new IntersectionObserver((records) => this.#onIntersect(records), {
      root: this.root,
      rootMargin: '120px 0px',
    });
    this.list.addEventListener('click', (e) => this.#onClick(e));
  }

  /** Search box, "only connected" and full screen, above the grid. */
  #toolbar() {
    this.search = el('input', { type: 'search', id: 'grid-search', 'data-i18n-attr': 'placeholder:grid.search;aria-label:grid.search' });
    this.search.placeholder = t('grid.search');
    this.search.setAttribute('aria-label', t('grid.search'));
    this.search.addEventListener('input', () => {
      this.query = foldText(this.search.value.trim());
      this.#applyFilter();
    });
    this.onlyConnected = el('input', { type: 'checkbox', id: 'grid-only-connected' });
    const onlyText = el('span');
    setText(onlyText, 'grid.onlyConnected');
    this.onlyConnected.addEventListener('change', () => this.#applyFilter());
    this.fullscreen = el('button', { type: 'button', id: 'grid-fullscreen', class: 'small' });
    this.fullscreen.addEventListener('click', () => {
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else this.root.requestFullscreen?.().catch(() => {});
    });
    this.onFullscreen = () => this.#labelFullscreen();
    document.addEventListener('fullscreenchange', this.onFullscreen);
    this.#labelFullscreen();
    return el('div', { class: 'grid-tools' }, this.search, el('label', { class: 'check', for: 'grid-only-connected' }, this.onlyConnected, onlyText), this.fullscreen);
  }

  #labelFullscreen() {
    setText(this.fullscreen, document.fullscreenElement === this.root ? 'grid.exitFullscreen' : 'grid.fullscreen');
  }

  /** The tile of a point, created (absent) when it has none yet. */
  #ensureEntry(code, name) {
    let entry = this.entries.get(code);
    if (!entry) {
      entry = this.#newEntry(code, name);
      this.entries.set(code, entry);
      this.#place(entry);
      this.observer.observe(entry.li);
    }
    return entry;
  }

  /** Puts a tile in code order in its list: connected points first, the others apart. */
  #place(entry) {
    const present = Boolean(entry.participant);
    const list = present ? this.list : this.absentList;
    if (entry.li.parentNode === list) return;
    const after = [...this.entries.values()]
      .filter((e) => e !== entry && Boolean(e.participant) === present && byCode(e.code, entry.code) > 0 && e.li.parentNode === list)
      .sort((a, b) => byCode(a.code, b.code))[0];
    list.insertBefore(entry.li, after ? after.li : null);
    this.#matchEntry(entry);
  }

  /** Hides tiles that do not match the search. */
  #matchEntry(entry) {
    entry.li.hidden = Boolean(this.query) && !entry.searchText.includes(this.query);
  }

  #applyFilter() {
    for (const entry of this.entries.values()) this.#matchEntry(entry);
    this.#layout();
    this.sendViewport();
  }

  /** Every invited point (from `joined.invited`), so those that never connected show as absent. */
  addInvited(invited) {
    for (const i of invited) {
      const entry = this.#ensureEntry(i.point, i.name);
      if (!entry.participant) this.#render(entry);
    }
    this.#layout();
  }

  /** Adds or refreshes a point from a roster entry (participant object). A relay seat (another
   *  hoinghi server, a province) takes part as a point: it is in the grid too. */
  addParticipant(p) {
    if (p.role !== 'point' && p.role !== 'relay') return;
    const entry = this.#ensureEntry(p.point, p.name);
    entry.participant = p.id;
    entry.media = p.media ?? null;
    entry.name = p.name;
    entry.searchText = foldText(`${p.point} ${p.name}`);
    entry.nameEl.textContent = p.name;
    entry.li.title = p.name;
    entry.li.dataset.participant = p.id;
    this.#place(entry);
    this.#render(entry);
    this.#layout();
    this.sendViewport();
  }

  /** What a point publishes changed (`participant_media`): {audio, video}. */
  setMedia(participantId, media) {
    for (const entry of this.entries.values()) {
      if (entry.participant !== participantId) continue;
      entry.media = media ?? null;
      this.#render(entry);
    }
  }

  markLeft(participantId) {
    for (const entry of this.entries.values()) {
      if (entry.participant !== participantId) continue;
      entry.participant = null;
      entry.media = null;
      entry.left = true;
      delete entry.li.dataset.participant;
      entry.quality = null;
      this.#place(entry);
      this.#render(entry);
    }
    this.#layout();
  }

  /** The roster after a (re)join: anyone not in it is absent now. */
  loadRoster(roster) {
    const ids = new Set(roster.keys());
    for (const e of this.entries.values()) if (e.participant && !ids.has(e.participant)) this.markLeft(e.participant);
    for (const p of roster.values()) this.addParticipant(p);
    this.#layout();
  }

  /** Everything the subscribe connection delivers now: [{participant, kind, source, track}]. */
  setTracks(tracks) {
    this.videoOf = new Map();
    const audioNow = new Map();
    for (const tr of tracks) {
      if (tr.kind === 'video' && (tr.source ?? 'camera') === 'camera') this.videoOf.set(tr.participant, tr.track);
      if (tr.kind === 'audio') audioNow.set(tr.participant, tr.track);
    }
    for (const [id, audio] of this.audio) {
      if (audioNow.get(id) !== audio.srcObject?.getAudioTracks()[0]) {
        audio.srcObject = null;
        audio.remove();
        this.audio.delete(id);
      }
    }
    for (const [id, track] of audioNow) {
      if (this.audio.has(id)) continue;
      const audio = el('audio', { autoplay: true, 'data-participant': id });
      audio.srcObject = new MediaStream([track]);
      this.sounds.append(audio);
      this.audio.set(id, audio);
      playAudio(audio);
    }
    for (const entry of this.entries.values()) this.#render(entry);
  }

  setRoomState(state) {
    this.state = state;
    for (const entry of this.entries.values()) this.#render(entry);
  }

  /** The server's `video_paused` changed (session.videoPaused): tiles say why they have no picture. */
  setPaused() {
    for (const entry of this.entries.values()) this.#render(entry);
  }

  setSpeakers(ids) {
    this.speaking = new Set(ids);
    for (const entry of this.entries.values()) {
      entry.li.classList.toggle('speaking', Boolean(entry.participant && this.speaking.has(entry.participant)));
    }
  }

  setLinkQuality(msg) {
    for (const entry of this.entries.values()) {
      if (entry.participant !== msg.participant) continue;
      entry.quality = msg;
      this.#renderQuality(entry);
    }
  }

  relabel() {
    for (const entry of this.entries.values()) {
      entry.iconKey = '';
      this.#render(entry);
    }
    this.#layout();
  }

  destroy() {
    document.removeEventListener('fullscreenchange', this.onFullscreen);
    this.sendViewport.cancel();
    this.observer.disconnect();
    for (const entry of this.entries.values()) this.#detachVideo(entry);
    for (const audio of this.audio.values()) audio.srcObject = null;
    this.root.remove();
  }

  // --- internals --------------------------------------------------------------------------

  #newEntry(code, name) {
    const nameEl = el('span', { class: 'pt-name' }, name);
    const answered = el('span', { class: 'pt-answered', hidden: true, role: 'img', 'data-i18n-attr': 'aria-label:tile.answered;title:tile.answered' }, checkIcon());
    const bars = qualityBars();
    const icons = el('span', { class: 'pt-icons' });
    const status = el('p', { class: 'pt-status' });
    const handText = el('p', { class: 'pt-hand-text' });
    // "No microphone" stays readable over the picture of a point that has a camera.
    const noMic = el('p', { class: 'pt-no-mic', hidden: true });
    const stage = el('div', { class: 'pt-stage' }, status, noMic);
    const grant = el('button', { type: 'button', class: 'pt-btn pt-grant', 'data-action': 'grant' }, floorIcon());
    const mute = el('button', { type: 'button', class: 'pt-btn pt-mute', 'data-action': 'mute' });
    const li = el(
      'li',
      { class: 'ptile absent', 'data-point': code, title: name },
      stage,
      // Signal bars and state icons above, so the name below gets the tile's whole width.
      el('div', { class: 'pt-flags' }, bars, icons, answered),
      el('div', { class: 'pt-top' }, nameEl),
      handText,
      el('div', { class: 'pt-actions' }, grant, mute),
    );
    return {
      code, name, participant: null, left: false, li, nameEl, bars, icons, status, handText, stage, grant, mute, answered, noMic,
      searchText: foldText(`${code} ${name}`), video: null, visible: false, quality: null, iconKey: '', media: null,
    };
  }

  #onClick(e) {
    const button = e.target.closest('button[data-action]');
    if (!button) return;
    const code = button.closest('.ptile')?.dataset.point;
    const entry = code && this.entries.get(code);
    if (!entry?.participant) return;
    if (button.dataset.action === 'grant') {
      if (this.state?.floor?.point === code) this.session.control('revoke_floor');
      else this.session.control('grant_floor', { point: code });
    } else {
      this.session.control('set_mute', { point: code, muted: this.#micOpen(code) });
    }
  }

  #micOpen(code) {
    const s = this.state;
    return Boolean(s && (s.floor?.point === code || s.unmuted?.includes(code)));
  }

  #onIntersect(records) {
    for (const r of records) {
      const entry = this.entries.get(r.target.dataset.point);
      if (!entry) continue;
      entry.visible = r.isIntersecting;
      this.#render(entry);
    }
    this.sendViewport();
  }

  #sendViewport() {
    const visible = [...this.entries.values()].filter((e) => e.visible && e.participant && !e.li.hidden).map((e) => e.participant).sort();
    const key = visible.join(',');
    if (key === this.sentViewport) return;
    if (this.session.control('viewport', { visible })) this.sentViewport = key;
  }

  /** Forget what was sent (after a re-join the server starts without a viewport). */
  resetViewport() {
    this.sentViewport = null;
    this.sendViewport();
  }

  #render(entry) {
    const s = this.state;
    const present = Boolean(entry.participant);
    const floor = present && s?.floor?.point === entry.code;
    const hand = s?.hands?.find((h) => h.point === entry.code);
    const micOpen = this.#micOpen(entry.code);
    entry.li.classList.toggle('absent', !present);
    entry.li.classList.toggle('floor', floor);
    entry.li.classList.toggle('hand', Boolean(hand));
    entry.li.classList.toggle('speaking', present && this.speaking.has(entry.participant));
    entry.handText.textContent = hand?.text ?? '';
    entry.handText.hidden = !hand?.text;
    // The roll call's answers stay on the tiles until the next one starts.
    const answered = Boolean(s?.roll_call?.answers?.some((a) => a.point === entry.code));
    entry.li.classList.toggle('answered', answered);
    entry.answered.hidden = !answered;
    entry.answered.setAttribute('aria-label', t('tile.answered'));
    entry.answered.title = t('tile.answered');

    // Icons: rebuilt only when their meaning changes.
    const iconKey = `${floor}/${Boolean(hand)}/${micOpen}/${present}`;
    if (iconKey !== entry.iconKey) {
      entry.iconKey = iconKey;
      const icons = [];
      if (floor) icons.push(labelled(floorIcon(), 'tile.floor'));
      if (hand) icons.push(labelled(handIcon(), 'tile.hand'));
      if (present) icons.push(labelled(micIcon(!micOpen), micOpen ? 'tile.micOn' : 'tile.micOff'));
      entry.icons.replaceChildren(...icons);
      // The button's icon shows the microphone as it is now; its label says what a press does.
      entry.mute.replaceChildren(micIcon(!micOpen));
    }
    entry.grant.hidden = entry.mute.hidden = !present;
    entry.grant.classList.toggle('active', floor);
    const nameArg = { name: entry.name };
    entry.grant.setAttribute('aria-label', floor ? t('floor.revoke') : t('tile.grant', nameArg));
    entry.grant.title = entry.grant.getAttribute('aria-label');
    entry.mute.setAttribute('aria-label', t(micOpen ? 'tile.mute' : 'tile.unmute', nameArg));
    entry.mute.title = entry.mute.getAttribute('aria-label');

    // Picture: only on screen, only with a track.
    const track = present ? this.videoOf.get(entry.participant) : null;
    if (entry.visible && track) this.#attachVideo(entry, track);
    else this.#detachVideo(entry);
    // Paused by the server for our link: the last frame would stay frozen, so say why instead.
    const linkPaused = present && this.session.videoPaused?.has(`${entry.participant}/camera`);
    const picture = Boolean(entry.video && track.readyState === 'live' && !track.muted) && !linkPaused;
    entry.li.classList.toggle('has-video', picture);
    entry.li.classList.toggle('link-paused', Boolean(linkPaused));
    entry.status.hidden = picture;
    // A point that said it has no camera would otherwise read "connected" (or "paused") for ever.
    const noCamera = present && entry.media?.video === false;
    const noMic = present && entry.media?.audio === false;
    entry.li.classList.toggle('no-camera', noCamera);
    entry.li.classList.toggle('no-mic', noMic);
    setText(entry.status, !present ? (entry.left ? 'tile.left' : 'tile.absent') : noCamera ? 'tile.noCamera' : linkPaused ? 'tile.linkPaused' : entry.visible ? 'tile.connected' : 'tile.paused');
    entry.noMic.hidden = !noMic;
    setText(entry.noMic, 'tile.noMic');
    this.#renderQuality(entry);
  }

  #renderQuality(entry) {
    const q = entry.participant ? entry.quality : null;
    setQuality(entry.bars, q?.quality ?? null);
    const label = t(q ? `quality.${q.quality}` : 'quality.unknown');
    const detail = q && q.rtt_ms != null ? t('quality.detail', { label, rtt: q.rtt_ms, loss: Math.round((q.loss ?? 0) * 100) }) : label;
    // A hall on TCP (its network drops UDP) is worth knowing when its picture lags.
    const text = q?.transport === 'tcp' ? `${detail} · ${t('quality.tcp')}` : detail;
    entry.bars.dataset.transport = q?.transport ?? '';
    entry.bars.setAttribute('aria-label', text);
    entry.bars.title = text;
  }

  #attachVideo(entry, track) {
    if (entry.video?.srcObject?.getVideoTracks()[0] === track) return;
    if (!entry.video) {
      entry.video = el('video', { autoplay: true, playsinline: true, 'aria-hidden': 'true' });
      entry.video.muted = true;
      entry.stage.prepend(entry.video);
      entry.onTrack = () => this.#render(entry);
    }
    entry.track?.removeEventListener('unmute', entry.onTrack);
    entry.track?.removeEventListener('mute', entry.onTrack);
    entry.track = track;
    track.addEventListener('unmute', entry.onTrack);
    track.addEventListener('mute', entry.onTrack);
    entry.video.srcObject = new MediaStream([track]);
    playVideo(entry.video);
  }

  #detachVideo(entry) {
    if (!entry.video) return;
    entry.track?.removeEventListener('unmute', entry.onTrack);
    entry.track?.removeEventListener('mute', entry.onTrack);
    entry.track = null;
    entry.video.srcObject = null;
    entry.video.remove();
    entry.video = null;
  }

  #layout() {
    const all = [...this.entries.values()];
    const n = all.length;
    const present = all.filter((e) => e.participant).length;
    setText(this.heading, 'chair.points', { present, total: n });
    setText(this.absentHeading, 'grid.absentTitle', { n: n - present });
    this.empty.hidden = n > 0;
    this.absentSection.hidden = n === present || this.onlyConnected.checked;
    this.noMatch.hidden = !this.query || all.some((e) => !e.li.hidden && (e.participant || !this.onlyConnected.checked));
    // 2 columns up to 4 points, 3 up to 9, … at most 5, so two lines of a commune's name fit:
    // 120 tiles scroll, 20 fit 1366x768.
    const cols = Math.min(5, Math.max(2, Math.ceil(Math.sqrt(present || 1))));
    this.list.style.setProperty('--cols', String(cols));
  }
}

function labelled(icon, key) {
  const wrap = el('span', { class: 'pt-icon', role: 'img', 'aria-label': t(key), title: t(key) });
  wrap.append(icon);
  return wrap;
}
