//! The chat of a meeting, as the attendance recorder stored it (issue 5: "stored with the
//! meeting"). Text is stored as sent and shown with `textContent`.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db::Db;
use crate::error::StoreError;

/// The newest messages a meeting's detail carries.
pub const DETAIL_LIMIT: i64 = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct ChatMessage {
    pub id: i64,
    /// The sender's seat (point code, `obs-…`).
    pub seat: String,
    /// The sender's name in the meeting (`null` when the seat is no longer in it).
    pub name: Option<String>,
    /// To the chair only; else to everyone.
    pub to_chair: bool,
    pub text: String,
    /// Unix milliseconds.
    pub sent_ms: i64,
}

/// The newest `limit` messages of a meeting, oldest first.
pub async fn list(db: &Db, meeting: &str, limit: i64) -> Result<Vec<ChatMessage>, StoreError> {
    let mut out = sqlx::query_as::<_, ChatMessage>(
        "SELECT c.id, c.seat, s.name, c.to_chair, c.text, c.sent_ms FROM chat_messages c \
         LEFT JOIN seats s ON s.meeting_id = c.meeting_id AND s.seat = c.seat \
         WHERE c.meeting_id = $1 ORDER BY c.id DESC LIMIT $2",
    )
    .bind(meeting)
    .bind(limit.max(1))
    .fetch_all(db.pool())
    .await?;
    out.reverse();
    Ok(out)
}

/// How many messages a meeting has in all.
pub async fn count(db: &Db, meeting: &str) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM chat_messages WHERE meeting_id = $1")
            .bind(meeting)
            .fetch_one(db.pool())
            .await?,
    )
}
