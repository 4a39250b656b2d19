// Chat panel, shared by the chair and the point views. Messages are plain text and are shown
// with textContent only: a message can never become markup on anyone's page.
//   mountChat(session, { recipients: ['all'] | ['all', 'chair'], onUnread(n) })
// Returns { root, destroy(), setVisible(bool) }.

import { el } from './dom.js';
import { clock, hasMarkup } from './format.js';
import { setText } from './i18n.js';

const MAX_CHARS = 2000;
const MAX_SHOWN = 300; // older messages scroll away (the server keeps them with the meeting)

export function mountChat(session, { recipients = ['all'], onUnread } = {}) {
  const off = new AbortController();
  const title = el('h2', { class: 'section-title', id: 'chat-title' });
  setText(title, 'chat.title');
  const list = el('ol', { class: 'chat-list', 'aria-live': 'polite', 'aria-labelledby': 'chat-title' });
  const empty = el('p', { class: 'empty-note' });
  setText(empty, 'chat.empty');
  const input = el('textarea', {
    id: 'chat-input',
    rows: '2',
    maxlength: String(MAX_CHARS),
    'data-i18n-attr': 'placeholder:chat.placeholder;aria-label:chat.placeholder',
  });
  const send = el('button', { type: 'submit', class: 'primary', id: 'chat-send' });
  setText(send, 'chat.send');
  const note = el('p', { class: 'chat-note', role: 'status' });
  let to = null;
  const row = el('div', { class: 'chat-row' });
  if (recipients.length > 1) {
    to = el('select', { id: 'chat-to', 'data-i18n-attr': 'aria-label:chat.to' });
    for (const r of recipients) {
      const o = el('option', { value: r });
      setText(o, r === 'all' ? 'chat.toAll' : 'chat.toChair');
      to.append(o);
    }
    row.append(to);
  }
  row.append(send);
  const form = el('form', { class: 'chat-form' }, input, row, note);
  const root = el('section', { class: 'chat', 'aria-labelledby': 'chat-title' }, title, empty, list, form);

  let visible = true;
  let unread = 0;

  function add(msg) {
    empty.hidden = true;
    const mine = msg.from === session.participantId;
    const who = el('span', { class: 'chat-from' });
    if (mine) setText(who, 'chat.you');
    else who.textContent = msg.from_name || msg.from_point || msg.from;
    const meta = el('div', { class: 'chat-meta' }, who, el('time', {}, clock(msg.at ?? Date.now())));
    if (msg.to === 'chair') {
      const tag = el('span', { class: 'chat-private' });
      setText(tag, 'chat.private');
      meta.append(tag);
    }
    const item = el('li', { class: mine ? 'chat-item mine' : 'chat-item' }, meta, el('p', { class: 'chat-text' }, String(msg.text ?? '')));
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    list.append(item);
    while (list.childElementCount > MAX_SHOWN) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
    if (!visible && !mine) {
      unread += 1;
      onUnread?.(unread);
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (hasMarkup(text)) {
      setText(note, 'chat.markup');
      return;
    }
    note.textContent = '';
    if (session.control('chat', { to: to?.value ?? 'all', text })) input.value = '';
  });
  // Enter sends, Shift+Enter makes a new line.
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  session.addEventListener('chat', (e) => add(e.detail), { signal: off.signal });

  return {
    root,
    setVisible(v) {
      visible = v;
      if (v) {
        unread = 0;
        onUnread?.(0);
        list.scrollTop = list.scrollHeight;
      }
    },
    focus() {
      input.focus();
    },
    destroy() {
      off.abort();
      root.remove();
    },
  };
}
