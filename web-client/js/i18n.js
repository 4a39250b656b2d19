// Vietnamese first, English on request. The choice is remembered in localStorage so a commune PC
// keeps its language across reboots.
//
// Static text in the HTML carries data-i18n="key" (textContent) or
// data-i18n-attr="aria-label:key;title:key"; dynamic text is set with setText(), which records the
// key and its parameters on the element so switching language re-renders it in place.

const STRINGS = {
  vi: {
    'lang.switch': 'English',
    'lang.switchLabel': 'Chuyển sang tiếng Anh',
    'app.name': 'Hội nghị trực tuyến',
    'landing.title': 'hoinghi: hội nghị truyền hình trực tuyến',
    'landing.lead':
      'Máy chủ hội nghị truyền hình tự vận hành cho tỉnh và các xã, phường: điểm cầu chủ trì điều hành, các điểm cầu tham gia qua trình duyệt.',
    'landing.howto':
      'Để tham gia cuộc họp, hãy mở liên kết tham gia mà bộ phận CNTT đã gửi cho điểm cầu của bạn.',
    'landing.kiosk':
      'Máy trạm đặt cố định tại điểm cầu có thể mở liên kết có thêm "&autojoin=1" để tự vào phòng khi khởi động.',
    'prejoin.title': 'Kiểm tra trước khi tham gia',
    'prejoin.camera': 'Camera',
    'prejoin.mic': 'Micrô',
    'prejoin.micLevel': 'Mức âm thanh micrô',
    'prejoin.preview': 'Hình ảnh từ camera của bạn',
    'prejoin.join': 'Tham gia',
    'prejoin.none': '(không có)',
    'prejoin.loading': 'Đang mở camera và micrô…',
    'role.chair': 'Điểm cầu chủ trì',
    'role.point': 'Điểm cầu',
    'role.observer': 'Người theo dõi',
    'status.connecting': 'Đang kết nối…',
    'status.joined': 'Đã kết nối',
    'status.reconnecting': 'Mất kết nối. Thử lại sau {s} giây (lần {n})…',
    'status.retryNow': 'Thử lại ngay',
    'status.left': 'Đã rời phòng',
    'tile.notConnected': 'Chưa kết nối',
    'tile.left': 'Đã rời phòng',
    'tile.you': 'Bạn',
    'tile.noCamera': 'Không có camera',
    'leave': 'Rời phòng',
    'left.title': 'Bạn đã rời phòng họp',
    'left.body': 'Bấm "Tham gia lại" nếu bạn muốn quay lại cuộc họp.',
    'rejoin': 'Tham gia lại',
    'retry': 'Thử lại',
    'err.no_token.title': 'Liên kết không hợp lệ',
    'err.no_token.body': 'Địa chỉ này thiếu mã tham gia. Hãy mở đúng liên kết đã được gửi cho điểm cầu của bạn.',
    'err.bad_token.title': 'Liên kết không hợp lệ',
    'err.bad_token.body':
      'Liên kết tham gia không đúng hoặc đã bị thu hồi. Vui lòng liên hệ bộ phận CNTT để nhận liên kết mới.',
    'err.token_expired.title': 'Liên kết đã hết hạn',
    'err.token_expired.body': 'Cuộc họp đã kết thúc hoặc liên kết tham gia đã hết hạn.',
    'err.room_full.title': 'Phòng họp đã đủ người',
    'err.room_full.body': 'Số điểm cầu đã đạt giới hạn của phòng họp. Vui lòng thử lại sau hoặc liên hệ ban tổ chức.',
    'err.room_full.autoretry': 'Sẽ tự động thử lại sau {s} giây.',
    'err.replaced.title': 'Điểm cầu đã vào phòng ở nơi khác',
    'err.replaced.body':
      'Liên kết của điểm cầu này vừa được mở ở một cửa sổ hoặc máy khác, nên kết nối ở đây đã dừng. Bấm "Tham gia lại" để dùng lại máy này.',
    'err.unsupported.title': 'Trình duyệt không được hỗ trợ',
    'err.unsupported.body': 'Trình duyệt này không hỗ trợ WebRTC. Hãy dùng Chromium, Chrome, Edge hoặc Firefox bản mới.',
    'err.generic.title': 'Đã xảy ra lỗi',
    'notice.media': 'Không dùng được camera hoặc micrô ({reason}). Bạn vẫn xem và nghe được cuộc họp.',
    'notice.server': 'Máy chủ từ chối yêu cầu: {message}',
    'media.denied': 'chưa được cấp quyền',
    'media.notFound': 'không tìm thấy thiết bị',
    'media.busy': 'thiết bị đang được chương trình khác sử dụng',
    'media.other': 'lỗi thiết bị',
    'sound.enable': 'Bật âm thanh',
    'sound.blocked': 'Trình duyệt đang chặn âm thanh. Bấm "Bật âm thanh" để nghe.',
    'chair.points': 'Các điểm cầu ({n})',
    'chair.noPoints': 'Chưa có điểm cầu nào tham gia.',
    'point.waitingChair': 'Đang chờ điểm cầu chủ trì…',
    'self.preview': 'Hình của bạn',
  },
  en: {
    'lang.switch': 'Tiếng Việt',
    'lang.switchLabel': 'Switch to Vietnamese',
    'app.name': 'Online meeting',
    'landing.title': 'hoinghi: online video conferencing',
    'landing.lead':
      'A self-hosted video conferencing server for provinces and communes: the chair point leads, every other point joins from a browser.',
    'landing.howto': 'To join a meeting, open the join link that IT staff sent to your point.',
    'landing.kiosk':
      'A fixed PC at a point can open its link with "&autojoin=1" added, to enter the meeting by itself at start-up.',
    'prejoin.title': 'Check before joining',
    'prejoin.camera': 'Camera',
    'prejoin.mic': 'Microphone',
    'prejoin.micLevel': 'Microphone level',
    'prejoin.preview': 'Your camera preview',
    'prejoin.join': 'Join',
    'prejoin.none': '(none)',
    'prejoin.loading': 'Opening camera and microphone…',
    'role.chair': 'Chair point',
    'role.point': 'Point',
    'role.observer': 'Observer',
    'status.connecting': 'Connecting…',
    'status.joined': 'Connected',
    'status.reconnecting': 'Connection lost. Retrying in {s} s (attempt {n})…',
    'status.retryNow': 'Retry now',
    'status.left': 'Left the meeting',
    'tile.notConnected': 'Not connected',
    'tile.left': 'Left',
    'tile.you': 'You',
    'tile.noCamera': 'No camera',
    'leave': 'Leave',
    'left.title': 'You left the meeting',
    'left.body': 'Press "Join again" to return to the meeting.',
    'rejoin': 'Join again',
    'retry': 'Retry',
    'err.no_token.title': 'Invalid link',
    'err.no_token.body': 'This address has no join code. Open the exact link that was sent to your point.',
    'err.bad_token.title': 'Invalid link',
    'err.bad_token.body': 'The join link is wrong or has been revoked. Please ask IT staff for a new link.',
    'err.token_expired.title': 'Link expired',
    'err.token_expired.body': 'The meeting is over or the join link has expired.',
    'err.room_full.title': 'The meeting is full',
    'err.room_full.body': 'The meeting has reached its limit of points. Please try again later or contact the organisers.',
    'err.room_full.autoretry': 'Retrying automatically in {s} s.',
    'err.replaced.title': 'This point joined from elsewhere',
    'err.replaced.body':
      'This point\'s link was just opened in another window or on another PC, so this one stopped. Press "Join again" to use this one instead.',
    'err.unsupported.title': 'Browser not supported',
    'err.unsupported.body': 'This browser does not support WebRTC. Please use a recent Chromium, Chrome, Edge or Firefox.',
    'err.generic.title': 'Something went wrong',
    'notice.media': 'Camera or microphone unavailable ({reason}). You can still watch and listen.',
    'notice.server': 'The server refused a request: {message}',
    'media.denied': 'permission denied',
    'media.notFound': 'no device found',
    'media.busy': 'the device is in use by another program',
    'media.other': 'device error',
    'sound.enable': 'Enable sound',
    'sound.blocked': 'The browser is blocking sound. Press "Enable sound" to listen.',
    'chair.points': 'Points ({n})',
    'chair.noPoints': 'No point has joined yet.',
    'point.waitingChair': 'Waiting for the chair point…',
    'self.preview': 'Your camera',
  },
};

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
