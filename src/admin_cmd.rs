//! `hoinghi admin add <user>`: create an admin-panel account (or reset its password) from the
//! command line, e.g. when the bootstrap password was lost. Works on the database directly, with
//! or without a running server (SQLite in WAL mode allows both).

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use room_admin::{Db, accounts, db};

use crate::cli::{AdminAddArgs, DataDirArgs};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn add(args: &AdminAddArgs) -> anyhow::Result<()> {
    accounts::check_username(&args.username).map_err(|e| anyhow::anyhow!("{e}: {e:?}"))?;
    let password = read_password()?;
    if let Some(problem) = accounts::password_problem(&password, &args.username) {
        anyhow::bail!("{problem}");
    }
    runtime()?.block_on(async {
        room_admin::files::ensure_private_dir(&args.data.data_dir)
            .with_context(|| format!("cannot create {}", args.data.data_dir.display()))?;
        let db = Db::connect(&args.data.database_url()?).await?;
        let now = db::unix_now();
        let existed = accounts::find(&db, &args.username).await?.is_some();
        if existed {
            accounts::set_password(&db, &args.username, &password, now).await?;
        } else {
            accounts::create(
                &db,
                &accounts::NewAccount {
                    username: args.username.clone(),
                    password,
                    role: args.role.clone(),
                },
                now,
            )
            .await?;
        }
        let action = if existed {
            "account.password"
        } else {
            "account.create"
        };
        room_admin::audit::record(&db, now, "cli", "local", action, &args.username, &args.role)
            .await?;
        db.close().await;
        if existed {
            println!("password of {} changed", args.username);
        } else {
            println!("account {} ({}) created", args.username, args.role);
        }
        anyhow::Ok(())
    })
}

/// One line from stdin when it is not a terminal; otherwise asked twice without echo.
fn read_password() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Mật khẩu / Password: ")?;
    let second = rpassword::prompt_password("Nhập lại / Again: ")?;
    if first != second {
        anyhow::bail!("the two passwords differ");
    }
    Ok(first)
}

/// Writes to the database in a loop until the process is killed: all-or-nothing imports of
/// 50 points and meetings with 20 seats, each in one transaction. The crash test kills it with
/// SIGKILL and checks that the file is intact and no transaction is half there.
pub fn stress_writes(args: &DataDirArgs) -> anyhow::Result<()> {
    use room_admin::{import, meetings};
    runtime()?.block_on(async {
        let db = Db::connect(&args.database_url()?).await?;
        let mut csv = String::from("code,name,kind\n");
        csv.push_str("CHAIR,Hội trường,province_hall\n");
        for i in 0..20 {
            csv.push_str(&format!("BASE{i:02},Xã {i},commune\n"));
        }
        import::import(&db, csv.as_bytes(), false, db::unix_now()).await?;
        println!("started");
        for round in 0u64.. {
            let mut csv = String::from("code,name,kind\n");
            for i in 0..50 {
                csv.push_str(&format!("S{round}-{i},Điểm {round}/{i},commune\n"));
            }
            import::import(&db, csv.as_bytes(), false, db::unix_now()).await?;
            let now = db::unix_now();
            let input = meetings::MeetingInput {
                title: format!("Họp {round}"),
                starts_at: room_admin::timefmt::utc_rfc3339(now + 3600),
                ends_at: room_admin::timefmt::utc_rfc3339(now + 7200),
                chair_point: "CHAIR".into(),
                points: (0..20).map(|i| format!("BASE{i:02}")).collect(),
                ..Default::default()
            };
            meetings::create(&db, &input, "stress", now).await?;
        }
        anyhow::Ok(())
    })
}
