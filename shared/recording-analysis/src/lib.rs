//! Streaming analysis of a call recording: decode packet by packet (symphonia), hash every byte
//! read, and measure level, clipping, speech and silences with fixed-size state, so memory stays
//! flat whatever the recording's length.
//!
//! Voice activity is frame-energy based with an adaptive threshold: per channel, each frame's
//! energy (dBFS) is compared with a noise floor that follows the quietest frames (it drops at
//! once to a quieter frame and rises slowly, `FLOOR_RISE_DB_PER_S`), so a noisy line and a clean
//! one are judged against their own background. The floor starts from the quietest frame of the
//! first 10 s, whose frames are judged in hindsight, so a recording that opens mid-sentence does
//! not take its first utterance for background. A frame is speech when it is `SPEECH_MARGIN_DB`
//! above the floor and above an absolute minimum; a short hangover bridges the gaps between
//! syllables.

mod meter;
pub mod outline;

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoderOptions, well_known as codecs};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions, ReadOnlySource};
use symphonia::core::meta::MetadataOptions;

pub use meter::{CUSTOMER_QUIET_MARK_MS, Meter, SILENCE_MARK_MS};
pub use outline::{MAX_PEAKS, Span, Waveform};

#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisConfig {
    pub frame_ms: u32,
    /// |sample| at or above this fraction of full scale counts as clipped.
    pub clip_threshold: f32,
    pub max_channels: u16,
    pub max_sample_rate: u32,
    /// Stop (TooLong) past this much audio: no call lasts six hours.
    pub max_duration_secs: u64,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            frame_ms: 20,
            clip_threshold: 0.999,
            max_channels: 8,
            max_sample_rate: 384_000,
            max_duration_secs: 6 * 3600,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub sha256: String,
    pub bytes: u64,
    pub container: String,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_ms: u64,
    pub speech_ratio: f64,
    pub longest_silence_ms: u64,
    pub clipping_ratio: f64,
    pub rms_dbfs: f64,
    pub peak_dbfs: f64,
    pub channel_talk_ms: Vec<u64>,
    pub truncated: bool,
    pub decode_errors: u32,
    /// The waveform's outline (at most [`MAX_PEAKS`] peaks).
    pub waveform: Waveform,
    /// The longest silences (no one speaking) of at least [`SILENCE_MARK_MS`], in time order.
    pub silences: Vec<Span>,
    /// Stereo: the longest stretches of at least [`CUSTOMER_QUIET_MARK_MS`] without the
    /// customer's voice (right channel), in time order.
    pub customer_quiet: Vec<Span>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalysisError {
    #[error("the object is empty")]
    Empty,
    #[error("not a recognizable recording: {0}")]
    Unrecognized(String),
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    #[error("implausible header: {0}")]
    AbsurdHeader(String),
    #[error("longer than the {0} s limit")]
    TooLong(u64),
    #[error("read error: {0}")]
    Io(String),
}

/// Reader that hashes and counts every byte that passes through it; shared so the hash can be
/// finished after the demuxer (which owns a clone) is dropped.
struct Hashing<R> {
    inner: Arc<Mutex<HashState<R>>>,
}

struct HashState<R> {
    reader: R,
    hasher: Sha256,
    bytes: u64,
    /// First read failure. Sticky because the demuxer reports it as a truncated file and a
    /// broken HTTP body then reads as a clean end: without this, a dropped connection would be
    /// recorded as a truncated recording with the hash of a partial object.
    failure: Option<String>,
}

impl<R: Read> HashState<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.reader.read(buf) {
                Ok(n) => {
                    self.hasher.update(&buf[..n]);
                    self.bytes += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.failure.get_or_insert_with(|| e.to_string());
                    return Err(e);
                }
            }
        }
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .lock()
            .map_err(|_| io::Error::other("hash state poisoned"))?
            .read(buf)
    }
}

fn codec_name(id: AudioCodecId) -> String {
    let known = [
        (codecs::CODEC_ID_PCM_S16LE, "pcm_s16le"),
        (codecs::CODEC_ID_PCM_S16BE, "pcm_s16be"),
        (codecs::CODEC_ID_PCM_S24LE, "pcm_s24le"),
        (codecs::CODEC_ID_PCM_S32LE, "pcm_s32le"),
        (codecs::CODEC_ID_PCM_U8, "pcm_u8"),
        (codecs::CODEC_ID_PCM_F32LE, "pcm_f32le"),
        (codecs::CODEC_ID_PCM_MULAW, "pcm_mulaw"),
        (codecs::CODEC_ID_PCM_ALAW, "pcm_alaw"),
        (codecs::CODEC_ID_MP3, "mp3"),
        (codecs::CODEC_ID_FLAC, "flac"),
        (codecs::CODEC_ID_VORBIS, "vorbis"),
    ];
    known
        .iter()
        .find(|(k, _)| *k == id)
        .map(|(_, n)| (*n).to_owned())
        .unwrap_or_else(|| format!("{id:?}").to_lowercase())
}

