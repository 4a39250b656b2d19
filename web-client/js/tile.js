// One participant's box: video, name, and a status line shown while there is no picture.
// Sound goes through a hidden <audio> element (see media.js for why video stays muted).

import { el } from './dom.js';
import { setText } from './i18n.js';
import { playAudio, playVideo } from './media.js';

export class Tile {
  /**
   * @param {object} o
   * @param {string} o.name     display name (set with textContent)
   * @param {string} [o.badge]  i18n key of a small label, e.g. 'role.chair' or 'tile.you'
   * @param {boolean} [o.mirror] mirror the picture (own camera preview)
   */
  constructor({ name, badge, mirror = false }) {
    this.video = el('video', { class: mirror ? 'mirror' : '', autoplay: true, playsinline: true, 'aria-hidden': 'true' });
    this.video.muted = true;
    this.status = el('p', { class: 'tile-status', role: 'status' });
    // title: long commune names are cut with an ellipsis in small tiles; hovering shows them.
    this.nameEl = el('span', { class: 'tile-name', title: name || null }, name);
    this.caption = el('figcaption', {}, this.nameEl);
    this.badge = null;
    if (badge) this.setBadge(badge);
    this.root = el('figure', { class: 'tile' }, this.video, this.status, this.caption);
    this.audio = null;
    this.videoTrack = null;
    this.statusKey = 'tile.notConnected';
    this.onTrackChange = () => this.#render();
    this.#render();
  }

  setName(name) {
    this.nameEl.textContent = name;
    this.nameEl.title = name;
  }

  /** Small label before the name (i18n key), or none. */
  setBadge(key, params) {
    if (!key) {
      this.badge?.remove();
      this.badge = null;
      return;
    }
    if (!this.badge) {
      this.badge = el('span', { class: 'tile-badge' });
      this.caption.prepend(this.badge);
    }
    setText(this.badge, key, params);
  }

  /** Status shown when no picture arrives, e.g. 'tile.notConnected', 'tile.left'. */
  setStatusKey(key) {
    this.statusKey = key;
    this.#render();
  }

  setVideo(track) {
    if (track === this.videoTrack) return;
    if (this.videoTrack) {
      this.videoTrack.removeEventListener('mute', this.onTrackChange);
      this.videoTrack.removeEventListener('unmute', this.onTrackChange);
      this.videoTrack.removeEventListener('ended', this.onTrackChange);
    }
    this.videoTrack = track;
    if (track) {
      track.addEventListener('mute', this.onTrackChange);
      track.addEventListener('unmute', this.onTrackChange);
      track.addEventListener('ended', this.onTrackChange);
      this.video.srcObject = new MediaStream([track]);
      playVideo(this.video);
    } else {
      this.video.srcObject = null;
    }
    this.#render();
  }

  setAudio(track) {
    const current = this.audio?.srcObject?.getAudioTracks()[0] ?? null;
    if (track === current) return;
    if (!track) {
      this.audio?.remove();
      this.audio = null;
      return;
    }
    if (!this.audio) {
      this.audio = el('audio', { autoplay: true });
      this.root.append(this.audio);
    }
    this.audio.srcObject = new MediaStream([track]);
    playAudio(this.audio);
  }

  /** Picture when a live, unmuted video track is attached; the status text otherwise. */
  get hasPicture() {
    const t = this.videoTrack;
    return Boolean(t && t.readyState === 'live' && !t.muted);
  }

  #render() {
    const picture = this.hasPicture;
    this.root.classList.toggle('has-video', picture);
    this.status.hidden = picture;
    setText(this.status, this.statusKey);
  }

  destroy() {
    this.setVideo(null);
    this.setAudio(null);
    this.root.remove();
  }
}
