//! Meetings linked to an upstream relay seat (the cascade, issue 13, downstream side): the
//! upstream link of a local meeting, stored so that the server runs the relay client while the
//! meeting is open or live. The link is a secret: it is checked before it is stored
//! (`signaling::relay_link`), never logged, and shown only cut short ([`UpstreamView`]).

use serde::{Deserialize, Serialize};
use signaling::relay_link::{RelayLink, parse_fingerprint};
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db::Db;
use crate::error::StoreError;
use crate::meetings::{self, Meeting};

/// The longest roster name of the upstream program.
pub const MAX_NAME: usize = 100;
/// The roster name when none is given.
pub const DEFAULT_NAME: &str = "Điểm cầu Trung ương";

/// What staff send to link a meeting.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamInput {
    /// The upstream server's relay link for this meeting, as its IT staff sent it
    /// (`https://host[:port]/join?t=…`).
    pub link: String,
    /// How the local roster names the upstream program (default "Điểm cầu Trung ương").
    #[serde(default)]
    pub name: Option<String>,
    /// For an `https` link: the SHA-256 fingerprint of the upstream's certificate, as the
    /// upstream server prints it at start (`tls-fingerprint-sha256: AB:CD:…`); the relay then
    /// trusts that certificate only. Without it, the system's certificate authorities decide.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// A stored link.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct UpstreamLink {
    pub meeting_id: String,
    pub link: String,
    pub name: String,
    /// `AB:CD:…` (upper-case hex pairs), or none.
    pub fingerprint: Option<String>,
    pub updated_at: i64,
    pub updated_by: String,
}

impl UpstreamLink {
    /// The pinned certificate's SHA-256, if any (checked when stored).
    pub fn tls_pin(&self) -> Option<[u8; 32]> {
        self.fingerprint
            .as_deref()
            .and_then(|f| parse_fingerprint(f).ok())
    }

    /// The link parsed (it was checked when stored; `None` only if the row was edited by hand).
    pub fn relay_link(&self) -> Option<RelayLink> {
        RelayLink::parse(&self.link).ok()
    }
}

/// A link as the API shows it: never the whole token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UpstreamView {
    /// The link with its token cut to 6 characters.
    pub link: String,
    pub name: String,
    /// The pinned certificate's fingerprint (not a secret), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// RFC 3339, UTC.
    pub updated_at: String,
    pub updated_by: String,
    /// What the relay client is doing now: `connecting`, `relaying`, `lost`, or `stopped` (the
    /// meeting is not open or live).
    pub relay: String,
}

impl UpstreamView {
    pub fn new(l: &UpstreamLink, relay: &str) -> UpstreamView {
        UpstreamView {
            link: l
                .relay_link()
                .map_or_else(|| "(invalid)".to_owned(), |r| r.redacted()),
            name: l.name.clone(),
            fingerprint: l.fingerprint.clone(),
            updated_at: crate::timefmt::utc_rfc3339(l.updated_at),
            updated_by: l.updated_by.clone(),
            relay: relay.to_owned(),
        }
    }
}

/// Checks `input` and links `meeting` to it (replacing a previous link).
pub async fn set(
    db: &Db,
    meeting: &str,
    input: &UpstreamInput,
    by: &str,
    now: i64,
) -> Result<UpstreamLink, StoreError> {
    let m = meetings::get(db, meeting).await?;
    meetings::ensure_editable(&m, now)?;
    let link = RelayLink::parse(&input.link)
        .map_err(|e| StoreError::invalid_field("link", format!("{e}")))?;
    let name = input.name.as_deref().unwrap_or(DEFAULT_NAME).trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(StoreError::invalid_field(
            "name",
            format!("Tên từ 1 đến {MAX_NAME} ký tự. / A name of 1 to {MAX_NAME} characters."),
        ));
    }
    let fingerprint = match input.fingerprint.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(_) if !link.tls() => {
            return Err(StoreError::invalid_field(
                "fingerprint",
                "Chỉ dùng với liên kết https. / Only for an https link.",
            ));
        }
        Some(f) => {
            let bytes = parse_fingerprint(f)
                .map_err(|e| StoreError::invalid_field("fingerprint", format!("{e}")))?;
            Some(
                bytes
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            )
        }
    };
    sqlx::query(
        "INSERT INTO upstream_links (meeting_id, link, name, fingerprint, updated_at, \
         updated_by) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (meeting_id) DO UPDATE SET link = excluded.link, name = excluded.name, \
         fingerprint = excluded.fingerprint, updated_at = excluded.updated_at, \
         updated_by = excluded.updated_by",
    )
    .bind(meeting)
    .bind(link.to_link())
    .bind(name)
    .bind(fingerprint)
    .bind(now)
    .bind(by)
    .execute(db.pool())
    .await?;
    get(db, meeting)
        .await?
        .ok_or_else(|| meetings::not_found(meeting))
}

pub async fn get(db: &Db, meeting: &str) -> Result<Option<UpstreamLink>, StoreError> {
    Ok(
        sqlx::query_as::<_, UpstreamLink>("SELECT * FROM upstream_links WHERE meeting_id = $1")
            .bind(meeting)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Unlinks `meeting`; whether it was linked.
pub async fn remove(db: &Db, meeting: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM upstream_links WHERE meeting_id = $1")
        .bind(meeting)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Every linked meeting that is open or live at `now`, with its link.
pub async fn running(db: &Db, now: i64) -> Result<Vec<(Meeting, UpstreamLink)>, StoreError> {
    let links = sqlx::query_as::<_, UpstreamLink>("SELECT * FROM upstream_links")
        .fetch_all(db.pool())
        .await?;
    let mut out = Vec::new();
    for l in links {
        if let Some(m) = meetings::find(db, &l.meeting_id).await?
            && m.state(now).joinable()
        {
            out.push((m, l));
        }
    }
    Ok(out)
}

/// What the server's relay clients are doing, for the API (the binary implements it over its
/// running relays; tests and servers without them use [`NoRelays`]).
pub trait RelayStatus: Send + Sync + 'static {
    /// `connecting`, `relaying` or `lost` for a meeting whose relay runs; `None` otherwise.
    fn relay_state(&self, meeting: &str) -> Option<&'static str>;
    /// A meeting's link was set or removed: start, restart or stop its relay now rather than at
    /// the next check.
    fn changed(&self, _meeting: &str) {}
}

/// No relay clients run here.
pub struct NoRelays;

impl RelayStatus for NoRelays {
    fn relay_state(&self, _meeting: &str) -> Option<&'static str> {
        None
    }
}
