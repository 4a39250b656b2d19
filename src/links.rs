//! `hoinghi links test-room`: print the test room's join links without starting a server.
//!
//! Uses the same data dir (same secret) and the same address rules as `serve`, so the links work
//! against a server started with the same flags.

use std::io::Write;
use std::time::SystemTime;

use room_admin::{JoinTokens, Secret, test_room};

use crate::cli::LinksArgs;
use crate::net;

pub fn test_room(args: &LinksArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let secret = Secret::load_or_create(&conn.data_dir)?;
    let tokens = JoinTokens::new(&secret);
    let public_ip = net::effective_public_ip(conn.listen, conn.public_ip, net::detect_public_ip);
    let base = net::base_url(!conn.no_tls, conn.listen, public_ip);
    let links = test_room::links(&tokens, &base, SystemTime::now())?;

    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &links)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{} ({}), links valid for 365 days:",
            test_room::TITLE,
            test_room::MEETING_ID
        )?;
        for (name, link) in links.labeled() {
            writeln!(out, "  {name}:\n    {link}")?;
        }
        writeln!(
            out,
            "Kiosk mode (joins with no pre-join screen): append &autojoin=1 to a link."
        )?;
    }
    out.flush()?;
    Ok(())
}
