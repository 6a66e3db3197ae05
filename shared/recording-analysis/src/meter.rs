//! Fixed-size running measurements over interleaved samples (see the module above for the
//! voice-activity algorithm).

use crate::outline::{Peaks, QuietRuns, Span, Waveform};

/// Frames this far above the channel's noise floor are speech…
const SPEECH_MARGIN_DB: f64 = 10.0;
/// …provided they are louder than this (a hiss never counts as speech, however quiet the line).
const SPEECH_MIN_DBFS: f64 = -50.0;
/// How fast the floor climbs back after a quiet frame, so it follows a noisier line.
const FLOOR_RISE_DB_PER_S: f64 = 1.0;
/// Bridges the gaps between syllables and words.
const HANGOVER_MS: u32 = 200;
/// The floor starts at the quietest frame of this opening window, and the window's frames are
/// judged in hindsight: a recording that opens mid-sentence would otherwise take its first
/// utterance for the noise floor and count it as silence.
const BOOTSTRAP_MS: u32 = 10_000;
/// Silences at least this long are kept as marks (the review screen draws them).
pub const SILENCE_MARK_MS: u64 = 5_000;
/// Stretches this long without the customer's voice (stereo: the right channel) are marks.
pub const CUSTOMER_QUIET_MARK_MS: u64 = 10_000;
/// Energy of digital silence, instead of −∞ (kept finite so it serializes).
pub const SILENCE_DBFS: f64 = -120.0;

fn to_db(mean_square: f64) -> f64 {
    if mean_square <= 1e-12 {
        SILENCE_DBFS
    } else {
        (10.0 * mean_square.log10()).max(SILENCE_DBFS)
    }
}

struct Channel {
    frame_energy: f64,
    floor_db: Option<f64>,
    hangover: u32,
    speech_frames: u64,
}

pub struct Meter {
    channels: usize,
    sample_rate: u32,
    frame_len: u64,
    frame_ms: u32,
    floor_rise_per_frame: f64,
    hangover_frames: u32,
    clip_threshold: f32,
    per_channel: Vec<Channel>,
    /// Scratch for one frame's per-channel energies (dBFS), allocated once.
    frame_db: Vec<f64>,
    /// Energies of the opening window, frame by frame, until the floors are known; fixed size.
    opening: Vec<f64>,
    opening_frames: usize,
    bootstrapping: bool,
    in_frame: u64,
    frames: u64,
    analysis_frames: u64,
    speech_frames: u64,
    silence_run: u64,
    longest_silence: u64,
    samples: u64,
    clipped: u64,
    sum_squares: f64,
    peak: f32,
    peaks: Peaks,
    silences: QuietRuns,
    /// Stereo only: left is the agent, right the customer.
    customer_quiet: Option<QuietRuns>,
}

pub struct Summary {
    pub duration_ms: u64,
    pub speech_ratio: f64,
    pub longest_silence_ms: u64,
    pub clipping_ratio: f64,
    pub rms_dbfs: f64,
    pub peak_dbfs: f64,
    pub channel_talk_ms: Vec<u64>,
    pub waveform: Waveform,
    pub silences: Vec<Span>,
    pub customer_quiet: Vec<Span>,
}

impl Meter {
    pub fn new(channels: usize, sample_rate: u32, frame_ms: u32, clip_threshold: f32) -> Self {
        let frame_ms = frame_ms.max(1);
        let channels = channels.max(1);
        let opening_frames = (BOOTSTRAP_MS / frame_ms).max(1) as usize;
        let frame_len = (u64::from(sample_rate) * u64::from(frame_ms) / 1000).max(1);
        Self {
            channels,
            frame_len,
            frame_ms,
            sample_rate,
            floor_rise_per_frame: FLOOR_RISE_DB_PER_S * f64::from(frame_ms) / 1000.0,
            hangover_frames: HANGOVER_MS / frame_ms,
            clip_threshold,
            per_channel: (0..channels)
                .map(|_| Channel {
                    frame_energy: 0.0,
                    floor_db: None,
                    hangover: 0,
                    speech_frames: 0,
                })
                .collect(),
            frame_db: vec![0.0; channels],
            opening: Vec::with_capacity(opening_frames * channels),
            opening_frames,
            bootstrapping: true,
            in_frame: 0,
            frames: 0,
            analysis_frames: 0,
            speech_frames: 0,
            silence_run: 0,
            longest_silence: 0,
            samples: 0,
            clipped: 0,
            sum_squares: 0.0,
            peak: 0.0,
            peaks: Peaks::new(sample_rate),
            silences: QuietRuns::new(frame_ms, SILENCE_MARK_MS),
            customer_quiet: (channels == 2).then(|| QuietRuns::new(frame_ms, CUSTOMER_QUIET_MARK_MS)),
        }
    }

