//! Staff accounts and their sessions.
//!
//! Two roles: `admin` (everything, including accounts) and `operator` (points, meetings, links,
//! attendance). Passwords are hashed with argon2id (the crate's defaults: 19 MiB, 2 passes);
//! hashing takes tens of milliseconds of CPU, so async callers run it on the blocking pool
//! ([`hash_password_async`], [`verify_password_async`]).
//!
//! A session is a random 256-bit cookie value; the database stores only its SHA-256, so a copy
//! of the database does not let anyone log in. Each session has its own CSRF token.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db::{self, Db};
use crate::error::StoreError;

pub const ROLES: [&str; 2] = ["admin", "operator"];
/// A session lasts a working day, then staff log in again.
pub const SESSION_SECS: i64 = 12 * 3600;
/// At least 12 characters (NIST SP 800-63B asks for 8 at least; these accounts control every
/// meeting of a province).
pub const MIN_PASSWORD: usize = 12;
pub const MAX_PASSWORD: usize = 256;
/// Name of the account the first start creates.
pub const BOOTSTRAP_USER: &str = "admin";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct Account {
    pub username: String,
    #[serde(skip)]
    pub password_hash: String,
    /// `admin` or `operator`.
    pub role: String,
    pub disabled: bool,
    /// The password was made for this account (the bootstrap one, printed on a terminal): the
    /// panel accepts nothing but a change of it until it is changed.
    pub must_change_password: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A logged-in session, found from its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub account: Account,
    pub csrf: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub username: String,
    pub password: String,
    /// `admin` or `operator`.
    pub role: String,
}

pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Invalid {
            message: format!("cannot hash password: {e}"),
            fields: Default::default(),
        })
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

pub async fn hash_password_async(password: String) -> Result<String, StoreError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| StoreError::conflict(format!("hashing task failed: {e}")))?
}

pub async fn verify_password_async(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false)
}

/// A hash of a random password, checked against when the account does not exist, so a login
/// takes as long for an unknown name as for a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&db::random_hex16()).unwrap_or_default())
}

pub fn check_username(username: &str) -> Result<(), StoreError> {
    let ok = (2..=32).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid_field(
            "username",
            "2–32 ký tự: chữ thường không dấu, chữ số, '.', '_', '-'. / 2–32 characters: \
             lower-case letters, digits, '.', '_', '-'.",
        ))
    }
}

/// Passwords people pick first, long enough to pass the length rule: refused whatever their
/// case. Short on purpose: it catches the obvious, the length does the rest.
const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "123456789123",
    "1234512345",
    "012345678901",
    "098765432109",
    "111111111111",
    "000000000000",
    "123123123123",
    "abcdefghijkl",
    "qwertyuiop12",
    "qwertyuiop123",
    "qwertyuiopasdf",
    "1qaz2wsx3edc",
    "1q2w3e4r5t6y",
    "password1234",
    "password12345",
    "password123456",
    "passwordpassword",
    "matkhau12345",
    "matkhau123456",
    "matkhau2024",
    "matkhau2025",
    "matkhaumoi123",
    "admin1234567",
    "admin12345678",
    "administrator",
    "administrator1",
    "admin@123456",
    "admin@12345678",
    "iloveyou1234",
    "hoinghi12345",
    "hoinghi123456",
    "hoinghitructuyen",
    "changeme1234",
    "welcome12345",
    "letmein12345",
];

/// Why `password` cannot be the password of `username`, in words for the person typing it
/// (Vietnamese, then English), or `None` when it may.
pub fn password_problem(password: &str, username: &str) -> Option<String> {
    let n = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Some(format!(
            "Mật khẩu phải dài từ {MIN_PASSWORD} đến {MAX_PASSWORD} ký tự. / A password is \
             {MIN_PASSWORD} to {MAX_PASSWORD} characters long."
        ));
    }
    let folded = password.trim().to_lowercase();
    let mut chars = folded.chars();
    let first = chars.next();
    let one_char = chars.all(|c| Some(c) == first);
    let is_name = !username.is_empty() && folded.contains(&username.to_lowercase());
    if one_char || is_name || COMMON_PASSWORDS.contains(&folded.as_str()) {
        return Some(
            "Mật khẩu này quá dễ đoán (mật khẩu phổ biến, lặp một ký tự hoặc chứa tên đăng \
             nhập). Hãy dùng một câu dài dễ nhớ, ví dụ \"họp tỉnh sáng thứ hai 2026\". / This \
             password is too easy to guess (a common one, one repeated character, or it contains \
             the user name). Use a long phrase you remember."
                .to_owned(),
        );
    }
    None
}

