//! Probing before stepping up: before a subscriber's video goes to a higher layer, the server
//! sends padding at the rate that layer needs for about a second, and steps up only when the
//! subscriber's feedback shows the link carried it without a queue. Before this, the step was
//! the probe: on a line that could not carry it, a ~0.8 s freeze, 130–250 ms of concealed audio
//! and a burst of loss at the bottleneck (issue 11), then the way back down.
//!
//! A cluster pads one flowing video downtrack of the subscriber, between frames (after a packet
//! with the marker bit, so the padding never splits a frame in the subscriber's jitter buffer),
//! with padding-only RTP packets on the media SSRC that take sequence numbers of their own
//! (`forwarder::Numbering::insert`). It aims past the next step, towards what the subscriber
//! would take with no limit ([`Prober::target`]: up to twice the media rate), so that one probe
//! can open several rungs (each temporal layer and each simulcast layer is one; a climb from
//! 180p to 720p is six), or back at what a probe proved or the line carried before a large
//! drop; it ramps up to its aim from just above the next step ([`Cluster::rate_at`]).
//! It stops at the first sign of a queue (the estimator's queuing delay
//! over [`STOP_QUEUE`]) or of a back-off. Then, once the feedback for its last packets is in,
//! it is judged: proved if the link delivered at least what the next step needs with no
//! back-off (even if a queue stopped it: the line then carries about what arrived), and the
//! estimate is raised to what was delivered (`bwe::LinkEstimate::raise_to`); failed otherwise,
//! and the next probe waits (doubling) and aims lower.
//!
//! libwebrtc's prober and LiveKit's probe controller do the same with RTX; our subscribe
//! connections do not negotiate RTX yet, so padding rides on the media SSRC as Chromium's own
//! does when RTX is off. The padding bytes are a header extension with an id no one negotiated
//! (receivers skip it): `rtp` pads a payload only to a multiple of four bytes, and a probe of
//! 4-byte packets would cost a packet per 30 bytes. `rtc` refuses unnegotiated extension ids;
//! `vendor/patches/rtc-0.21.1-padding-probe-extension.diff` lets padding-only packets through.
//!
//! Pure: the worker asks, at its allocation tick, whether to start, and on each forwarded frame
//! end how many padding packets are due.

use std::time::{Duration, Instant};

use crate::allocator::{Budget, VideoItem, allocate, temporal_caps};
use crate::floor_gate::Floor;

/// How long a cluster pads.
pub const CLUSTER: Duration = Duration::from_millis(1000);
/// Feedback for a cluster's last packets is in after this (a round trip and a feedback
/// interval, with room for a slow host).
pub const JUDGE_AFTER: Duration = Duration::from_millis(600);
/// A cluster pads to this much above the estimate the step needs: the padding a frame owes goes
/// out in one burst after it, and a link that carries the step delivers ~90 % of the cluster's
/// rate (a loopback line at 4 Mbit/s: 1.48 of 1.65 Mbit/s asked, with a margin of 1.1).
pub const MARGIN: f64 = 1.25;
/// A probe aims at most this many times the media rate above it.
pub const REACH: f64 = 2.0;
/// A cluster stopped by its queue found the line's rate: it proves a step only with this much
/// room above the step's need. The step's own keyframe is a burst the line must absorb: in
/// virtual time behind 1 Mbit/s with 2 % loss, 720p (needing 936 kbit/s) proved by a cluster
/// that filled the line at 950 kbit/s lasted a second, with 100-200 ms of audio delay.
pub const FILLED_ROOM: f64 = 1.1;
/// A link that carried a rate (a probe proved it) is probed back towards it for this long:
/// after a dip (a line shared for a while, a radio link fading), one probe can find the line
/// back instead of one per layer, each two seconds apart (in virtual time on `flap`, 2 Mbit/s
/// back after 20 s at 150 kbit/s: 720p 10 s after the recovery, three probes). A probe that
/// aims too high stops at its queue and costs one failure.
const HIGH_WATER_MEMORY: Duration = Duration::from_secs(60);
/// A probe proved this recently says the line carries more again: the next aims back towards
/// [`HIGH_WATER_MEMORY`]'s rate even while the back-offs of a dip still count as congestion
/// (in virtual time on `flap`: a cycle of 3 s on the lowest layer saved).
const RECOVERING: Duration = Duration::from_secs(3);
/// A back-off below this share of the most the link delivered at its calm ticks of the last
/// 2 s is a large drop (the line narrowed, not a queue drained): that rate is remembered
/// ([`Prober::note_drop`], `worker::link_allocation`).
pub const LARGE_DROP: f64 = 0.5;
/// Steps up stay below this share of what a step a probe failed to prove needs. Not less:
/// a link only a little wider than a layer's need (450 kbit/s for the middle layer's
/// 395 kbit/s, `tests/probe_climb.rs`) fails the probe for it (it aims 25 % above) and gets
/// the layer only on the estimate's growth; at 90 % it never came back there.
pub const FAILED_NEED_SHARE: f64 = 0.99;
/// After a failed probe the next aims at most this share of the failed one's rate.
const AFTER_FAILURE: f64 = 0.75;
/// After a proved probe, the next may start only after this: the raised estimate reaches the
/// allocator with the next feedback, and the step it allows must be taken first.
const AFTER_PROOF: Duration = Duration::from_secs(1);
/// A queue this long stops a cluster: below the estimator's overuse threshold, above what a
/// frame and its padding burst queue on a line that carries them. Measured with the flat-delay
/// bound (30 ms) instead: a probe for 1.23 Mbit/s on a 2 Mbit/s line stopped, a 720p frame plus
/// a burst of padding being 9 KB, 37 ms at that rate.
pub const STOP_QUEUE: Duration = Duration::from_millis(45);
/// Feedback batches in a row over [`STOP_QUEUE`] that stop a cluster: one alone is a
/// scheduling hiccup on a busy host as often as a queue (a probe for 250 kbit/s on an idle
/// 2 Mbit/s line stopped on one, with the machine at load 12).
pub const STOP_BATCHES: u64 = 2;
/// Waits after a failed probe: doubling, reset by a proved one. Short, since a failed probe
/// costs a second of padding stopped at the first queue: with waits up to 32 s, a line back
/// from a dip waited out the back-off its failed probes in the dip had built (the point sat on
/// 180p for 40 s after a 400 kbit/s constraint was lifted).
const INITIAL_BACKOFF: Duration = Duration::from_secs(3);
/// The wait after a failed probe for a paused video ([`Prober::for_resume`]).
const RESUME_RETRY: Duration = Duration::from_secs(2);
/// A resume cluster is this much shorter than [`CLUSTER`] (see [`Prober::for_resume`]).
const RESUME_SHORTER: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// Bytes of header extension per padding packet (one two-byte-form element holds 255).
pub const PADDING_EXTENSION_BYTES: usize = 240;
/// Bytes one padding packet puts on the wire, for pacing: RTP header, extension, padding,
/// SRTP tag, UDP and IP.
pub const PADDING_PACKET_BYTES: f64 = 12.0 + 4.0 + 244.0 + 8.0 + 4.0 + 10.0 + 28.0;
/// The extension id the padding rides in: two-byte form, never negotiated by us.
pub const PADDING_EXTENSION_ID: u8 = 200;
/// A cluster's rate doubles this often from the next step's need to its target
/// ([`Cluster::rate_at`]): from 1.25 times the need to 10 times it in 750 ms of a
/// [`CLUSTER`].
const RAMP_DOUBLING: Duration = Duration::from_millis(250);
/// Padding goes out in small bursts this often while a cluster runs (the worker's pacing
/// timer), whenever the padded video is between frames, and right after each frame.
pub const PACE: Duration = Duration::from_millis(5);
/// At most this many padding packets back to back (1.9 KB on the wire; 2.4 Mbit/s of padding
/// at [`PACE`]). Bursts of 32 after each frame, as before, overflowed a 20-packet queue on a
/// line of any rate: the harness's clean 20 Mbit/s line dropped 84 of them in 8 s
/// (`sim::meeting_tests`), and every loss counts against the probe and the estimate.
pub const MAX_BURST: usize = 6;

