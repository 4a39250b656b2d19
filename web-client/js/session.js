// The hoinghi protocol (docs/protocol.md): one WebSocket plus two RTCPeerConnections.
//   publish   – we offer, the server answers; carries our camera and microphone.
//   subscribe – the server offers (again each time what we receive changes), we answer.
// A lost connection is retried for ever with exponential backoff, re-joining with the same
// token: a commune PC in kiosk mode must come back by itself after a link cut.
// A socket lost without `bye` is first resumed (docs/protocol.md, "Resuming a seat"): the peer
// connections are kept while the socket is away, the next `join` carries the last
// `resume_token`, and on `resumed: true` nothing is torn down (same participant, nobody sees us
// leave). Otherwise the held connections go and the join is a fresh one.
//
// Events (CustomEvent, data in `detail`):
//   state        {state: 'connecting'|'joined'|'reconnecting'|'left'|'failed', attempt?, delayMs?, error?}
//   joined       the server's `joined` message (again after every reconnect)
//   participant-joined / participant-left   the server's message
//   media        {tracks: [{mid, participant, kind, track}]} – everything received now (authoritative)
//   server-error the server's `error` message (non-fatal ones too)
//   room-state / chat / active-speakers / link-quality / meeting-ended   the server's message
//                (meeting controls; `room-state` also sets this.roomState)
//   video-paused the server's `video_paused`: videos our link cannot carry now (also in
//                this.videoPaused, a Set of `${participant}/${source}`)

import { Publisher } from './publisher.js';

// How long queued messages may take to be handled after the socket closed.
const CLOSE_DRAIN_MS = 2000;
const PROTOCOL_VERSION = 1;
// Errors after which retrying with the same link cannot help. 'replaced' is ours: the server
// said `bye` because the same point joined from another window or PC; re-joining by ourselves
// would throw that one out, and the two would take turns for ever.
// 'meeting_ended' is ours too: the chair ended the meeting, there is nothing to return to.
const FINAL_ERRORS = new Set(['bad_token', 'token_expired', 'room_full', 'replaced', 'revoked', 'meeting_ended', 'schedule_ended']);
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const PING_EVERY_MS = 15000;
// No frame at all (pongs included) for this long: the socket is dead even if TCP has not noticed.
const SILENCE_LIMIT_MS = 45000;
// A peer connection may flap to 'disconnected' on a lossy link; only give up on it after this.
const PC_DISCONNECTED_GRACE_MS = 15000;
// ICE restarts of the publish connection, one at most this often while its path stays dead.
const ICE_RESTART_GAP_MS = 5000;
// A dead subscribe connection (the server offers it, so only the server can replace it): ask
// for a new one (`restart_subscribe`), then again this often while the one we hold stays dead
// (the server spaces its restarts by 5 s, and a request may be lost with a socket).
const SUBSCRIBE_RESTART_GAP_MS = 5000;
const SUBSCRIBE_RESTART_AGAIN_MS = 10000;
const LEAVE_TIMEOUT_MS = 2000;
// While the server may still hold our seat (its grace is 15 s), come back quickly: 0.25 s,
// 0.5 s, 1 s, 2 s, 2 s … (±20 %), then the usual backoff.
const RESUME_WINDOW_MS = 15000;
const RESUME_BACKOFF_MIN_MS = 250;
const RESUME_BACKOFF_MAX_MS = 2000;

