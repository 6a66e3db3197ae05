//! Analyze each file given on the command line and print one line per file: what was decoded.
//! CPU time and peak memory are measured from outside (bench.sh runs this binary once per file
//! under `/usr/bin/time`, exactly as it runs ffmpeg), so both tools are measured the same way.

use std::fs::File;
use std::time::Instant;

use recording_analysis::{AnalysisConfig, analyze};

fn main() {
    let files: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if files.is_empty() {
        eprintln!("usage: throughput FILE… (see bench.sh)");
        return;
    }
    for path in files {
        let extension = path.rsplit('.').next().map(str::to_owned);
        let started = Instant::now();
        let outcome = File::open(&path).map_err(|e| e.to_string()).and_then(|file| {
            // 8 MB of a 4-hour WAV is all one packet may hold: the config caps the duration.
            let config = AnalysisConfig {
                max_duration_secs: 4 * 3600,
                ..AnalysisConfig::default()
            };
            analyze(file, extension.as_deref(), &config).map_err(|e| e.to_string())
        });
        let wall = started.elapsed().as_secs_f64();
        match outcome {
            Ok(a) => println!(
                "{path}\taudio_s={:.1}\twall_s={wall:.2}\tcodec={}\trate={}\tch={}\tspeech={:.2}\tsilence_ms={}\trms={:.1}",
                a.duration_ms as f64 / 1000.0,
                a.codec,
                a.sample_rate,
                a.channels,
                a.speech_ratio,
                a.longest_silence_ms,
                a.rms_dbfs
            ),
            Err(e) => println!("{path}\terror={e}"),
        }
    }
}
