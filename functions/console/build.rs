//! Embeds the console (the top-level `console/` directory) in the binary: every web asset, as it
//! is and gzip-compressed, with its content type and a strong ETag, in `$OUT_DIR/assets.rs`.
//! Compressing here, once, keeps the function's work per request to a table lookup.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The web assets the console may hold, and the Content-Type each is served with; any other
/// file (a README, a test, a package.json) is not served.
const TYPES: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("json", "application/json"),
    ("webmanifest", "application/manifest+json"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("ico", "image/x-icon"),
    ("webp", "image/webp"),
    ("woff2", "font/woff2"),
    ("txt", "text/plain; charset=utf-8"),
];

/// The largest file served: 4 MiB is 5.6 MB once base64-encoded, under Lambda's 6 MB.
const MAX_ASSET_BYTES: usize = 4 * 1024 * 1024;

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // Hidden files and installed packages are never part of what the browser loads.
        if name.starts_with('.') || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            walk(&path, found);
        } else {
            found.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.join("../../console");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // A directory: cargo rescans every file under it.
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut assets: Vec<(String, &str, PathBuf)> = files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&root).ok()?.to_string_lossy().replace('\\', "/");
            let extension = path.extension()?.to_string_lossy().to_ascii_lowercase();
            let content_type = TYPES.iter().find(|(e, _)| *e == extension)?.1;
            Some((relative, content_type, path))
        })
        .collect();
    // Sorted: the function finds a path by binary search.
    assets.sort_by(|a, b| a.0.cmp(&b.0));
    let mut code = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (i, (relative, content_type, path)) in assets.iter().enumerate() {
        let raw = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&raw).expect("gzip in memory");
        let gzip = encoder.finish().expect("gzip in memory");
        // A Lambda response is at most 6 MB, and its body travels base64-encoded.
        assert!(
            raw.len() <= MAX_ASSET_BYTES,
            "console/{relative} is {} bytes: over the {MAX_ASSET_BYTES} a Lambda response can carry",
            raw.len()
        );
        let gz_path = out.join(format!("asset-{i}.gz"));
        std::fs::write(&gz_path, &gzip).unwrap_or_else(|e| panic!("writing {}: {e}", gz_path.display()));
        let digest = hex::encode(&Sha256::digest(&raw)[..12]);
        writeln!(
            code,
            "    Asset {{ path: {relative:?}, content_type: {content_type:?}, etag: {digest:?}, raw: include_bytes!({raw_path:?}), gzip: include_bytes!({gz_path:?}) }},",
            raw_path = path.canonicalize().unwrap_or_else(|_| path.clone()).display().to_string(),
            gz_path = gz_path.display().to_string(),
        )
        .expect("writing to a String");
    }
    code.push_str("];\n");
    std::fs::write(out.join("assets.rs"), code).expect("writing assets.rs");
}
