// The join page: /join?t=<token>[&autojoin=1]
//   without autojoin: pre-join check (preview, devices, mic level), then "Tham gia / Join";
//   with autojoin=1: joins at once with camera + microphone (kiosk PC that boots into the meeting).
// After `joined` it mounts the chair view or the point view, and shows connection problems.
//
// Test hook, read by tests/browser/run.mjs (it exposes nothing the page itself does not hold):
//   window.hoinghi.state          'init'|'waiting'|'prejoin'|'connecting'|'joined'|'reconnecting'|'left'|'failed'
//   window.hoinghi.check          the last answer of POST /api/v1/join/check (js/early.js)
//   window.hoinghi.session        the Session (js/session.js)
//   window.hoinghi.publishPc      current publish RTCPeerConnection or null (call getStats() on it)
//   window.hoinghi.subscribePc    current subscribe RTCPeerConnection or null
//   window.hoinghi.role / participantId / meeting   from the last `joined`
//   window.hoinghi.tracks         [{mid, participant, kind}] of the last subscribe_offer
//   window.hoinghi.lastError      last `error` message from the server, or {code:'no_token'|'unsupported'}
//   window.hoinghi.roomState      last `room_state`
//   window.hoinghi.videoPaused    ['participant/source', ...] of the last `video_paused`
//   window.hoinghi.view           {program, audioOnly} of the point view (null for the chair)
//   window.hoinghi.linkTest       result of the pre-join link test (js/linktest.js), once done
//   window.hoinghi.chimes         how many times the floor / roll-call chime rang (js/chime.js)

import { $, el } from './dom.js';
import { applyAll, initI18n, localMessage, setText, t } from './i18n.js';
import {
  CAMERA_LAYERS,
  applyRoleSettings,
  mediaErrorKey,
  onAudioBlocked,
  openMedia,
  savedDevices,
  stopStream,
  unlockAudio,
} from './media.js';
import { chimeCount } from './chime.js';
import { runPrejoin } from './prejoin.js';
import { waitUntilOpen } from './early.js';
import { Session } from './session.js';
import { mountChair } from './chair.js';
import { mountPoint } from './point.js';

const ROOM_FULL_RETRY_S = 30;
const params = new URLSearchParams(location.search);
const autojoin = params.get('autojoin') === '1';

const main = $('#main');
const status = $('#status');
const banner = $('#banner');
const bannerText = $('#banner-text');
const toast = $('#toast');
const leaveButton = $('#leave-button');
const soundButton = $('#sound-button');

let session = null;
let localStream = null;
let view = null; // {destroy, role}
let pageState = 'init';
let lastError = null;
let countdown = null;

window.hoinghi = {
  get state() { return pageState; },
  get session() { return session; },
  get publishPc() { return session?.publishPc ?? null; },
  get subscribePc() { return session?.subscribePc ?? null; },
  get role() { return session?.role ?? null; },
  get participantId() { return session?.participantId ?? null; },
  get meeting() { return session?.meeting ?? null; },
  get tracks() { return session ? [...session.tracks.values()] : []; },
  get lastError() { return lastError; },
  get roomState() { return session?.roomState ?? null; },
  get videoPaused() { return session ? [...session.videoPaused] : []; },
  get view() { return view?.debug ?? null; },
  get chimes() { return chimeCount(); },
  linkTest: null,
  check: null, // the last answer of POST /api/v1/join/check (js/early.js)
};

initI18n($('#lang-button'));
onAudioBlocked((blocked) => (soundButton.hidden = !blocked));
soundButton.addEventListener('click', unlockAudio);
leaveButton.addEventListener('click', () => session?.leave());
$('#retry-now').addEventListener('click', () => session?.retryNow());
// Closing the tab: say goodbye so the chair sees the point leave at once, not after a timeout.
window.addEventListener('pagehide', () => session?.leave());

start();

async function start() {
  const token = params.get('t');
  if (!token) return showError({ code: 'no_token' });
  if (!window.RTCPeerConnection || !navigator.mediaDevices?.getUserMedia || !window.WebSocket) {
    return showError({ code: 'unsupported' });
  }
  // Early arrival: wait here (title, point, opening time, countdown) until the meeting opens; a
  // kiosk waits too, then joins by itself. A refused link is said before any device check.
  pageState = 'waiting';
  const early = await waitUntilOpen(main, token, { onCheck: (c) => (window.hoinghi.check = c) });
  if (early && !early.ok) return showError(early.error);
  if (early?.check) showLinkInfo(early.check);
  if (autojoin) {
    const result = await openMedia(savedDevices());
    localStream = result.stream;
    if (result.error) showToast('notice.media', { reason: t(mediaErrorKey(result.error)) });
  } else {
    pageState = 'prejoin';
    localStream = await runPrejoin(main, { token, check: early?.check ?? null, onLinkTest: (r) => (window.hoinghi.linkTest = r) });
    // The Join click is a user gesture: sound may now play without the "Enable sound" button.
  }
  join(token);
}

function join(token) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  main.replaceChildren(); // the pre-join panel is done; the view comes with `joined`
  session = new Session({ url: `${scheme}//${location.host}/ws`, token, prepareMedia });
  session.addEventListener('state', (e) => onState(e.detail));
  session.addEventListener('joined', (e) => onJoined(e.detail));
  session.addEventListener('server-error', (e) => {
    lastError = e.detail;
    if (e.detail.fatal) return;
    const known = ['forbidden', 'rate_limited', 'not_in_room', 'invalid_state', 'bad_message'];
    const message = localMessage(e.detail.message);
    if (known.includes(e.detail.code)) showToast(`err.code.${e.detail.code}`, { message });
    else showToast('notice.server', { message });
  });
  session.start();
}

