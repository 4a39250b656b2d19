// Pre-join check: camera preview, device choice, microphone level, speaker test (a beep made
// with WebAudio), a link test against the server (linktest.js) with a plain-language verdict,
// and the Join button. The chosen devices are remembered (media.js) so an autojoin kiosk uses
// them on the next boot. Above it, what the link is for (meeting, point, role: the join check
// of early.js); beside the devices, "join with my microphone / camera on" switches, and for a
// device that does not work, steps to fix it and a retry (prejoin-help.js).

import { el } from './dom.js';
import { setText, t } from './i18n.js';
import { runLinkTest } from './linktest.js';
import { DeviceHelp } from './prejoin-help.js';
import { mediaErrorKey, openMedia, playVideo, saveDevices, savedDevices, stopStream } from './media.js';

/**
 * Shows the check in `container`; resolves with the stream to publish once Join is pressed (a
 * device switched off joins with its track disabled: the microphone opens again with the floor,
 * the chair's camera with its own button). `token` is the join token (the link test needs it);
 * `check` the join check's answer (meeting title, point name, role) or null; onLinkTest(result)
 * is called when the link test finishes (test hook).
 */
export function runPrejoin(container, { token, check = null, onLinkTest } = {}) {
  const title = el('h1', { id: 'prejoin-title' });
  setText(title, 'prejoin.title');
  const header = whoAndWhat(check);
  const micOn = el('input', { type: 'checkbox', id: 'prejoin-mic-on', checked: true });
  const camOn = el('input', { type: 'checkbox', id: 'prejoin-cam-on', checked: true });
  const toggle = (box, key) => {
    const text = el('span');
    setText(text, key);
    return el('label', { class: 'check', for: box.id }, box, text);
  };
  const help = new DeviceHelp({ onRetry: () => {
    join.disabled = true;
    open(savedDevices());
  } });
  const video = el('video', { class: 'preview mirror', autoplay: true, playsinline: true, 'data-i18n-attr': 'aria-label:prejoin.preview' });
  const cam = el('select', { id: 'prejoin-camera' });
  const mic = el('select', { id: 'prejoin-mic' });
  const level = el('meter', { id: 'prejoin-level', min: '0', max: '1', low: '0.05', high: '0.8', optimum: '0.3', value: '0' });
  const speaker = el('select', { id: 'prejoin-speaker' });
  const beep = el('button', { type: 'button', id: 'speaker-test' });
  setText(beep, 'prejoin.speakerTest');
  const beepHint = el('p', { class: 'small' });
  setText(beepHint, 'prejoin.speakerHint');
  const linkVerdict = el('p', { class: 'link-verdict', id: 'link-verdict', role: 'status' });
  const linkDetail = el('p', { class: 'small', id: 'link-detail' });
  const linkAgain = el('button', { type: 'button', id: 'link-test', disabled: true });
  setText(linkAgain, 'prejoin.linkTest');
  const linkTitle = el('h2', { class: 'sub-title', id: 'link-title' });
  setText(linkTitle, 'prejoin.link');
  const notice = el('p', { class: 'notice', role: 'status' });
  setText(notice, 'prejoin.loading');
  const join = el('button', { type: 'button', class: 'primary', id: 'join-button', disabled: true });
  setText(join, 'prejoin.join');
  const label = (forId, key) => {
    const l = el('label', { for: forId });
    setText(l, key);
    return l;
  };
  const panel = el(
    'section',
    { class: 'panel prejoin', 'aria-labelledby': 'prejoin-title' },
    title,
    header,
    el(
      'div',
      { class: 'prejoin-body' },
      video,
      el(
        'div',
        { class: 'prejoin-controls' },
        label('prejoin-camera', 'prejoin.camera'),
        cam,
        label('prejoin-mic', 'prejoin.mic'),
        mic,
        label('prejoin-level', 'prejoin.micLevel'),
        level,
        label('prejoin-speaker', 'prejoin.speaker'),
        el('div', { class: 'button-row' }, speaker, beep),
        beepHint,
        el('div', { class: 'prejoin-toggles' }, toggle(micOn, 'prejoin.micOn'), toggle(camOn, 'prejoin.camOn')),
        notice,
        help.root,
        join,
      ),
    ),
    el('section', { class: 'link-test', 'aria-labelledby': 'link-title' }, linkTitle, linkVerdict, linkDetail, linkAgain),
  );
  container.replaceChildren(panel);

  let stream = null;
  let meter = null;

  async function open(ids) {
    stopStream(stream);
    meter?.stop();
    const result = await openMedia(ids);
    stream = result.stream;
    video.srcObject = stream;
    playVideo(video);
    if (result.error) setText(notice, 'notice.media', { reason: t(mediaErrorKey(result.error)) });
    else notice.textContent = '';
    help.show(stream, result.error);
    micOn.disabled = stream.getAudioTracks().length === 0;
    camOn.disabled = stream.getVideoTracks().length === 0;
    meter = levelMeter(stream, level);
    await fillDevices();
    join.disabled = false;
    // Keyboard first: Enter joins. Only now, a disabled button cannot take focus.
    if (!panel.contains(document.activeElement)) join.focus();
  }

  async function fillDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
    const current = (kind) => stream.getTracks().find((tr) => tr.kind === kind)?.getSettings().deviceId;
    fill(cam, devices.filter((d) => d.kind === 'videoinput'), current('video'));
    fill(mic, devices.filter((d) => d.kind === 'audioinput'), current('audio'));
    fill(speaker, devices.filter((d) => d.kind === 'audiooutput'), savedDevices().outputId ?? 'default');
    // Choosing the output needs setSinkId (Chromium); elsewhere the system default plays.
    if (!('setSinkId' in HTMLMediaElement.prototype)) speaker.disabled = true;
  }

  speaker.addEventListener('change', () => saveDevices({ ...savedDevices(), outputId: speaker.value || undefined }));
  beep.addEventListener('click', () => playBeep(speaker.value));

  async function linkTest() {
    linkAgain.disabled = true;
    linkVerdict.className = 'link-verdict';
    setText(linkVerdict, 'link.running');
    linkDetail.textContent = '';
    const r = await runLinkTest({ token, onBusy: () => setText(linkVerdict, 'link.busy') });
    linkVerdict.className = `link-verdict v-${r.verdict}`;
    setText(linkVerdict, `link.${r.verdict}`);
    if (r.verdict !== 'failed') {
      setText(linkDetail, 'link.result', { rtt: r.rttMs, down: fmt(r.downMbps), up: fmt(r.upMbps) });
    }
    linkAgain.disabled = false;
    onLinkTest?.(r);
  }
  linkAgain.addEventListener('click', linkTest);
  linkTest();

  const onChange = () => {
    const ids = { ...savedDevices(), videoId: cam.value || undefined, audioId: mic.value || undefined };
    saveDevices(ids);
    join.disabled = true;
    open(ids);
  };
  cam.addEventListener('change', onChange);
  mic.addEventListener('change', onChange);

  open(savedDevices());

  return new Promise((resolve) => {
    join.addEventListener('click', () => {
      meter?.stop();
      video.srcObject = null;
      for (const tr of stream.getAudioTracks()) tr.enabled = micOn.checked;
      for (const tr of stream.getVideoTracks()) tr.enabled = camOn.checked;
      resolve(stream);
    });
  });
}