/// Which downtrack a cluster pads: (track index, downtrack index) in the worker.
pub type PaddedDowntrack = (usize, usize);

#[derive(Debug, Clone, Copy, PartialEq)]
struct Cluster {
    downtrack: PaddedDowntrack,
    until: Instant,
    /// The rate the link is asked to carry, and the padding that adds to the media.
    target_bps: f64,
    /// What the next step needs: delivering that proves the probe.
    needed_bps: f64,
    /// The media flowing when it started: the padding is what the rate asked adds to it.
    media_bps: f64,
    started: Instant,
    /// Padding bytes owed at `last`.
    owed: f64,
    last: Instant,
    /// The estimator's back-off count at the start.
    decreases: u64,
    /// Whether it stopped early, on what.
    stopped: Option<Failure>,
    /// It pads a paused video, to resume it ([`Prober::for_resume`]).
    resume: bool,
}

impl Cluster {
    /// The rate the link is asked to carry `now`: [`MARGIN`] above the next step at first,
    /// doubling every [`RAMP_DOUBLING`] up to the target. A queue stops the cluster soon
    /// after the rate passes the line's, so a probe aimed far (back at what a line carried
    /// before a dip) overshoots a line still narrow by about as much as one aimed at the next
    /// step, and one that finds the line back proves it in one cluster. Sent at the target
    /// from the start, the padding that went out before the feedback showed a queue grew
    /// with the aim: ~100 ms of it at 2 Mbit/s is 500 ms of queue on a 400 kbit/s line.
    /// Not from lower: started at half the step's rate, the queue built more slowly than
    /// the rate rose, and probes on a 400 kbit/s line read as proofs for a 360p that line
    /// could not carry (virtual time, `narrow`: three failed steps instead of one).
    fn rate_at(&self, now: Instant) -> f64 {
        // A resume probe asks what the paused videos need, no more: it starts there.
        if self.resume {
            return self.target_bps;
        }
        let first = (self.needed_bps * MARGIN).min(self.target_bps);
        let doublings =
            now.saturating_duration_since(self.started).as_secs_f64() / RAMP_DOUBLING.as_secs_f64();
        (first * doublings.exp2()).min(self.target_bps)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum State {
    #[default]
    Idle,
    Running(Cluster),
    Judging(Cluster, Instant),
}

/// What a judged cluster says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// The link carried this many bits/s without a queue.
    Proved(f64),
    /// The link delivered what the step needs and queued past it: it carries about this many
    /// bits/s, and the queue the cluster left is still draining. A probe aims [`MARGIN`] past
    /// the step; judged failed for its queue, a step the line carries with room to spare but
    /// not with the margin was never proved (behind 450 kbit/s, the middle layer needing
    /// 398 kbit/s probed at 497 kbit/s, failed, and the point stayed on the lowest layer).
    /// libwebrtc's probe estimator likewise takes what arrived, not what was sent.
    Filled(f64),
    Failed(Failure),
}

/// Why a probe failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    /// A queue built up past [`STOP_QUEUE`].
    Queue,
    /// The estimator backed off meanwhile.
    BackOff,
    /// The link delivered less than the step needs (bits/s delivered, asked).
    Short(f64, f64),
}

/// One subscriber link's prober.
#[derive(Debug, Default)]
pub struct Prober {
    state: State,
    blocked_until: Option<Instant>,
    backoff: Option<Duration>,
    /// The rate of the last failed probe, until one is proved: the next aims below it.
    failed_at: Option<f64>,
    /// What the step a probe failed to prove needs, until one is proved: no step up reaches
    /// it on the estimate's own growth ([`Self::step_ceiling`]).
    failed_need: Option<f64>,
    /// The most a probe proved the link carries, and when, for [`HIGH_WATER_MEMORY`].
    high_water: Option<(f64, Instant)>,
    /// What the link delivered before its last large drop, and when it dropped: once a probe
    /// shows the line carries more again, the next aims there ([`Self::target`]).
    before_drop: Option<(f64, Instant)>,
    /// When a probe was last proved.
    last_proof: Option<Instant>,
    /// What the resume probe that last brought paused videos back carried, until a probe for
    /// a step is proved ([`Self::step_ceiling`]).
    resumed_on: Option<f64>,
    /// The rate of the last failed resume probe, until one is proved: the next asks less
    /// ([`Self::resume_target`]).
    resume_failed_at: Option<f64>,
    /// Clusters started, and proved, for stats and tests.
    pub started: u64,
    pub proved: u64,
}

