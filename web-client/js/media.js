// Camera/microphone capture, per-role video settings, and audio playback that survives the
// browser's autoplay policy.

const DEVICE_KEY = 'hoinghi.devices';

// Everyone starts at 640x360: most participants are points on old PCs and weak uplinks, and the
// role is only known after `joined`. The chair is raised to 720p then (applyRoleSettings).
export const VIDEO = {
  point: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 20, max: 30 } },
  chair: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
};

// Upper bound for the camera encoder (bit/s). A commune uplink is often under 1 Mbit/s and the
// audio must still get through; the province hall has a better line.
export const VIDEO_MAX_BITRATE = { point: 600_000, chair: 1_500_000 };

const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

/** Device ids chosen in the pre-join check, remembered so a kiosk reboots onto the same devices. */
export function savedDevices() {
  try {
    return JSON.parse(localStorage.getItem(DEVICE_KEY)) ?? {};
  } catch {
    return {};
  }
}

export function saveDevices(ids) {
  try {
    localStorage.setItem(DEVICE_KEY, JSON.stringify(ids));
  } catch {
    // Not remembered; the default devices will be used next time.
  }
}

/**
 * Opens camera and microphone, falling back to whichever works: a point without a camera can
 * still be heard, and one with neither can still watch. Never throws.
 * `ideal` device ids (not `exact`) so a camera that was unplugged falls back to another one.
 * @returns {Promise<{stream: MediaStream, error: DOMException|null}>}
 */
export async function openMedia({ videoId, audioId } = {}) {
  const video = { ...VIDEO.point, ...(videoId ? { deviceId: { ideal: videoId } } : {}) };
  const audio = { ...AUDIO, ...(audioId ? { deviceId: { ideal: audioId } } : {}) };
  let firstError = null;
  for (const constraints of [{ video, audio }, { audio }, { video }]) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      return { stream, error: firstError };
    } catch (err) {
      firstError ??= err;
    }
  }
  return { stream: new MediaStream(), error: firstError };
}

/** i18n key describing a getUserMedia failure. */
export function mediaErrorKey(err) {
  switch (err?.name) {
    case 'NotAllowedError':
      return 'media.denied';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'media.notFound';
    case 'NotReadableError':
      return 'media.busy';
    default:
      return 'media.other';
  }
}

/** Resolution and content hints for the role, applied before publishing. */
export async function applyRoleSettings(stream, role) {
  for (const track of stream.getVideoTracks()) {
    // 'motion': on a weak link keep the frame rate (lips, gestures) and drop resolution first.
    track.contentHint = 'motion';
    try {
      await track.applyConstraints(VIDEO[role] ?? VIDEO.point);
    } catch (err) {
      console.warn('[hoinghi] camera constraints not applied:', err?.name);
    }
  }
  for (const track of stream.getAudioTracks()) track.contentHint = 'speech';
}

export function stopStream(stream) {
  for (const track of stream?.getTracks() ?? []) track.stop();
}

// --- Playback ---------------------------------------------------------------------------------
// Video elements are always muted (muted autoplay is always allowed); sound goes through separate
// <audio> elements. If the browser blocks them (no user gesture yet, e.g. autojoin kiosk), we
// remember them and the page shows an "Enable sound" button that calls unlockAudio().

const blockedAudio = new Set();
const blockedListeners = new Set();

function notifyBlocked() {
  for (const fn of blockedListeners) fn(blockedAudio.size > 0);
}

export function onAudioBlocked(fn) {
  blockedListeners.add(fn);
}

export function playVideo(video) {
  video.muted = true;
  video.play().catch(() => {
    // Aborted by a newer srcObject, or the element was removed: nothing to do.
  });
}

export function playAudio(audio) {
  // The speaker chosen in the pre-join check (Chromium's setSinkId; elsewhere the default).
  const out = savedDevices().outputId;
  if (out && out !== 'default' && audio.setSinkId && audio.sinkId !== out) audio.setSinkId(out).catch(() => {});
  audio.play().then(
    () => {
      if (blockedAudio.delete(audio)) notifyBlocked();
    },
    (err) => {
      if (err?.name === 'NotAllowedError') {
        blockedAudio.add(audio);
        notifyBlocked();
      }
    },
  );
}

/** Call from a click handler: a user gesture lets the blocked elements play. */
export function unlockAudio() {
  for (const audio of [...blockedAudio]) {
    if (!audio.isConnected) blockedAudio.delete(audio);
    else playAudio(audio);
  }
  notifyBlocked();
}
