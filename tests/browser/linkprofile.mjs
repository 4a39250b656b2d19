// A shaped line on loopback for one point's downlink, and what the point sees second by second
// behind it. Used by constrained.mjs (CI checks and the by-hand measurement of issue 11).
//
// The line is the kernel's: an htb class matching the server's media port → the point's port
// with a short pfifo (a bottleneck drops, it does not buffer for seconds), and an iptables rule
// dropping a random share of the same flow. Root needed; `Line.remove()` runs on every exit path.

import { execFileSync } from 'node:child_process';

/** The profiles of issue 11: phases of {rate, loss, seconds}. */
export const PROFILES = {
  adsl: [{ rate: '1mbit', loss: 0.02, seconds: 40 }],
  bad: [{ rate: '300kbit', loss: 0.05, seconds: 40 }],
  flap: [
    { rate: '2mbit', loss: 0, seconds: 6 },
    { rate: '150kbit', loss: 0, seconds: 19 },
    { rate: '2mbit', loss: 0, seconds: 20 },
  ],
};

function tc(...args) {
  execFileSync('tc', args, { stdio: 'pipe' });
}

function iptables(...args) {
  execFileSync('iptables', args, { stdio: 'pipe' });
}

export class Line {
  constructor(serverPort, pointPort) {
    this.serverPort = serverPort;
    this.pointPort = pointPort;
    this.shaped = false;
    this.dropRule = null;
    process.on('exit', () => this.remove());
  }

  /** Sets the line's rate and random loss (first call installs the qdisc). */
  set({ rate, loss }) {
    if (!this.shaped) {
      const existing = execFileSync('tc', ['qdisc', 'show', 'dev', 'lo'], { encoding: 'utf8' });
      if (/qdisc (htb|tbf|netem|prio|hfsc)/.test(existing)) throw new Error(`loopback already has a qdisc: ${existing.trim()}`);
      tc('qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '1');
      this.shaped = true;
      tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '10gbit');
      tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', rate, 'ceil', rate);
      tc('qdisc', 'add', 'dev', 'lo', 'parent', '1:10', 'handle', '10:', 'pfifo', 'limit', '20');
      tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32',
        'match', 'ip', 'sport', String(this.serverPort), '0xffff', 'match', 'ip', 'dport', String(this.pointPort), '0xffff', 'flowid', '1:10');
    } else {
      tc('class', 'change', 'dev', 'lo', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', rate, 'ceil', rate);
    }
    this.#clearLoss();
    if (loss > 0) {
      this.dropRule = ['OUTPUT', '-p', 'udp', '-s', '127.0.0.1', '--sport', String(this.serverPort), '--dport', String(this.pointPort),
        '-m', 'statistic', '--mode', 'random', '--probability', String(loss), '-j', 'DROP'];
      iptables('-I', ...this.dropRule);
    }
  }

  #clearLoss() {
    if (!this.dropRule) return;
    try {
      iptables('-D', ...this.dropRule);
    } catch (e) {
      console.error(`could not remove the drop rule: ${e.message}`);
    }
    this.dropRule = null;
  }

  /** Back to an unshaped loopback. */
  remove() {
    this.#clearLoss();
    if (!this.shaped) return;
    try {
      tc('qdisc', 'del', 'dev', 'lo', 'root');
    } catch (e) {
      console.error(`could not remove the loopback qdisc: ${e.message}`);
    }
    this.shaped = false;
  }
}

/**
 * Starts a recorder in the page: every 100 ms it notes whether the server has the video from
 * `from` paused (the audio-only notice), so a notice that blinks between two 1 s samples is
 * still counted.
 */
export function recordPauses(p, from) {
  return p.page.evaluate((from) => {
    const key = `${from}/camera`;
    window.__pauses = { changes: 0, paused: false, pausedMs: 0 };
    let last = Date.now();
    setInterval(() => {
      const r = window.__pauses;
      const now = Date.now();
      if (r.paused) r.pausedMs += now - last;
      last = now;
      const paused = (window.hoinghi?.videoPaused ?? []).includes(key);
      if (paused !== r.paused) {
        r.changes += 1;
        r.paused = paused;
      }
    }, 100);
  }, from);
}

/** Cumulative counters of the point's inbound video and audio from `from`, and the pause recorder. */
export function counters(p, from) {
  return p.page.evaluate(async (from) => {
    const h = window.hoinghi;
    const byMid = new Map(h.tracks.map((t) => [t.mid, t]));
    const out = { at: Date.now(), video: null, audio: null, pauses: window.__pauses ? { ...window.__pauses } : null };
    (await h.subscribePc.getStats()).forEach((s) => {
      const t = byMid.get(s.mid);
      if (s.type !== 'inbound-rtp' || t?.participant !== from || t.source === 'screen') return;
      if (s.kind === 'video') {
        out.video = {
          height: s.frameHeight ?? 0,
          frames: s.framesDecoded ?? 0,
          freezes: s.freezeCount ?? 0,
          frozen: s.totalFreezesDuration ?? 0,
          lost: s.packetsLost ?? 0,
          nacks: s.nackCount ?? 0,
          jbDelay: s.jitterBufferDelay ?? 0,
          jbCount: s.jitterBufferEmittedCount ?? 0,
          bytes: s.bytesReceived ?? 0,
        };
      } else if (s.kind === 'audio') {
        out.audio = {
          samples: s.totalSamplesReceived ?? 0,
          concealed: s.concealedSamples ?? 0,
          silentConcealed: s.silentConcealedSamples ?? 0,
          packets: s.packetsReceived ?? 0,
          lost: s.packetsLost ?? 0,
          jbDelay: s.jitterBufferDelay ?? 0,
          jbCount: s.jitterBufferEmittedCount ?? 0,
        };
      }
    });
    return out;
  }, from);
}

/** One second's row from two counter samples. */
export function row(t, phase, a, b) {
  const v = (k) => (b.video?.[k] ?? 0) - (a.video?.[k] ?? 0);
  const au = (k) => (b.audio?.[k] ?? 0) - (a.audio?.[k] ?? 0);
  const secs = (b.at - a.at) / 1000;
  return {
    t,
    phase,
    height: b.video?.height ?? 0,
    fps: v('frames') / secs,
    kbps: (v('bytes') * 8) / 1000 / secs,
    freezes: v('freezes'),
    frozenMs: v('frozen') * 1000,
    lost: v('lost'),
    nacks: v('nacks'),
    videoDelayMs: v('jbCount') > 0 ? (v('jbDelay') / v('jbCount')) * 1000 : null,
    // Samples at 48 kHz; concealed samples of a second are the second's audio gaps together.
    audioConcealedMs: au('concealed') / 48,
    audioDelayMs: au('jbCount') > 0 ? (au('jbDelay') / au('jbCount')) * 1000 : null,
    paused: b.pauses?.paused ?? false,
    pauseChanges: (b.pauses?.changes ?? 0) - (a.pauses?.changes ?? 0),
  };
}
