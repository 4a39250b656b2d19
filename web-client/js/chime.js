// A short two-note chime made with WebAudio (no sound file to fetch): a point hears it when the
// chair gives it the floor or starts a roll call, since a hall's operator is often not looking
// at the screen. Counted, so the browser test can see it rang (headless Chromium plays no sound).

let context = null;
let rung = 0;

export function chime() {
  rung++;
  try {
    context ??= new AudioContext();
    const now = context.currentTime;
    for (const [i, freq] of [880, 660].entries()) {
      const osc = context.createOscillator();
      const gain = context.createGain();
      osc.frequency.value = freq;
      const start = now + i * 0.18;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.16);
      osc.connect(gain).connect(context.destination);
      osc.start(start);
      osc.stop(start + 0.17);
    }
  } catch (err) {
    // No audio output (or blocked): the banner still says it.
    console.warn('[hoinghi] chime not played:', err?.name);
  }
}

/** How many times the chime rang on this page. */
export const chimeCount = () => rung;
