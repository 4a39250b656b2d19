//! The directory of points (điểm cầu): the province hall, departments, districts, communes.
//!
//! A point's `code` is its key and never changes (official statistical codes are text with
//! leading zeros). Points are never deleted: a point with history is disabled instead, which
//! keeps old meetings and attendance readable and stops it from being invited again.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db::{Db, Tx};
use crate::error::{Check, StoreError};

/// The kinds of point, as stored and as written in CSV files.
pub const KINDS: [&str; 5] = [
    "province_hall",
    "department",
    "district",
    "commune",
    "other",
];

pub const MAX_CODE: usize = 32;
pub const MAX_NAME: usize = 200;
pub const MAX_SHORT: usize = 200;
pub const MAX_NOTES: usize = 2000;

/// A point as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, FromRow, ToSchema)]
pub struct Point {
    /// Official code, unique, text (`06`, `02191`, `BK-SO-01`).
    pub code: String,
    pub name: String,
    /// One of `province_hall`, `department`, `district`, `commune`, `other`.
    pub kind: String,
    /// Administrative unit (`tỉnh`, `huyện`, `xã`, ...).
    pub unit: String,
    pub district: String,
    pub contact_name: String,
    pub contact_phone: String,
    /// Expected link, e.g. `ADSL 1 Mbit/s`, `cáp quang`, `4G`.
    pub expected_link: String,
    pub notes: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What staff fill in for a point. Optional fields default to empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointInput {
    pub code: String,
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub district: String,
    #[serde(default)]
    pub contact_name: String,
    #[serde(default)]
    pub contact_phone: String,
    #[serde(default)]
    pub expected_link: String,
    #[serde(default)]
    pub notes: String,
}

impl PointInput {
    /// Trims and checks every field; the cleaned input, or the field errors.
    pub fn validate(&self) -> Result<PointInput, crate::error::Fields> {
        let mut c = Check::default();
        let code = c.text("code", &self.code, true, MAX_CODE);
        if !code.is_empty() && !valid_code(&code) {
            c.fail(
                "code",
                "Mã chỉ gồm chữ cái không dấu, chữ số, '-', '_' và '.'. / \
                 Code: letters, digits, '-', '_' and '.' only.",
            );
        }
        let name = c.text("name", &self.name, true, MAX_NAME);
        let kind = self.kind.trim().to_owned();
        if !KINDS.contains(&kind.as_str()) {
            c.fail(
                "kind",
                format!(
                    "Loại điểm cầu phải là một trong: {}. / Kind must be one of: {}.",
                    KINDS.join(", "),
                    KINDS.join(", ")
                ),
            );
        }
        let out = PointInput {
            code,
            name,
            kind,
            unit: c.text("unit", &self.unit, false, MAX_SHORT),
            district: c.text("district", &self.district, false, MAX_SHORT),
            contact_name: c.text("contact_name", &self.contact_name, false, MAX_SHORT),
            contact_phone: c.text("contact_phone", &self.contact_phone, false, 40),
            expected_link: c.text("expected_link", &self.expected_link, false, MAX_SHORT),
            notes: c.text("notes", &self.notes, false, MAX_NOTES),
        };
        if !out.contact_phone.is_empty()
            && !out
                .contact_phone
                .chars()
                .all(|ch| ch.is_ascii_digit() || " +-.()".contains(ch))
        {
            c.fail(
                "contact_phone",
                "Số điện thoại chỉ gồm chữ số, dấu cách và + - . ( ). / \
                 Phone: digits, spaces and + - . ( ) only.",
            );
        }
        if c.fields.is_empty() {
            Ok(out)
        } else {
            Err(c.fields)
        }
    }

