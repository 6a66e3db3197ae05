//! Real files of every supported container decode through the same streaming path (fixtures
//! made with ffmpeg; see tests/fixtures/README.md).

use std::fs::File;

use recording_analysis::{AnalysisConfig, analyze};

fn fixture(name: &str) -> File {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn mp3_flac_and_vorbis_decode_with_the_right_level() {
    for (name, ext, codec) in [
        ("tone-8k-mono.mp3", "mp3", "mp3"),
        ("tone-8k-mono.flac", "flac", "flac"),
        ("tone-8k-mono.ogg", "ogg", "vorbis"),
    ] {
        let a = analyze(fixture(name), Some(ext), &AnalysisConfig::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (a.codec.as_str(), a.sample_rate, a.channels),
            (codec, 8000, 1),
            "{name}"
        );
        // Encoders pad the start and end by a few frames.
        assert!((2900..=3200).contains(&a.duration_ms), "{name}: {} ms", a.duration_ms);
        assert!((a.rms_dbfs - -27.07).abs() < 1.0, "{name}: rms {}", a.rms_dbfs);
        assert!(!a.truncated, "{name}");
        assert_eq!(a.sha256.len(), 64);
    }
}

#[test]
fn a_container_under_the_wrong_extension_still_decodes_or_fails_cleanly() {
    // Dialers mislabel files; the probe looks at the bytes, the extension is only a hint.
    let a = analyze(fixture("tone-8k-mono.flac"), Some("wav"), &AnalysisConfig::default());
    assert!(a.is_ok_and(|a| a.codec == "flac"));
}
