//! Known answers on generated signals, and bad files that must never panic.

use std::f64::consts::PI;

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::*;

pub(crate) const RATE: u32 = 8000;

/// A WAV file: format tag 1 (PCM 16-bit), 6 (A-law) or 7 (mu-law).
pub(crate) fn wav_bytes(format_tag: u16, channels: u16, rate: u32, data: &[u8]) -> Vec<u8> {
    let bits: u16 = if format_tag == 1 { 16 } else { 8 };
    let block_align = channels * bits / 8;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(4 + 26 + 8 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&18u32.to_le_bytes());
    out.extend_from_slice(&format_tag.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

pub(crate) fn pcm16(channels: u16, samples: &[f64]) -> Vec<u8> {
    let data: Vec<u8> = samples
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes())
        .collect();
    wav_bytes(1, channels, RATE, &data)
}

/// G.711 mu-law, as in the ITU reference code.
fn mulaw(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(32635) + 0x84;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// G.711 A-law, as in the ITU reference code.
fn alaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3;
    let mask = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let ends = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    match ends.iter().position(|&end| pcm <= end) {
        None => (0x7F ^ mask) as u8,
        Some(seg) => {
            let mantissa = if seg < 2 {
                (pcm >> 1) & 0x0F
            } else {
                (pcm >> seg) & 0x0F
            };
            (((seg as i32) << 4 | mantissa) ^ mask) as u8
        }
    }
}

fn sine(seconds: f64, amplitude: f64) -> Vec<f64> {
    (0..(seconds * f64::from(RATE)) as usize)
        .map(|i| amplitude * (2.0 * PI * 997.0 * i as f64 / f64::from(RATE)).sin())
        .collect()
}

/// Deterministic white noise in [-1, 1].
fn noise(n: usize, seed: u32) -> Vec<f64> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            f64::from(state) / f64::from(u32::MAX) * 2.0 - 1.0
        })
        .collect()
}

/// Syllable-like bursts (150 ms on, 100 ms off) at `level` over a −60 dBFS line.
fn speech(seconds: f64, level: f64, seed: u32) -> Vec<f64> {
    noise((seconds * f64::from(RATE)) as usize, seed)
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            let t = i as f64 / f64::from(RATE);
            if (t * 4.0).fract() < 0.6 { n * level } else { n * 0.001 }
        })
        .collect()
}

fn run(bytes: Vec<u8>) -> Result<Analysis, AnalysisError> {
    analyze(std::io::Cursor::new(bytes), Some("wav"), &AnalysisConfig::default())
}

#[test]
fn a_tone_of_known_level() {
    let bytes = pcm16(1, &sine(3.0, 0.5));
    let digest = hex::encode(Sha256::digest(&bytes));
    let a = run(bytes.clone()).expect("decodes");
    assert_eq!(
        (a.container.as_str(), a.codec.as_str(), a.sample_rate, a.channels),
        ("wave", "pcm_s16le", RATE, 1)
    );
    assert_eq!(a.duration_ms, 3000);
    assert!((a.rms_dbfs - -9.03).abs() < 0.1, "rms {}", a.rms_dbfs);
    assert!((a.peak_dbfs - -6.02).abs() < 0.05, "peak {}", a.peak_dbfs);
    assert_eq!(a.clipping_ratio, 0.0);
    assert_eq!((a.sha256, a.bytes), (digest, bytes.len() as u64));
    assert!(!a.truncated);
}

#[test]
fn exact_silences() {
    let mut signal = speech(2.0, 0.3, 1);
    signal.extend(std::iter::repeat_n(0.0, 3 * RATE as usize));
    signal.extend(speech(2.0, 0.3, 2));
    let a = run(pcm16(1, &signal)).expect("decodes");
    // The 200 ms hangover after the last syllable shortens the measured gap.
    assert!(
        (2700..=3000).contains(&a.longest_silence_ms),
        "{}",
        a.longest_silence_ms
    );
    assert_eq!(a.duration_ms, 7000);
}

#[test]
fn an_opening_utterance_is_speech() {
    // Dialers start recording on connect: the agent's greeting is the first thing in the file.
    let level = |seconds: f64, gain: f64, seed| {
        noise((seconds * f64::from(RATE)) as usize, seed)
            .into_iter()
            .map(move |n| n * gain)
    };
    let signal: Vec<f64> = level(3.0, 0.2, 1)
        .chain(level(2.0, 0.001, 2))
        .chain(level(3.0, 0.2, 3))
        .collect();
    let a = run(pcm16(1, &signal)).expect("decodes");
    let talk = a.channel_talk_ms[0];
    assert!((6000..=6300).contains(&talk), "talk {talk}");
    assert!(
        (1700..=2000).contains(&a.longest_silence_ms),
        "{}",
        a.longest_silence_ms
    );
}

#[test]
fn tone_silence_tone() {
    let mut signal = sine(2.0, 0.5);
    signal.extend(std::iter::repeat_n(0.0, 3 * RATE as usize));
    signal.extend(sine(2.0, 0.5));
    let a = run(pcm16(1, &signal)).expect("decodes");
    assert!(
        (2700..=3000).contains(&a.longest_silence_ms),
        "{}",
        a.longest_silence_ms
    );
}

