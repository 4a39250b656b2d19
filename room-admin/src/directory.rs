//! What the authorizer needs to know about stored meetings, kept in memory.
//!
//! `Authorizer::authorize` is synchronous (signaling calls it inside a session task) and a join
//! storm of hundreds of points must not queue on the database, so the authorizer reads this
//! copy instead. It is loaded at start and refreshed by the API after every change to a
//! meeting or its seats ([`Directory::refresh`]); the database stays the truth.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use crate::db::{self, Db};
use crate::error::StoreError;
use crate::meetings::{self, Meeting, Seat};

/// A meeting and its seats (by seat id).
#[derive(Debug, Clone)]
pub struct Entry {
    pub meeting: Meeting,
    pub seats: HashMap<String, Seat>,
    /// Codes of this meeting's points that are disabled in the directory now: their links are
    /// refused until they are enabled again.
    pub disabled_points: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub struct Directory {
    meetings: RwLock<HashMap<String, Arc<Entry>>>,
}

impl Directory {
    /// Loads every meeting that has not ended more than a day ago.
    pub async fn load(db: &Db) -> Result<Directory, StoreError> {
        let dir = Directory::default();
        let since = db::unix_now() - 24 * 3600;
        for m in meetings::list(db, Some(since), None).await? {
            dir.refresh(db, &m.id).await?;
        }
        Ok(dir)
    }

    /// Re-reads one meeting after a change (or forgets it if it is gone).
    pub async fn refresh(&self, db: &Db, id: &str) -> Result<(), StoreError> {
        let entry = match meetings::find(db, id).await? {
            Some(meeting) => {
                let seats = meetings::seats(db, id)
                    .await?
                    .into_iter()
                    .map(|s| (s.seat.clone(), s))
                    .collect();
                let disabled_points = sqlx::query_scalar(
                    "SELECT p.code FROM points p JOIN seats s ON s.point_code = p.code \
                     WHERE s.meeting_id = $1 AND p.disabled = TRUE",
                )
                .bind(id)
                .fetch_all(db.pool())
                .await?
                .into_iter()
                .collect();
                Some(Arc::new(Entry {
                    meeting,
                    seats,
                    disabled_points,
                }))
            }
            None => None,
        };
        let mut map = self.meetings.write().unwrap_or_else(|e| e.into_inner());
        match entry {
            Some(e) => map.insert(id.to_owned(), e),
            None => map.remove(id),
        };
        Ok(())
    }

    /// Ids of the meetings in which `point` has a seat.
    pub fn meetings_of_point(&self, point: &str) -> Vec<String> {
        self.meetings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|e| {
                e.seats
                    .values()
                    .any(|s| s.point_code.as_deref() == Some(point))
            })
            .map(|e| e.meeting.id.clone())
            .collect()
    }

    /// Replaces one meeting's entry by `change` applied to a copy of it (the chair ended or
    /// extended it: the authorizer must know before the database write lands). `None` when
    /// the meeting is not in the directory.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut Entry)) -> Option<Arc<Entry>> {
        let mut map = self.meetings.write().unwrap_or_else(|e| e.into_inner());
        let entry = map.get_mut(id)?;
        let mut copy = Entry::clone(entry);
        change(&mut copy);
        *entry = Arc::new(copy);
        Some(entry.clone())
    }

    pub fn get(&self, id: &str) -> Option<Arc<Entry>> {
        self.meetings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
}