export class Session extends EventTarget {
  /**
   * @param {object} opts
   * @param {string} opts.url         ws: or wss: URL of /ws
   * @param {string} opts.token       join token (t= of the link)
   * @param {(role: string) => Promise<{stream: MediaStream|null, cameraLayers?: RTCRtpEncodingParameters[]}>} opts.prepareMedia
   *        called on each `joined` before the event fires: returns what to publish
   *        (stream null or without tracks: publish nothing; observers never publish) and the
   *        camera's simulcast encodings, lowest quality first (publisher.js)
   */
  constructor({ url, token, prepareMedia }) {
    super();
    this.url = url;
    this.token = token;
    this.prepareMedia = prepareMedia;
    this.state = 'idle';
    this.attempt = 0;
    this.gen = 0; // connection generation: callbacks of an older connection are ignored
    this.ws = null;
    this.publishPc = null;
    this.subscribePc = null;
    this.participantId = null;
    this.role = null;
    this.meeting = null;
    this.roster = new Map(); // participant id -> {id, point, name, role, media?}
    this.invited = []; // chair only: points invited to the meeting ({point, name})
    this.roomState = null; // last `room_state`
    this.videoPaused = new Set(); // `${participant}/${source}` the server paused for our link
    this.shareTrack = null; // screen share we publish, or null
    this.publisher = null; // publish side of the current connection (publisher.js)
    this.tracks = new Map(); // mid -> {mid, participant, kind}, from the last subscribe_offer
    this.subscribeRevision = 0; // revision of the last subscribe_offer applied
    this.lastError = null;
    this.restartHintMs = null; // set by `bye` `server_restarting`
    this.resumeToken = null; // `resume_token` of the last `joined`, while its media is held
    this.lostAt = 0; // when the socket of a held seat was lost
    this.sawBye = false; // this socket's server said `bye`: no resume after it
    this.mediaGen = 0; // peer-connection generation: callbacks of closed connections are ignored
    this.pendingCandidates = { publish: [], subscribe: [] }; // candidates before their SDP
    this.leaving = false;
    this.timers = new Set();
  }

  start() {
    this.leaving = false;
    this.attempt = 0;
    this.#connect();
  }

  /** Skips the backoff wait (the "Retry now" button). */
  retryNow() {
    if (this.state === 'reconnecting' || this.state === 'failed') this.#connect();
  }

  /** Sends `leave` and waits briefly for `bye`; the server closes the socket. */
  leave() {
    this.leaving = true;
    if (this.state === 'joined' && this.ws?.readyState === WebSocket.OPEN) {
      this.#send({ type: 'leave' });
      this.#later(() => this.#drop('leave timeout'), LEAVE_TIMEOUT_MS);
    } else {
      // Not in the meeting (waiting to reconnect, failed, still connecting): just stop.
      this.gen++;
      this.#teardown();
      this.#setState('left');
    }
  }

  // --- connection lifecycle -------------------------------------------------------------------

  #connect() {
    // The peer connections stay while we try to resume the seat they belong to.
    this.#closeSocket();
    const gen = ++this.gen;
    this.lastError = null;
    this.sawBye = false;
    this.#setState('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      console.error('[hoinghi] cannot open WebSocket', err);
      this.#scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.queue = Promise.resolve();
    this.lastSeen = Date.now();
    ws.onopen = () => {
      if (gen !== this.gen) return;
      this.#send(this.resumeToken ? { type: 'join', token: this.token, resume: this.resumeToken } : { type: 'join', token: this.token });
      this.#keepAlive(gen);
    };
    ws.onmessage = (event) => {
      if (gen !== this.gen) return;
      this.lastSeen = Date.now();
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        console.warn('[hoinghi] ignoring a frame that is not JSON');
        return;
      }
      // One message at a time, in order: an SDP step must finish before the next message
      // (a candidate for that connection, the next offer) is applied.
      this.queue = this.queue
        .then(() => (gen === this.gen ? this.#handle(msg, gen) : undefined))
        .catch((err) => {
          if (gen !== this.gen) return;
          console.error(`[hoinghi] handling "${msg?.type}" failed`, err);
          // An SDP step that failed leaves the server waiting for us: start over.
          this.#drop(`${msg?.type} failed`);
        });
    };
    ws.onclose = (event) => {
      if (gen !== this.gen) return;
      console.info(`[hoinghi] socket closed (code ${event.code})`);
      // Messages that came before the close may still be queued behind an SDP step: let them
      // be handled first (a `meeting_ended` or `bye` among them decides whether to come back),
      // but not for ever.
      const drop = () => {
        if (gen === this.gen) this.#drop('socket closed', { resumable: true });
      };
      this.queue.then(drop, drop);
      this.#later(drop, CLOSE_DRAIN_MS);
    };
  }

