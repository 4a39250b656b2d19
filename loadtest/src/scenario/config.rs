//! What a run is asked to do, and the checks on it.

use std::net::IpAddr;
use std::time::Duration;

use super::Scenario;
use crate::layers::Ladder;
use crate::link::LinkParams;
use crate::mediafile::FileMedia;

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub scenario: Scenario,
    /// Points besides the chair.
    pub points: usize,
    /// Measurement window (fanout, townhall, joinstorm) or whole run (soak).
    pub seconds: f64,
    pub fps: u32,
    pub video_kbps: u32,
    /// Townhall: each point's thumbnail.
    pub thumbnail_kbps: u32,
    pub thumbnail_fps: u32,
    pub keyframe_interval: Option<Duration>,
    /// Emulated access line of every point (the chair is on the server's LAN).
    pub link: Option<LinkParams>,
    pub seed: u64,
    /// Joinstorm: all points join within this time.
    pub join_spread: Duration,
    /// Soak: one point leaves and another joins this often.
    pub churn_every: Duration,
    /// Joins at once while setting up (fanout, townhall, soak).
    pub join_concurrency: usize,
    /// How long points may take to receive media.
    pub ready_timeout: Duration,
    pub bind_ip: IpAddr,
    pub progress: bool,
    pub per_point: bool,
    /// Clips every publishing point sends instead of synthetic media (`--video-file`,
    /// `--audio-file`).
    pub files: FileMedia,
    /// Publish simulcast layers (the chair, and townhall points) instead of one stream.
    pub simulcast: Option<Ladder>,
    /// Townhall: the chair grants the floor to the first point before the window.
    pub floor: bool,
    /// Redundant audio (RFC 2198) for every point: publishers offer and send RED, subscribers
    /// accept it and recover lost frames from it.
    pub red: bool,
    /// Temporal layers in each synthetic video layer (1: none; 2 or 3 as Chromium sends them).
    pub temporal_layers: u8,
    /// The points' transport-wide congestion feedback interval (`None`: `rtc`'s 100 ms).
    pub twcc_interval: Option<Duration>,
    /// The chair joins without publishing, and the program is the first video the points
    /// receive from someone else: a meeting linked to an upstream one, whose points receive
    /// the upstream chair (the cascade's `upstream` seat) instead of the local chair.
    pub chair_silent: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            scenario: Scenario::Fanout,
            points: 5,
            seconds: 10.0,
            fps: 30,
            video_kbps: 800,
            thumbnail_kbps: 100,
            thumbnail_fps: 10,
            keyframe_interval: Some(Duration::from_secs(10)),
            link: None,
            seed: 1,
            join_spread: Duration::from_secs(10),
            churn_every: Duration::from_secs(2),
            join_concurrency: 8,
            ready_timeout: Duration::from_secs(30),
            bind_ip: [127, 0, 0, 1].into(),
            progress: false,
            per_point: false,
            files: FileMedia::default(),
            simulcast: None,
            floor: false,
            red: false,
            temporal_layers: 1,
            twcc_interval: None,
            chair_silent: false,
        }
    }
}

impl LoadConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.points == 0 {
            return Err("--points must be at least 1".into());
        }
        if self.points > 2_000 {
            return Err("--points above 2000 is not supported".into());
        }
        if !(self.seconds.is_finite() && self.seconds > 0.0) {
            return Err("--seconds must be positive".into());
        }
        if self.fps == 0 || self.fps > 120 {
            return Err("--fps must be between 1 and 120".into());
        }
        if self.video_kbps == 0 || self.thumbnail_kbps == 0 || self.thumbnail_fps == 0 {
            return Err("bitrates and frame rates must be positive".into());
        }
        if self.join_concurrency == 0 {
            return Err("--join-concurrency must be at least 1".into());
        }
        if let Some(l) = &self.link {
            l.validate()?;
        }
        if let Some(ladder) = &self.simulcast {
            if self.files.video.is_some() {
                return Err(
                    "--simulcast sends synthetic layers; it cannot send --video-file".into(),
                );
            }
            let kbps: Vec<u32> = ladder.0.iter().map(|l| l.kbps).collect();
            Ladder::simulcast(&kbps)?;
        }
        if !(1..=3).contains(&self.temporal_layers) {
            return Err("--temporal-layers must be 1, 2 or 3".into());
        }
        if self
            .twcc_interval
            .is_some_and(|d| d < Duration::from_millis(10) || d > Duration::from_secs(1))
        {
            return Err("--twcc-interval must be between 10 and 1000 ms".into());
        }
        if self.floor && self.scenario != Scenario::Townhall {
            return Err("--floor is for townhall".into());
        }
        Ok(())
    }
}
