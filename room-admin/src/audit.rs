//! The audit log: who did what, when, and from which address. Written in the same request as
//! the action; never edited.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db::Db;
use crate::error::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// Username, or `-` for an anonymous attempt.
    pub actor: String,
    pub ip: String,
    /// `login`, `point.create`, `meeting.cancel`, ...
    pub action: String,
    /// What it was done to (point code, meeting id, account).
    pub target: String,
    pub detail: String,
}

pub async fn record(
    db: &Db,
    at: i64,
    actor: &str,
    ip: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, ip, action, target, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(at)
    .bind(actor)
    .bind(ip)
    .bind(action)
    .bind(target)
    .bind(detail)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The newest entries first, at most `limit`, older than entry `before` when given.
pub async fn list(db: &Db, limit: i64, before: Option<i64>) -> Result<Vec<AuditEntry>, StoreError> {
    Ok(sqlx::query_as::<_, AuditEntry>(
        "SELECT * FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit.clamp(1, 1000))
    .fetch_all(db.pool())
    .await?)
}
