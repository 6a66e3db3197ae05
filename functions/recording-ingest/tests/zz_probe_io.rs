use std::io::{self, Read};
use recording_analysis::{analyze, AnalysisConfig};

struct Flaky { data: Vec<u8>, pos: usize, fail_at: usize, failed: bool, sticky: bool }
impl Read for Flaky {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.fail_at && (!self.failed || self.sticky) {
            self.failed = true;
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        }
        let end = if self.failed { self.data.len() } else { self.fail_at.min(self.data.len()) };
        // After a one-off failure behave like hyper: stream ends.
        if self.failed { return Ok(0); }
        let n = buf.len().min(end - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn wav(seconds: usize) -> Vec<u8> {
    let n = 8000 * seconds;
    let data: Vec<u8> = (0..n).flat_map(|i| (((i as f64 * 0.78).sin() * 16000.0) as i16).to_le_bytes()).collect();
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

#[test]
fn probe() {
    let data = wav(20);
    for (fail_at, sticky) in [(200_000, false), (200_000, true), (10, false), (10, true), (5000, false)] {
        let r = Flaky { data: data.clone(), pos: 0, fail_at, failed: false, sticky };
        let out = analyze(r, Some("wav"), &AnalysisConfig::default());
        match out {
            Ok(a) => eprintln!("fail_at={fail_at} sticky={sticky}: Ok truncated={} bytes={} of {} duration={}", a.truncated, a.bytes, data.len(), a.duration_ms),
            Err(e) => eprintln!("fail_at={fail_at} sticky={sticky}: Err {e:?}"),
        }
    }
}
