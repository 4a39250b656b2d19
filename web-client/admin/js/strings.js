// Texts of the admin panel, Vietnamese first. The language choice itself is shared with the
// meeting pages (../../js/i18n.js keeps it).

import { getLang } from '/js/i18n.js';

const S = {
  vi: {
    'app.title': 'Quản trị hội nghị',
    'nav.dashboard': 'Tổng quan', 'nav.points': 'Điểm cầu', 'nav.meetings': 'Cuộc họp',
    'nav.accounts': 'Tài khoản', 'nav.audit': 'Nhật ký', 'nav.logout': 'Đăng xuất',
    'login.title': 'Đăng nhập quản trị', 'login.user': 'Tên đăng nhập', 'login.password': 'Mật khẩu',
    'login.submit': 'Đăng nhập',
    'dash.title': 'Tổng quan hôm nay', 'dash.none': 'Hôm nay không có cuộc họp.',
    'dash.testRoom': 'Phòng thử nghiệm: đang kết nối', 'dash.nobody': 'Không có ai.',
    'dash.connected': 'Đang kết nối',
    'col.code': 'Mã', 'col.name': 'Tên', 'col.kind': 'Loại', 'col.district': 'Huyện',
    'col.unit': 'Đơn vị hành chính', 'col.contact': 'Liên hệ', 'col.phone': 'Điện thoại',
    'col.link': 'Đường truyền', 'col.notes': 'Ghi chú', 'col.status': 'Trạng thái',
    'col.actions': 'Thao tác', 'col.title': 'Tên cuộc họp', 'col.time': 'Thời gian',
    'col.seats': 'Điểm cầu', 'col.live': 'Đang kết nối', 'col.role': 'Vai trò',
    'col.joinLink': 'Liên kết tham gia', 'col.firstJoin': 'Vào lúc', 'col.minutes': 'Số phút',
    'col.joins': 'Số lần vào', 'col.when': 'Lúc', 'col.who': 'Người làm', 'col.ip': 'Địa chỉ IP',
    'col.action': 'Việc', 'col.target': 'Đối tượng', 'col.detail': 'Chi tiết', 'col.user': 'Tài khoản',
    'kind.province_hall': 'Hội trường tỉnh', 'kind.department': 'Sở, ngành', 'kind.district': 'Huyện',
    'kind.commune': 'Xã, phường', 'kind.other': 'Khác', 'kind.all': 'Tất cả loại',
    'role.chair': 'Chủ trì', 'role.point': 'Điểm cầu', 'role.observer': 'Người dự',
    'role.admin': 'Quản trị viên', 'role.operator': 'Cán bộ vận hành',
    'state.scheduled': 'Đã lên lịch', 'state.open': 'Đang mở', 'state.live': 'Đang họp',
    'state.ended': 'Đã kết thúc', 'state.cancelled': 'Đã hủy',
    'att.present': 'Có mặt', 'att.late': 'Đến muộn', 'att.absent': 'Vắng',
    'points.title': 'Danh bạ điểm cầu', 'points.search': 'Tìm (mã, tên, huyện)',
    'points.showDisabled': 'Hiện cả điểm cầu đã khóa', 'points.count': '{n} điểm cầu',
    'points.add': 'Thêm điểm cầu', 'points.edit': 'Sửa', 'points.disable': 'Khóa',
    'points.enable': 'Mở khóa', 'points.disabled': 'Đã khóa', 'points.active': 'Đang dùng',
    'points.save': 'Lưu', 'points.cancel': 'Hủy bỏ', 'points.saved': 'Đã lưu điểm cầu {code}.',
    'import.title': 'Nhập từ tệp CSV', 'import.file': 'Tệp CSV (UTF-8)',
    'import.help': 'Tiêu đề: code,name,kind,unit,district,contact_name,contact_phone,expected_link,notes',
    'import.preview': 'Xem trước', 'import.apply': 'Nhập vào danh bạ',
    'import.summary': '{rows} dòng: {created} thêm mới, {updated} cập nhật, {unchanged} không đổi.',
    'import.done': 'Đã nhập: {created} thêm mới, {updated} cập nhật.',
    'import.errors': '{n} lỗi; chưa nhập dòng nào.', 'import.line': 'Dòng',
    'import.action.create': 'Thêm mới', 'import.action.update': 'Cập nhật', 'import.action.unchanged': 'Không đổi',
    'meetings.title': 'Cuộc họp', 'meetings.new': 'Lên lịch cuộc họp', 'meetings.none': 'Chưa có cuộc họp.',
    'mf.title': 'Tên cuộc họp', 'mf.agenda': 'Nội dung', 'mf.start': 'Bắt đầu (giờ Việt Nam)',
    'mf.end': 'Kết thúc', 'mf.open': 'Mở trước (phút)', 'mf.capacity': 'Tối đa người kết nối',
    'mf.chair': 'Điểm cầu chủ trì', 'mf.kinds': 'Mời theo loại', 'mf.all': 'Mời tất cả điểm cầu',
    'mf.points': 'Chọn từng điểm cầu', 'mf.filter': 'Lọc danh sách', 'mf.observers': 'Người dự (mỗi dòng một người)',
    'mf.create': 'Lên lịch', 'mf.update': 'Lưu thay đổi', 'mf.selected': 'Đã chọn {n}',
    'md.edit': 'Sửa', 'md.cancel': 'Hủy cuộc họp', 'md.end': 'Kết thúc ngay', 'md.copy': 'Sao chép sang ngày khác',
    'md.print': 'In danh sách liên kết', 'md.ics': 'Lịch (ICS)', 'md.links': 'Liên kết tham gia',
    'md.copyLink': 'Sao chép', 'md.copied': 'Đã sao chép.', 'md.qr': 'Mã QR', 'md.reissue': 'Cấp lại',
    'md.reissued': 'Đã cấp liên kết mới cho {name}; liên kết cũ không dùng được nữa.',
    'md.confirmCancel': 'Hủy cuộc họp này? Các liên kết sẽ không dùng được nữa.',
    'md.confirmEnd': 'Kết thúc cuộc họp ngay bây giờ?',
    'md.confirmReissue': 'Cấp liên kết mới cho {name}? Liên kết cũ sẽ không dùng được nữa.',
    'md.attendance': 'Điểm danh', 'md.csv': 'Tải điểm danh (CSV)',
    'md.attSummary': '{present} có mặt, {late} đến muộn, {absent} vắng; {answered_roll_call} điểm cầu trả lời điểm danh.',
    'col.rollCall': 'Trả lời điểm danh', 'col.linkQuality': 'Chất lượng đường truyền',
    'md.rollCallTimes': '{n} lần, lần cuối {time}',
    'quality.good': 'Tốt', 'quality.fair': 'Trung bình', 'quality.poor': 'Kém',
    'md.linkStats': 'RTT {rtt} ms, mất gói TB {mean}%, tối đa {max}%',
    'md.chat': 'Trò chuyện', 'md.chatNone': 'Chưa có tin nhắn.',
    'md.chatMore': 'Hiện {shown} tin mới nhất trong {total}.',
    'md.toChair': 'gửi chủ trì', 'md.toAll': 'gửi tất cả', 'col.from': 'Người gửi', 'col.to': 'Gửi đến', 'col.text': 'Nội dung',
    'md.copyStart': 'Bắt đầu mới', 'md.copyEnd': 'Kết thúc mới', 'md.copyGo': 'Tạo bản sao',
    'md.opens': 'Mở cho điểm cầu vào từ {min} phút trước giờ bắt đầu.',
    'acc.title': 'Tài khoản', 'acc.new': 'Tạo tài khoản', 'acc.role': 'Vai trò', 'acc.create': 'Tạo',
    'acc.reset': 'Đặt mật khẩu', 'acc.newPassword': 'Mật khẩu mới (ít nhất 10 ký tự)',
    'acc.disable': 'Khóa', 'acc.enable': 'Mở khóa', 'acc.done': 'Đã lưu.',
    'acc.own': 'Đổi mật khẩu của tôi', 'acc.current': 'Mật khẩu hiện tại',
    'audit.title': 'Nhật ký thao tác', 'audit.more': 'Xem thêm',
    'calendar.all': 'Lịch tất cả cuộc họp (ICS)',
    'feed.title': 'Đăng ký lịch (không cần đăng nhập)', 'feed.url': 'Địa chỉ đăng ký lịch',
    'feed.point': 'Thêm địa chỉ này vào ứng dụng lịch (Google Calendar, Outlook, điện thoại) để tự cập nhật các cuộc họp của điểm cầu, kèm liên kết tham gia. Giữ bí mật như liên kết tham gia.',
    'feed.all': 'Lịch tất cả cuộc họp cho cán bộ kỹ thuật, không có liên kết tham gia. Giữ bí mật.',
    'feed.confirmReissue': 'Cấp địa chỉ mới? Địa chỉ cũ sẽ không dùng được nữa.',
    'feed.reissued': 'Đã cấp địa chỉ mới.', 'feed.issued': 'cấp lúc {at}',
    'yes': 'Có', 'no': 'Không', 'loading': 'Đang tải…', 'error.network': 'Không kết nối được máy chủ.',
  },
  en: {
    'app.title': 'Conference admin',
    'nav.dashboard': 'Dashboard', 'nav.points': 'Points', 'nav.meetings': 'Meetings',
    'nav.accounts': 'Accounts', 'nav.audit': 'Audit log', 'nav.logout': 'Log out',
    'login.title': 'Admin login', 'login.user': 'User name', 'login.password': 'Password',
    'login.submit': 'Log in',
    'dash.title': 'Today', 'dash.none': 'No meeting today.',
    'dash.testRoom': 'Test room: connected now', 'dash.nobody': 'Nobody.',
    'dash.connected': 'Connected',
    'col.code': 'Code', 'col.name': 'Name', 'col.kind': 'Kind', 'col.district': 'District',
    'col.unit': 'Administrative unit', 'col.contact': 'Contact', 'col.phone': 'Phone',
    'col.link': 'Expected link', 'col.notes': 'Notes', 'col.status': 'Status',
    'col.actions': 'Actions', 'col.title': 'Title', 'col.time': 'Time',
    'col.seats': 'Points', 'col.live': 'Connected', 'col.role': 'Role',
    'col.joinLink': 'Join link', 'col.firstJoin': 'Joined at', 'col.minutes': 'Minutes',
    'col.joins': 'Joins', 'col.when': 'When', 'col.who': 'Who', 'col.ip': 'IP address',
    'col.action': 'Action', 'col.target': 'Target', 'col.detail': 'Detail', 'col.user': 'Account',
    'kind.province_hall': 'Province hall', 'kind.department': 'Department', 'kind.district': 'District',
    'kind.commune': 'Commune', 'kind.other': 'Other', 'kind.all': 'All kinds',
    'role.chair': 'Chair', 'role.point': 'Point', 'role.observer': 'Observer',
    'role.admin': 'Admin', 'role.operator': 'Operator',
    'state.scheduled': 'Scheduled', 'state.open': 'Open', 'state.live': 'Live',
    'state.ended': 'Ended', 'state.cancelled': 'Cancelled',
    'att.present': 'Present', 'att.late': 'Late', 'att.absent': 'Absent',
    'points.title': 'Points directory', 'points.search': 'Search (code, name, district)',
    'points.showDisabled': 'Show disabled points', 'points.count': '{n} points',
    'points.add': 'Add a point', 'points.edit': 'Edit', 'points.disable': 'Disable',
    'points.enable': 'Enable', 'points.disabled': 'Disabled', 'points.active': 'Active',
    'points.save': 'Save', 'points.cancel': 'Cancel', 'points.saved': 'Point {code} saved.',
    'import.title': 'Import from a CSV file', 'import.file': 'CSV file (UTF-8)',
    'import.help': 'Header: code,name,kind,unit,district,contact_name,contact_phone,expected_link,notes',
    'import.preview': 'Preview', 'import.apply': 'Import into the directory',
    'import.summary': '{rows} rows: {created} new, {updated} updated, {unchanged} unchanged.',
    'import.done': 'Imported: {created} new, {updated} updated.',
    'import.errors': '{n} errors; nothing was imported.', 'import.line': 'Line',
    'import.action.create': 'New', 'import.action.update': 'Update', 'import.action.unchanged': 'Unchanged',
    'meetings.title': 'Meetings', 'meetings.new': 'Schedule a meeting', 'meetings.none': 'No meetings yet.',
    'mf.title': 'Title', 'mf.agenda': 'Agenda', 'mf.start': 'Start (Vietnam time)',
    'mf.end': 'End', 'mf.open': 'Opens before (minutes)', 'mf.capacity': 'Most connections',
    'mf.chair': 'Chair point', 'mf.kinds': 'Invite by kind', 'mf.all': 'Invite every point',
    'mf.points': 'Pick points', 'mf.filter': 'Filter the list', 'mf.observers': 'Observers (one per line)',
    'mf.create': 'Schedule', 'mf.update': 'Save changes', 'mf.selected': '{n} selected',
    'md.edit': 'Edit', 'md.cancel': 'Cancel meeting', 'md.end': 'End now', 'md.copy': 'Copy to another day',
    'md.print': 'Print the links', 'md.ics': 'Calendar (ICS)', 'md.links': 'Join links',
    'md.copyLink': 'Copy', 'md.copied': 'Copied.', 'md.qr': 'QR code', 'md.reissue': 'Re-issue',
    'md.reissued': 'New link issued for {name}; the old one no longer works.',
    'md.confirmCancel': 'Cancel this meeting? Its links will stop working.',
    'md.confirmEnd': 'End the meeting now?',
    'md.confirmReissue': 'Issue a new link for {name}? The old one will stop working.',
    'md.attendance': 'Attendance', 'md.csv': 'Download attendance (CSV)',
    'md.attSummary': '{present} present, {late} late, {absent} absent; {answered_roll_call} points answered the roll call.',
    'col.rollCall': 'Roll call', 'col.linkQuality': 'Link quality',
    'md.rollCallTimes': '{n} times, last {time}',
    'quality.good': 'Good', 'quality.fair': 'Fair', 'quality.poor': 'Poor',
    'md.linkStats': 'RTT {rtt} ms, loss mean {mean}%, max {max}%',
    'md.chat': 'Chat', 'md.chatNone': 'No messages yet.',
    'md.chatMore': 'Showing the newest {shown} of {total}.',
    'md.toChair': 'to the chair', 'md.toAll': 'to everyone', 'col.from': 'From', 'col.to': 'To', 'col.text': 'Message',
    'md.copyStart': 'New start', 'md.copyEnd': 'New end', 'md.copyGo': 'Create the copy',
    'md.opens': 'Points may join from {min} minutes before the start.',
    'acc.title': 'Accounts', 'acc.new': 'New account', 'acc.role': 'Role', 'acc.create': 'Create',
    'acc.reset': 'Set password', 'acc.newPassword': 'New password (10 characters or more)',
    'acc.disable': 'Disable', 'acc.enable': 'Enable', 'acc.done': 'Saved.',
    'acc.own': 'Change my password', 'acc.current': 'Current password',
    'audit.title': 'Audit log', 'audit.more': 'More',
    'calendar.all': 'Calendar of all meetings (ICS)',
    'feed.title': 'Calendar subscription (no login)', 'feed.url': 'Calendar subscription address',
    'feed.point': 'Add this address to a calendar app (Google Calendar, Outlook, a phone) to keep this point\'s meetings up to date, with its join link. Keep it as secret as the join link.',
    'feed.all': 'All meetings for IT staff, without join links. Keep it secret.',
    'feed.confirmReissue': 'Issue a new address? The old one will stop working.',
    'feed.reissued': 'New address issued.', 'feed.issued': 'issued {at}',
    'yes': 'Yes', 'no': 'No', 'loading': 'Loading…', 'error.network': 'Cannot reach the server.',
  },
};

export function tr(key, params = {}) {
  const lang = getLang() in S ? getLang() : 'vi';
  const template = S[lang][key] ?? S.vi[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, n) => (n in params ? String(params[n]) : `{${n}}`));
}

/** Re-translates static elements marked data-a="key". */
export function applyStatic(root = document) {
  for (const node of root.querySelectorAll('[data-a]')) node.textContent = tr(node.dataset.a);
}

const fmt = {};
/** A time (RFC 3339 or Unix seconds) as Vietnam local time, e.g. 08:00 02/06/2025. */
export function showTime(value) {
  if (value === null || value === undefined || value === '') return '';
  const d = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  const lang = getLang();
  fmt[lang] ??= new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : 'vi-VN', {
    timeZone: 'Asia/Ho_Chi_Minh', hour: '2-digit', minute: '2-digit', day: '2-digit', month: '2-digit', year: 'numeric',
  });
  return fmt[lang].format(d);
}

/** Vietnam local time for a datetime-local field: YYYY-MM-DDTHH:MM. */
export function localInput(date) {
  const shifted = new Date(date.getTime() + 7 * 3600 * 1000);
  return shifted.toISOString().slice(0, 16);
}