#[test]
fn known_clipping() {
    // A sine driven 1.5× over full scale: |sin| ≥ 2/3 clips, 1 − 2·asin(2/3)/π of the samples.
    let a = run(pcm16(1, &sine(2.0, 1.5))).expect("decodes");
    let expected = 1.0 - 2.0 * (2.0f64 / 3.0).asin() / PI;
    assert!(
        (a.clipping_ratio - expected).abs() < 0.01,
        "{} vs {expected}",
        a.clipping_ratio
    );
}

#[test]
fn speech_like_bursts() {
    let mut signal = Vec::new();
    for seed in 0..5 {
        signal.extend(speech(1.0, 0.2, seed + 10));
        signal.extend(noise(RATE as usize, seed + 20).into_iter().map(|n| n * 0.001));
    }
    let a = run(pcm16(1, &signal)).expect("decodes");
    // Half the time is bursts; the hangover adds up to 200 ms per burst region.
    assert!((0.45..=0.65).contains(&a.speech_ratio), "{}", a.speech_ratio);
}

#[test]
fn stereo_talk_time_per_channel() {
    let quiet = |n: usize, seed| noise(n, seed).into_iter().map(|x| x * 0.001).collect::<Vec<_>>();
    let left: Vec<f64> = speech(4.0, 0.3, 3)
        .into_iter()
        .chain(quiet(2 * RATE as usize, 4))
        .collect();
    let right: Vec<f64> = quiet(4 * RATE as usize, 5)
        .into_iter()
        .chain(speech(2.0, 0.3, 6))
        .collect();
    let interleaved: Vec<f64> = left.iter().zip(&right).flat_map(|(l, r)| [*l, *r]).collect();
    let a = run(pcm16(2, &interleaved)).expect("decodes");
    assert_eq!(a.channels, 2);
    let [agent, customer] = a.channel_talk_ms.as_slice() else {
        panic!("two channels")
    };
    assert!((3500..=4300).contains(agent), "agent {agent}");
    assert!((1500..=2300).contains(customer), "customer {customer}");
}

#[test]
fn telephony_g711_decodes() {
    let tone: Vec<i16> = sine(2.0, 0.5).iter().map(|s| (s * 32767.0) as i16).collect();
    for (tag, encode, codec) in [(7u16, mulaw as fn(i16) -> u8, "pcm_mulaw"), (6, alaw, "pcm_alaw")] {
        let data: Vec<u8> = tone.iter().map(|s| encode(*s)).collect();
        let a = run(wav_bytes(tag, 1, RATE, &data)).expect(codec);
        assert_eq!((a.codec.as_str(), a.duration_ms), (codec, 2000));
        assert!((a.rms_dbfs - -9.03).abs() < 0.5, "{codec} rms {}", a.rms_dbfs);
    }
}

#[test]
fn empty_garbage_and_truncated_headers_are_errors_not_panics() {
    assert_eq!(run(Vec::new()), Err(AnalysisError::Empty));
    let garbage: Vec<u8> = noise(4096, 7).into_iter().map(|x| (x * 127.0) as i8 as u8).collect();
    assert!(matches!(run(garbage), Err(AnalysisError::Unrecognized(_))));
    let valid = pcm16(1, &sine(0.5, 0.5));
    for len in 1..46 {
        match run(valid[..len].to_vec()) {
            Err(AnalysisError::Empty) => panic!("{len} bytes are not empty"),
            Ok(a) => assert_eq!(a.duration_ms, 0, "{len} bytes"),
            Err(_) => {}
        }
    }
}

#[test]
fn absurd_headers() {
    let mut many_channels = pcm16(1, &sine(0.5, 0.5));
    many_channels[22..24].copy_from_slice(&65535u16.to_le_bytes());
    assert!(run(many_channels).is_err());
    let mut zero_rate = pcm16(1, &sine(0.5, 0.5));
    zero_rate[24..28].copy_from_slice(&0u32.to_le_bytes());
    assert!(run(zero_rate).is_err());
    // A data chunk that claims 4 GB over half a second of audio (beyond its RIFF size): refused,
    // and nothing is allocated by that size.
    let mut liar = pcm16(1, &sine(0.5, 0.5));
    let at = liar.len() - 8000 - 4;
    liar[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(run(liar), Err(AnalysisError::Unrecognized(_))));
}

/// Found by `mutated_headers_never_panic`: channels = 32768 overflowed symphonia's WAV
/// arithmetic (position 23, value 128).
#[test]
fn regression_wav_with_32768_channels() {
    let mut bytes = pcm16(2, &sine(0.2, 0.5));
    bytes[23] = 128;
    assert!(matches!(run(bytes), Err(AnalysisError::AbsurdHeader(_))));
}