/** "Giao ban tháng 12 · UBND xã Cao Sơn · Điểm cầu": what this link joins, as whom. */
function whoAndWhat(check) {
  const box = el('p', { class: 'prejoin-who', id: 'prejoin-who', hidden: !check });
  if (!check) return box;
  const meeting = el('strong', { id: 'prejoin-meeting' }, check.meeting_title);
  const point = el('span', { id: 'prejoin-point' }, check.point_name);
  const role = el('span', { class: 'role-label', id: 'prejoin-role' });
  setText(role, `role.${check.role}`);
  box.append(meeting, ' · ', point, ' · ', role);
  return box;
}

function fill(select, devices, selectedId) {
  select.replaceChildren();
  if (devices.length === 0) {
    const none = el('option', { value: '' });
    setText(none, 'prejoin.none');
    select.append(none);
  }
  devices.forEach((d, i) => {
    select.append(el('option', { value: d.deviceId, selected: d.deviceId === selectedId }, d.label || `${d.kind} ${i + 1}`));
  });
  select.disabled = devices.length < 2;
}

/** Microphone level into a <meter>, ~10 updates a second (cheap on old PCs). */
function levelMeter(stream, meterEl) {
  const track = stream.getAudioTracks()[0];
  if (!track || !window.AudioContext) return null;
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  // Without a user gesture the context starts suspended; the first click or key wakes it.
  const wake = () => ctx.resume().catch(() => {});
  document.addEventListener('pointerdown', wake, { once: true });
  document.addEventListener('keydown', wake, { once: true });
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    meterEl.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      document.removeEventListener('pointerdown', wake);
      document.removeEventListener('keydown', wake);
      meterEl.value = 0;
      ctx.close().catch(() => {});
    },
  };
}

const fmt = (mbps) => (mbps >= 10 ? String(Math.round(mbps)) : mbps.toFixed(1));

/** A short two-tone beep through the chosen output (WebAudio, nothing downloaded). */
async function playBeep(sinkId) {
  if (!window.AudioContext) return;
  const ctx = new AudioContext();
  if (sinkId && sinkId !== 'default' && ctx.setSinkId) await ctx.setSinkId(sinkId).catch(() => {});
  await ctx.resume().catch(() => {});
  const gain = ctx.createGain();
  gain.connect(ctx.destination);
  const t0 = ctx.currentTime + 0.05;
  gain.gain.setValueAtTime(0, t0);
  for (const [i, freq] of [660, 880].entries()) {
    const osc = ctx.createOscillator();
    osc.frequency.value = freq;
    osc.connect(gain);
    const at = t0 + i * 0.35;
    gain.gain.setTargetAtTime(0.25, at, 0.01);
    gain.gain.setTargetAtTime(0, at + 0.25, 0.02);
    osc.start(at);
    osc.stop(at + 0.32);
  }
  setTimeout(() => ctx.close().catch(() => {}), 1500);
}