fn is_eof(err: &SymphoniaError) -> bool {
    matches!(err, SymphoniaError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof)
}

/// Analyze a recording read from `reader` (not seekable: an S3 body). The hash covers every byte
/// of the object, also past where decoding stopped.
pub fn analyze<R: Read + Send + Sync + 'static>(
    reader: R,
    extension_hint: Option<&str>,
    config: &AnalysisConfig,
) -> Result<Analysis, AnalysisError> {
    let state = Arc::new(Mutex::new(HashState {
        reader,
        hasher: Sha256::new(),
        bytes: 0,
        failure: None,
    }));
    let mut hashing = Hashing {
        inner: Arc::clone(&state),
    };
    // Peek at the header ourselves first: decoders trust header fields (a WAV with 32768
    // channels overflows symphonia's size arithmetic), so implausible ones stop here.
    let mut prefix = Vec::with_capacity(PREFIX_LEN);
    (&mut hashing)
        .take(PREFIX_LEN as u64)
        .read_to_end(&mut prefix)
        .map_err(|e| AnalysisError::Io(e.to_string()))?;
    let decoded = match wav_precheck(&prefix, config) {
        Err(e) => Err(e),
        Ok(()) => {
            let source = io::Cursor::new(prefix).chain(hashing);
            // Last line of defence: a decoder panic on hostile input is an unreadable file, not
            // a crashed invocation retried forever.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(source, extension_hint, config)))
                .unwrap_or_else(|_| Err(AnalysisError::Unrecognized("the decoder failed on this file".into())))
        }
    };
    // Finish the hash over whatever the demuxer did not read (bounded buffer, streamed).
    let mut state = state
        .lock()
        .map_err(|_| AnalysisError::Io("hash state poisoned".into()))?;
    if state.failure.is_none() {
        let mut buffer = vec![0u8; 64 * 1024];
        while state.read(&mut buffer).is_ok_and(|n| n > 0) {}
    }
    // A failed read makes every result above (decoded, truncated, unrecognized) and the hash
    // unreliable: the caller retries the object.
    if let Some(failure) = state.failure.take() {
        return Err(AnalysisError::Io(failure));
    }
    if state.bytes == 0 {
        return Err(AnalysisError::Empty);
    }
    let mut analysis = decoded?;
    analysis.bytes = state.bytes;
    analysis.sha256 = hex::encode(state.hasher.clone().finalize());
    Ok(analysis)
}

const PREFIX_LEN: usize = 4096;

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    bytes.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Validate a RIFF/WAVE `fmt ` chunk found in the first bytes; anything else passes through.
fn wav_precheck(prefix: &[u8], config: &AnalysisConfig) -> Result<(), AnalysisError> {
    if prefix.get(0..4) != Some(b"RIFF") || prefix.get(8..12) != Some(b"WAVE") {
        return Ok(());
    }
    let mut at = 12;
    while let (Some(id), Some(size)) = (prefix.get(at..at + 4), le_u32(prefix, at + 4)) {
        if id == b"fmt " {
            let body = at + 8;
            let (Some(channels), Some(rate), Some(block_align), Some(bits)) = (
                le_u16(prefix, body + 2),
                le_u32(prefix, body + 4),
                le_u16(prefix, body + 12),
                le_u16(prefix, body + 14),
            ) else {
                return Ok(());
            };
            if channels == 0 || channels > config.max_channels {
                return Err(AnalysisError::AbsurdHeader(format!(
                    "{channels} channels (1 to {} accepted)",
                    config.max_channels
                )));
            }
            if rate == 0 || rate > config.max_sample_rate {
                return Err(AnalysisError::AbsurdHeader(format!("sample rate {rate} Hz")));
            }
            if bits == 0 || bits > 64 || block_align == 0 || u32::from(block_align) > u32::from(channels) * 8 {
                return Err(AnalysisError::AbsurdHeader(format!(
                    "{bits} bits per sample, block align {block_align}"
                )));
            }
            return Ok(());
        }
        // Chunks are word-aligned; a size past the prefix just ends the look-ahead.
        at = at
            .saturating_add(8)
            .saturating_add(size as usize)
            .saturating_add(size as usize & 1);
    }
    Ok(())
}

