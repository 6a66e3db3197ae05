//! Fixed-size outlines of a recording, for drawing it: the waveform's peaks and the longest
//! quiet stretches. Both keep bounded state whatever the recording's length.

/// A waveform as the review screen draws it: the largest |sample| of each bucket of
/// `seconds_per_peak`, scaled to 0–255 (255 = full scale).
#[derive(Debug, Clone, PartialEq)]
pub struct Waveform {
    pub seconds_per_peak: f64,
    pub values: Vec<u8>,
}

/// Buckets start this long; a 50 ms bucket is finer than any screen shows a short call.
pub const FIRST_BUCKET_MS: u64 = 50;
/// Past this many buckets, neighbours are merged and the bucket doubles: a six-hour recording
/// still has at most this many peaks (and at least half as many once it is long).
pub const MAX_PEAKS: usize = 2000;

/// Max-abs per time bucket, halving the resolution (merging pairs) whenever the count passes
/// [`MAX_PEAKS`]: memory is `MAX_PEAKS` floats, one pass, no second read of the audio.
pub struct Peaks {
    sample_rate: u32,
    bucket_frames: u64,
    in_bucket: u64,
    current: f32,
    values: Vec<f32>,
}

impl Peaks {
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate: sample_rate.max(1),
            bucket_frames: (u64::from(sample_rate) * FIRST_BUCKET_MS / 1000).max(1),
            in_bucket: 0,
            current: 0.0,
            values: Vec::with_capacity(MAX_PEAKS + 1),
        }
    }

    /// One sample frame's largest |sample| over its channels.
    pub fn push(&mut self, magnitude: f32) {
        if magnitude > self.current {
            self.current = magnitude;
        }
        self.in_bucket += 1;
        if self.in_bucket == self.bucket_frames {
            self.values.push(self.current);
            self.current = 0.0;
            self.in_bucket = 0;
            if self.values.len() > MAX_PEAKS {
                self.halve();
            }
        }
    }

    /// Merge neighbours; an odd last bucket becomes the first half of the open one.
    fn halve(&mut self) {
        let odd = (self.values.len() % 2 == 1).then(|| self.values.pop()).flatten();
        let merged: Vec<f32> = self.values.chunks_exact(2).map(|p| p[0].max(p[1])).collect();
        self.values.clear();
        self.values.extend(merged);
        if let Some(last) = odd {
            self.current = self.current.max(last);
            self.in_bucket += self.bucket_frames;
        }
        self.bucket_frames *= 2;
    }

    pub fn finish(mut self) -> Waveform {
        // The last, partial bucket still shows (it is the end of the call).
        if self.in_bucket > 0 {
            self.values.push(self.current);
        }
        Waveform {
            seconds_per_peak: self.bucket_frames as f64 / f64::from(self.sample_rate),
            values: self
                .values
                .iter()
                .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect(),
        }
    }
}

/// A stretch of the recording, in milliseconds from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// How many stretches are kept: the longest, which are the ones a validator checks.
pub const MAX_SPANS: usize = 20;

/// The longest runs of quiet frames at least `min_frames` long, at most [`MAX_SPANS`].
pub struct QuietRuns {
    min_frames: u64,
    frame_ms: u64,
    run_start: Option<u64>,
    runs: Vec<(u64, u64)>,
}

impl QuietRuns {
    pub fn new(frame_ms: u32, min_ms: u64) -> Self {
        let frame_ms = u64::from(frame_ms.max(1));
        Self {
            min_frames: min_ms.div_ceil(frame_ms).max(1),
            frame_ms,
            run_start: None,
            runs: Vec::with_capacity(MAX_SPANS + 1),
        }
    }

    /// Frame number `frame` (in order) was quiet or not.
    pub fn step(&mut self, frame: u64, quiet: bool) {
        match (quiet, self.run_start) {
            (true, None) => self.run_start = Some(frame),
            (false, Some(start)) => {
                self.run_start = None;
                self.close(start, frame);
            }
            _ => {}
        }
    }

