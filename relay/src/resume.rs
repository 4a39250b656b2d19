//! Taking the relay seat back after its WebSocket to the upstream was lost (`docs/protocol.md`,
//! "Resuming a seat"). The upstream keeps a lost seat for 15 s: its participant id, the floor
//! it holds, its hand in the queue, and both peer connections with their media. So the relay
//! opens a new WebSocket at once (and again, briefly spaced, while the upstream cannot be
//! reached) and joins with `resume`; on `resumed: true` the session carries on with the peer
//! connections it has. A fresh `joined` (the grace was over, the upstream restarted) means the
//! old seat is gone: the session ends and the relay starts over, as after any other end.

use std::time::Duration;

use anyhow::bail;
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION, ParticipantInfo, ServerMessage};
use tokio::time::Instant;

use crate::channel::{Channel, Lost, lost};
use crate::session::Refused;

/// How long the relay tries to resume: within the upstream's 15 s grace, which starts when the
/// upstream sees the socket go (no later than the relay does, for a closed connection).
pub(crate) const RESUME_WINDOW: Duration = Duration::from_secs(12);

/// Pauses between two tries to reach the upstream again (the last one repeats), as the web
/// client does while its seat may be waiting.
const PAUSES: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// The seat's credentials: its join token (the link's), the `resume_token` of its last
/// `joined`, and its `chain`.
pub(crate) struct SeatKey {
    pub token: String,
    pub resume: Option<String>,
    /// The `chain` of its joins (a resume that fails is a fresh join, checked for loops).
    pub chain: Vec<String>,
}

/// How one try went.
enum Rejoined {
    /// The same seat (`resumed: true`, the same participant), with the roster of now.
    Resumed(Vec<ParticipantInfo>),
    /// A fresh seat: the old one is gone.
    Fresh,
}

/// Resumes the seat `me` on a new connection in place of `chan`'s lost one, within
/// [`RESUME_WINDOW`]. Returns the roster of now; an error when the seat could not be resumed
/// (the session then ends; a fresh seat it got is left by the caller, as any seat).
pub(crate) async fn resume(
    chan: &mut dyn Channel,
    key: &mut SeatKey,
    me: &str,
    join_wait: Duration,
) -> anyhow::Result<Vec<ParticipantInfo>> {
    let deadline = Instant::now() + RESUME_WINDOW;
    let mut tries = 0usize;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("the seat was not resumed within {RESUME_WINDOW:?}");
        }
        let Some(resume) = key.resume.clone() else {
            bail!("no resume token: the seat cannot be resumed");
        };
        match rejoin(chan, key, &resume, me, left.min(join_wait)).await {
            Ok(Rejoined::Resumed(roster)) => {
                tracing::info!(tries = tries + 1, "relay: the upstream seat is resumed");
                return Ok(roster);
            }
            Ok(Rejoined::Fresh) => bail!("the upstream gave a fresh seat: starting over"),
            Err(e) if e.is::<Lost>() => {
                tracing::debug!("relay: a try to resume failed: {e:#}");
                let pause = PAUSES[tries.min(PAUSES.len() - 1)];
                tries += 1;
                tokio::time::sleep_until((Instant::now() + pause).min(deadline)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One try: a new connection, `join` with `resume`, and its answer within `wait` (a failure to
/// reach the upstream or a missing answer is [`Lost`]: try again; a refusal is not).
async fn rejoin(
    chan: &mut dyn Channel,
    key: &mut SeatKey,
    resume: &str,
    me: &str,
    wait: Duration,
) -> anyhow::Result<Rejoined> {
    chan.reconnect(wait).await?;
    chan.send(&ClientMessage::Join {
        v: PROTOCOL_VERSION,
        token: key.token.clone(),
        resume: Some(resume.to_owned()),
        chain: key.chain.clone(),
    })
    .await?;
    let answer = async {
        loop {
            match chan.recv().await? {
                Some(ServerMessage::Joined {
                    participant,
                    roster,
                    resume_token,
                    resumed,
                    ..
                }) => {
                    key.resume = resume_token;
                    return Ok(if resumed && participant == me {
                        Rejoined::Resumed(roster)
                    } else {
                        Rejoined::Fresh
                    });
                }
                // A refusal (the seat revoked meanwhile, or a loop found on the fresh join a
                // failed resume becomes) ends the session as a refused join does.
                Some(ServerMessage::Error {
                    code,
                    message,
                    fatal: true,
                    ..
                }) => return Err(anyhow::Error::new(Refused { code, message })),
                _ => continue,
            }
        }
    };
    tokio::time::timeout(wait, answer)
        .await
        .map_err(|_| lost(format_args!("no `joined` within {wait:?}")))?
}
