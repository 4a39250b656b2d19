// The publish side of a session (docs/protocol.md §4): our camera and microphone, plus a screen
// share as an additional video m-line declared `source: "screen"` in `publish_offer`. Offers go
// one at a time: the next renegotiation waits for the server's answer to the previous one.

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
    this.chain = Promise.resolve();
    this.answered = null; // resolves when the pending publish_answer was applied
    this.closed = false;
  }

  /** Adds the tracks (and a share that was on before a reconnect) and sends the first offer. */
  start(stream, videoMaxBitrate, shareTrack) {
    for (const track of stream.getTracks()) {
      const init = { direction: 'sendonly', streams: [stream] };
      if (track.kind === 'video' && videoMaxBitrate) init.sendEncodings = [{ maxBitrate: videoMaxBitrate }];
      this.pc.addTransceiver(track, init);
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

  /** The server's answer was applied (or the offer was refused): the next offer may go. */
  answerDone() {
    this.answered?.();
  }

  close() {
    this.closed = true;
    this.answered?.();
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
