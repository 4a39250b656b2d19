// A hall whose camera or microphone does not work gets steps to fix it, in plain words for the
// reason the browser gave, and a "Thử lại" button that opens the devices again: the person at a
// commune PC is rarely IT staff, and "không tìm thấy thiết bị" alone does not say what to do.

import { el } from './dom.js';
import { setText } from './i18n.js';

// Steps per getUserMedia failure (DOMException name), as i18n keys.
const STEPS = {
  NotAllowedError: ['help.denied.1', 'help.denied.2', 'help.denied.3'],
  NotFoundError: ['help.notFound.1', 'help.notFound.2', 'help.notFound.3'],
  OverconstrainedError: ['help.notFound.1', 'help.notFound.2', 'help.notFound.3'],
  NotReadableError: ['help.busy.1', 'help.busy.2'],
};
const OTHER = ['help.other.1', 'help.other.2'];

/** The help box (hidden while both devices work); `onRetry` opens the devices again. */
export class DeviceHelp {
  constructor({ onRetry }) {
    this.title = el('h2', { class: 'sub-title', id: 'prejoin-help-title' });
    this.steps = el('ol', { class: 'help-steps', id: 'prejoin-help-steps' });
    this.retry = el('button', { type: 'button', id: 'prejoin-retry' });
    setText(this.retry, 'retry');
    this.retry.addEventListener('click', onRetry);
    this.root = el('section', { class: 'notice device-help', id: 'prejoin-help', role: 'alert', 'aria-labelledby': 'prejoin-help-title', hidden: true },
      this.title, this.steps, this.retry);
  }

  /**
   * Shows what is missing from `stream` and how to fix it (`error`: the browser's refusal), or
   * hides the box when camera and microphone both work.
   */
  show(stream, error) {
    const camera = stream.getVideoTracks().length > 0;
    const mic = stream.getAudioTracks().length > 0;
    this.root.hidden = camera && mic;
    if (camera && mic) return;
    setText(this.title, !camera && !mic ? 'help.missing.both' : !camera ? 'help.missing.camera' : 'help.missing.mic');
    this.steps.replaceChildren(
      ...(STEPS[error?.name] ?? OTHER).map((key) => {
        const li = el('li');
        setText(li, key);
        return li;
      }),
    );
  }
}
