//! Media from files: VP8 frames from an IVF file (`--video-file`) and Opus packets from an Ogg
//! Opus file (`--audio-file`), loaded once and sent in a loop by every publishing point, in place
//! of the synthetic frames of [`crate::media`].
//!
//! IVF: a 32-byte file header (`DKIF`, version 0, header size 32, fourcc `VP80`, width, height,
//! time base, frame count) then per frame a 12-byte header (size u32 LE, timestamp u64 LE) and
//! the frame. A frame is a keyframe when bit 0 of its VP8 frame tag is 0 (RFC 6386 §9.1).
//!
//! Ogg: pages (`OggS`, version 0, 27-byte header, segment table); packets are the lacing values
//! joined across pages (a segment shorter than 255 bytes ends a packet). The first logical
//! stream whose first packet is `OpusHead` is read; its `OpusHead` and `OpusTags` packets are
//! skipped. Page CRCs are **not** checked: a damaged page yields damaged audio, which is no
//! worse for a load test than the silence it replaces.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;

/// One VP8 frame of a clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    pub data: Bytes,
    pub keyframe: bool,
}

/// A VP8 clip read from an IVF file.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoClip {
    pub width: u16,
    pub height: u16,
    /// Frames per second from the header's time base, when it is a whole rate (den / num).
    pub header_fps: Option<f64>,
    pub frames: Vec<VideoFrame>,
}

impl VideoClip {
    /// Index of the first keyframe at or after `from`, wrapping at the end (every clip has one).
    pub fn next_keyframe(&self, from: usize) -> usize {
        let n = self.frames.len();
        (0..n)
            .map(|k| (from + k) % n)
            .find(|&i| self.frames[i].keyframe)
            .unwrap_or(0)
    }
}

/// The Opus packets of an Ogg Opus file, in order, headers skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioClip {
    pub packets: Vec<Bytes>,
}

/// The clips every publishing point sends instead of synthetic media.
#[derive(Debug, Clone, Default)]
pub struct FileMedia {
    pub video: Option<Arc<VideoClip>>,
    pub audio: Option<Arc<AudioClip>>,
}

