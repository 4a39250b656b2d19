//! The text of a client's offer, checked before `rtc` reads it.
//!
//! `rtc`'s SDP lexer reads a line up to LF and trims only its ends, so a CR, NUL or other control
//! character inside a value stays in the value. Values it echoes into our answer (a mid, a rid)
//! then carry it back: to a reader that splits lines on CR alone (or stops at NUL) our answer
//! holds lines the client wrote, such as a second `a=ice-ufrag` or an `a=fingerprint`. No
//! browser puts a control character inside an SDP line (RFC 8866 allows none but HTAB in
//! text), so an offer that does is refused whole.

use crate::api::SfuError;

/// Why an SDP's text was refused before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SdpTextError {
    /// Line `line` (from 1) holds control character `code` other than its CRLF or LF ending.
    #[error("line {line} carries control character U+{code:04X}")]
    ControlCharacter { line: usize, code: u32 },
}

impl From<SdpTextError> for SfuError {
    fn from(e: SdpTextError) -> Self {
        SfuError::BadSdp(e.to_string())
    }
}

/// Lines end in LF or CRLF; inside a line, only HTAB among the control characters.
pub(crate) fn check(sdp: &str) -> Result<(), SdpTextError> {
    for (i, line) in sdp.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(SdpTextError::ControlCharacter {
                line: i + 1,
                code: u32::from(c),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::offline::answer_publish_offer;

    /// A browser's audio offer, CRLF line ends; `{mid}` is the mid's value as sent.
    fn offer(mid: &str) -> String {
        [
            "v=0",
            "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "c=IN IP4 0.0.0.0",
            "a=ice-ufrag:Kx9T",
            "a=ice-pwd:v0Ea8yZ1OCd1xVJ8lH0hbh6D",
            "a=fingerprint:sha-256 4B:0E:2C:5F:7A:1E:9D:64:3A:51:93:D1:47:2A:20:80:C4:61:5B:8C:AF:0F:AD:3E:92:0A:7C:2D:61:E2:9B:1A",
            "a=setup:actpass",
            &format!("a=mid:{mid}"),
            "a=sendonly",
            "a=rtcp-mux",
            "a=rtpmap:111 opus/48000/2",
            "",
        ]
        .join("\r\n")
    }

    #[test]
    fn a_value_with_a_control_character_is_refused_before_it_reaches_the_answer() {
        let answer = answer_publish_offer(&offer("0"), &[]).expect("a plain offer is answered");
        assert!(answer.contains("\r\na=mid:0\r\n"), "{answer}");
        for (mid, code) in [
            ("0\ra=ice-ufrag:evil", 0x0D),
            ("0\ra=fingerprint:sha-256 00:11", 0x0D),
            ("0\0a=ice-ufrag:evil", 0x00),
            ("0\u{0b}a=ice-ufrag:evil", 0x0B),
        ] {
            let refused = answer_publish_offer(&offer(mid), &[]);
            let want = SfuError::from(SdpTextError::ControlCharacter { line: 12, code });
            assert!(
                matches!((&refused, &want), (Err(SfuError::BadSdp(a)), SfuError::BadSdp(b)) if a == b),
                "{mid:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn line_ends_and_tabs_are_not_control_characters_of_a_line() {
        assert_eq!(check(&offer("0")), Ok(()));
        assert_eq!(check(&offer("0").replace("\r\n", "\n")), Ok(()));
        assert_eq!(check("s=a\tb\r\n"), Ok(()));
        assert_eq!(
            check("v=0\r\ns=\u{85}\r\n"),
            Err(SdpTextError::ControlCharacter {
                line: 2,
                code: 0x85
            })
        );
        assert_eq!(
            check("v=0\r\r\n"),
            Err(SdpTextError::ControlCharacter {
                line: 1,
                code: 0x0D
            })
        );
    }
}