impl Prober {
    /// Nothing running and not waiting after a failure.
    pub fn may_start(&self, now: Instant) -> bool {
        self.state == State::Idle && self.blocked_until.is_none_or(|at| at <= now)
    }

    pub fn running(&self) -> bool {
        self.state != State::Idle
    }

    /// The downtrack a cluster pads now (running, not stopped, not over): the pacing timer
    /// keeps going while this is `Some`.
    pub fn padding(&self, now: Instant) -> Option<PaddedDowntrack> {
        match &self.state {
            State::Running(c) if c.stopped.is_none() && now < c.until => Some(c.downtrack),
            _ => None,
        }
    }

    /// Steps up stay below what a step a probe failed to prove needs, until a probe proves one
    /// (`allocator::Budget::step_ceiling`), and below what the resume probe that brought the
    /// link's video back carried, until a probe proves a step: the estimate of a line whose
    /// video was paused grew by itself (freely below 300 kbit/s), and a resumed video stepping
    /// up on it paused again (Chromium behind a 150 kbit/s dip: back on 180p, its temporal
    /// layers given back one by one past the line, 557 ms of audio concealed, paused 5 s
    /// later).
    pub fn step_ceiling(&self) -> Option<f64> {
        let failed = self.failed_need.map(|n| n * FAILED_NEED_SHARE);
        match (failed, self.resumed_on) {
            (Some(f), Some(r)) => Some(f.min(r)),
            (f, r) => f.or(r),
        }
    }

    /// The estimate fell to less than [`LARGE_DROP`] of what the link had just delivered
    /// (`carried`): a line that narrowed, as a shared line does for a while. libwebrtc
    /// remembers the rate before a large drop and probes back at it: a point that reached
    /// 720p at its join, with no probe, has no proved rate to aim back at, and after a dip
    /// climbed back one probe per rung (Chromium behind a 150 kbit/s dip: 720p 11 s after
    /// the line came back).
    pub fn note_drop(&mut self, now: Instant, carried: f64) {
        if self
            .before_drop
            .is_none_or(|(rate, at)| carried >= rate || now - at > HIGH_WATER_MEMORY)
        {
            self.before_drop = Some((carried, now));
        }
    }

    /// What the link delivered before its last large drop, while remembered.
    pub fn before_drop(&self) -> Option<f64> {
        self.before_drop.map(|(rate, _)| rate)
    }

    /// A probe that carried the rate before the drop: the line is back, and the high water
    /// remembers from here on.
    fn after_aiming_back(&mut self, carried: f64) {
        if self.before_drop.is_some_and(|(rate, _)| carried >= rate) {
            self.before_drop = None;
        }
    }

    fn on_proof(&mut self, now: Instant, carried: f64, resume: bool) {
        self.proved += 1;
        self.last_proof = Some(now);
        self.resumed_on = resume.then_some(carried);
        if resume {
            self.resume_failed_at = None;
        }
        if self
            .high_water
            .is_none_or(|(rate, at)| carried >= rate || now - at > HIGH_WATER_MEMORY)
        {
            self.high_water = Some((carried, now));
        }
        self.backoff = None;
        self.blocked_until = Some(now + AFTER_PROOF);
        self.failed_at = None;
        // A proof of a lower step says nothing of a higher one a probe failed to prove: its
        // ceiling stays (in virtual time on `bad`, a proof for a temporal layer of 180p lifted
        // the ceiling of 360p, and the estimate's own growth took 360p into a 234 ms silence).
        if self.failed_need.is_some_and(|need| carried >= need) {
            self.failed_need = None;
        }
    }

    /// The rate to probe at, given what the next step needs, what the subscriber would take
    /// with no limit (`goal`) and the media rate now: [`MARGIN`] above the next step at least,
    /// towards the goal as far as [`REACH`] times the media or what a probe proved in the last
    /// [`HIGH_WATER_MEMORY`], and below the last failed probe.
    /// While `congested` (a back-off lately: the line is narrower than it was), only the media
    /// rate counts, unless a probe was just proved ([`RECOVERING`]: the line carries more
    /// again). Not congested, or recovering, it aims back at what the link delivered before
    /// its last large drop ([`Self::note_drop`]) for [`HIGH_WATER_MEMORY`], until a probe
    /// carries that much.
    pub fn target(&self, now: Instant, needed: f64, goal: f64, media: f64, congested: bool) -> f64 {
        let floor = needed * MARGIN;
        let recovering = self
            .last_proof
            .is_some_and(|at| now.saturating_duration_since(at) <= RECOVERING);
        let remembered = |memory: Option<(f64, Instant)>, when: bool| {
            memory
                .filter(|(_, at)| when && now.saturating_duration_since(*at) <= HIGH_WATER_MEMORY)
                .map_or(0.0, |(rate, _)| rate)
        };
        let proved = remembered(self.high_water, !congested || recovering);
        let mut aim = goal.min((media * REACH).max(proved));
        if let Some(failed) = self.failed_at {
            aim = aim.min(failed * AFTER_FAILURE);
        }
        // Back at the rate before a large drop, failures or not: the cluster ramps up to it
        // and its queue stops it where a narrow line ends, so aiming there costs what aiming
        // at the next step does, and the first probe after the line came back finds it
        // whole (Chromium on `flap`: 720p 9–10 s after the line, one probe per rung).
        // With the margin a step needs: aimed at the rate alone, a proof of it (772 of
        // 868 kbit/s asked, the delivered rate lagging the ramp) fell short of the 720p that
        // had carried it, and one more probe followed.
        let back = remembered(self.before_drop, !congested || recovering) * MARGIN;
        aim.max(back.min(goal)).max(floor)
    }

    /// Starts a cluster padding `downtrack` up to `target_bps` while `media_bps` flows; it
    /// proves the probe if the link delivers `needed_bps`.
    pub fn start(
        &mut self,
        now: Instant,
        downtrack: PaddedDowntrack,
        (needed_bps, target_bps): (f64, f64),
        media_bps: f64,
        decreases: u64,
    ) {
        self.started += 1;
        self.state = State::Running(Cluster {
            downtrack,
            until: now + CLUSTER,
            target_bps,
            needed_bps,
            media_bps,
            started: now,
            owed: 0.0,
            last: now,
            decreases,
            stopped: None,
            resume: false,
        });
    }

