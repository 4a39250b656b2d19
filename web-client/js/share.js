// Screen / document share: getDisplayMedia, published by the session as an additional video
// m-line (`source: "screen"`, content hint "detail"). Returns a controller for a toggle button.

import { setText } from './i18n.js';

// Slides and documents: sharp over smooth. A few frames a second are enough and keep the
// encoder cheap on the province hall's PC.
const DISPLAY = { video: { frameRate: { ideal: 5, max: 15 }, width: { max: 1920 }, height: { max: 1080 } }, audio: false };

/**
 * @param {Session} session
 * @param {{button: HTMLButtonElement, onChange: (track: MediaStreamTrack|null) => void, onError: (err) => void}} o
 */
export function shareController(session, { button, onChange, onError }) {
  let track = null;

  function render() {
    setText(button, track ? 'chair.stopShare' : 'chair.share');
    button.classList.toggle('active', Boolean(track));
    button.setAttribute('aria-pressed', String(Boolean(track)));
  }

  async function start() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia(DISPLAY);
    } catch (err) {
      if (err?.name !== 'NotAllowedError' && err?.name !== 'AbortError') onError(err);
      return;
    }
    track = stream.getVideoTracks()[0] ?? null;
    if (!track) return;
    // The browser's own "Stop sharing" bar ends the track.
    track.addEventListener('ended', () => {
      if (track?.readyState === 'ended') stop();
    });
    render();
    onChange(track);
    await session.setShare(track);
  }

  async function stop() {
    const old = track;
    track = null;
    render();
    onChange(null);
    old?.stop();
    await session.setShare(null);
  }

  button.addEventListener('click', () => (track ? stop() : start()));
  render();
  return {
    get track() {
      return track;
    },
    stop,
    destroy() {
      track?.stop();
      track = null;
    },
  };
}