    /// Sample frames (one sample per channel) seen so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Feed interleaved samples in [-1, 1].
    pub fn push(&mut self, interleaved: &[f32]) {
        let channels = self.channels;
        for frame in interleaved.chunks_exact(channels) {
            let mut loudest = 0.0f32;
            for (c, &x) in frame.iter().enumerate() {
                let magnitude = x.abs();
                loudest = loudest.max(magnitude);
                if magnitude >= self.clip_threshold {
                    self.clipped += 1;
                }
                if magnitude > self.peak {
                    self.peak = magnitude;
                }
                let square = f64::from(x) * f64::from(x);
                self.sum_squares += square;
                self.per_channel[c].frame_energy += square;
            }
            self.peaks.push(loudest);
            self.samples += channels as u64;
            self.frames += 1;
            self.in_frame += 1;
            if self.in_frame == self.frame_len {
                self.close_frame();
            }
        }
    }

    fn close_frame(&mut self) {
        let mut frame_db = std::mem::take(&mut self.frame_db);
        for (channel, db) in self.per_channel.iter_mut().zip(frame_db.iter_mut()) {
            *db = to_db(channel.frame_energy / self.in_frame as f64);
            channel.frame_energy = 0.0;
        }
        self.in_frame = 0;
        if self.bootstrapping {
            self.opening.extend_from_slice(&frame_db);
            if self.opening.len() >= self.opening_frames * self.channels {
                self.end_bootstrap();
            }
        } else {
            self.judge(&frame_db);
        }
        self.frame_db = frame_db;
    }

    /// Seed each channel's floor with the quietest frame of the opening window, then judge the
    /// window's frames in order.
    fn end_bootstrap(&mut self) {
        self.bootstrapping = false;
        let opening = std::mem::take(&mut self.opening);
        for (c, channel) in self.per_channel.iter_mut().enumerate() {
            channel.floor_db = opening.iter().skip(c).step_by(self.channels).copied().reduce(f64::min);
        }
        for frame in opening.chunks_exact(self.channels) {
            self.judge(frame);
        }
    }

    fn judge(&mut self, frame_db: &[f64]) {
        let mut any_speech = false;
        let mut customer_speech = false;
        for (c, (channel, &db)) in self.per_channel.iter_mut().zip(frame_db).enumerate() {
            let floor = match channel.floor_db {
                Some(floor) if db < floor => db,
                Some(floor) => floor + self.floor_rise_per_frame,
                None => db,
            };
            channel.floor_db = Some(floor);
            let loud = db > floor + SPEECH_MARGIN_DB && db > SPEECH_MIN_DBFS;
            let speech = if loud {
                channel.hangover = self.hangover_frames;
                true
            } else if channel.hangover > 0 {
                channel.hangover -= 1;
                true
            } else {
                false
            };
            if speech {
                channel.speech_frames += 1;
                any_speech = true;
                customer_speech |= c == 1;
            }
        }
        let frame = self.analysis_frames;
        self.silences.step(frame, !any_speech);
        if let Some(runs) = &mut self.customer_quiet {
            runs.step(frame, !customer_speech);
        }
        self.analysis_frames += 1;
        if any_speech {
            self.speech_frames += 1;
            self.silence_run = 0;
        } else {
            self.silence_run += 1;
            self.longest_silence = self.longest_silence.max(self.silence_run);
        }
    }

    pub fn finish(mut self) -> Summary {
        // A partial last frame still counts if it holds at least half a frame.
        if self.in_frame * 2 >= self.frame_len {
            self.close_frame();
        }
        if self.bootstrapping {
            self.end_bootstrap();
        }
        let frame_ms = u64::from(self.frame_ms);
        let duration_ms = (self.frames * 1000)
            .checked_div(u64::from(self.sample_rate))
            .unwrap_or(0);
        Summary {
            duration_ms,
            speech_ratio: if self.analysis_frames == 0 {
                0.0
            } else {
                self.speech_frames as f64 / self.analysis_frames as f64
            },
            longest_silence_ms: self.longest_silence * frame_ms,
            clipping_ratio: if self.samples == 0 {
                0.0
            } else {
                self.clipped as f64 / self.samples as f64
            },
            rms_dbfs: if self.samples == 0 {
                SILENCE_DBFS
            } else {
                to_db(self.sum_squares / self.samples as f64)
            },
            peak_dbfs: if self.peak <= 0.0 {
                SILENCE_DBFS
            } else {
                (20.0 * f64::from(self.peak).log10()).max(SILENCE_DBFS)
            },
            channel_talk_ms: self.per_channel.iter().map(|c| c.speech_frames * frame_ms).collect(),
            waveform: self.peaks.finish(),
            silences: self.silences.finish(self.analysis_frames),
            customer_quiet: self
                .customer_quiet
                .map(|runs| runs.finish(self.analysis_frames))
                .unwrap_or_default(),
        }
    }
}
