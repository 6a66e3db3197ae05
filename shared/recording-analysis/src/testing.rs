//! Synthetic call recordings for tests and benchmarks (feature `testing`): what a dialer
//! uploads, without shipping audio files.

/// A stereo 16-bit 8 kHz WAV of `seconds` with alternating speakers (agent left, customer
/// right, four seconds each, in syllables); `seed` varies the noise, so two calls differ.
pub fn conversation_wav(seconds: u32, seed: u32) -> Vec<u8> {
    let turns: Vec<(u32, u32, usize)> = (0..seconds.div_ceil(4))
        .map(|k| (4 * k, 4 * k + 4, (k % 2) as usize))
        .collect();
    scripted_wav(seconds, seed, &turns)
}

/// A stereo 16-bit 8 kHz WAV of `seconds` where each `(from_s, to_s, channel)` span has that
/// channel speaking (noise in syllables; agent on the left, customer on the right) and
/// everything else is near silence: a call with the silences and quiet stretches a test needs.
pub fn scripted_wav(seconds: u32, seed: u32, speech: &[(u32, u32, usize)]) -> Vec<u8> {
    let rate = 8000u32;
    let mut state = 0x2545_f491u32 ^ seed;
    let mut data = Vec::with_capacity((rate * seconds * 4) as usize);
    for i in 0..rate * seconds {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = f64::from(state) / f64::from(u32::MAX) * 2.0 - 1.0;
        let t = f64::from(i) / f64::from(rate);
        let syllable = (t * 4.0).fract() < 0.6;
        for channel in 0..2 {
            let speaking = speech
                .iter()
                .any(|&(from, to, c)| c == channel && t >= f64::from(from) && t < f64::from(to));
            let level = if speaking && syllable { 9000.0 } else { 20.0 };
            data.extend_from_slice(&((n * level) as i16).to_le_bytes());
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 4).to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}