    /// Whether a stored point already says exactly this.
    pub fn same_as(&self, p: &Point) -> bool {
        self.name == p.name
            && self.kind == p.kind
            && self.unit == p.unit
            && self.district == p.district
            && self.contact_name == p.contact_name
            && self.contact_phone == p.contact_phone
            && self.expected_link == p.expected_link
            && self.notes == p.notes
    }
}

pub fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub async fn get(db: &Db, code: &str) -> Result<Point, StoreError> {
    find(db, code).await?.ok_or_else(|| not_found(code))
}

pub async fn find(db: &Db, code: &str) -> Result<Option<Point>, StoreError> {
    Ok(
        sqlx::query_as::<_, Point>("SELECT * FROM points WHERE code = $1")
            .bind(code)
            .fetch_optional(db.pool())
            .await?,
    )
}

pub fn not_found(code: &str) -> StoreError {
    StoreError::NotFound(format!(
        "Không có điểm cầu mã {code:?}. / No point with code {code:?}."
    ))
}

/// Every point, by code.
pub async fn all(db: &Db) -> Result<Vec<Point>, StoreError> {
    Ok(
        sqlx::query_as::<_, Point>("SELECT * FROM points ORDER BY code")
            .fetch_all(db.pool())
            .await?,
    )
}

/// Points matching a search. `q` matches code, name, district and unit, ignoring case and
/// Vietnamese diacritics ("cao son" finds "Cao Sơn"). Filtering happens here rather than in SQL:
/// SQLite's LIKE folds ASCII only, and a province's directory is a few hundred rows.
pub async fn search(
    db: &Db,
    q: &str,
    kind: Option<&str>,
    include_disabled: bool,
) -> Result<Vec<Point>, StoreError> {
    let needle = fold(q.trim());
    let mut points = all(db).await?;
    points.retain(|p| {
        (include_disabled || !p.disabled)
            && kind.is_none_or(|k| p.kind == k)
            && (needle.is_empty()
                || fold(&p.code).contains(&needle)
                || fold(&p.name).contains(&needle)
                || fold(&p.district).contains(&needle)
                || fold(&p.unit).contains(&needle))
    });
    Ok(points)
}

pub async fn create(db: &Db, input: &PointInput, now: i64) -> Result<Point, StoreError> {
    let input = input.validate().map_err(StoreError::invalid)?;
    let mut tx = db.begin().await?;
    if exists(&mut tx, &input.code).await? {
        return Err(StoreError::conflict_field(
            "code",
            format!(
                "Mã {:?} đã có trong danh bạ. / Code {:?} already exists.",
                input.code, input.code
            ),
        ));
    }
    insert(&mut tx, &input, now).await?;
    tx.commit().await?;
    get(db, &input.code).await
}

/// Replaces a point's fields (not its code).
pub async fn update(
    db: &Db,
    code: &str,
    input: &PointInput,
    now: i64,
) -> Result<Point, StoreError> {
    let mut input = input.clone();
    input.code = code.to_owned();
    let input = input.validate().map_err(StoreError::invalid)?;
    let mut tx = db.begin().await?;
    if !exists(&mut tx, code).await? {
        return Err(not_found(code));
    }
    write_fields(&mut tx, &input, now).await?;
    tx.commit().await?;
    get(db, code).await
}

pub async fn set_disabled(
    db: &Db,
    code: &str,
    disabled: bool,
    now: i64,
) -> Result<Point, StoreError> {
    let done = sqlx::query("UPDATE points SET disabled = $1, updated_at = $2 WHERE code = $3")
        .bind(disabled)
        .bind(now)
        .bind(code)
        .execute(db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(not_found(code));
    }
    get(db, code).await
}

pub(crate) async fn exists(tx: &mut Tx<'_>, code: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM points WHERE code = $1")
        .bind(code)
        .fetch_one(&mut **tx)
        .await?;
    Ok(n > 0)
}

/// Inserts a validated point.
pub(crate) async fn insert(tx: &mut Tx<'_>, p: &PointInput, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO points (code, name, kind, unit, district, contact_name, contact_phone, \
         expected_link, notes, disabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, FALSE, $10, $10)",
    )
    .bind(&p.code)
    .bind(&p.name)
    .bind(&p.kind)
    .bind(&p.unit)
    .bind(&p.district)
    .bind(&p.contact_name)
    .bind(&p.contact_phone)
    .bind(&p.expected_link)
    .bind(&p.notes)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Overwrites the fields of an existing, validated point.
pub(crate) async fn write_fields(
    tx: &mut Tx<'_>,
    p: &PointInput,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE points SET name = $1, kind = $2, unit = $3, district = $4, contact_name = $5, \
         contact_phone = $6, expected_link = $7, notes = $8, updated_at = $9 WHERE code = $10",
    )
    .bind(&p.name)
    .bind(&p.kind)
    .bind(&p.unit)
    .bind(&p.district)
    .bind(&p.contact_name)
    .bind(&p.contact_phone)
    .bind(&p.expected_link)
    .bind(&p.notes)
    .bind(now)
    .bind(&p.code)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Lower case without Vietnamese diacritics, for search.
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(base_letter)
        .collect()
}

fn base_letter(c: char) -> char {
    const GROUPS: [(&str, char); 6] = [
        ("àáảãạăằắẳẵặâầấẩẫậ", 'a'),
        ("èéẻẽẹêềếểễệ", 'e'),
        ("ìíỉĩị", 'i'),
        ("òóỏõọôồốổỗộơờớởỡợ", 'o'),
        ("ùúủũụưừứửữự", 'u'),
        ("ỳýỷỹỵ", 'y'),
    ];
    if c == 'đ' {
        return 'd';
    }
    GROUPS
        .iter()
        .find(|(set, _)| set.contains(c))
        .map_or(c, |&(_, base)| base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_removes_vietnamese_marks() {
        assert_eq!(fold("Xã Cao Sơn"), "xa cao son");
        assert_eq!(fold("ĐỔNG XÁ"), "dong xa");
        assert_eq!(fold("Liêm Thuỷ"), "liem thuy");
    }

    #[test]
    fn codes() {
        assert!(valid_code("02191"));
        assert!(valid_code("BK-SO-01"));
        assert!(!valid_code("a b"));
        assert!(!valid_code("x'; DROP"));
        assert!(!valid_code("mã"));
        assert!(!valid_code(""));
    }

    #[test]
    fn validation_reports_each_field() {
        let bad = PointInput {
            code: " ".into(),
            name: "x".repeat(MAX_NAME + 1),
            kind: "village".into(),
            contact_phone: "call me".into(),
            ..Default::default()
        };
        let fields = bad.validate().unwrap_err();
        for f in ["code", "name", "kind", "contact_phone"] {
            assert!(fields.contains_key(f), "{f}: {fields:?}");
        }
        let good = PointInput {
            code: " 06 ".into(),
            name: " <b>Hội trường</b> ".into(),
            kind: "province_hall".into(),
            ..Default::default()
        };
        let clean = good.validate().unwrap();
        assert_eq!(clean.code, "06");
        // HTML is text: kept as typed, escaped where shown.
        assert_eq!(clean.name, "<b>Hội trường</b>");
    }
}
