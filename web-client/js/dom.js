// Tiny DOM helper. Text always goes through textContent (never innerHTML), so names and
// messages that come from the server or the URL can never become markup.

/**
 * el('button', { class: 'x', type: 'button', 'aria-label': '…' }, 'text', childNode)
 * Attributes are set with setAttribute; `class` and `hidden` are handled as properties.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'hidden') node.hidden = true;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}