  /**
   * Ends the current connection and decides what comes next: left, failed, resume, or retry.
   * `resumable`: the socket was lost (no `bye`, no fatal error), so the seat may be waiting.
   */
  #drop(reason, { resumable = false } = {}) {
    // Only a live connection can end; a second report of the same end is ignored.
    if (this.state !== 'connecting' && this.state !== 'joined') return;
    console.info(`[hoinghi] connection ended: ${reason}`);
    this.gen++;
    if (resumable && this.resumeToken && !this.leaving && !this.sawBye && !this.lastError) {
      // Keep the peer connections: the server keeps its side for the grace period.
      if (this.state === 'joined') this.lostAt = Date.now();
      this.#closeSocket();
      this.#scheduleReconnect();
      return;
    }
    this.#teardown();
    if (this.leaving) this.#setState('left');
    else if (this.lastError && FINAL_ERRORS.has(this.lastError.code)) {
      this.#setState('failed', { error: this.lastError });
    } else this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    this.attempt += 1;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (this.attempt - 1));
    // ±20 % jitter so hundreds of points cut by the same outage do not return in lockstep.
    let delayMs = Math.round(base * (0.8 + Math.random() * 0.4));
    const resuming = this.resumeToken != null && Date.now() - this.lostAt < RESUME_WINDOW_MS;
    if (resuming) {
      const quick = Math.min(RESUME_BACKOFF_MAX_MS, RESUME_BACKOFF_MIN_MS * 2 ** (this.attempt - 1));
      delayMs = Math.round(quick * (0.8 + Math.random() * 0.4));
    }
    // After `bye` `server_restarting`: the server's hint plus 0–50 %, then the usual backoff.
    const restarting = this.restartHintMs != null;
    if (restarting) delayMs = Math.round(this.restartHintMs * (1 + Math.random() * 0.5));
    this.restartHintMs = null;
    this.#setState('reconnecting', { attempt: this.attempt, delayMs, restarting, resuming });
    this.#later(() => this.#connect(), delayMs);
  }

  /** Everything of this seat goes: the socket, the peer connections, the resume token. */
  #teardown() {
    this.#closeSocket();
    this.#closeMedia();
  }

  #closeSocket() {
    for (const id of this.timers) clearTimeout(id);
    this.timers.clear();
    clearInterval(this.pingTimer);
    if (this.ws) {
      this.ws.onopen = this.ws.onmessage = this.ws.onclose = null;
      if (this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
      this.ws = null;
    }
  }

  /** The peer connections and what they carried; the seat can no longer be resumed. */
  #closeMedia() {
    this.mediaGen++;
    this.resumeToken = null;
    clearTimeout(this.subscribeRestartTimer);
    for (const pc of [this.publishPc, this.subscribePc]) pc?.close();
    const hadMedia = this.tracks.size > 0 || this.subscribePc;
    this.publishPc = this.subscribePc = null;
    this.publisher?.close();
    this.publisher = null;
    this.roomState = null;
    this.videoPaused = new Set();
    this.pendingCandidates = { publish: [], subscribe: [] };
    this.tracks = new Map();
    if (hadMedia) this.#emit('media', { tracks: [] });
  }

  #keepAlive(gen) {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (gen !== this.gen) return;
      if (Date.now() - this.lastSeen > SILENCE_LIMIT_MS) this.#drop('server silent', { resumable: true });
      else {
        this.#send({ type: 'ping' });
        this.#reportFreezes();
      }
    }, PING_EVERY_MS);
  }

  /**
   * Tells the server how many video freezes our decoders saw since the last report (operators
   * graph them). Deltas of the cumulative getStats counters, per subscribe connection.
   */
  async #reportFreezes() {
    const pc = this.subscribePc;
    if (!pc || this.state !== 'joined') return;
    let freezes = 0;
    let seconds = 0;
    try {
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          freezes += s.freezeCount ?? 0;
          seconds += s.totalFreezesDuration ?? 0;
        }
      });
    } catch {
      return; // the connection went away meanwhile
    }
    const prev = this.freezeReport?.pc === pc ? this.freezeReport : { freezes: 0, seconds: 0 };
    this.freezeReport = { pc, freezes, seconds };
    // Streams that end take their counts with them: never report a negative delta.
    const df = Math.max(0, freezes - prev.freezes);
    const dms = Math.max(0, Math.round((seconds - prev.seconds) * 1000));
    if (df > 0 || dms > 0) this.control('client_stats', { freezes: Math.min(df, 10_000), freeze_ms: Math.min(dms, 3_600_000) });
  }

  // --- messages from the server ---------------------------------------------------------------

  async #handle(msg, gen) {
    switch (msg.type) {
      case 'joined':
        return this.#onJoined(msg, gen);
      case 'publish_answer':
        if (!this.publishPc) return;
        await this.publishPc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        await this.#flushCandidates('publish');
        this.publisher?.answerDone();
        return;
      case 'subscribe_offer':
        return this.#onSubscribeOffer(msg, gen);
      case 'candidate':
        return this.#addRemoteCandidate(msg.pc, msg.candidate);
      case 'participant_joined':
        this.roster.set(msg.participant.id, msg.participant);
        return this.#emit('participant-joined', msg);
      case 'participant_left':
        this.roster.delete(msg.participant);
        return this.#emit('participant-left', msg);
      case 'participant_media': {
        // What a participant publishes (its `publish_state`): kept in its roster entry.
        const p = this.roster.get(msg.participant);
        if (p) this.roster.set(p.id, { ...p, media: msg.media });
        return this.#emit('participant-media', msg);
      }
      case 'connection_state':
        console.info(`[hoinghi] server sees ${msg.pc} connection ${msg.state}`);
        return;
      case 'pong':
        return;
      case 'bye':
        // The socket closes next. After our own `leave` that ends the session; when replaced
        // we stop (see FINAL_ERRORS); otherwise we come back with backoff.
        console.info(`[hoinghi] bye: ${msg.code}: ${msg.reason}`);
        this.sawBye = true;
        // A restart: come back once the server is up again (its hint, plus jitter below).
        if (msg.code === 'server_restarting') this.restartHintMs = msg.retry_after_ms ?? BACKOFF_MIN_MS;
        if (!this.leaving && FINAL_ERRORS.has(msg.code)) {
          this.lastError = { code: msg.code, message: msg.reason, fatal: true };
        }
        return;
      case 'error':
        if (msg.request === 'publish_offer') this.publisher?.answerDone(); // do not wait for ever
        return this.#onError(msg);
      case 'room_state':
        this.roomState = msg;
        return this.#emit('room-state', msg);
      case 'chat':
        return this.#emit('chat', msg);
      case 'active_speakers':
        return this.#emit('active-speakers', msg);
      case 'link_quality':
        return this.#emit('link-quality', msg);
      case 'video_paused':
        // The complete list each time; empty when every video flows again.
        this.videoPaused = new Set((msg.tracks ?? []).map((t) => `${t.participant}/${t.source ?? 'camera'}`));
        return this.#emit('video-paused', msg);
      case 'meeting_ending':
        return this.#emit('meeting-ending', msg);
      case 'meeting_extended':
        return this.#emit('meeting-extended', msg);
      case 'meeting_ended':
        // `bye` and the close follow; do not come back (see FINAL_ERRORS).
        this.lastError = { code: 'meeting_ended', message: 'the chair ended the meeting', fatal: true };
        return this.#emit('meeting-ended', msg);
      default:
        // Newer servers may send types this client does not know yet: ignore them.
        console.warn(`[hoinghi] ignoring unknown message type "${msg.type}"`);
    }
  }

  async #onJoined(msg, gen) {
    this.attempt = 0;
    const held = this.publishPc || this.subscribePc;
    if (msg.resumed && msg.participant === this.participantId && held) return this.#onResumed(msg);
    // A fresh seat: what we held belonged to the old one.
    if (held) this.#closeMedia();
    this.resumeToken = msg.resume_token ?? null;
    this.participantId = msg.participant;
    this.role = msg.role;
    this.meeting = msg.meeting;
    this.iceServers = msg.ice_servers ?? [];
    this.roster = new Map(msg.roster.map((p) => [p.id, p]));
    this.invited = msg.invited ?? []; // chair only: every invited point, connected or not
    // Media first, so the page can show the own camera as soon as it learns the role.
    const { stream, cameraLayers } = (await this.prepareMedia(msg.role)) ?? {};
    if (gen !== this.gen) return;
    this.#setState('joined');
    this.#emit('joined', msg);
    if (msg.role === 'observer' || !stream || stream.getTracks().length === 0) return;
    // Not awaited: the answer comes through this same message queue.
    this.#publish(stream, cameraLayers).catch((err) => {
      console.error('[hoinghi] publish failed', err);
      if (gen === this.gen) this.#drop('publish failed');
    });
  }

  /**
   * The server gave us our seat back: same participant, and our peer connections are still
   * its peer connections. Nothing is torn down or published again; `room_state` follows.
   */
  #onResumed(msg) {
    console.info(`[hoinghi] seat resumed (${msg.participant}); peer connections kept`);
    this.resumeToken = msg.resume_token ?? null;
    this.roster = new Map(msg.roster.map((p) => [p.id, p]));
    this.invited = msg.invited ?? this.invited;
    // Fresh TURN credentials for the next ICE gathering of the connections we keep.
    this.iceServers = msg.ice_servers ?? [];
    for (const pc of [this.publishPc, this.subscribePc]) {
      try {
        pc?.setConfiguration({ ...pc.getConfiguration(), iceServers: this.#iceServers() });
      } catch (err) {
        console.warn('[hoinghi] could not update the ICE servers', err?.name);
      }
    }
    this.#setState('joined', { resumed: true });
    this.#emit('joined', msg);
    // A subscribe connection that died while the socket was away: ask for a new one now.
    if (['failed', 'disconnected'].includes(this.subscribePc?.connectionState)) this.#askSubscribeRestart('subscribe connection dead at resume', 0);
  }

  async #publish(stream, cameraLayers) {
    const pc = this.#newPc('publish');
    this.publishPc = pc;
    this.publisher = new Publisher(pc, (body) => this.#send(body));
    await this.publisher.start(stream, cameraLayers, this.shareTrack);
  }

  /**
   * Starts (track) or stops (null) publishing a screen share (publisher.js). Resolves once the
   * server answered; when not connected, the share is added on the next join.
   */
  setShare(track) {
    this.shareTrack = track;
    return this.publisher?.setShare(track) ?? Promise.resolve();
  }

  /** The share's transceiver on the current publish connection, or null (test hook). */
  get shareTransceiver() {
    return this.publisher?.shareTransceiver ?? null;
  }

  /** Sends a meeting-control message (docs/protocol.md, "Meeting controls"); false if offline. */
  control(type, fields = {}) {
    if (this.state !== 'joined' || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.#send({ type, ...fields });
    return true;
  }

  async #onSubscribeOffer(msg, gen) {
    if (msg.restart && this.subscribePc) {
      // The server replaced our subscribe connection (our answer was refused or never reached
      // it, its path died, or we asked with `restart_subscribe`): this offer is for a new one.
      // Its candidates follow this offer.
      console.info(`[hoinghi] subscribe connection restarted by the server (revision ${msg.revision})`);
      clearTimeout(this.subscribeRestartTimer);
      this.subscribePc.close();
      this.subscribePc = null;
      this.pendingCandidates.subscribe = [];
    }
    if (!this.subscribePc) this.subscribePc = this.#newPc('subscribe');
    const pc = this.subscribePc;
    this.tracks = new Map(msg.tracks.map((t) => [t.mid, t]));
    await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    await this.#flushCandidates('subscribe');
    await pc.setLocalDescription(await pc.createAnswer());
    this.subscribeRevision = msg.revision;
    if (gen !== this.gen) return;
    this.#send({ type: 'subscribe_answer', revision: msg.revision, sdp: pc.localDescription.sdp });
    this.#emit('media', { tracks: this.receivedTracks() });
  }

  #onError(msg) {
    console.warn(`[hoinghi] server error ${msg.code}${msg.request ? ` (on ${msg.request})` : ''}: ${msg.message}`);
    this.#emit('server-error', msg);
    if (msg.fatal) {
      this.lastError = msg;
      // The server closes the socket after a fatal error; do not wait for its close frame.
      this.#drop(`fatal error ${msg.code}`);
    }
  }

  // --- peer connections -----------------------------------------------------------------------

  #iceServers() {
    return this.iceServers.map(({ urls, username, credential }) => ({ urls, username, credential }));
  }

  /**
   * A peer connection of this seat. It outlives a lost socket (resume), so its callbacks check
   * the seat's generation (`mediaGen`), not the socket's; what it sends goes on the socket of
   * the moment (nothing while there is none).
   */
  #newPc(kind) {
    const gen = this.mediaGen;
    const pc = new RTCPeerConnection({
      iceServers: this.#iceServers(),
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
    });
    pc.onicecandidate = (event) => {
      if (gen !== this.mediaGen) return;
      const c = event.candidate;
      // null = gathering finished: tell the server with an empty candidate. Chromium may also
      // fire an empty-string candidate before the null; skip it so the marker is sent once.
      if (c && !c.candidate) return;
      const candidate = c
        ? { candidate: c.candidate, sdpMid: c.sdpMid ?? undefined, sdpMLineIndex: c.sdpMLineIndex ?? undefined }
        : { candidate: '' };
      if (c?.usernameFragment) candidate.usernameFragment = c.usernameFragment;
      this.#send({ type: 'candidate', pc: kind, candidate });
    };
    let graceTimer = null;
    pc.onconnectionstatechange = () => {
      // A subscribe connection the server replaced (`restart`) no longer counts.
      if (gen !== this.mediaGen || pc !== (kind === 'publish' ? this.publishPc : this.subscribePc)) return;
      const state = pc.connectionState;
      console.info(`[hoinghi] ${kind} connection ${state}`);
      clearTimeout(graceTimer);
      // 'disconnected' heals by itself when packets pass again (the server keeps its side of
      // the path for about 45 s): wait. A dead path is healed by an ICE restart on the publish
      // connection, by a new subscribe connection from the server (docs/protocol.md §7).
      if (state === 'failed') this.#mediaLost(kind, 'failed');
      else if (state === 'disconnected') {
        graceTimer = setTimeout(() => {
          if (gen === this.mediaGen && pc.connectionState === 'disconnected') this.#mediaLost(kind, 'lost');
        }, PC_DISCONNECTED_GRACE_MS);
      }
    };
    return pc;
  }

  /**
   * A peer connection's path is dead. The publish connection restarts ICE (the server answers
   * with the same connection: same tracks, same DTLS session, nobody sees us leave); the
   * subscribe connection cannot (the server offers it), so we ask the server for a new one
   * (`restart_subscribe`): its offer comes marked `restart` and replaces the dead connection
   * (see #onSubscribeOffer), on the same seat.
   */
  #mediaLost(kind, how) {
    const reason = `${kind} connection ${how}`;
    if (kind === 'publish' && this.state === 'joined' && this.publisher) {
      clearTimeout(this.iceRestartTimer);
      const wait = Math.max(0, (this.lastIceRestart ?? 0) + ICE_RESTART_GAP_MS - Date.now());
      const publisher = this.publisher;
      this.iceRestartTimer = setTimeout(() => {
        const pc = this.publishPc;
        if (publisher !== this.publisher || !pc || !['failed', 'disconnected'].includes(pc.connectionState)) return;
        console.info(`[hoinghi] ${reason}: restarting ICE on it`);
        this.lastIceRestart = Date.now();
        publisher.restartIce();
      }, wait);
      return;
    }
    if (kind === 'subscribe' && this.subscribePc) {
      const wait = Math.max(0, (this.lastSubscribeRestart ?? 0) + SUBSCRIBE_RESTART_GAP_MS - Date.now());
      this.#askSubscribeRestart(reason, wait);
      return;
    }
    if (this.state === 'joined' || this.state === 'connecting') this.#drop(reason);
    else this.resumeToken = null; // between sockets: the next join is a fresh one
  }

  /**
   * Asks the server, after `wait` ms, to replace the subscribe connection we hold now, and
   * again every SUBSCRIBE_RESTART_AGAIN_MS while that same connection stays dead. Between
   * sockets nothing is sent (the resume asks again at once).
   */
  #askSubscribeRestart(reason, wait) {
    clearTimeout(this.subscribeRestartTimer);
    const pc = this.subscribePc;
    const gen = this.mediaGen;
    this.subscribeRestartTimer = setTimeout(() => {
      if (gen !== this.mediaGen || pc !== this.subscribePc || !['failed', 'disconnected'].includes(pc.connectionState)) return;
      if (this.state === 'joined' && this.ws?.readyState === WebSocket.OPEN) {
        console.info(`[hoinghi] ${reason}: asking the server for a new subscribe connection`);
        this.lastSubscribeRestart = Date.now();
        this.#send({ type: 'restart_subscribe', revision: this.subscribeRevision });
      }
      this.#askSubscribeRestart(reason, SUBSCRIBE_RESTART_AGAIN_MS);
    }, wait);
  }

  async #addRemoteCandidate(kind, candidate) {
    const pc = kind === 'publish' ? this.publishPc : this.subscribePc;
    if (!pc?.remoteDescription) {
      this.pendingCandidates[kind]?.push(candidate);
      return;
    }
    // Duplicates of candidates already in the SDP, or an end marker, may be refused: harmless.
    await pc.addIceCandidate(candidate).catch(() => {});
  }

  async #flushCandidates(kind) {
    const pending = this.pendingCandidates[kind];
    this.pendingCandidates[kind] = [];
    for (const c of pending) await this.#addRemoteCandidate(kind, c);
  }

  /** What the subscribe connection delivers now, labelled with the sending participant. */
  receivedTracks() {
    const pc = this.subscribePc;
    if (!pc) return [];
    const out = [];
    for (const tr of pc.getTransceivers()) {
      const dir = tr.currentDirection;
      if (tr.stopped || !(dir === 'recvonly' || dir === 'sendrecv')) continue;
      const info = this.tracks.get(tr.mid);
      if (!info) continue;
      out.push({ mid: tr.mid, participant: info.participant, kind: tr.receiver.track.kind, source: info.source, track: tr.receiver.track });
    }
    return out;
  }

  // --- helpers --------------------------------------------------------------------------------

  #send(body) {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    this.ws.send(JSON.stringify({ v: PROTOCOL_VERSION, ...body }));
  }

  #later(fn, ms) {
    const id = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, ms);
    this.timers.add(id);
  }

  #setState(state, extra = {}) {
    this.state = state;
    this.#emit('state', { state, ...extra });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
