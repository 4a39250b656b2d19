//! Join tokens: what a join link carries (`/join?t=<token>`).
//!
//! A token is an HS256 JWT signed with the data dir's [`Secret`]. It binds one point to one
//! meeting with one role, and expires. The server keeps no copy: anyone holding the link can join
//! as that point until it expires, so links travel like keys (the web pages send
//! `Referrer-Policy: no-referrer` and the server never logs them).
//!
//! Verification checks the signature before reading any claim, so a forged token is always
//! `Invalid`, never `Expired`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use signaling::auth::AuthError;
use signaling::protocol::Role;

use crate::secret::Secret;

/// `aud` of every join token. Other kinds of token signed with the same secret later (admin
/// sessions, node-to-node) get another audience, so one can never be replayed as the other.
pub const JOIN_AUDIENCE: &str = "hoinghi-join";

/// Tokens longer than this are refused unread: ours are well under 1 KiB, and a bound keeps a
/// hostile client from making us base64-decode megabytes. Same bound as the `join` message's
/// token in `docs/protocol.md`.
pub const MAX_TOKEN_BYTES: usize = 2048;

/// What a join token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClaims {
    /// Always [`JOIN_AUDIENCE`].
    pub aud: String,
    /// Meeting id.
    pub meeting: String,
    /// The point's code in the directory.
    pub point: String,
    pub role: Role,
    /// Display name of the point.
    pub name: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch; the token is refused from this second on.
    pub exp: u64,
    /// Random token id (128 bits, hex), so a single link can be revoked later.
    pub jti: String,
}

impl JoinClaims {
    /// Claims for `point` in `meeting`, valid from `now` for `ttl`, with a fresh token id.
    pub fn new(
        meeting: &str,
        point: &str,
        role: Role,
        name: &str,
        now: SystemTime,
        ttl: Duration,
    ) -> JoinClaims {
        let iat = unix_secs(now);
        JoinClaims {
            aud: JOIN_AUDIENCE.to_owned(),
            meeting: meeting.to_owned(),
            point: point.to_owned(),
            role,
            name: name.to_owned(),
            iat,
            exp: iat.saturating_add(ttl.as_secs()),
            jti: hex::encode(rand::random::<[u8; 16]>()),
        }
    }
}

/// Why a token was refused. The text is shown to the point's staff as is: plain words,
/// Vietnamese first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Malformed, forged, signed with another secret, for another audience, or for a meeting or
    /// point that does not exist.
    #[error(
        "Liên kết tham gia không hợp lệ. Hãy mở đúng liên kết đã được gửi cho điểm cầu. / \
         Invalid join link. Open the exact link that was sent to your point."
    )]
    Invalid,
    #[error(
        "Liên kết tham gia đã hết hạn. Hãy liên hệ cán bộ kỹ thuật để nhận liên kết mới. / \
         This join link has expired. Ask the IT staff for a new one."
    )]
    Expired,
}

impl From<VerifyError> for AuthError {
    fn from(e: VerifyError) -> AuthError {
        match e {
            VerifyError::Invalid => AuthError::Invalid(e.to_string()),
            VerifyError::Expired => AuthError::Expired(e.to_string()),
        }
    }
}

/// Signing a token failed (only possible if the claims cannot be serialized).
#[derive(Debug, thiserror::Error)]
#[error("cannot sign join token: {0}")]
pub struct SignError(String);

/// Signs and verifies join tokens with one secret.
#[derive(Clone)]
pub struct JoinTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JoinTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JoinTokens(<redacted>)")
    }
}

impl JoinTokens {
    pub fn new(secret: &Secret) -> JoinTokens {
        // Only HS256 is accepted: a token whose header says `none` or an asymmetric algorithm
        // is refused before its signature is even looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked by `verify` against the caller's clock, with no leeway, so tests
        // can move time and the error is ours (Expired) rather than the library's.
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "aud"]);
        validation.set_audience(&[JOIN_AUDIENCE]);
        JoinTokens {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    pub fn sign(&self, claims: &JoinClaims) -> Result<String, SignError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| SignError(e.to_string()))
    }

    /// Checks signature, audience and expiry at `now`, and returns the claims.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<JoinClaims, VerifyError> {
        let claims = self.verify_signature(token)?;
        if unix_secs(now) >= claims.exp {
            return Err(VerifyError::Expired);
        }
        Ok(claims)
    }

    /// Checks signature and audience only. For stored meetings the meeting's own end decides
    /// (a link sent before the chair extended the meeting carries the old end as `exp`).
    pub fn verify_signature(&self, token: &str) -> Result<JoinClaims, VerifyError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::Invalid);
        }
        let data = jsonwebtoken::decode::<JoinClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| VerifyError::Invalid)?;
        let claims = data.claims;
        if claims.aud != JOIN_AUDIENCE || claims.iat > claims.exp {
            return Err(VerifyError::Invalid);
        }
        Ok(claims)
    }
}

