// Small formatting helpers shared by the views.

/** "09:05" (24 h, local time) from Unix milliseconds. */
export function clock(ms) {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

// Vietnam has one time zone and no daylight saving: UTC+7 all year.
const VIETNAM_OFFSET_MS = 7 * 3600 * 1000;
const two = (n) => String(n).padStart(2, '0');

/**
 * A moment (RFC 3339 text, Unix seconds, or a Date) as Vietnam time "HH:mm dd/MM/yyyy", the one
 * date format of both pages in both languages (docs/glossary.md). '' for nothing.
 */
export function dateTime(value) {
  if (value === null || value === undefined || value === '') return '';
  const d = value instanceof Date ? value : typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const v = new Date(d.getTime() + VIETNAM_OFFSET_MS);
  return `${two(v.getUTCHours())}:${two(v.getUTCMinutes())} ${two(v.getUTCDate())}/${two(v.getUTCMonth() + 1)}/${v.getUTCFullYear()}`;
}

/** Vietnam time for a datetime-local field: YYYY-MM-DDTHH:MM. */
export function localInput(date) {
  return new Date(date.getTime() + VIETNAM_OFFSET_MS).toISOString().slice(0, 16);
}

/** "01:23" or "1:02:03" from a number of seconds. */
export function duration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
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
