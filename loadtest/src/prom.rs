//! Reading the server's Prometheus text: counters by label, histograms, and the window maths
//! (the difference of two scrapes, quantiles interpolated within buckets as PromQL's
//! `histogram_quantile` does). A metric the server does not export reads as `None`: older
//! servers lack the simulcast series, and a report says "unknown" rather than zero.

use serde::Serialize;

/// The value of `name` summed over the label sets that have `label="value"`.
pub fn sum_with_label(text: &str, name: &str, label: &str, value: &str) -> Option<f64> {
    let mut found = None;
    for (labels, v) in samples(text, name) {
        if label_value(labels, label) == Some(value) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// A histogram summed over every label set except `le`: cumulative counts per upper bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// (upper bound, cumulative count), ascending; the last bound is +Inf.
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

impl Histogram {
    /// Reads `name_bucket`, `name_sum` and `name_count`; `None` when the family is absent.
    pub fn parse(text: &str, name: &str) -> Option<Histogram> {
        let mut h = Histogram::default();
        let bucket = format!("{name}_bucket");
        for (labels, v) in samples(text, &bucket) {
            let Some(le) = label_value(labels, "le").and_then(parse_bound) else {
                continue;
            };
            match h.buckets.iter_mut().find(|(b, _)| *b == le) {
                Some((_, c)) => *c += v,
                None => h.buckets.push((le, v)),
            }
        }
        if h.buckets.is_empty() {
            return None;
        }
        h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        h.sum = samples(text, &format!("{name}_sum")).map(|(_, v)| v).sum();
        h.count = samples(text, &format!("{name}_count"))
            .map(|(_, v)| v)
            .sum();
        Some(h)
    }

    /// What was observed between an earlier scrape and this one.
    pub fn since(&self, earlier: Option<&Histogram>) -> Histogram {
        let Some(e) = earlier else {
            return self.clone();
        };
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|(le, c)| {
                    let before = e
                        .buckets
                        .iter()
                        .find(|(b, _)| b == le)
                        .map_or(0.0, |(_, c)| *c);
                    (*le, (c - before).max(0.0))
                })
                .collect(),
            sum: self.sum - e.sum,
            count: (self.count - e.count).max(0.0),
        }
    }

    /// The q-quantile, linear within the bucket that holds it (the lower edge of the first
    /// bucket is 0); a quantile in the +Inf bucket is the highest finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (le, c) in &self.buckets {
            if *c >= rank && *c > below {
                if le.is_infinite() {
                    return Some(lower);
                }
                return Some(lower + (le - lower) * (rank - below) / (c - below));
            }
            lower = *le;
            below = *c;
        }
        Some(lower)
    }

    pub fn report(&self) -> HistogramReport {
        HistogramReport {
            count: self.count,
            mean: (self.count > 0.0).then(|| self.sum / self.count),
            p10: self.quantile(0.10),
            p50: self.quantile(0.50),
            p90: self.quantile(0.90),
        }
    }
}

/// A histogram over the measurement window, as reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HistogramReport {
    /// Observations in the window.
    pub count: f64,
    pub mean: Option<f64>,
    pub p10: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
}

fn parse_bound(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        _ => s.parse().ok(),
    }
}

/// The samples of exactly `name` (not a longer name it prefixes): (label text, value).
fn samples<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    text.lines().filter_map(move |line| {
        if line.starts_with('#') {
            return None;
        }
        let rest = line.strip_prefix(name)?;
        let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}')?;
            (&r[..end], &r[end + 1..])
        } else if rest.starts_with(' ') {
            ("", rest)
        } else {
            return None;
        };
        let v = value.split_whitespace().next()?.parse::<f64>().ok()?;
        Some((labels, v))
    })
}

fn label_value<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP hoinghi_link_estimate_bps x\n\
        # TYPE hoinghi_link_estimate_bps histogram\n\
        hoinghi_link_estimate_bps_bucket{worker=\"0\",le=\"100000\"} 1\n\
        hoinghi_link_estimate_bps_bucket{worker=\"0\",le=\"500000\"} 3\n\
        hoinghi_link_estimate_bps_bucket{worker=\"0\",le=\"+Inf\"} 4\n\
        hoinghi_link_estimate_bps_bucket{worker=\"1\",le=\"100000\"} 1\n\
        hoinghi_link_estimate_bps_bucket{worker=\"1\",le=\"500000\"} 1\n\
        hoinghi_link_estimate_bps_bucket{worker=\"1\",le=\"+Inf\"} 4\n\
        hoinghi_link_estimate_bps_sum{worker=\"0\"} 2000000\n\
        hoinghi_link_estimate_bps_sum{worker=\"1\"} 4000000\n\
        hoinghi_link_estimate_bps_count{worker=\"0\"} 4\n\
        hoinghi_link_estimate_bps_count{worker=\"1\"} 4\n\
        hoinghi_layer_switches_total{direction=\"up\"} 7\n\
        hoinghi_layer_switches_total{direction=\"down\"} 2\n\
        hoinghi_video_paused_downtracks 3\n";

    #[test]
    fn histograms_sum_over_labels() {
        let h = Histogram::parse(TEXT, "hoinghi_link_estimate_bps").unwrap();
        assert_eq!(
            h.buckets,
            vec![(100_000.0, 2.0), (500_000.0, 4.0), (f64::INFINITY, 8.0)]
        );
        assert_eq!((h.sum, h.count), (6_000_000.0, 8.0));
        assert_eq!(Histogram::parse(TEXT, "hoinghi_link_loss_ratio"), None);
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let h = Histogram::parse(TEXT, "hoinghi_link_estimate_bps").unwrap();
        // Rank 0.8 of 8 in the first bucket (2 observations in 0..100k): 40 kbit/s.
        assert_eq!(h.quantile(0.1), Some(40_000.0));
        // Rank 4 is the top of the second bucket.
        assert_eq!(h.quantile(0.5), Some(500_000.0));
        // In +Inf: the highest finite bound.
        assert_eq!(h.quantile(0.9), Some(500_000.0));
        let r = h.report();
        assert_eq!(r.mean, Some(750_000.0));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn a_window_is_the_difference_of_two_scrapes() {
        let before = Histogram {
            buckets: vec![(1.0, 1.0), (f64::INFINITY, 1.0)],
            sum: 0.5,
            count: 1.0,
        };
        let after = Histogram {
            buckets: vec![(1.0, 1.0), (f64::INFINITY, 3.0)],
            sum: 4.5,
            count: 3.0,
        };
        let w = after.since(Some(&before));
        assert_eq!(w.buckets, vec![(1.0, 0.0), (f64::INFINITY, 2.0)]);
        assert_eq!((w.count, w.sum), (2.0, 4.0));
        assert_eq!(w.quantile(0.5), Some(1.0), "all in +Inf: the highest bound");
        assert_eq!(after.since(None), after);
    }

    #[test]
    fn counters_by_label() {
        let up = sum_with_label(TEXT, "hoinghi_layer_switches_total", "direction", "up");
        assert_eq!(up, Some(7.0));
        assert_eq!(
            sum_with_label(
                TEXT,
                "hoinghi_layer_switches_total",
                "direction",
                "sideways"
            ),
            None
        );
        assert_eq!(
            samples(TEXT, "hoinghi_video_paused_downtracks")
                .map(|(_, v)| v)
                .sum::<f64>(),
            3.0
        );
    }
}
