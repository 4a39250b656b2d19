//! Calendar feed keys: the secret in a calendar subscription URL.
//!
//! Calendar programs cannot log in, so a feed URL carries a random key (256 bits, hex) stored
//! per feed: [`ALL`] (every meeting, no join links) or [`point_scope`] (one point's meetings
//! with its join links: the key is as secret as those links). A key is created the first time
//! the panel shows the feed and replaced by [`reissue`], which invalidates the old URL at once.

use sqlx::FromRow;

use crate::db::Db;
use crate::error::StoreError;

/// Scope of the all-meetings feed.
pub const ALL: &str = "all";

/// Scope of a point's feed.
pub fn point_scope(code: &str) -> String {
    format!("point:{code}")
}

/// A feed's current key.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct FeedKey {
    pub feed_key: String,
    /// Unix seconds.
    pub issued_at: i64,
}

fn new_key() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The feed's key, created when it has none yet.
pub async fn get_or_create(db: &Db, scope: &str, now: i64) -> Result<FeedKey, StoreError> {
    sqlx::query(
        "INSERT INTO calendar_feeds (scope, feed_key, issued_at) VALUES ($1, $2, $3) \
         ON CONFLICT (scope) DO NOTHING",
    )
    .bind(scope)
    .bind(new_key())
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(sqlx::query_as::<_, FeedKey>(
        "SELECT feed_key, issued_at FROM calendar_feeds WHERE scope = $1",
    )
    .bind(scope)
    .fetch_one(db.pool())
    .await?)
}

/// A new key for the feed; the old one stops working.
pub async fn reissue(db: &Db, scope: &str, now: i64) -> Result<FeedKey, StoreError> {
    let key = FeedKey {
        feed_key: new_key(),
        issued_at: now,
    };
    sqlx::query(
        "INSERT INTO calendar_feeds (scope, feed_key, issued_at) VALUES ($1, $2, $3) \
         ON CONFLICT (scope) DO UPDATE SET feed_key = excluded.feed_key, \
         issued_at = excluded.issued_at",
    )
    .bind(scope)
    .bind(&key.feed_key)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(key)
}

/// Whether `key` is the feed's current key (compared in constant time). A feed without a key
/// accepts nothing.
pub async fn check(db: &Db, scope: &str, key: &str) -> Result<bool, StoreError> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT feed_key FROM calendar_feeds WHERE scope = $1")
            .bind(scope)
            .fetch_optional(db.pool())
            .await?;
    Ok(stored.is_some_and(|s| constant_time_eq(s.as_bytes(), key.as_bytes())))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_created_once_and_reissued() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::testing::open_for_test(dir.path()).await;
        let scope = point_scope("06");
        assert!(!check(&db, &scope, "").await.unwrap());
        let k = get_or_create(&db, &scope, 10).await.unwrap();
        assert_eq!(k.feed_key.len(), 64);
        assert_eq!(get_or_create(&db, &scope, 20).await.unwrap(), k);
        assert!(check(&db, &scope, &k.feed_key).await.unwrap());
        assert!(!check(&db, ALL, &k.feed_key).await.unwrap());
        let k2 = reissue(&db, &scope, 30).await.unwrap();
        assert_ne!(k2.feed_key, k.feed_key);
        assert!(!check(&db, &scope, &k.feed_key).await.unwrap());
        assert!(check(&db, &scope, &k2.feed_key).await.unwrap());
        assert!(!check(&db, &scope, &k2.feed_key[..63]).await.unwrap());
    }
}