    fn close(&mut self, start: u64, end: u64) {
        if end - start < self.min_frames {
            return;
        }
        self.runs.push((start, end));
        if self.runs.len() > MAX_SPANS {
            // Drop the shortest (the latest of equals): bounded, and the longest stay.
            if let Some(shortest) = self
                .runs
                .iter()
                .enumerate()
                .min_by_key(|(i, (s, e))| (e - s, std::cmp::Reverse(*i)))
                .map(|(i, _)| i)
            {
                self.runs.remove(shortest);
            }
        }
    }

    /// The runs in time order; `frames` is the number of frames judged (closes an open run).
    pub fn finish(mut self, frames: u64) -> Vec<Span> {
        if let Some(start) = self.run_start.take() {
            self.close(start, frames);
        }
        self.runs.sort_unstable();
        self.runs
            .into_iter()
            .map(|(s, e)| Span {
                start_ms: s * self.frame_ms,
                end_ms: e * self.frame_ms,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_keep_the_loudest_sample_of_each_bucket() {
        let mut peaks = Peaks::new(1000); // 50 frames a bucket
        for i in 0..120 {
            peaks.push(if i == 10 {
                1.0
            } else if i == 70 {
                0.5
            } else {
                0.0
            });
        }
        let waveform = peaks.finish();
        assert_eq!(waveform.values, vec![255, 128, 0]);
        assert!((waveform.seconds_per_peak - 0.05).abs() < 1e-9);
    }

    #[test]
    fn a_long_recording_is_halved_to_at_most_the_cap() {
        let rate = 8000;
        let mut peaks = Peaks::new(rate);
        let seconds = 3 * 3600;
        // A loud frame every 7 s: each survives as a peak however many times buckets merge.
        for i in 0..u64::from(rate) * seconds {
            peaks.push(if i % (7 * u64::from(rate)) == 0 { 0.8 } else { 0.01 });
        }
        let waveform = peaks.finish();
        assert!(waveform.values.len() <= MAX_PEAKS + 1, "{}", waveform.values.len());
        assert!(waveform.values.len() >= MAX_PEAKS / 2);
        let covered = waveform.seconds_per_peak * waveform.values.len() as f64;
        assert!(
            (covered - seconds as f64).abs() <= waveform.seconds_per_peak,
            "{covered}"
        );
        let loud = waveform.values.iter().filter(|v| **v == 204).count();
        assert_eq!(loud, (seconds as usize).div_ceil(7));
    }

    #[test]
    fn an_odd_bucket_left_over_by_a_halving_is_not_lost() {
        let mut peaks = Peaks::new(20); // one frame a bucket
        for i in 0..=MAX_PEAKS {
            peaks.push(if i == MAX_PEAKS { 1.0 } else { 0.1 });
        }
        // 2001 buckets: 1000 merged pairs, the loud last one now half of the open bucket.
        peaks.push(0.2);
        let waveform = peaks.finish();
        assert_eq!(waveform.values.len(), MAX_PEAKS / 2 + 1);
        assert_eq!(waveform.values.last(), Some(&255));
    }

    #[test]
    fn only_the_longest_quiet_runs_are_kept_in_time_order() {
        let mut runs = QuietRuns::new(20, 100); // runs of at least 5 frames
        let mut frame = 0;
        for length in 1..=30u64 {
            for _ in 0..length {
                runs.step(frame, true);
                frame += 1;
            }
            runs.step(frame, false);
            frame += 1;
        }
        for _ in 0..3 {
            runs.step(frame, true);
            frame += 1;
        }
        let spans = runs.finish(frame);
        assert_eq!(spans.len(), MAX_SPANS);
        let lengths: Vec<u64> = spans.iter().map(|s| (s.end_ms - s.start_ms) / 20).collect();
        assert_eq!(lengths, (11..=30).collect::<Vec<_>>());
        assert!(spans.windows(2).all(|w| w[0].end_ms < w[1].start_ms));
    }

    #[test]
    fn a_run_open_at_the_end_closes_there() {
        let mut runs = QuietRuns::new(20, 100);
        for frame in 0..10 {
            runs.step(frame, frame >= 4);
        }
        assert_eq!(
            runs.finish(10),
            vec![Span {
                start_ms: 80,
                end_ms: 200
            }]
        );
    }
}
