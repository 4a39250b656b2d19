//! Batched UDP sends with `sendmmsg(2)`: a worker collects every datagram one loop pass produces
//! (a packet fanned out to hundreds of subscribers is hundreds of datagrams) and hands them to the
//! kernel in a few system calls instead of one each. The buffers are the ones the engine
//! produced; nothing is copied here.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use bytes::BytesMut;
use socket2::SockAddr;

/// Datagrams per `sendmmsg` call (the kernel caps a call at UIO_MAXIOV = 1024).
const BATCH: usize = 64;

/// Outcome of a flush.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub sent: u64,
    pub bytes: u64,
    /// Dropped because the socket buffer was full or the destination refused.
    pub dropped: u64,
}

/// Datagrams waiting for the end of the pass. Capacity is kept between passes, so a steady
/// state allocates nothing here.
#[derive(Default)]
pub struct SendQueue {
    queue: Vec<(SockAddr, BytesMut)>,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// The raw pointers in `iov`/`hdrs` are only ever set and used inside `flush`, on the owning
// thread; between calls they are stale and never dereferenced.
unsafe impl Send for SendQueue {}

impl SendQueue {
    pub fn push(&mut self, to: SocketAddr, datagram: BytesMut) {
        self.queue.push((SockAddr::from(to), datagram));
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Empties the queue without sending: the datagrams and where each goes (a test's network).
    pub fn take(&mut self) -> impl Iterator<Item = (SocketAddr, BytesMut)> + '_ {
        self.queue
            .drain(..)
            .filter_map(|(to, d)| Some((to.as_socket()?, d)))
    }

    /// Sends everything queued on `fd` and empties the queue.
    pub fn flush(&mut self, fd: RawFd) -> Flushed {
        let mut out = Flushed::default();
        let mut start = 0;
        while start < self.queue.len() {
            let end = (start + BATCH).min(self.queue.len());
            self.iov.clear();
            self.hdrs.clear();
            for (_, buf) in &mut self.queue[start..end] {
                self.iov.push(libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                });
            }
            for (i, (addr, _)) in self.queue[start..end].iter().enumerate() {
                // SAFETY: an all-zero msghdr is a valid "no control data, no flags" header.
                let mut hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
                hdr.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
                hdr.msg_hdr.msg_namelen = addr.len();
                hdr.msg_hdr.msg_iov = &mut self.iov[i];
                hdr.msg_hdr.msg_iovlen = 1;
                self.hdrs.push(hdr);
            }
            // SAFETY: `hdrs` points into `iov` and `queue`, both alive and unmoved for the
            // duration of the call; the count matches the array.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.hdrs.as_mut_ptr(),
                    self.hdrs.len() as libc::c_uint,
                    0,
                )
            };
            if n > 0 {
                let n = n as usize;
                out.sent += n as u64;
                out.bytes += self.queue[start..start + n]
                    .iter()
                    .map(|(_, b)| b.len() as u64)
                    .sum::<u64>();
                start += n;
                continue;
            }
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::Interrupted => continue,
                // Socket buffer full: the rest of this pass is dropped, as a router would.
                std::io::ErrorKind::WouldBlock => {
                    out.dropped += (self.queue.len() - start) as u64;
                    break;
                }
                // The first datagram of the batch was refused (e.g. ICMP unreachable from a
                // gone peer): skip it, send the others.
                _ => {
                    out.dropped += 1;
                    start += 1;
                }
            }
        }
        self.queue.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn sends_every_datagram_in_order_across_batches() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let mut q = SendQueue::default();
        for i in 0..150u32 {
            q.push(to, BytesMut::from(&i.to_be_bytes()[..]));
        }
        let f = q.flush(tx.as_raw_fd());
        assert_eq!((f.sent, f.bytes, f.dropped), (150, 600, 0));
        assert!(q.is_empty());
        let mut buf = [0u8; 16];
        for i in 0..150u32 {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &i.to_be_bytes());
        }
    }

    #[test]
    fn a_refused_destination_does_not_block_the_others() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let tx = std::net::UdpSocket::bind("[::1]:0")
            .or_else(|_| std::net::UdpSocket::bind("127.0.0.1:0"))
            .unwrap();
        let mut q = SendQueue::default();
        // An IPv4 destination on an IPv6 socket (or port 0 on IPv4) is refused by the kernel.
        q.push(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            BytesMut::from(&b"x"[..]),
        );
        if tx.local_addr().unwrap().is_ipv4() {
            q.push(rx.local_addr().unwrap(), BytesMut::from(&b"ok"[..]));
            let f = q.flush(tx.as_raw_fd());
            assert_eq!((f.sent, f.dropped), (1, 1));
            let mut buf = [0u8; 4];
            assert_eq!(rx.recv(&mut buf).unwrap(), 2);
        } else {
            let f = q.flush(tx.as_raw_fd());
            assert_eq!(f.dropped, 1);
        }
    }
}
