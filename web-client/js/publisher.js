// The publish side of a session (docs/protocol.md §4): our camera and microphone, plus a screen
// share as an additional video m-line declared `source: "screen"` in `publish_offer`. Offers go
// one at a time: the next renegotiation waits for the server's answer to the previous one.
//
// The camera is sent as simulcast: one m-line, several encodings told apart by `rid`, listed
// lowest quality first (media.js CAMERA_LAYERS; the server ranks layers by that order). The
// browser may send fewer layers than asked (small camera, weak uplink, busy CPU): the server
// copes with any number. Screen share stays one encoding: scaled-down layers of a document are
// unreadable, and a single sharp layer at a low frame rate suits slides better.

const ANSWER_TIMEOUT_MS = 10000;
// Screen share encoder cap (bit/s): slides and documents need detail, not frame rate.
const SHARE_MAX_BITRATE = 1_200_000;

export class Publisher {
  /**
   * @param {RTCPeerConnection} pc   the publish connection
   * @param {(body: object) => void} send   sends a protocol message
   */
  constructor(pc, send) {
    this.pc = pc;
    this.send = send;
    this.shareTransceiver = null;
    this.cameraTransceiver = null;
    this.chain = Promise.resolve();
    this.answered = null; // resolves when the pending publish_answer was applied
    this.closed = false;
  }

  /**
   * Adds the tracks (and a share that was on before a reconnect) and sends the first offer.
   * @param {MediaStream} stream   camera and/or microphone
   * @param {RTCRtpEncodingParameters[]} [cameraLayers]   simulcast encodings, lowest first
   * @param {MediaStreamTrack|null} [shareTrack]
   */
  start(stream, cameraLayers, shareTrack) {
    for (const track of stream.getTracks()) {
      const init = { direction: 'sendonly', streams: [stream] };
      if (track.kind === 'audio') {
        preferRed(this.pc.addTransceiver(track, init));
        continue;
      }
      if (!cameraLayers?.length) {
        this.pc.addTransceiver(track, init);
        continue;
      }
      this.cameraLayers = cameraLayers.map((layer) => ({ ...layer }));
      try {
        this.cameraTransceiver = this.pc.addTransceiver(track, { ...init, sendEncodings: this.cameraLayers });
      } catch (err) {
        // A browser without simulcast (or refusing these parameters): one encoding, the best.
        console.warn('[hoinghi] simulcast not available, sending one encoding:', err?.name);
        this.cameraTransceiver = this.pc.addTransceiver(track, { ...init, sendEncodings: [single(cameraLayers)] });
      }
    }
    if (shareTrack?.readyState === 'live') this.#addShare(shareTrack);
    this.chain = this.#negotiate();
    return this.chain;
  }

  /** Starts (track) or stops (null) the screen share; resolves once the server answered. */
  setShare(track) {
    this.chain = this.chain
      .then(async () => {
        if (this.closed) return;
        const tr = this.shareTransceiver;
        if (track) {
          if (tr) {
            await tr.sender.replaceTrack(track);
            tr.direction = 'sendonly';
          } else this.#addShare(track);
        } else if (tr) {
          await tr.sender.replaceTrack(null);
          tr.direction = 'inactive';
        } else return;
        await this.#negotiate();
      })
      .catch((err) => console.error('[hoinghi] share negotiation failed', err));
    return this.chain;
  }

  /**
   * Restarts ICE on the publish connection (new local credentials, same DTLS session and
   * tracks): the next offer carries them and the server's agent starts over with them.
   * Resolves once the server answered.
   */
  restartIce() {
    this.chain = this.chain
      .then(async () => {
        if (this.closed) return;
        this.pc.restartIce();
        await this.#negotiate();
      })
      .catch((err) => console.error('[hoinghi] ICE restart failed', err));
    return this.chain;
  }

  /** The server's answer was applied (or the offer was refused): the next offer may go. */
  answerDone() {
    // The resolver of the offer this answer belongs to, taken now: after a timeout the next
    // offer may have gone out before this late answer, and must keep waiting for its own.
    const done = this.answered;
    this.#keepCameraSharp().finally(() => done?.());
  }

  close() {
    this.closed = true;
    this.answered?.();
  }

  /**
   * An answer without `a=simulcast` leaves the browser sending only the FIRST encoding, which is
   * our lowest (quarter size, 150 kbit/s). Should a server decline simulcast, raise that one
   * encoding to the best layer's settings so the meeting does not see a thumbnail.
   */
  async #keepCameraSharp() {
    const sender = this.cameraTransceiver?.sender;
    if (!sender || !this.pc.remoteDescription || this.closed || (this.cameraLayers?.length ?? 0) < 2) return;
    try {
      const params = sender.getParameters();
      if (params.encodings?.length !== 1 || params.encodings[0].scaleResolutionDownBy === 1) return;
      const best = single(this.cameraLayers);
      Object.assign(params.encodings[0], {
        scaleResolutionDownBy: 1,
        maxBitrate: best.maxBitrate,
        maxFramerate: best.maxFramerate,
      });
      await sender.setParameters(params);
      console.info('[hoinghi] the server declined simulcast: sending one encoding at full size');
    } catch (err) {
      console.warn('[hoinghi] could not adjust the camera encoding', err?.name);
    }
  }

  #addShare(track) {
    // 'detail': text and slides stay sharp; the frame rate drops first on a weak link.
    track.contentHint = 'detail';
    this.shareTransceiver = this.pc.addTransceiver(track, {
      direction: 'sendonly',
      streams: [new MediaStream([track])],
      sendEncodings: [{ maxBitrate: SHARE_MAX_BITRATE }],
    });
  }

  async #negotiate() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    if (this.closed) return;
    const answered = new Promise((resolve) => {
      this.answered = resolve;
      setTimeout(resolve, ANSWER_TIMEOUT_MS);
    });
    const body = { type: 'publish_offer', sdp: this.pc.localDescription.sdp };
    const mid = this.shareTransceiver?.mid;
    if (mid != null) body.sources = [{ mid, source: 'screen' }];
    // Candidate events are tasks queued after setLocalDescription resolves; this continuation is
    // a microtask, so the offer always leaves before the first trickled candidate.
    this.send(body);
    await answered;
    this.answered = null;
  }
}

/** The best layer of a simulcast plan as a single encoding (no rid, full size). */
function single(layers) {
  const best = layers[layers.length - 1];
  const out = { scaleResolutionDownBy: 1 };
  if (best.maxBitrate) out.maxBitrate = best.maxBitrate;
  if (best.maxFramerate) out.maxFramerate = best.maxFramerate;
  return out;
}

/**
 * Puts redundant audio (RFC 2198 RED, Opus inside) first in the microphone's codec list, so the
 * server's answer selects it: each packet then also carries the previous frame, and a point that
 * loses a packet on a bad line recovers the frame from the next one (docs/protocol.md §4). The
 * server sends plain Opus to whoever cannot take RED. Browsers without RED keep Opus.
 */
function preferRed(transceiver) {
  const codecs = RTCRtpSender.getCapabilities?.('audio')?.codecs ?? [];
  const red = codecs.filter((c) => c.mimeType.toLowerCase() === 'audio/red');
  if (!red.length || typeof transceiver.setCodecPreferences !== 'function') return;
  try {
    transceiver.setCodecPreferences([...red, ...codecs.filter((c) => c.mimeType.toLowerCase() !== 'audio/red')]);
  } catch (err) {
    console.warn('[hoinghi] cannot prefer RED audio:', err?.name);
  }
}
