//! hoinghi patch: the controlled ICE-lite agent follows a later nomination of a better or live
//! pair (see `agent_selector.rs`). Upstream keeps the first nominated pair for good, so the
//! first two tests fail without the patch. Virtual time: every instant is `t0` plus an offset.

use std::str::FromStr;
use std::time::{Duration, Instant};
use stun::message::*;
use stun::textattrs::Username;

use super::*;
use crate::attributes::{
    control::AttrControlling, priority::PriorityAttr, use_candidate::UseCandidateAttr,
};
use crate::candidate::candidate_host::*;

const LOCAL: &str = "10.0.0.1:5000";
/// Two remote candidates of the controlling peer: as Chromium's ICE-TCP pair (lower) and UDP pair.
const LOWER: &str = "10.0.0.2:9";
const HIGHER: &str = "10.0.0.2:50000";
const LOW_PRIORITY: u32 = 1_000;
const HIGH_PRIORITY: u32 = 2_000_000;

/// A controlled lite agent (hoinghi's server side) with one local and two remote candidates,
/// `LOWER` at a lower priority than `HIGHER`.
fn lite_agent(t0: Instant) -> Result<Agent> {
    let config = AgentConfig {
        lite: true,
        is_controlling: false,
        candidate_types: vec![CandidateType::Host],
        ..Default::default()
    };
    let provider = crypto::default_provider().expect("a built-in crypto provider for tests");
    let mut agent = Agent::new(t0, Arc::new(config), provider)?;
    agent.add_local_candidate(host(LOCAL, 0)?)?;
    agent.add_remote_candidate(host(LOWER, LOW_PRIORITY)?)?;
    agent.add_remote_candidate(host(HIGHER, HIGH_PRIORITY)?)?;
    agent.set_remote_credentials(
        "remoteufrag".to_owned(),
        "remotepasswordremotepassword".to_owned(),
    )?;
    Ok(agent)
}

fn host(addr: &str, priority: u32) -> Result<Candidate> {
    let addr = SocketAddr::from_str(addr)?;
    CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            priority,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
}

/// A binding request from the controlling peer on the pair to `remote`, nominating it when
/// `nominate`; the pair is marked succeeded (as the check we send back would make it).
fn check(agent: &mut Agent, now: Instant, remote: &str, nominate: bool) -> Result<()> {
    let remote_addr = SocketAddr::from_str(remote)?;
    let username = format!("{}:remoteufrag", agent.ufrag_pwd.local_credentials.ufrag);
    let local_pwd = agent.ufrag_pwd.local_credentials.pwd.clone();
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(Username::new(ATTR_USERNAME, username)),
        Box::new(AttrControlling(1)),
        Box::new(PriorityAttr(1)),
    ];
    if nominate {
        setters.push(Box::new(UseCandidateAttr::new()));
    }
    setters.push(Box::new(
        MessageIntegrity::new_short_term_integrity_with_provider(
            local_pwd,
            agent.crypto_provider.crypto(),
        ),
    ));
    setters.push(Box::new(FINGERPRINT));
    let mut msg = Message::new();
    msg.build(&setters)?;
    drop(setters);
    if let Some(remote_index) = agent.find_remote_candidate(remote_addr) {
        if agent.find_pair(0, remote_index).is_none() {
            agent.add_pair(0, remote_index);
        }
        let pair = agent.find_pair(0, remote_index).expect("pair just added");
        agent.candidate_pairs[pair].state = CandidatePairState::Succeeded;
    }
    agent.handle_inbound(now, &mut msg, 0, remote_addr)
}

fn selected_remote(agent: &Agent) -> Option<SocketAddr> {
    agent
        .get_selected_candidate_pair()
        .map(|(_, remote)| remote.addr())
}

#[test]
fn a_later_nomination_of_a_higher_priority_pair_replaces_the_selected_one() -> Result<()> {
    let t0 = Instant::now();
    let mut agent = lite_agent(t0)?;
    check(&mut agent, t0, LOWER, true)?;
    assert_eq!(selected_remote(&agent), Some(SocketAddr::from_str(LOWER)?));

    // Both pairs alive: the better one wins at once (RFC 8445 §8.1.1).
    check(&mut agent, t0 + Duration::from_millis(200), LOWER, false)?;
    check(&mut agent, t0 + Duration::from_millis(300), HIGHER, true)?;
    assert_eq!(selected_remote(&agent), Some(SocketAddr::from_str(HIGHER)?));
    Ok(())
}

#[test]
fn a_nomination_kept_while_the_selected_pair_was_live_takes_over_once_it_goes_silent() -> Result<()>
{
    let t0 = Instant::now();
    let mut agent = lite_agent(t0)?;
    check(&mut agent, t0, HIGHER, true)?;

    // A lower-priority nomination while the selected pair is live changes nothing yet.
    check(&mut agent, t0 + Duration::from_millis(500), LOWER, true)?;
    assert_eq!(selected_remote(&agent), Some(SocketAddr::from_str(HIGHER)?));

    // The controlling peer moved: only the nominated pair keeps sending. Once the selected
    // one has been silent past the patch's 3 s, the next tick follows the nomination.
    let mut now = t0 + Duration::from_millis(500);
    while now < t0 + Duration::from_secs(4) {
        now += Duration::from_millis(500);
        check(&mut agent, now, LOWER, false)?;
        agent.contact(now);
    }
    assert_eq!(selected_remote(&agent), Some(SocketAddr::from_str(LOWER)?));
    Ok(())
}

#[test]
fn a_lower_priority_nomination_does_not_move_a_live_selected_pair() -> Result<()> {
    let t0 = Instant::now();
    let mut agent = lite_agent(t0)?;
    check(&mut agent, t0, HIGHER, true)?;

    // Both keep sending (a browser's checks on a pair it does not use): no flapping.
    let mut now = t0;
    for _ in 0..10 {
        now += Duration::from_millis(500);
        check(&mut agent, now, HIGHER, false)?;
        check(&mut agent, now, LOWER, true)?;
        agent.contact(now);
        assert_eq!(selected_remote(&agent), Some(SocketAddr::from_str(HIGHER)?));
    }
    Ok(())
}