impl FileMedia {
    /// Loads the given files (either may be absent), with errors naming the file.
    pub fn load(video: Option<&Path>, audio: Option<&Path>) -> anyhow::Result<FileMedia> {
        Ok(FileMedia {
            video: video.map(read_ivf).transpose()?.map(Arc::new),
            audio: audio.map(read_ogg_opus).transpose()?.map(Arc::new),
        })
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{what} {}: cannot read", path.display()))
}

/// Reads a VP8 IVF file.
pub fn read_ivf(path: &Path) -> anyhow::Result<VideoClip> {
    let bytes = read(path, "--video-file")?;
    parse_ivf(&bytes)
        .with_context(|| format!("--video-file {}: not a usable VP8 IVF file", path.display()))
}

/// Reads an Ogg Opus file.
pub fn read_ogg_opus(path: &Path) -> anyhow::Result<AudioClip> {
    let bytes = read(path, "--audio-file")?;
    parse_ogg_opus(&bytes).with_context(|| {
        format!(
            "--audio-file {}: not a usable Ogg Opus file",
            path.display()
        )
    })
}

fn u16_le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Parses an IVF file holding VP8.
pub fn parse_ivf(b: &[u8]) -> anyhow::Result<VideoClip> {
    if b.len() < 32 || &b[..4] != b"DKIF" {
        bail!("no IVF signature (DKIF)");
    }
    let header_len = usize::from(u16_le(b, 6));
    if header_len < 32 || header_len > b.len() {
        bail!("bad IVF header size {header_len}");
    }
    if &b[8..12] != b"VP80" {
        bail!(
            "codec {:?}: only VP8 (VP80) is supported",
            String::from_utf8_lossy(&b[8..12])
        );
    }
    let (width, height) = (u16_le(b, 12), u16_le(b, 14));
    let (den, num) = (u32_le(b, 16), u32_le(b, 20));
    let header_fps = (num > 0 && den > 0)
        .then(|| f64::from(den) / f64::from(num))
        .filter(|fps| (1.0..=120.0).contains(fps));
    let mut frames = Vec::new();
    let mut at = header_len;
    while at < b.len() {
        if b.len() - at < 12 {
            bail!("truncated frame header at byte {at}");
        }
        let size = u32_le(b, at) as usize;
        at += 12;
        if size == 0 || size > b.len() - at {
            bail!(
                "frame {} at byte {}: size {size} runs past the end of the file",
                frames.len(),
                at - 12
            );
        }
        let data = Bytes::copy_from_slice(&b[at..at + size]);
        at += size;
        frames.push(VideoFrame {
            keyframe: data[0] & 0x01 == 0,
            data,
        });
    }
    if frames.is_empty() {
        bail!("no frames");
    }
    if !frames.iter().any(|f| f.keyframe) {
        bail!("no keyframe: subscribers could never decode it");
    }
    Ok(VideoClip {
        width,
        height,
        header_fps,
        frames,
    })
}

/// Parses an Ogg Opus file into its Opus packets (headers skipped; CRCs not checked).
pub fn parse_ogg_opus(b: &[u8]) -> anyhow::Result<AudioClip> {
    let mut serial: Option<u32> = None;
    let mut partial: Vec<u8> = Vec::new();
    let mut packets: Vec<Bytes> = Vec::new();
    let mut seen_head = false;
    let mut at = 0;
    while at < b.len() {
        if b.len() - at < 27 || &b[at..at + 4] != b"OggS" {
            bail!("no Ogg page (OggS) at byte {at}");
        }
        if b[at + 4] != 0 {
            bail!("Ogg page version {} at byte {at}", b[at + 4]);
        }
        let flags = b[at + 5];
        let page_serial = u32_le(b, at + 14);
        let nsegs = usize::from(b[at + 26]);
        let table_end = at + 27 + nsegs;
        if table_end > b.len() {
            bail!("truncated Ogg page at byte {at}");
        }
        let lacing = &b[at + 27..table_end];
        let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        if table_end + body_len > b.len() {
            bail!("truncated Ogg page body at byte {at}");
        }
        let body = &b[table_end..table_end + body_len];
        let page_at = at;
        at = table_end + body_len;
        if flags & 0x02 != 0 && serial.is_none() {
            // Beginning of a logical stream: take it if it is Opus.
            if body.starts_with(b"OpusHead") {
                serial = Some(page_serial);
            } else {
                continue;
            }
        }
        if serial != Some(page_serial) {
            continue;
        }
        if flags & 0x01 == 0 && !partial.is_empty() {
            bail!("Ogg page at byte {page_at} does not continue the unfinished packet before it");
        }
        let mut off = 0;
        for &l in lacing {
            let l = usize::from(l);
            partial.extend_from_slice(&body[off..off + l]);
            off += l;
            if l < 255 {
                let packet = std::mem::take(&mut partial);
                if packet.starts_with(b"OpusHead") {
                    seen_head = true;
                } else if packet.starts_with(b"OpusTags") || packet.is_empty() {
                } else {
                    packets.push(Bytes::from(packet));
                }
            }
        }
    }
    if serial.is_none() || !seen_head {
        bail!("no Opus stream (OpusHead)");
    }
    if packets.is_empty() {
        bail!("no audio packets");
    }
    Ok(AudioClip { packets })
}

/// Duration of an Opus packet from its TOC byte and frame count (RFC 6716 §3.1); `None` for an
/// empty or malformed packet.
pub fn opus_packet_duration(p: &[u8]) -> Option<Duration> {
    let toc = *p.first()?;
    let config = toc >> 3;
    // Frame size in units of 2.5 ms.
    let units: u32 = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config % 4)],
        12..=15 => [4, 8][usize::from(config % 2)],
        _ => [1, 2, 4, 8][usize::from(config % 4)],
    };
    let frames: u32 = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*p.get(1)? & 0x3F),
    };
    if frames == 0 {
        return None;
    }
    let micros = u64::from(units * frames) * 2_500;
    // RFC 6716: at most 120 ms per packet.
    (micros <= 120_000).then(|| Duration::from_micros(micros))
}

/// Tiny generated files, for tests and for trying the flags without a real clip: they parse, and
/// their VP8 keyframes pass the server's keyframe rules, but nothing here decodes to a picture.
pub mod sample {