/// [`password_problem`] as a field error of the form field `password`.
pub fn check_password(password: &str, username: &str) -> Result<(), StoreError> {
    check_password_field("password", password, username)
}

/// [`password_problem`] as a field error of `field`.
pub fn check_password_field(field: &str, password: &str, username: &str) -> Result<(), StoreError> {
    match password_problem(password, username) {
        None => Ok(()),
        Some(message) => Err(StoreError::invalid_field(field, message)),
    }
}

fn check_role(role: &str) -> Result<(), StoreError> {
    if ROLES.contains(&role) {
        Ok(())
    } else {
        Err(StoreError::invalid_field(
            "role",
            "Vai trò là admin hoặc operator. / Role is admin or operator.",
        ))
    }
}

/// Creates an account (validated, password hashed off the async threads).
pub async fn create(db: &Db, new: &NewAccount, now: i64) -> Result<Account, StoreError> {
    check_username(&new.username)?;
    check_password(&new.password, &new.username)?;
    check_role(&new.role)?;
    if find(db, &new.username).await?.is_some() {
        return Err(StoreError::conflict_field(
            "username",
            format!(
                "Tài khoản {:?} đã có. / Account {:?} already exists.",
                new.username, new.username
            ),
        ));
    }
    let hash = hash_password_async(new.password.clone()).await?;
    sqlx::query(
        "INSERT INTO accounts (username, password_hash, role, disabled, created_at, updated_at) \
         VALUES ($1, $2, $3, FALSE, $4, $4)",
    )
    .bind(&new.username)
    .bind(&hash)
    .bind(&new.role)
    .bind(now)
    .execute(db.pool())
    .await?;
    get(db, &new.username).await
}

pub async fn find(db: &Db, username: &str) -> Result<Option<Account>, StoreError> {
    Ok(
        sqlx::query_as::<_, Account>("SELECT * FROM accounts WHERE username = $1")
            .bind(username)
            .fetch_optional(db.pool())
            .await?,
    )
}

pub async fn get(db: &Db, username: &str) -> Result<Account, StoreError> {
    find(db, username).await?.ok_or_else(|| {
        StoreError::NotFound(format!(
            "Không có tài khoản {username:?}. / No account {username:?}."
        ))
    })
}

pub async fn list(db: &Db) -> Result<Vec<Account>, StoreError> {
    Ok(
        sqlx::query_as::<_, Account>("SELECT * FROM accounts ORDER BY username")
            .fetch_all(db.pool())
            .await?,
    )
}

/// Sets a new password and ends the account's sessions.
pub async fn set_password(
    db: &Db,
    username: &str,
    password: &str,
    now: i64,
) -> Result<(), StoreError> {
    check_password(password, username)?;
    get(db, username).await?;
    let hash = hash_password_async(password.to_owned()).await?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE accounts SET password_hash = $1, updated_at = $2, must_change_password = FALSE \
         WHERE username = $3",
    )
    .bind(&hash)
    .bind(now)
    .bind(username)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM sessions WHERE username = $1")
        .bind(username)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Disables (ending its sessions) or enables an account. The last enabled admin cannot be
/// disabled: nobody could manage accounts any more.
pub async fn set_disabled(
    db: &Db,
    username: &str,
    disabled: bool,
    now: i64,
) -> Result<Account, StoreError> {
    let account = get(db, username).await?;
    if disabled && account.role == "admin" && !account.disabled && enabled_admins(db).await? <= 1 {
        return Err(StoreError::conflict(
            "Không thể khóa quản trị viên cuối cùng. / The last admin cannot be disabled.",
        ));
    }
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE accounts SET disabled = $1, updated_at = $2 WHERE username = $3")
        .bind(disabled)
        .bind(now)
        .bind(username)
        .execute(&mut *tx)
        .await?;
    if disabled {
        sqlx::query("DELETE FROM sessions WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    get(db, username).await
}

pub async fn enabled_admins(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM accounts WHERE role = 'admin' AND disabled = FALSE",
    )
    .fetch_one(db.pool())
    .await?)
}