fn decode<R: Read + Send + Sync + 'static>(
    source: R,
    extension_hint: Option<&str>,
    config: &AnalysisConfig,
) -> Result<Analysis, AnalysisError> {
    let stream = MediaSourceStream::new(
        Box::new(ReadOnlySource::new(source)),
        MediaSourceStreamOptions::default(),
    );
    let mut hint = Hint::new();
    if let Some(extension) = extension_hint {
        hint.with_extension(extension);
    }
    let mut format = symphonia::default::get_probe()
        .probe(&hint, stream, FormatOptions::default(), MetadataOptions::default())
        .map_err(|e| match e {
            SymphoniaError::Unsupported(what) => AnalysisError::Unrecognized(what.into()),
            other if is_eof(&other) => AnalysisError::Unrecognized("the file ends inside its header".into()),
            other => AnalysisError::Unrecognized(other.to_string()),
        })?;
    let container = format.format_info().short_name.to_owned();
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| AnalysisError::Unrecognized("no audio track".into()))?;
    let track_id = track.id;
    let declared_frames = track.num_frames;
    let Some(CodecParameters::Audio(params)) = track.codec_params.clone() else {
        return Err(AnalysisError::Unsupported("the track is not audio".into()));
    };
    // Check the header before anything is sized by it.
    let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
    if channels == 0 || channels > usize::from(config.max_channels) {
        return Err(AnalysisError::AbsurdHeader(format!(
            "{channels} channels (1 to {} accepted)",
            config.max_channels
        )));
    }
    let sample_rate = params.sample_rate.unwrap_or(0);
    if sample_rate == 0 || sample_rate > config.max_sample_rate {
        return Err(AnalysisError::AbsurdHeader(format!("sample rate {sample_rate} Hz")));
    }
    if params
        .max_frames_per_packet
        .is_some_and(|f| f > u64::from(sample_rate) * 10)
    {
        return Err(AnalysisError::AbsurdHeader("packets longer than 10 s".into()));
    }
    let codec = codec_name(params.codec);
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| AnalysisError::Unsupported(format!("{codec}: {e}")))?;
    let channels_u16 = u16::try_from(channels).unwrap_or(u16::MAX);
    let mut meter = Meter::new(channels, sample_rate, config.frame_ms, config.clip_threshold);
    let max_frames = config.max_duration_secs.saturating_mul(u64::from(sample_rate));
    let mut samples: Vec<f32> = Vec::new();
    let mut truncated = false;
    let mut decode_errors = 0u32;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(e) => {
                if meter.frames() == 0 && !is_eof(&e) {
                    return Err(AnalysisError::Unrecognized(e.to_string()));
                }
                truncated = true;
                break;
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buffer) => {
                // The decoder's own buffer is reused; so is `samples`: no growth with length.
                if buffer.spec().channels().count() != channels {
                    decode_errors += 1;
                    continue;
                }
                buffer.copy_to_vec_interleaved::<f32>(&mut samples);
                meter.push(&samples);
            }
            Err(SymphoniaError::DecodeError(_)) => {
                decode_errors += 1;
                // Garbage that happens to look like a header decodes into nothing but errors.
                if decode_errors > 50 && meter.frames() == 0 {
                    return Err(AnalysisError::Unrecognized("no decodable audio".into()));
                }
            }
            Err(e) if is_eof(&e) => {
                truncated = true;
                break;
            }
            Err(e) => {
                if meter.frames() == 0 {
                    return Err(AnalysisError::Unrecognized(e.to_string()));
                }
                truncated = true;
                break;
            }
        }
        if meter.frames() > max_frames {
            return Err(AnalysisError::TooLong(config.max_duration_secs));
        }
    }
    // A header that promised more audio than the file holds: the end is missing.
    if declared_frames.is_some_and(|declared| declared > meter.frames() + u64::from(sample_rate) / 10) {
        truncated = true;
    }
    let summary = meter.finish();
    Ok(Analysis {
        sha256: String::new(),
        bytes: 0,
        container,
        codec,
        sample_rate,
        channels: channels_u16,
        duration_ms: summary.duration_ms,
        speech_ratio: summary.speech_ratio,
        longest_silence_ms: summary.longest_silence_ms,
        clipping_ratio: summary.clipping_ratio,
        rms_dbfs: summary.rms_dbfs,
        peak_dbfs: summary.peak_dbfs,
        channel_talk_ms: summary.channel_talk_ms,
        truncated,
        decode_errors,
        waveform: summary.waveform,
        silences: summary.silences,
        customer_quiet: summary.customer_quiet,
    })
}

#[cfg(test)]
mod tests;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