/// Seconds since the Unix epoch; a clock set before 1970 counts as 0 rather than panicking.
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn tokens() -> JoinTokens {
        JoinTokens::new(&Secret::from_bytes([7; 32]))
    }

    fn claims(role: Role, now: SystemTime) -> JoinClaims {
        JoinClaims::new("hop-tinh-1", "06", role, "UBND xã Cao Sơn", now, DAY)
    }

    #[test]
    fn round_trip_carries_meeting_point_role_and_name() {
        let t = tokens();
        let now = SystemTime::now();
        for role in [Role::Chair, Role::Point, Role::Observer] {
            let c = claims(role, now);
            let got = t.verify(&t.sign(&c).unwrap(), now).unwrap();
            assert_eq!(got, c);
            assert_eq!(got.role, role);
            assert_eq!(got.meeting, "hop-tinh-1");
            assert_eq!(got.point, "06");
            assert_eq!(got.name, "UBND xã Cao Sơn");
            assert_eq!(got.exp - got.iat, DAY.as_secs());
        }
    }

    #[test]
    fn each_token_gets_its_own_id() {
        let now = SystemTime::now();
        let a = claims(Role::Point, now);
        let b = claims(Role::Point, now);
        assert_ne!(a.jti, b.jti);
        assert_eq!(a.jti.len(), 32);
    }

    #[test]
    fn tampered_signature_is_invalid() {
        let t = tokens();
        let now = SystemTime::now();
        let token = t.sign(&claims(Role::Point, now)).unwrap();
        // Change one character in the middle of the signature (the part after the last dot;
        // not its last character, whose low bits are padding).
        let mut bytes = token.into_bytes();
        let i = bytes.len() - 10;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(t.verify(&tampered, now), Err(VerifyError::Invalid));
    }

    #[test]
    fn tampered_payload_is_invalid() {
        let t = tokens();
        let now = SystemTime::now();
        let token = t.sign(&claims(Role::Point, now)).unwrap();
        // Swap in the payload of a chair token: a point promoting itself.
        let chair = t.sign(&claims(Role::Chair, now)).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let chair_parts: Vec<&str> = chair.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], chair_parts[1], parts[2]);
        assert_eq!(t.verify(&forged, now), Err(VerifyError::Invalid));
    }

    #[test]
    fn token_signed_with_another_secret_is_invalid() {
        let now = SystemTime::now();
        let other = JoinTokens::new(&Secret::from_bytes([8; 32]));
        let token = other.sign(&claims(Role::Chair, now)).unwrap();
        assert_eq!(tokens().verify(&token, now), Err(VerifyError::Invalid));
    }

    #[test]
    fn expired_token_is_expired() {
        let t = tokens();
        let issued = SystemTime::now() - 2 * DAY;
        let token = t.sign(&claims(Role::Point, issued)).unwrap();
        assert_eq!(
            t.verify(&token, SystemTime::now()),
            Err(VerifyError::Expired)
        );
        // Still valid one second before its expiry, refused from the expiry second on.
        assert!(
            t.verify(&token, issued + DAY - Duration::from_secs(1))
                .is_ok()
        );
        assert_eq!(t.verify(&token, issued + DAY), Err(VerifyError::Expired));
    }

    #[test]
    fn expired_token_with_wrong_signature_is_invalid_not_expired() {
        let issued = SystemTime::now() - 2 * DAY;
        let other = JoinTokens::new(&Secret::from_bytes([8; 32]));
        let token = other.sign(&claims(Role::Point, issued)).unwrap();
        assert_eq!(
            tokens().verify(&token, SystemTime::now()),
            Err(VerifyError::Invalid)
        );
    }

    #[test]
    fn garbage_is_invalid() {
        let t = tokens();
        let now = SystemTime::now();
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        for junk in [
            "",
            "abc",
            "a.b.c",
            "....",
            "eyJhbGciOiJub25lIn0.e30.",
            "không phải token",
            long.as_str(),
        ] {
            assert_eq!(t.verify(junk, now), Err(VerifyError::Invalid), "{junk:?}");
        }
    }

    #[test]
    fn unsigned_alg_none_token_is_invalid() {
        use base64_url as b64;
        let header = b64::encode(br#"{"alg":"none","typ":"JWT"}"#);
        let c = claims(Role::Chair, SystemTime::now());
        let payload = b64::encode(serde_json::to_string(&c).unwrap().as_bytes());
        let token = format!("{header}.{payload}.");
        assert_eq!(
            tokens().verify(&token, SystemTime::now()),
            Err(VerifyError::Invalid)
        );
    }

    #[test]
    fn wrong_audience_is_invalid() {
        let t = tokens();
        let now = SystemTime::now();
        let mut c = claims(Role::Point, now);
        c.aud = "hoinghi-admin".into();
        assert_eq!(
            t.verify(&t.sign(&c).unwrap(), now),
            Err(VerifyError::Invalid)
        );
    }

    #[test]
    fn errors_map_to_auth_errors_with_plain_messages() {
        let invalid: AuthError = VerifyError::Invalid.into();
        let expired: AuthError = VerifyError::Expired.into();
        assert!(matches!(&invalid, AuthError::Invalid(m) if m.starts_with("Liên kết")));
        assert!(matches!(&expired, AuthError::Expired(m) if m.contains("expired")));
    }

    /// Minimal unpadded base64url, only for building hand-made tokens in tests.
    mod base64_url {
        pub fn encode(input: &[u8]) -> String {
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in input.chunks(3) {
                let b = [
                    chunk[0],
                    *chunk.get(1).unwrap_or(&0),
                    *chunk.get(2).unwrap_or(&0),
                ];
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                for i in 0..=chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
    }
}
