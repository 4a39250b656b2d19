// Inline SVG icons built with the DOM (no markup strings, no files to fetch), and the small
// status indicators made of them. Icons are decorative (aria-hidden); the element carrying them
// gets a text label (title / aria-label) from the caller.

const NS = 'http://www.w3.org/2000/svg';

function svg(paths, cls) {
  const root = document.createElementNS(NS, 'svg');
  root.setAttribute('viewBox', '0 0 24 24');
  root.setAttribute('aria-hidden', 'true');
  root.setAttribute('focusable', 'false');
  root.setAttribute('class', `icon ${cls}`);
  for (const d of paths) {
    const p = document.createElementNS(NS, 'path');
    p.setAttribute('d', d);
    root.append(p);
  }
  return root;
}

const MIC = 'M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1A7 7 0 0 0 19 11h-2z';
const SLASH = 'M3.3 2 2 3.3l18.7 18.7 1.3-1.3z';
const HAND =
  'M13 3a1.5 1.5 0 0 1 3 0v7h1V5a1.5 1.5 0 0 1 3 0v9a8 8 0 0 1-8 8h-.5a7 7 0 0 1-5.6-2.8L2.3 14a1.5 1.5 0 0 1 2.3-1.9L7 14.6V5a1.5 1.5 0 0 1 3 0v5h1V3a1 1 0 0 1 2 0z';
const STAR = 'M12 2 9 9H2l5.5 4.5L5.5 21 12 16.5 18.5 21l-2-7.5L22 9h-7z';
const CHECK = 'M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z';

export const micIcon = (muted) => svg(muted ? [MIC, SLASH] : [MIC], muted ? 'mic off' : 'mic on');
export const handIcon = () => svg([HAND], 'hand');
export const floorIcon = () => svg([STAR], 'floor');
export const checkIcon = () => svg([CHECK], 'check');

/** Three bars; `set(quality)` colours them: 'good' | 'fair' | 'poor' | null (unknown). */
export function qualityBars() {
  const root = document.createElement('span');
  root.className = 'quality q-unknown';
  root.setAttribute('role', 'img');
  for (let i = 1; i <= 3; i++) {
    const bar = document.createElement('span');
    bar.className = `bar b${i}`;
    root.append(bar);
  }
  return root;
}

export function setQuality(bars, quality) {
  bars.className = `quality q-${quality ?? 'unknown'}`;
}
