// Small formatting helpers shared by the views.

/** "09:05" (24 h, local time) from Unix milliseconds. */
export function clock(ms) {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** "01:23" or "1:02:03" from a number of seconds. */
export function duration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const two = (n) => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${two(m)}:${two(s % 60)}` : `${two(m)}:${two(s % 60)}`;
}

/** Chat text the server would refuse as markup (same rule as signaling's has_markup). */
export function hasMarkup(text) {
  return /<[A-Za-z/!?]/.test(text) || /&lt;/i.test(text);
}

/** Calls fn at most once per `ms`, with the last arguments, after things settle. */
export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}
