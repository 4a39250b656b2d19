//! Text a stranger or an operator hands the server: signaling frames, join links, CSV files.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use room_admin::import::{self, MAX_ROWS};
use room_admin::{JoinClaims, JoinTokens, Secret, VerifyError};
use signaling::protocol::{ErrorCode, MAX_MESSAGE_BYTES, Role, parse_client_message};

/// Longest error text a refused frame may get back (it is sent to the client and may be logged).
const MAX_ERROR_TEXT: usize = 1024;

/// One WebSocket text frame. A message that parses serializes back to one that parses to the
/// same message; a refusal has a stable code, a short text and at most 40 characters of tag.
pub fn signaling_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_client_message(text) {
        Ok(msg) => {
            let json = serde_json::to_string(&msg).expect("a parsed message serializes");
            if json.len() <= MAX_MESSAGE_BYTES {
                let again = parse_client_message(&json)
                    .unwrap_or_else(|e| panic!("{json} does not parse again: {e:?}"));
                // Compared as JSON: a float may move by its last bit through text.
                let again_json = serde_json::to_string(&again).expect("serializes");
                let reparsed = parse_client_message(&again_json).expect("parses");
                assert_eq!(again, reparsed);
            }
        }
        Err(e) => {
            assert!(
                e.message.len() <= MAX_ERROR_TEXT,
                "error text of {} bytes: {:.200}",
                e.message.len(),
                e.message
            );
            assert!(e.request.as_ref().is_none_or(|r| r.chars().count() <= 40));
            if text.len() > MAX_MESSAGE_BYTES {
                assert_eq!(e.code, ErrorCode::TooLarge);
            }
        }
    }
}

fn tokens() -> JoinTokens {
    JoinTokens::new(&Secret::from_bytes([42; 32]))
}

/// A fixed clock, so a replayed input gives the same verdict every time.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_780_000_000)
}

/// Join tokens. First byte 0: the rest is a token from a stranger, which must never verify (no
/// one forges HS256 by chance). 1: claims chosen by the input, signed and verified back. 2: one
/// byte of a valid token changed, which verifies only as the same claims.
pub fn join_token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let t = tokens();
    match mode % 3 {
        0 => {
            let Ok(token) = std::str::from_utf8(rest) else {
                return;
            };
            assert!(
                t.verify(token, now()).is_err(),
                "a stranger's token verified"
            );
        }
        1 => {
            let claims = claims_from(rest);
            let token = t.sign(&claims).expect("claims sign");
            match t.verify(&token, now()) {
                Ok(got) => assert_eq!(got, claims),
                Err(VerifyError::Expired) => {
                    assert!(claims.exp <= room_admin::tokens::unix_secs(now()))
                }
                Err(e) => assert!(
                    token.len() > room_admin::tokens::MAX_TOKEN_BYTES || claims.iat > claims.exp,
                    "{e:?} for a well-signed token of {} bytes",
                    token.len()
                ),
            }
        }
        _ => {
            let claims = claims_from(b"meeting\0point\0name");
            let mut token = t.sign(&claims).expect("claims sign").into_bytes();
            if let [hi, lo, byte, ..] = rest {
                let at = usize::from(u16::from_be_bytes([*hi, *lo])) % token.len();
                token[at] = *byte;
            }
            if let Ok(token) = String::from_utf8(token)
                && let Ok(got) = t.verify(&token, now())
            {
                assert_eq!(got, claims, "an altered token verified as other claims");
            }
        }
    }
}

fn claims_from(rest: &[u8]) -> JoinClaims {
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.split('\0');
    let mut next = || parts.next().unwrap_or("").to_owned();
    let (meeting, point, name) = (next(), next(), next());
    let role = match rest.first().map(|b| b % 3) {
        Some(0) => Role::Chair,
        Some(1) => Role::Observer,
        _ => Role::Point,
    };
    let ttl = u64::from(rest.last().copied().unwrap_or(1)) * 3600;
    let at = now() - Duration::from_secs(u64::from(rest.get(1).copied().unwrap_or(0)) * 1800);
    JoinClaims::new(&meeting, &point, role, &name, at, Duration::from_secs(ttl))
}

/// CSV import of the point directory (the parse and the per-row checks: everything before the
/// database). Row and line numbers stay within the file; a cleaned row is clean.
pub fn csv_import(data: &[u8]) {
    let Ok(parsed) = import::parse(data) else {
        return;
    };
    assert!(parsed.rows.len() + parsed.errors.len() <= MAX_ROWS);
    // Line ends as the CSV reader sees them: `\n`, `\r\n` or a lone `\r`.
    let lines = data
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && data.get(i + 1) != Some(&b'\n')))
        .count()
        + 1;
    for (line, input) in &parsed.rows {
        assert!((2..=lines).contains(line), "line {line} of {lines}");
        if let Ok(clean) = input.validate() {
            assert_eq!(
                clean.validate().as_ref(),
                Ok(&clean),
                "validation is idempotent"
            );
            assert!(room_admin::points::valid_code(&clean.code));
            assert!(!clean.name.is_empty());
        }
    }
    for e in &parsed.errors {
        assert!(
            (1..=lines + 1).contains(&e.line),
            "error line {} of {lines}",
            e.line
        );
        assert!(e.message.len() <= MAX_ERROR_TEXT);
    }
}
