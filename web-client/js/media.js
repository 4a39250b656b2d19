// Camera/microphone capture, per-role video settings, and audio playback that survives the
// browser's autoplay policy.

const DEVICE_KEY = 'hoinghi.devices';

// Everyone starts at 640x360: most participants are points on old PCs and weak uplinks, and the
// role is only known after `joined`. Then (applyRoleSettings) the camera is raised so that its
// three simulcast layers (CAMERA_LAYERS) are all worth sending: Chromium encodes only two layers
// below 960x540 (its "legacy simulcast layer limit": 640x360 or 640x480 give 1/4 and 1/2 scale,
// never the full one). `ideal`, not `min`: a camera that cannot is used at what it can, and the
// browser simply sends fewer layers.
//   chair: 1280x720 -> 320x180, 640x360, 1280x720 (the program every point watches);
//   point: 960x540  -> 240x135, 480x270, 960x540 (a thumbnail for the chair; the full layer only
//          when the point holds the floor and its uplink has room).
export const VIDEO = {
  prejoin: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 20, max: 30 } },
  point: { width: { ideal: 960 }, height: { ideal: 540 }, frameRate: { ideal: 20, max: 30 } },
  chair: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
};

// The camera's simulcast encodings (bit/s, frames/s), LOWEST QUALITY FIRST: the server ranks the
// layers by their order in the offer's a=simulcast line. It forwards one layer per subscriber:
// the lowest to the chair's grid of thumbnails, otherwise the best the subscriber's link allows,
// so a commune on a weak downlink still gets the program at the lowest layer.
// - q (quarter size): cheap on purpose, it is what a weak link receives and what the chair's grid
//   shows by the dozen (40 points x ~120 kbit/s ~ 5 Mbit/s at the province hall). 15 fps keeps
//   lips readable at half the bits of 30 fps.
// - h (half size): a decent picture on a ~1 Mbit/s commune downlink.
// - f (full size): for good links only.
// Chromium sends the lowest layers first when its uplink estimate is short: on a commune uplink
// under 1 Mbit/s a point sends q and h, and the full layer comes when the line has room.
// maxFramerate is set on every layer on purpose: Chromium 156 (VP8) applies a lone q cap of 15
// fps to all three layers; with an explicit cap on each, h and f keep the camera's frame rate.
export const CAMERA_LAYERS = {
  point: [
    { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 120_000, maxFramerate: 15 },
    { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 350_000, maxFramerate: 30 },
    { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 700_000, maxFramerate: 30 },
  ],
  chair: [
    { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000, maxFramerate: 15 },
    { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000, maxFramerate: 30 },
    { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_200_000, maxFramerate: 30 },
  ],
};

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
  const video = { ...VIDEO.prejoin, ...(videoId ? { deviceId: { ideal: videoId } } : {}) };
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