    /// The cluster just started is for paused videos: whether their lowest layers fit again.
    /// A failure is retried after [`RESUME_RETRY`], with no doubling wait and no step ceiling;
    /// only the next resume probe asks less ([`Self::resume_target`]). After a dip, the first
    /// proof resumes what it carried.
    pub fn for_resume(&mut self) {
        if let State::Running(c) = &mut self.state {
            c.resume = true;
            // Shorter: it asks little above the media, and a line back from a dip should get
            // its video back soon. Not shorter than the delivered rate's window
            // (`queue_delay::RATE_WINDOW`, 500 ms) by less than a few feedback batches: the
            // proof reads a window wholly inside the cluster. Half as long (500 ms), the best
            // window read 94 % of the cluster, so its padding (counted at its RTP size, 85 %
            // of the rate paced at its size on the line) delivered 80 % of its rate, just the
            // share that proves it (1 / [`MARGIN`]): resume probes on lines back from a dip
            // fell short by 0.2 % again and again (loadtest, 20 points on `flap`: points
            // paused up to 14 s after the line came back).
            c.until -= RESUME_SHORTER;
        }
    }

    /// The rate a resume probe asks, given what every paused video needs (`all`) and what
    /// the first needs: [`MARGIN`] above all of them, but below the last failed resume probe
    /// ([`AFTER_FAILURE`] of it), so that a grid the line (or a loaded machine) cannot take
    /// back at once comes back in parts instead of never. Asked for all of 36 paused
    /// thumbnails, each retry failed the same way on a loaded machine and two of them stayed
    /// paused for a minute (CI, `chairwalk.mjs`).
    pub fn resume_target(&self, all: f64, needed: f64, goal: f64) -> f64 {
        let mut aim = (all * MARGIN).min(goal.max(needed));
        if let Some(failed) = self.resume_failed_at {
            aim = aim.min(failed * AFTER_FAILURE);
        }
        aim.max(needed * MARGIN)
    }

    /// The cluster running or being judged pads a paused video ([`Self::for_resume`]).
    pub fn resuming(&self) -> bool {
        matches!(self.state, State::Running(c) | State::Judging(c, _) if c.resume)
    }

    /// `downtrack` is between frames (one just ended, or the pacing timer found none
    /// started): how many padding packets to send now. A queue over [`STOP_QUEUE`] in
    /// `queue_over` feedback batches in a row ([`STOP_BATCHES`]) or a back-off since the start
    /// stops the cluster.
    pub fn padding_due(
        &mut self,
        now: Instant,
        downtrack: PaddedDowntrack,
        queue_over: u64,
        decreases: u64,
    ) -> usize {
        let State::Running(c) = &mut self.state else {
            return 0;
        };
        if c.downtrack != downtrack || c.stopped.is_some() || now >= c.until {
            return 0;
        }
        if queue_over >= STOP_BATCHES {
            c.stopped = Some(Failure::Queue);
            return 0;
        }
        if decreases != c.decreases {
            c.stopped = Some(Failure::BackOff);
            return 0;
        }
        let elapsed = now.saturating_duration_since(c.last).as_secs_f64();
        c.last = now;
        c.owed += (c.rate_at(now) - c.media_bps).max(0.0) / 8.0 * elapsed;
        let n = ((c.owed / PADDING_PACKET_BYTES) as usize).min(MAX_BURST);
        c.owed -= n as f64 * PADDING_PACKET_BYTES;
        // What a frame held back is caught up over the next few paces, never in one burst.
        c.owed = c.owed.min(MAX_BURST as f64 * PADDING_PACKET_BYTES);
        n
    }

    /// At the allocation tick: ends a cluster whose time is up (or that was stopped) and
    /// judges it once its feedback is in, from the peak delivered rate since its start.
    pub fn tick(&mut self, now: Instant, decreases: u64, delivered_peak: f64) -> Option<Verdict> {
        match self.state {
            State::Idle => None,
            State::Running(c) => {
                if c.stopped.is_some() || now >= c.until || decreases != c.decreases {
                    self.state = State::Judging(c, now + JUDGE_AFTER);
                }
                None
            }
            State::Judging(c, at) if now >= at || decreases != c.decreases => {
                self.state = State::Idle;
                let failure = if decreases != c.decreases {
                    Some(Failure::BackOff)
                } else if let Some(stop) = c.stopped {
                    Some(stop)
                } else if delivered_peak < c.needed_bps {
                    Some(Failure::Short(delivered_peak, c.needed_bps))
                } else {
                    None
                };
                let carried = delivered_peak.min(c.target_bps);
                self.after_aiming_back(carried);
                let verdict = match failure {
                    None => {
                        self.on_proof(now, carried, c.resume);
                        Verdict::Proved(carried)
                    }
                    Some(Failure::Queue) if delivered_peak >= c.needed_bps * FILLED_ROOM => {
                        self.on_proof(now, carried, c.resume);
                        Verdict::Filled(carried)
                    }
                    Some(failure) if c.resume => {
                        self.blocked_until = Some(now + RESUME_RETRY);
                        self.resume_failed_at = Some(c.target_bps);
                        Verdict::Failed(failure)
                    }
                    Some(failure) => {
                        let wait = self.backoff.unwrap_or(INITIAL_BACKOFF);
                        self.backoff = Some((wait * 2).min(MAX_BACKOFF));
                        self.blocked_until = Some(now + wait);
                        self.failed_at = Some(c.target_bps);
                        self.failed_need = Some(
                            self.failed_need
                                .map_or(c.needed_bps, |n| n.min(c.needed_bps)),
                        );
                        Verdict::Failed(failure)
                    }
                };
                Some(verdict)
            }
            State::Judging(..) => None,
        }
    }
}