#[test]
fn a_file_cut_mid_data_is_truncated() {
    let full = pcm16(1, &sine(2.0, 0.5));
    let a = run(full[..full.len() / 2].to_vec()).expect("partial audio");
    assert!(a.truncated);
    assert!((900..=1100).contains(&a.duration_ms), "{}", a.duration_ms);
}

/// Reads `fail_at` bytes, fails once, then ends as a broken HTTP body does.
struct DroppedConnection {
    bytes: std::io::Cursor<Vec<u8>>,
    fail_at: u64,
    failed: bool,
}

impl Read for DroppedConnection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Ok(0);
        }
        let left = self.fail_at.saturating_sub(self.bytes.position());
        if left == 0 {
            self.failed = true;
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset"));
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.bytes.read(&mut buf[..n])
    }
}

#[test]
fn a_dropped_connection_is_an_io_error_not_a_truncated_or_unreadable_file() {
    let bytes = pcm16(1, &sine(4.0, 0.5));
    // Mid-audio (would look truncated), inside the header (would look unrecognizable), and past
    // the end of the audio (decoding done, the drain fails).
    for fail_at in [bytes.len() as u64 / 2, 30, bytes.len() as u64] {
        let reader = DroppedConnection {
            bytes: std::io::Cursor::new(bytes.clone()),
            fail_at,
            failed: false,
        };
        let outcome = analyze(reader, Some("wav"), &AnalysisConfig::default());
        assert!(
            matches!(outcome, Err(AnalysisError::Io(_))),
            "failing at {fail_at}: {outcome:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), ext in prop::sample::select(vec!["wav", "mp3", "flac", "ogg"])) {
        let _ = analyze(std::io::Cursor::new(bytes), Some(ext), &AnalysisConfig::default());
    }

    #[test]
    fn mutated_headers_never_panic(position in 0usize..46, value in any::<u8>()) {
        let mut bytes = pcm16(2, &sine(0.2, 0.5));
        bytes[position] = value;
        let _ = run(bytes);
    }
}

/// Stereo: the agent talks 0–12 s, nobody 12–24 s, the customer 24–36 s (syllables over a
/// faint hiss, as `conversation_wav` does).
fn agent_pause_customer() -> Vec<u8> {
    let mut state = 0x9e37_79b9u32;
    let mut samples = Vec::new();
    for i in 0..RATE * 36 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = f64::from(state) / f64::from(u32::MAX) * 2.0 - 1.0;
        let t = f64::from(i) / f64::from(RATE);
        let syllable = (t * 4.0).fract() < 0.6;
        let speaker = if t < 12.0 {
            Some(0)
        } else if t >= 24.0 {
            Some(1)
        } else {
            None
        };
        for channel in 0..2 {
            let level = if speaker == Some(channel) && syllable {
                0.3
            } else {
                0.0006
            };
            samples.push(noise * level);
        }
    }
    pcm16(2, &samples)
}

#[test]
fn the_waveform_and_the_quiet_stretches_are_measured_in_the_same_pass() {
    let analysis = analyze(
        std::io::Cursor::new(agent_pause_customer()),
        Some("wav"),
        &AnalysisConfig::default(),
    )
    .expect("analyzes");
    // 36 s in 50 ms buckets: 720 peaks, loud where someone talks, near zero in the pause.
    let w = &analysis.waveform;
    assert_eq!(w.values.len(), 720);
    assert!((w.seconds_per_peak - 0.05).abs() < 1e-9);
    let at = |s: f64| w.values[(s / w.seconds_per_peak) as usize];
    assert!(at(5.0) > 50 && at(30.0) > 50, "{} {}", at(5.0), at(30.0));
    assert!(at(18.0) < 5, "{}", at(18.0));
    // The pause is a silence mark (hangover and frames aside), and the customer is quiet
    // from the start until they speak.
    let [silence] = analysis.silences.as_slice() else {
        panic!("one silence: {:?}", analysis.silences);
    };
    assert!((11_900..=12_500).contains(&silence.start_ms), "{silence:?}");
    assert!((23_900..=24_300).contains(&silence.end_ms), "{silence:?}");
    let [quiet] = analysis.customer_quiet.as_slice() else {
        panic!("one customer-quiet stretch: {:?}", analysis.customer_quiet);
    };
    assert_eq!(quiet.start_ms, 0);
    assert!((23_900..=24_300).contains(&quiet.end_ms), "{quiet:?}");
}

#[test]
fn a_mono_recording_has_no_customer_channel_to_mark() {
    let samples: Vec<f64> = (0..RATE * 3).map(|i| (f64::from(i) * 0.05).sin() * 0.5).collect();
    let analysis = analyze(
        std::io::Cursor::new(pcm16(1, &samples)),
        Some("wav"),
        &AnalysisConfig::default(),
    )
    .expect("analyzes");
    assert!(analysis.customer_quiet.is_empty());
    assert_eq!(analysis.waveform.values.len(), 60);
    assert!(
        analysis.waveform.values.iter().all(|v| (126..=128).contains(v)),
        "{:?}",
        analysis.waveform.values
    );
}