/// On a database with no admin account, creates `admin` with a random password and returns
/// that password, to be shown once; the account must change it at its first login
/// ([`Account::must_change_password`]). `None` when an admin exists.
pub async fn bootstrap(db: &Db, now: i64) -> Result<Option<(String, String)>, StoreError> {
    let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE role = 'admin'")
        .fetch_one(db.pool())
        .await?;
    if admins > 0 || find(db, BOOTSTRAP_USER).await?.is_some() {
        return Ok(None);
    }
    // 20 characters from an alphabet without look-alikes (no 0/O, 1/l/I): ~110 bits.
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let password: String = (0..20)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    create(
        db,
        &NewAccount {
            username: BOOTSTRAP_USER.into(),
            password: password.clone(),
            role: "admin".into(),
        },
        now,
    )
    .await?;
    // Printed on a terminal: good for one login, which may only change it.
    sqlx::query("UPDATE accounts SET must_change_password = TRUE WHERE username = $1")
        .bind(BOOTSTRAP_USER)
        .execute(db.pool())
        .await?;
    Ok(Some((BOOTSTRAP_USER.into(), password)))
}

fn session_key(cookie_value: &str) -> String {
    hex::encode(Sha256::digest(cookie_value.as_bytes()))
}

/// Starts a session; returns the cookie value and the CSRF token.
pub async fn start_session(
    db: &Db,
    username: &str,
    ip: &str,
    now: i64,
) -> Result<(String, String), StoreError> {
    let value = hex::encode(rand::random::<[u8; 32]>());
    let csrf = db::random_hex16();
    // Expired sessions of anyone are swept here: logins are rare, the table stays small.
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(db.pool())
        .await?;
    sqlx::query(
        "INSERT INTO sessions (id_hash, username, csrf, ip, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(session_key(&value))
    .bind(username)
    .bind(&csrf)
    .bind(ip)
    .bind(now)
    .bind(now + SESSION_SECS)
    .execute(db.pool())
    .await?;
    Ok((value, csrf))
}

/// The live session for a cookie value, with its enabled account.
pub async fn session(db: &Db, cookie_value: &str, now: i64) -> Result<Option<Session>, StoreError> {
    if cookie_value.len() != 64 {
        return Ok(None);
    }
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT username, csrf, expires_at FROM sessions WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(session_key(cookie_value))
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    let Some((username, csrf, expires_at)) = row else {
        return Ok(None);
    };
    Ok(find(db, &username)
        .await?
        .filter(|a| !a.disabled)
        .map(|account| Session {
            account,
            csrf,
            expires_at,
        }))
}

pub async fn end_session(db: &Db, cookie_value: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(session_key(cookie_value))
        .execute(db.pool())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let h = hash_password("mật khẩu dài dài").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "mật khẩu dài dài"));
        assert!(!verify_password(&h, "wrong password"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn password_rule_length_common_repeated_and_user_name() {
        assert_eq!(password_problem("họp tỉnh sáng thứ hai", "admin"), None);
        assert_eq!(password_problem("xK7#pQ2!vL9m", "it.bac-kan"), None);
        for (bad, user) in [
            ("short", "admin"),
            ("elevenchars", "admin"),
            ("Password1234", "admin"),
            ("MATKHAU123456", "admin"),
            ("aaaaaaaaaaaaaa", "admin"),
            ("it.backan-2025!", "it.backan"),
        ] {
            assert!(password_problem(bad, user).is_some(), "{bad}");
        }
        let long = "x".repeat(MAX_PASSWORD) + "y";
        assert!(password_problem(&long, "admin").is_some());
        let msg = password_problem("password1234", "admin").unwrap();
        assert!(
            msg.contains("quá dễ đoán") && msg.contains("too easy"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn the_bootstrap_password_passes_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::testing::open_for_test(dir.path()).await;
        let (user, password) = bootstrap(&db, 0).await.unwrap().unwrap();
        assert_eq!(password_problem(&password, &user), None);
        assert!(password.chars().count() >= MIN_PASSWORD);
    }

    #[tokio::test]
    async fn the_bootstrap_account_must_change_its_password_until_it_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::testing::open_for_test(dir.path()).await;
        let (user, _) = bootstrap(&db, 0).await.unwrap().unwrap();
        assert!(get(&db, &user).await.unwrap().must_change_password);
        set_password(&db, &user, "họp tỉnh sáng thứ hai", 1)
            .await
            .unwrap();
        assert!(!get(&db, &user).await.unwrap().must_change_password);
        // An account made by an admin (or the command line) has no such duty.
        let other = NewAccount {
            username: "it.backan".into(),
            password: "một câu dài dễ nhớ".into(),
            role: "operator".into(),
        };
        create(&db, &other, 2).await.unwrap();
        assert!(!get(&db, "it.backan").await.unwrap().must_change_password);
    }

    #[test]
    fn usernames() {
        assert!(check_username("it.bac-kan_1").is_ok());
        for bad in ["A", "x", "có dấu", "a b", "admin'--", &"a".repeat(33)] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
    }
}