/// The estimate at which every video would get the highest layer the routing allows, all its
/// temporal layers, and the step-up headroom: where probing aims (see [`Prober::target`]).
pub fn goal_estimate(budget: &Budget, items: &[VideoItem<'_>]) -> f64 {
    let video: f64 = items
        .iter()
        .filter_map(|item| {
            item.layers
                .iter()
                .filter(|l| l.live && l.rank <= item.max_rank)
                .map(|l| l.bps)
                .next_back()
        })
        .sum();
    (budget.audio_bps + video) / (1.0 - crate::allocator::STEP_UP_HEADROOM)
}

/// Whether this allocation takes a flowing video up: to a higher simulcast layer, or on its
/// layer to more temporal layers.
pub fn steps_up(items: &[VideoItem<'_>], chosen: &[Option<u8>], caps: &[Option<u8>]) -> bool {
    let more = |cap: Option<u8>, than: Option<u8>| cap.unwrap_or(u8::MAX) > than.unwrap_or(u8::MAX);
    items.iter().enumerate().any(|(i, item)| {
        let resumes =
            item.floor == Floor::Resuming && item.current.is_none() && chosen[i].is_some();
        resumes
            || item.flowing
                && (chosen[i] > item.current
                    || (chosen[i] == item.current && more(caps[i], item.temporal_cap)))
    })
}

/// The lowest estimate at which the allocator would step one of the flowing videos up (a layer,
/// or temporal layers back) or resume a paused one whose hold is over, if the current estimate
/// does not already: what a probe must show. `None` when nothing can step up
/// (top layers, routing caps) or the estimate is unknown.
pub fn needed_estimate(budget: &Budget, items: &[VideoItem<'_>]) -> Option<f64> {
    let estimate = budget.estimate.filter(|e| *e < crate::bwe::MAX_BPS)?;
    // Below the step ceiling (a step a probe failed to prove), a probe proves it.
    let estimate = budget.step_ceiling.map_or(estimate, |c| c.min(estimate));
    // At `e`, with a resume proved or not.
    let steps_at = |e: f64, resume_proved: bool| {
        let b = Budget {
            estimate: Some(e),
            step_ceiling: None,
            resume_proved,
            ..*budget
        };
        let chosen = allocate(&b, items);
        let caps = temporal_caps(&b, items, &chosen);
        steps_up(items, &chosen, &caps)
    };
    let steps = |e: f64| steps_at(e, true);
    if steps_at(estimate, budget.resume_proved) || !steps(crate::bwe::MAX_BPS) {
        return None;
    }
    // A resume that waits only for its proof: what it needs, however high the estimate grew.
    let lo = if steps(estimate) {
        crate::bwe::MIN_BPS
    } else {
        estimate
    };
    Some(lowest_where(lo, steps))
}

/// The lowest estimate at which every paused video whose hold is over comes back, if one
/// waits: what a probe for them asks. A chair's grid paused by a dip comes back in one proof
/// (asked for one video at a time, 36 of 45 thumbnails were still paused after 60 s in
/// Chromium, `chairwalk.mjs`; in virtual time, 12 came back over 11 s, `sim::grid_tests`).
pub fn resume_all_estimate(budget: &Budget, items: &[VideoItem<'_>]) -> Option<f64> {
    let waiting: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].floor == Floor::Resuming && items[i].current.is_none())
        .collect();
    let all_back = |e: f64| {
        let b = Budget {
            estimate: Some(e),
            step_ceiling: None,
            resume_proved: true,
            may_step_up: true,
            may_raise_temporal: true,
            proved_lately: None,
            ..*budget
        };
        let chosen = allocate(&b, items);
        waiting.iter().all(|&i| chosen[i].is_some())
    };
    if waiting.is_empty() || !all_back(crate::bwe::MAX_BPS) {
        return None;
    }
    Some(lowest_where(crate::bwe::MIN_BPS, all_back))
}

/// The lowest estimate above `lo` where `holds` (false at `lo`, true at the maximum), to
/// within 1 %, by geometric bisection.
fn lowest_where(lo: f64, holds: impl Fn(f64) -> bool) -> f64 {
    let (mut lo, mut hi) = (lo, crate::bwe::MAX_BPS);
    while hi > lo * 1.01 {
        let mid = (lo * hi).sqrt();
        if holds(mid) { hi = mid } else { lo = mid }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::{LayerInfo, Temporal};
    use crate::floor_gate::Floor;

    fn layers() -> Vec<LayerInfo> {
        [150e3, 500e3, 1200e3]
            .iter()
            .enumerate()
            .map(|(i, &bps)| LayerInfo {
                rank: i as u8,
                bps,
                live: true,
                seen: true,
                temporal: Temporal::default(),
            })
            .collect()
    }

    fn item(layers: &[LayerInfo], current: u8) -> VideoItem<'_> {
        VideoItem {
            priority: 0,
            max_rank: 2,
            layers,
            current: Some(current),
            flowing: true,
            floor: Floor::Open,
            temporal_cap: None,
        }
    }

    fn budget(estimate: f64) -> Budget {
        Budget {
            estimate: Some(estimate),
            audio_bps: 40e3,
            congested: false,
            may_step_up: true,
            may_raise_temporal: true,
            proved_lately: None,
            step_ceiling: None,
            resume_proved: false,
        }
    }

    #[test]
    fn the_needed_estimate_is_where_the_allocator_would_step_up() {
        let l = layers();
        let items = [item(&l, 1)];
        let needed = needed_estimate(&budget(700e3), &items).expect("720p is above");
        // 1.2 M − 0.5 M step with 15 % headroom over 0.5 M + audio: about 1.46 M.
        let b = |e| budget(e);
        assert_eq!(allocate(&b(needed), &items), vec![Some(2)]);
        assert_eq!(allocate(&b(needed * 0.98), &items), vec![Some(1)]);
        // Already enough: no probe; at the top: nothing to probe for.
        assert_eq!(needed_estimate(&budget(needed * 1.05), &items), None);
        let top = [item(&l, 2)];
        assert_eq!(needed_estimate(&budget(700e3), &top), None);
        // Not flowing yet (waiting for its first keyframe): no probe.
        let mut waiting = item(&l, 1);
        waiting.flowing = false;
        assert_eq!(needed_estimate(&budget(700e3), &[waiting]), None);
    }

    #[test]
    fn temporal_layers_given_back_are_probed_for_too() {
        // 720p with three temporal layers (40 / 60 / 100 % of 1.2 M), forwarding two of them.
        let l: Vec<LayerInfo> = layers()
            .into_iter()
            .map(|l| LayerInfo {
                temporal: Temporal {
                    layers: 3,
                    up_to: [l.bps * 0.4, l.bps * 0.6, l.bps, 0.0],
                },
                ..l
            })
            .collect();
        let mut top = item(&l, 2);
        top.temporal_cap = Some(1);
        let needed =
            needed_estimate(&budget(900e3), &[top.clone()]).expect("its top temporal layer");
        let b = budget(needed);
        let chosen = allocate(&b, &[top.clone()]);
        assert_eq!(temporal_caps(&b, &[top.clone()], &chosen), vec![None]);
        let below = budget(needed * 0.98);
        assert_eq!(
            temporal_caps(&below, &[top.clone()], &chosen),
            vec![Some(1)]
        );
    }

    #[test]
    fn a_cluster_paces_padding_to_its_rate_between_frames() {
        let t0 = Instant::now();
        let mut p = Prober::default();
        assert!(p.may_start(t0));
        p.start(t0, (1, 0), (900_000.0, 1_000_000.0), 500_000.0, 3);
        assert!(!p.may_start(t0));
        let mut sent = 0;
        // A second of 500 kbit/s of padding at the pacing timer, none during the 15 ms of each
        // frame (20 a second): small bursts, and the frames' share caught up after them.
        let mut largest = 0;
        for tick in 1..=200u64 {
            let at = t0 + PACE * tick as u32;
            if (tick % 10) < 3 {
                continue;
            }
            assert_eq!(p.padding_due(at, (1, 1), 0, 3), 0, "other downtrack");
            let n = p.padding_due(at, (1, 0), 0, 3);
            largest = largest.max(n);
            sent += n;
        }
        assert_eq!(p.padding(t0 + CLUSTER), None, "over after its second");
        let bps = sent as f64 * PADDING_PACKET_BYTES * 8.0;
        assert!((450e3..=520e3).contains(&bps), "{bps}");
        assert!(largest <= MAX_BURST, "{largest}");
    }

    #[test]
    fn a_queue_stops_the_cluster_and_the_probe_fails_and_waits() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = Prober::default();
        p.start(t0, (0, 0), (900_000.0, 1_000_000.0), 500_000.0, 0);
        assert!(p.padding_due(ms(100), (0, 0), 0, 0) > 0);
        assert_eq!(p.padding_due(ms(150), (0, 0), STOP_BATCHES, 0), 0);
        assert_eq!(p.padding_due(ms(200), (0, 0), 0, 0), 0, "stays stopped");
        assert_eq!(p.tick(ms(500), 0, 600_000.0), None, "feedback not in yet");
        assert_eq!(
            p.tick(ms(1200), 0, 600_000.0),
            Some(Verdict::Failed(Failure::Queue))
        );
        assert!(!p.may_start(ms(1300)));
        assert!(p.may_start(ms(1200) + INITIAL_BACKOFF));
        // The second failure waits twice as long.
        p.start(ms(6000), (0, 0), (900_000.0, 1_000_000.0), 500_000.0, 0);
        assert_eq!(p.tick(ms(7000), 1, 0.0), None);
        assert_eq!(
            p.tick(ms(7100), 1, 0.0),
            Some(Verdict::Failed(Failure::BackOff)),
            "a back-off fails at once"
        );
        assert!(!p.may_start(ms(7100) + INITIAL_BACKOFF));
        assert!(p.may_start(ms(7100) + INITIAL_BACKOFF * 2));
    }

    #[test]
    fn a_failed_probe_caps_steps_below_its_need_until_one_is_proved() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = Prober::default();
        assert_eq!(p.step_ceiling(), None);
        p.start(t0, (0, 0), (504e3, 630e3), 260e3, 0);
        p.tick(ms(1000), 0, 0.0);
        assert!(matches!(
            p.tick(ms(1600), 0, 400e3),
            Some(Verdict::Failed(_))
        ));
        assert_eq!(p.step_ceiling(), Some(504e3 * FAILED_NEED_SHARE));
        p.start(ms(5000), (0, 0), (504e3, 630e3), 260e3, 0);
        p.tick(ms(6000), 0, 0.0);
        assert!(matches!(
            p.tick(ms(6600), 0, 600e3),
            Some(Verdict::Proved(_))
        ));
        assert_eq!(
            p.step_ceiling(),
            None,
            "proved past the step it failed before"
        );
        // A proof of a lower step keeps a higher failed one's ceiling.
        p.start(ms(9000), (0, 0), (900e3, 1.1e6), 500e3, 0);
        p.tick(ms(10_000), 0, 0.0);
        assert!(matches!(
            p.tick(ms(10_600), 0, 700e3),
            Some(Verdict::Failed(_))
        ));
        p.start(ms(20_000), (0, 0), (650e3, 800e3), 500e3, 0);
        p.tick(ms(21_000), 0, 0.0);
        assert!(matches!(
            p.tick(ms(21_600), 0, 820e3),
            Some(Verdict::Proved(_))
        ));
        assert_eq!(
            p.step_ceiling(),
            Some(900e3 * FAILED_NEED_SHARE),
            "a proof of a lower step keeps the higher failed one's ceiling"
        );
    }

    #[test]
    fn the_step_ceiling_holds_steps_but_not_what_is_kept() {
        let l = layers();
        let items = [item(&l, 0)];
        let free = budget(2e6);
        assert_eq!(allocate(&free, &items), vec![Some(1)], "a step with room");
        let capped = Budget {
            step_ceiling: Some(300e3),
            ..free
        };
        assert_eq!(
            allocate(&capped, &items),
            vec![Some(0)],
            "no step past the ceiling"
        );
        let on_top = [item(&l, 2)];
        assert_eq!(
            allocate(&capped, &on_top),
            vec![Some(2)],
            "what flows is kept"
        );
        // A probe aims at the step the ceiling holds.
        let needed = needed_estimate(&capped, &items).expect("a step to prove");
        assert!(needed > 300e3, "{needed}");
    }

    /// Behind the ceiling, the estimate above it does not change what a step needs: a probe
    /// is planned exactly when the ceiling holds a step. With the headroom taken on the whole
    /// estimate, the allocator held a step that the planner, reading the ceiling as the
    /// estimate, thought already allowed: no probe and no step, a point behind 450 kbit/s on
    /// its lowest layer for 10 s with an estimate of 542 kbit/s (`tests/probe_climb.rs`, CI).
    #[test]
    fn a_step_the_ceiling_holds_is_always_probed_for() {
        let l = layers();
        let items = [item(&l, 0)];
        let step = needed_estimate(&budget(200e3), &items).expect("a step above");
        for ceiling in [0.95, 0.99, 1.0, 1.01, 1.05].map(|f| step * f) {
            for estimate in [1.0, 1.4, 2.0, 4.0].map(|f| ceiling * f) {
                let b = Budget {
                    step_ceiling: Some(ceiling),
                    ..budget(estimate)
                };
                let steps = allocate(&b, &items) != vec![Some(0)];
                let probes = needed_estimate(&b, &items).is_some();
                assert!(
                    steps != probes,
                    "ceiling {ceiling:.0}, estimate {estimate:.0}: steps {steps}, probes {probes}"
                );
            }
        }
    }

    #[test]
    fn a_carried_cluster_proves_what_was_delivered() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = Prober::default();
        p.start(t0, (0, 0), (900_000.0, 1_000_000.0), 500_000.0, 5);
        assert_eq!(p.tick(ms(1000), 5, 950_000.0), None);
        assert_eq!(
            p.tick(ms(1600), 5, 950_000.0),
            Some(Verdict::Proved(950_000.0))
        );
        assert!(!p.may_start(ms(1600)), "the step it allows comes first");
        assert!(p.may_start(ms(1600) + AFTER_PROOF));
        assert_eq!((p.started, p.proved), (1, 1));
        // Short of what the step needs: failed.
        p.start(ms(4000), (0, 0), (900_000.0, 1_000_000.0), 500_000.0, 5);
        assert_eq!(p.tick(ms(5000), 5, 0.0), None);
        assert_eq!(
            p.tick(ms(5600), 5, 880_000.0),
            Some(Verdict::Failed(Failure::Short(880_000.0, 900_000.0)))
        );
    }

    #[test]
    fn a_queue_after_the_step_was_delivered_proves_it_at_the_line_rate() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = Prober::default();
        p.start(t0, (0, 0), (398e3, 497e3), 126e3, 0);
        p.tick(ms(1000), 0, 0.0);
        assert!(matches!(
            p.tick(ms(1600), 0, 380e3),
            Some(Verdict::Failed(_))
        ));
        assert_eq!(p.step_ceiling(), Some(398e3 * FAILED_NEED_SHARE));
        // Stopped by its queue, having delivered past the step: proved, at what arrived.
        p.start(ms(5000), (0, 0), (398e3, 497e3), 126e3, 0);
        p.padding_due(ms(5400), (0, 0), STOP_BATCHES, 0);
        p.tick(ms(5500), 0, 0.0);
        assert_eq!(p.tick(ms(6100), 0, 451e3), Some(Verdict::Filled(451e3)));
        assert_eq!(p.step_ceiling(), None, "the step is proved");
        assert_eq!((p.started, p.proved), (2, 1));
        assert!(!p.may_start(ms(6100)), "the step it allows comes first");
        // A queue at barely the step's need: the line is full with it, no room for its
        // keyframe. Failed.
        let mut p = Prober::default();
        p.start(t0, (0, 0), (398e3, 497e3), 126e3, 0);
        p.padding_due(ms(400), (0, 0), STOP_BATCHES, 0);
        p.tick(ms(500), 0, 0.0);
        assert_eq!(
            p.tick(ms(1100), 0, 420e3),
            Some(Verdict::Failed(Failure::Queue))
        );
    }

    #[test]
    fn a_probe_aims_past_the_next_step_and_lower_after_a_failure() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = Prober::default();
        // Next step needs 300 k, the goal is 2 M, 300 k flow: aim at twice the media.
        assert_eq!(p.target(t0, 300e3, 2e6, 300e3, false), 600e3);
        // Never below the next step with its margin, never past the goal.
        assert_eq!(p.target(t0, 300e3, 2e6, 100e3, false), 300e3 * MARGIN);
        assert_eq!(p.target(t0, 300e3, 500e3, 300e3, false), 500e3);
        // A failure at 600 k: the next aims at 450 k; a proof forgets it.
        p.start(t0, (0, 0), (400e3, 600e3), 300e3, 0);
        p.tick(ms(1000), 0, 0.0);
        assert!(matches!(
            p.tick(ms(1600), 0, 350e3),
            Some(Verdict::Failed(_))
        ));
        assert_eq!(p.target(ms(1600), 300e3, 2e6, 300e3, false), 450e3);
        p.start(ms(5000), (0, 0), (400e3, 450e3), 300e3, 0);
        p.tick(ms(6000), 0, 0.0);
        assert_eq!(p.tick(ms(6600), 0, 430e3), Some(Verdict::Proved(430e3)));
        assert_eq!(p.target(ms(6600), 300e3, 2e6, 300e3, false), 600e3);
        // After a dip, with 100 k of media left: back towards the 1.5 M proved 30 s before,
        // for a minute.
        p.start(ms(10_000), (0, 0), (1.2e6, 1.5e6), 600e3, 0);
        p.tick(ms(11_000), 0, 0.0);
        assert_eq!(p.tick(ms(11_600), 0, 1.6e6), Some(Verdict::Proved(1.5e6)));
        assert_eq!(p.target(ms(41_600), 150e3, 2e6, 100e3, false), 1.5e6);
        assert_eq!(p.target(ms(72_000), 150e3, 2e6, 100e3, false), 200e3);
        assert_eq!(
            p.target(ms(41_600), 150e3, 2e6, 100e3, true),
            200e3,
            "not while the line is congested"
        );
    }

    #[test]
    fn after_a_large_drop_probes_aim_back_at_what_the_line_carried_before() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = Prober::default();
        // 1.5 M delivered at 720p (reached without a probe), then the line narrowed.
        p.note_drop(t0, 1.5e6);
        // In the dip (congested, nothing proved): only the media counts.
        assert_eq!(p.target(ms(5000), 150e3, 2e6, 100e3, true), 200e3);
        // A small probe proves the line carries more again: the next aims at the rate before.
        p.start(ms(20_000), (0, 0), (150e3, 190e3), 100e3, 0);
        p.tick(ms(21_000), 0, 0.0);
        assert_eq!(p.tick(ms(21_600), 0, 200e3), Some(Verdict::Proved(190e3)));
        assert_eq!(
            p.target(ms(22_600), 250e3, 3e6, 150e3, true),
            1.5e6 * MARGIN
        );
        // Its queue stops that probe at 400 k: the line is not back that far. Not congested,
        // the next aims there all the same (the ramp makes it cheap), and never past the goal.
        p.start(ms(22_600), (0, 0), (250e3, 1.5e6), 150e3, 0);
        p.padding_due(ms(23_000), (0, 0), STOP_BATCHES, 0);
        assert_eq!(p.tick(ms(23_100), 0, 0.0), None);
        assert_eq!(p.tick(ms(23_700), 0, 400e3), Some(Verdict::Filled(400e3)));
        assert_eq!(
            p.target(ms(30_000), 250e3, 3e6, 150e3, false),
            1.5e6 * MARGIN
        );
        assert_eq!(p.target(ms(30_000), 250e3, 1e6, 150e3, false), 1e6);
        // A minute on, forgotten.
        assert_eq!(p.target(ms(61_000), 250e3, 2e6, 150e3, false), 400e3);
        // A smaller drop is remembered only if it is higher, and a probe that carries the rate
        // before the drop forgets it (the high water takes over).
        let mut p = Prober::default();
        p.note_drop(t0, 1.5e6);
        p.note_drop(ms(1000), 600e3);
        assert_eq!(p.before_drop(), Some(1.5e6));
        p.start(ms(10_000), (0, 0), (150e3, 1.5e6), 100e3, 0);
        p.tick(ms(11_000), 0, 0.0);
        assert_eq!(p.tick(ms(11_600), 0, 1.6e6), Some(Verdict::Proved(1.5e6)));
        assert_eq!(p.before_drop(), None);
    }

    #[test]
    fn a_cluster_ramps_from_the_next_step_to_its_target() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        // Next step 400 k, aimed at 4 M, 100 k of media: 500 k at first (400 k of padding),
        // doubling every 250 ms.
        let mut p = Prober::default();
        p.start(t0, (0, 0), (400e3, 4e6), 100e3, 0);
        let padded = |p: &mut Prober, from: u64, to: u64| -> f64 {
            (from..to)
                .step_by(5)
                .map(|t| p.padding_due(ms(t + 5), (0, 0), 0, 0))
                .sum::<usize>() as f64
                * PADDING_PACKET_BYTES
                * 8.0
                / ((to - from) as f64 / 1000.0)
        };
        let first = padded(&mut p, 0, 50);
        assert!((320e3..450e3).contains(&first), "{first}");
        padded(&mut p, 50, 500);
        let later = padded(&mut p, 500, 550);
        // 2 M asked by 500 ms: 1.9 M of padding.
        assert!((1.6e6..2.3e6).contains(&later), "{later}");
        // A resume probe asks what the paused videos need from the start.
        let mut p = Prober::default();
        p.start(t0, (0, 0), (400e3, 1e6), 0.0, 0);
        p.for_resume();
        let resume = padded(&mut p, 0, 50);
        assert!((0.9e6..1.15e6).contains(&resume), "{resume}");
    }

    /// A resume probe proved and judged at `at_ms`, carrying `carried`.
    fn prove_resume(p: &mut Prober, t0: Instant, at_ms: u64, need: f64, carried: f64) -> Verdict {
        let ms = |n| t0 + Duration::from_millis(n);
        p.start(ms(at_ms), (0, 0), (need, need * MARGIN), 50e3, 0);
        p.for_resume();
        p.tick(ms(at_ms + 800), 0, 0.0);
        p.tick(ms(at_ms + 1400), 0, carried).expect("judged")
    }

    #[test]
    fn a_resume_cluster_outlasts_the_window_its_proof_is_read_over() {
        let t0 = Instant::now();
        let mut p = Prober::default();
        p.start(t0, (0, 0), (150e3, 190e3), 40e3, 0);
        p.for_resume();
        // The delivered rate is read over 500 ms of feedback that comes every 50-100 ms: a
        // window wholly inside the cluster needs it to pad well past 500 ms.
        assert_eq!(p.padding(t0 + Duration::from_millis(700)), Some((0, 0)));
        assert_eq!(p.padding(t0 + CLUSTER - RESUME_SHORTER), None);
    }

    #[test]
    fn a_resume_caps_steps_until_a_step_is_proved_and_a_failed_resume_asks_less_next() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = Prober::default();
        // Twelve thumbnails need 1.8 M together, the first 150 k: all of them, with margin.
        assert_eq!(p.resume_target(1.8e6, 150e3, 5e6), 1.8e6 * MARGIN);
        // Never past what the subscriber would take, never below the first one's need.
        assert_eq!(p.resume_target(1.8e6, 150e3, 1e6), 1e6);
        assert_eq!(p.resume_target(100e3, 150e3, 5e6), 150e3 * MARGIN);
        // A failed one: the next asks three quarters of it, down to the first one's need.
        p.start(t0, (0, 0), (150e3, 2.25e6), 50e3, 0);
        p.for_resume();
        p.tick(ms(800), 0, 0.0);
        assert!(matches!(
            p.tick(ms(1400), 0, 100e3),
            Some(Verdict::Failed(_))
        ));
        assert_eq!(p.resume_target(1.8e6, 150e3, 5e6), 2.25e6 * AFTER_FAILURE);
        // Back on a proof of 190 k: steps up stay below it until a probe proves one, and the
        // next resume asks for all again.
        let v = prove_resume(&mut p, t0, 5000, 150e3, 190e3);
        assert_eq!(v, Verdict::Proved(187.5e3));
        assert_eq!(p.step_ceiling(), Some(187.5e3));
        assert_eq!(p.resume_target(1.8e6, 150e3, 5e6), 1.8e6 * MARGIN);
        p.start(ms(9000), (0, 0), (500e3, 600e3), 300e3, 0);
        p.tick(ms(10_000), 0, 0.0);
        assert!(matches!(
            p.tick(ms(10_600), 0, 620e3),
            Some(Verdict::Proved(_))
        ));
        assert_eq!(p.step_ceiling(), None);
    }
}