/** Called by the session on every `joined`: what to publish for this role. */
async function prepareMedia(role) {
  if (role === 'observer') {
    stopStream(localStream);
    localStream = null;
    return { stream: null };
  }
  // After "left" or a final error the camera was released; take it again.
  if (!localStream || localStream.getTracks().every((tr) => tr.readyState === 'ended')) {
    localStream = (await openMedia(savedDevices())).stream;
  }
  await applyRoleSettings(localStream, role);
  return { stream: localStream, cameraLayers: CAMERA_LAYERS[role] ?? CAMERA_LAYERS.point };
}

const watchedTracks = new WeakSet();

/**
 * Tells the server what this page publishes (`publish_state`, docs/protocol.md): a hall without
 * a camera or a microphone then reads "Không có camera" / "Không có micrô" on the chair's grid,
 * not "connecting" for ever. Again on every `joined` (a fresh seat starts unknown) and when a
 * device goes away (a USB camera unplugged ends its track).
 */
function announceMedia() {
  if (!session || session.role === 'observer') return;
  const tracks = localStream?.getTracks() ?? [];
  const has = (kind) => tracks.some((tr) => tr.kind === kind && tr.readyState === 'live');
  session.control('publish_state', { audio: has('audio'), video: has('video') });
  for (const tr of tracks) {
    if (watchedTracks.has(tr)) continue;
    watchedTracks.add(tr);
    tr.addEventListener('ended', () => {
      // Not for a stream the page already let go of (track.stop() fires no 'ended').
      if (localStream?.getTracks().includes(tr)) announceMedia();
    });
  }
}

/** The meeting's title and the seat's role in the top bar from the join check, before joining. */
function showLinkInfo(check) {
  $('#meeting-title').textContent = check.meeting_title;
  setText($('#role-label'), `role.${check.role}`);
  document.title = `${check.meeting_title} – ${t('app.name')}`;
}

function onJoined(msg) {
  $('#meeting-title').textContent = msg.meeting.title;
  setText($('#role-label'), `role.${msg.role}`);
  document.title = `${msg.meeting.title} – ${t('app.name')}`;
  announceMedia();
  if (view?.role === msg.role) return; // a reconnect: the view updates itself from events
  view?.destroy();
  const mount = msg.role === 'chair' ? mountChair : mountPoint;
  const ctx = { get localStream() { return localStream; }, notify: showToast };
  const mounted = mount(main, session, ctx);
  view = { role: msg.role, destroy: () => mounted.destroy(), get debug() { return mounted.debug ?? null; } };
  applyAll(main); // translate the attributes of what was just mounted
}

function onState({ state, attempt, delayMs, error, restarting }) {
  pageState = state;
  clearInterval(countdown);
  banner.hidden = state !== 'reconnecting';
  leaveButton.hidden = !(state === 'joined' || state === 'reconnecting' || state === 'connecting');
  switch (state) {
    case 'connecting':
      setText(status, 'status.connecting');
      break;
    case 'joined':
      setText(status, 'status.joined');
      break;
    case 'reconnecting': {
      setText(status, 'status.connecting');
      const until = Date.now() + delayMs;
      const key = restarting ? 'status.restarting' : 'status.reconnecting';
      const tick = () => setText(bannerText, key, { s: Math.max(0, Math.ceil((until - Date.now()) / 1000)), n: attempt });
      tick();
      countdown = setInterval(tick, 1000);
      break;
    }
    case 'left':
      endView();
      setText(status, 'status.left');
      showPanel('left.title', 'left.body', [['rejoin', () => session.start()]]);
      break;
    case 'failed':
      endView();
      status.textContent = '';
      showError(error);
      break;
  }
}

function endView() {
  view?.destroy();
  view = null;
  stopStream(localStream); // camera light off while not in the meeting
  localStream = null;
}

function showError(error) {
  lastError = error;
  pageState = 'failed';
  const code = error?.code;
  const known = ['no_token', 'bad_token', 'token_expired', 'room_full', 'replaced', 'revoked', 'unsupported', 'meeting_ended', 'schedule_ended', 'relay_link'].includes(code);
  const actions = [];
  if (code === 'room_full' && session) actions.push(['retry', () => session.retryNow()]);
  if (code === 'replaced' && session) actions.push(['rejoin', () => session.retryNow()]);
  const panel = showPanel(known ? `err.${code}.title` : 'err.generic.title', known ? `err.${code}.body` : null, actions);
  if (!known && error?.message) panel.append(el('p', {}, localMessage(error.message)));
  // A kiosk has nobody to press "Retry": a full room may free a seat, so try again by itself.
  if (code === 'room_full' && session && autojoin) {
    const note = el('p', { class: 'notice' });
    panel.append(note);
    let left = ROOM_FULL_RETRY_S;
    const tick = () => {
      setText(note, 'err.room_full.autoretry', { s: left });
      if (left-- <= 0) session.retryNow();
    };
    tick();
    countdown = setInterval(tick, 1000);
  }
}

/** Replaces the main area with a message panel; actions are [i18nKey, onClick] pairs. */
function showPanel(titleKey, bodyKey, actions = []) {
  const title = el('h1', { tabindex: '-1' });
  setText(title, titleKey);
  const panel = el('section', { class: 'panel message', role: 'alert' }, title);
  if (bodyKey) {
    const body = el('p');
    setText(body, bodyKey);
    panel.append(body);
  }
  for (const [key, onClick] of actions) {
    const button = el('button', { type: 'button', class: 'primary' });
    setText(button, key);
    button.addEventListener('click', onClick);
    panel.append(button);
  }
  main.replaceChildren(panel);
  title.focus();
  return panel;
}

let toastTimer = null;
function showToast(key, params) {
  setText(toast, key, params);
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (toast.hidden = true), 8000);
}
