// Which received videos are getting pictures: one getStats() of the subscribe connection a
// second, framesDecoded per m-line. Used by the point view to drop a screen share that stopped
// from the stage, and for the "audio only" banner (connected, video expected, no frame for
// more than 5 s). The server's own audio-only mode (pausing video below a bandwidth floor) will
// come with a message; until then this is how the page notices.

export class FrameMonitor {
  constructor(session, onChange, everyMs = 1000) {
    this.session = session;
    this.lastGrowth = new Map(); // mid -> ms of the last frame count increase
    this.counts = new Map(); // mid -> framesDecoded
    this.since = Date.now();
    this.timer = setInterval(() => this.#poll().then(onChange, () => {}), everyMs);
  }

  async #poll() {
    const pc = this.session.subscribePc;
    if (pc !== this.pc) {
      // New connection (or none): its counters start again from zero.
      this.pc = pc;
      this.counts.clear();
      this.lastGrowth.clear();
      this.since = Date.now();
    }
    if (!pc) return;
    const now = Date.now();
    const midOfTrack = new Map(pc.getTransceivers().map((tr) => [tr.receiver.track.id, tr.mid]));
    (await pc.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
      const mid = s.mid ?? midOfTrack.get(s.trackIdentifier);
      if (mid == null) return;
      const frames = s.framesDecoded ?? 0;
      if (frames > (this.counts.get(mid) ?? 0)) this.lastGrowth.set(mid, now);
      this.counts.set(mid, frames);
    });
  }

  /** Frames arrived on this m-line within the last `ms`. */
  isLive(mid, ms = 3000) {
    return Date.now() - (this.lastGrowth.get(mid) ?? 0) <= ms;
  }

  /** Video is expected but none has arrived for `ms` (and we have been connected that long). */
  starved(expectedMids, ms = 5000) {
    if (expectedMids.length === 0 || Date.now() - this.since < ms) return false;
    const pc = this.session.subscribePc;
    if (!pc || pc.connectionState !== 'connected') return false;
    return expectedMids.every((mid) => !this.isLive(mid, ms));
  }

  stop() {
    clearInterval(this.timer);
  }
}