    /// An IVF file with the given frames (VP8, 640×360, 30 fps).
    pub fn ivf(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"DKIF");
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&32u16.to_le_bytes());
        b.extend_from_slice(b"VP80");
        b.extend_from_slice(&640u16.to_le_bytes());
        b.extend_from_slice(&360u16.to_le_bytes());
        b.extend_from_slice(&30u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&(frames.len() as u32).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        for (i, f) in frames.iter().enumerate() {
            b.extend_from_slice(&(f.len() as u32).to_le_bytes());
            b.extend_from_slice(&(i as u64).to_le_bytes());
            b.extend_from_slice(f);
        }
        b
    }

    /// A VP8 frame of `size` bytes: a keyframe (tag bit 0 clear, start code, 640×360) or not.
    pub fn vp8(key: bool, size: usize) -> Vec<u8> {
        let mut f = vec![if key { 0x10 } else { 0x11 }, 0x02, 0x00];
        if key {
            f.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]);
        }
        while f.len() < size {
            f.push((f.len() % 251) as u8);
        }
        f
    }

    /// An Ogg page (CRC left zero: the parser does not check it).
    fn page(flags: u8, serial: u32, seq: u32, lacing: &[u8], body: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"OggS");
        b.push(0);
        b.push(flags);
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&serial.to_le_bytes());
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(lacing.len() as u8);
        b.extend_from_slice(lacing);
        b.extend_from_slice(body);
        b
    }

    /// An Ogg Opus file: OpusHead page, OpusTags page, then pages holding `packets`; the 300-byte
    /// packet, if any, spans two pages.
    pub fn ogg(packets: &[Vec<u8>]) -> Vec<u8> {
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 1, 0x38, 0x01, 0x80, 0xBB, 0, 0, 0, 0, 0]);
        let tags = b"OpusTags\x04\0\0\0test\0\0\0\0".to_vec();
        let mut b = page(0x02, 7, 0, &[head.len() as u8], &head);
        b.extend(page(0, 7, 1, &[tags.len() as u8], &tags));
        let mut seq = 2;
        for p in packets {
            if p.len() >= 255 {
                // First 255 bytes on one page, the rest on a continuation page.
                b.extend(page(0, 7, seq, &[255], &p[..255]));
                b.extend(page(0x01, 7, seq + 1, &[(p.len() - 255) as u8], &p[255..]));
                seq += 2;
            } else {
                b.extend(page(0, 7, seq, &[p.len() as u8], p));
                seq += 1;
            }
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::sample::{ivf, ogg, vp8};
    use super::*;

    #[test]
    fn ivf_frames_and_keyframe_flags() {
        let file = ivf(&[vp8(true, 3_000), vp8(false, 500), vp8(false, 40)]);
        let clip = parse_ivf(&file).unwrap();
        assert_eq!((clip.width, clip.height), (640, 360));
        assert_eq!(clip.header_fps, Some(30.0));
        assert_eq!(clip.frames.len(), 3);
        assert_eq!(
            clip.frames.iter().map(|f| f.keyframe).collect::<Vec<_>>(),
            [true, false, false]
        );
        assert_eq!(clip.frames[1].data.len(), 500);
        assert_eq!(
            clip.next_keyframe(1),
            0,
            "wraps to the keyframe at the start"
        );
        assert_eq!(clip.next_keyframe(0), 0);
    }

    #[test]
    fn invalid_ivf_is_refused_with_a_reason() {
        let good = ivf(&[vp8(true, 100), vp8(false, 50)]);
        let err = |b: &[u8]| format!("{:#}", parse_ivf(b).unwrap_err());
        assert!(err(b"RIFF....").contains("DKIF"));
        let mut vp9 = good.clone();
        vp9[8..12].copy_from_slice(b"VP90");
        assert!(err(&vp9).contains("only VP8"));
        assert!(err(&good[..good.len() - 10]).contains("past the end"));
        assert!(err(&good[..32]).contains("no frames"));
        assert!(err(&ivf(&[vp8(false, 100)])).contains("no keyframe"));
    }

    #[test]
    fn ogg_opus_packets_skip_headers_and_join_across_pages() {
        let packets = vec![vec![0xF8, 1, 2, 3], vec![0xFC; 300], vec![0xF8, 0xFF, 0xFE]];
        let clip = parse_ogg_opus(&ogg(&packets)).unwrap();
        assert_eq!(clip.packets, packets);
    }

    #[test]
    fn invalid_ogg_is_refused_with_a_reason() {
        let err = |b: &[u8]| format!("{:#}", parse_ogg_opus(b).unwrap_err());
        assert!(err(b"ID3\x03 not an ogg file at all, really").contains("OggS"));
        let good = ogg(&[vec![0xF8, 1, 2]]);
        assert!(err(&good[..good.len() - 1]).contains("truncated"));
        // Headers only.
        assert!(err(&ogg(&[])).contains("no audio packets"));
        // A Vorbis stream is not Opus.
        let mut vorbis = good.clone();
        vorbis[28..36].copy_from_slice(b"\x01vorbis\0");
        assert!(err(&vorbis).contains("OpusHead"));
    }

    #[test]
    fn opus_durations_from_the_toc() {
        let ms = |p: &[u8]| opus_packet_duration(p).map(|d| d.as_secs_f64() * 1e3);
        assert_eq!(ms(&[0xF8]), Some(20.0)); // CELT FB 20 ms, one frame
        assert_eq!(ms(&[0xF9]), Some(40.0)); // two frames
        assert_eq!(ms(&[0x08 | 0x03, 3]), Some(60.0)); // SILK NB 20 ms × 3
        assert_eq!(ms(&[0x78]), Some(20.0)); // hybrid FB 20 ms
        assert_eq!(ms(&[0x80]), Some(2.5)); // CELT NB 2.5 ms
        assert_eq!(ms(&[]), None);
        assert_eq!(ms(&[0x03, 0]), None);
    }

    #[test]
    fn missing_files_name_the_flag_and_path() {
        let e = format!(
            "{:#}",
            FileMedia::load(Some(Path::new("/nonexistent/clip.ivf")), None).unwrap_err()
        );
        assert!(e.contains("--video-file /nonexistent/clip.ivf"), "{e}");
        let e = format!(
            "{:#}",
            FileMedia::load(None, Some(Path::new("/nonexistent/speech.ogg"))).unwrap_err()
        );
        assert!(e.contains("--audio-file /nonexistent/speech.ogg"), "{e}");
    }
}
