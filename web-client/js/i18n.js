// Vietnamese first, English on request. The choice is remembered in localStorage so a commune PC
// keeps its language across reboots. One helper and one dictionary for the meeting pages and the
// admin panel (strings-*.js; the words follow docs/glossary.md).
//
// Static text in the HTML carries data-i18n="key" (textContent) or
// data-i18n-attr="aria-label:key;title:key"; dynamic text is set with setText(), which records the
// key and its parameters on the element so switching language re-renders it in place.

import { adminEn } from './strings-admin-en.js';
import { adminVi } from './strings-admin-vi.js';
import { en } from './strings-en.js';
import { vi } from './strings-vi.js';

// The admin panel's keys are its own (a test checks no key is defined twice).
const STRINGS = { vi: { ...vi, ...adminVi }, en: { ...en, ...adminEn } };

const STORAGE_KEY = 'hoinghi.lang';
const listeners = new Set();
let lang = loadLang();

function loadLang() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved && saved in STRINGS) return saved;
  } catch {
    // localStorage can be disabled (privacy settings); Vietnamese is the default anyway.
  }
  return 'vi';
}

export function getLang() {
  return lang;
}

/** Translates `key`, replacing {name} with params.name. Unknown keys fall back to Vietnamese. */
export function t(key, params = {}) {
  const template = STRINGS[lang][key] ?? STRINGS.vi[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

/**
 * The current language's half of a server message written "Tiếng Việt. / English." (the REST
 * API's and the join refusals' convention); any other text is returned as it is.
 */
export function localMessage(message) {
  const text = String(message ?? '');
  const at = text.indexOf(' / ');
  if (at < 0) return text;
  return lang === 'en' ? text.slice(at + 3).trim() : text.slice(0, at).trim();
}

/** Sets translated text and remembers key + params so a language switch can redo it. */
export function setText(node, key, params) {
  node.dataset.i18n = key;
  if (params) node.dataset.i18nArgs = JSON.stringify(params);
  else delete node.dataset.i18nArgs;
  node.textContent = t(key, params);
}

/** Re-translates every marked element under root. */
export function applyAll(root = document) {
  for (const node of root.querySelectorAll('[data-i18n]')) {
    const args = node.dataset.i18nArgs ? JSON.parse(node.dataset.i18nArgs) : undefined;
    node.textContent = t(node.dataset.i18n, args);
  }
  for (const node of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of node.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':');
      if (attr && key) node.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}

export function setLang(next) {
  if (!(next in STRINGS)) return;
  lang = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // Not remembered, but still switched for this page.
  }
  document.documentElement.lang = next;
  applyAll();
  for (const fn of listeners) fn(next);
}

export function onLangChange(fn) {
  listeners.add(fn);
}

/** Wires the language button (shows the *other* language's name) and applies the saved choice. */
export function initI18n(button) {
  document.documentElement.lang = lang;
  if (button) {
    button.dataset.i18n = 'lang.switch';
    button.dataset.i18nAttr = 'aria-label:lang.switchLabel;title:lang.switchLabel';
    button.addEventListener('click', () => setLang(lang === 'vi' ? 'en' : 'vi'));
    // The button's text is in the other language; say so for screen readers.
    const markLang = () => (button.lang = lang === 'vi' ? 'en' : 'vi');
    markLang();
    onLangChange(markLang);
  }
  applyAll();
}
