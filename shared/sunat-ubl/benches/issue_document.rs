//! One invoice issued end to end, as invoice-issue does it: UBL built, signed (RSA-SHA256 with
//! a fresh 2048-bit test key), zipped, and the PDF rendered with its SUNAT hash and QR code.
//! Prints wall time (median, p95), mean CPU time and peak memory per invoice beside the
//! targets, and the split per step. It prints, it never asserts (speed is measured by
//! benchmarks, not by timed tests).
//!
//!   infra/bench/einvoice [iterations]        (cargo bench -p sunat-ubl --bench issue_document)
//!
//! CPU time is the process's (utime + stime of /proc/self/stat, clock ticks) over the measured
//! loop divided by the iterations; peak memory is VmHWM of /proc/self/status: the whole
//! process, whose only work is this, as a warm Lambda instance's would be. Linux only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use backoffice_domain::identity::{Document, DocumentType};
use backoffice_domain::invoice::{DocumentKind, Invoice, InvoiceDraft};
use backoffice_domain::money::Money;
use backoffice_domain::presale::LineItem;
use backoffice_domain::testing::{billing_profile, invoice_request};
use invoice_pdf::Acceptance;
use sunat_ubl::{Signer, build_invoice, file_stem, invoice_type_code, sign, zip_document};
use time::macros::datetime;

const TARGET_MS: f64 = 20.0;
const TARGET_MB: f64 = 32.0;
const WARM_UP: usize = 10;
const DEFAULT_ITERATIONS: usize = 200;
const STEPS: [&str; 4] = ["build", "sign", "zip", "render"];

fn main() {
    let iterations = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_ITERATIONS);

    let invoice = factura();
    let dir = std::env::temp_dir().join(format!("sunat-ubl-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let (cert, key) = credentials(&dir);
    let _ = std::fs::remove_dir_all(&dir);

    let started = Instant::now();
    let signer = Signer::from_pem(&cert, &key).expect("signer");
    let signer_setup = started.elapsed();
    let hwm_setup = vm_kb("VmHWM");

    // The first invoice of the process: what a cold Lambda instance pays once.
    let (first, sizes) = issue(&invoice, &signer);
    let hwm_first = vm_kb("VmHWM");

    for _ in 0..WARM_UP {
        issue(&invoice, &signer);
    }

    let mut totals = Vec::with_capacity(iterations);
    let mut steps: [Vec<Duration>; 4] = Default::default();
    let cpu_before = cpu_ticks();
    let loop_started = Instant::now();
    for _ in 0..iterations {
        let (split, _) = issue(&invoice, &signer);
        totals.push(split.iter().sum::<Duration>());
        for (all, one) in steps.iter_mut().zip(split) {
            all.push(one);
        }
    }
    let loop_wall = loop_started.elapsed();
    let cpu = ticks_to_duration(cpu_ticks() - cpu_before);
    let hwm = vm_kb("VmHWM");
    let rss = vm_kb("VmRSS");

    let cpu_ms = ms(cpu) / iterations as f64;
    let peak_mb = hwm as f64 / 1024.0;
    let verdict = |value: f64, target: f64| if value <= target { "PASS" } else { "OVER" };

    println!();
    println!(
        "issue one factura ({} lines: {} items + shipping), {iterations} iterations after {WARM_UP} warm-up, profile bench",
        invoice.lines.len(),
        invoice.lines.len() - 1
    );
    println!(
        "  xml {} B signed, zip {} B, pdf {} B; RSA 2048 key parsed once (Signer::from_pem {:.2} ms)",
        sizes.xml,
        sizes.zip,
        sizes.pdf,
        ms(signer_setup)
    );
    println!();
    println!("{:<32} {:>10} {:>10} {:>6}", "per invoice", "measured", "target", "");
    println!(
        "{:<32} {:>7.2} ms {:>7.0} ms {:>6}",
        "CPU time (mean, process)",
        cpu_ms,
        TARGET_MS,
        verdict(cpu_ms, TARGET_MS)
    );
    let (median, p95) = (percentile(&totals, 50.0), percentile(&totals, 95.0));
    println!(
        "{:<32} {:>7.2} ms {:>7.0} ms {:>6}",
        "wall time (median)",
        ms(median),
        TARGET_MS,
        verdict(ms(median), TARGET_MS)
    );
    println!(
        "{:<32} {:>7.2} ms {:>7.0} ms {:>6}",
        "wall time (p95)",
        ms(p95),
        TARGET_MS,
        verdict(ms(p95), TARGET_MS)
    );
    println!(
        "{:<32} {:>7.1} MB {:>7.0} MB {:>6}",
        "peak memory (VmHWM, process)",
        peak_mb,
        TARGET_MB,
        verdict(peak_mb, TARGET_MB)
    );
    println!();
    println!("{:<10} {:>12} {:>12} {:>12}", "step", "median ms", "p95 ms", "share");
    let total_median: f64 = steps.iter().map(|s| ms(percentile(s, 50.0))).sum();
    for (name, all) in STEPS.iter().zip(&steps) {
        let median = ms(percentile(all, 50.0));
        println!(
            "{:<10} {:>12.3} {:>12.3} {:>11.0}%",
            name,
            median,
            ms(percentile(all, 95.0)),
            100.0 * median / total_median.max(f64::EPSILON)
        );
    }
    println!();
    println!(
        "first invoice of the process: {:.2} ms wall ({})",
        ms(first.iter().sum()),
        STEPS
            .iter()
            .zip(first)
            .map(|(n, d)| format!("{n} {:.2}", ms(d)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "memory: VmHWM {:.1} MB after setup, {:.1} MB after the first invoice, {:.1} MB after all; VmRSS now {:.1} MB",
        hwm_setup as f64 / 1024.0,
        hwm_first as f64 / 1024.0,
        peak_mb,
        rss as f64 / 1024.0
    );
    println!(
        "loop: {:.0} ms wall, {:.0} ms CPU (clock ticks of {:.0} ms)",
        ms(loop_wall),
        ms(cpu),
        ms(ticks_to_duration(1))
    );
}

struct Sizes {
    xml: usize,
    zip: usize,
    pdf: usize,
}

/// One invoice: build → sign → zip → render; the time of each step.
fn issue(invoice: &Invoice, signer: &Signer) -> ([Duration; 4], Sizes) {
    let t0 = Instant::now();
    let xml = build_invoice(invoice).expect("build");
    let t1 = Instant::now();
    let signed = sign(&xml, signer).expect("sign");
    let t2 = Instant::now();
    let stem = file_stem(
        invoice.seller.document.number(),
        invoice_type_code(invoice.kind),
        &invoice.series,
        invoice.number,
    );
    let zip = zip_document(&stem, &signed.xml).expect("zip");
    let t3 = Instant::now();
    let acceptance = Acceptance {
        digest_value: &signed.digest_value,
        observed: false,
    };
    let pdf = invoice_pdf::render(invoice, Some(&acceptance)).expect("render");
    let t4 = Instant::now();
    let sizes = Sizes {
        xml: std::hint::black_box(signed.xml.len()),
        zip: std::hint::black_box(zip.len()),
        pdf: std::hint::black_box(pdf.len()),
    };
    ([t1 - t0, t2 - t1, t3 - t2, t4 - t3], sizes)
}

/// F001-00000042 to a RUC buyer: five item lines (names with accents and an ampersand) and
/// the shipping line, IGV 18% included, prepared as invoice-issue prepares it.
fn factura() -> Invoice {
    let mut request = invoice_request("p-bench", "acme");
    request.customer.document = Document::new(DocumentType::Ruc, "20601234565").expect("RUC");
    request.customer.full_name = "Comercial Ñandú & Hijos S.A.C.".into();
    let currency = request.shipping.amount.currency();
    let line = |sku: &str, name: &str, quantity: u32, minor: i64| LineItem {
        sku: sku.into(),
        name: name.into(),
        quantity,
        unit_price: Money::from_minor(minor, currency),
        line_total: Money::from_minor(minor * i64::from(quantity), currency),
    };
    request.items = vec![
        line("FIB-300", "Fibra 300 Mbps - instalación", 1, 14990),
        line("ROUTER", "Router Wi-Fi 6", 2, 1999),
        line("MESH-2", "Extensor mesh (par) para cobertura en dos pisos", 1, 25990),
        line("TV-BOX", "Decodificador TV 4K con control remoto", 3, 8990),
        line("CABLE-UTP", "Cable UTP Cat 6 de 15 m & conectores", 4, 1250),
    ];
    let invoice = InvoiceDraft::prepare(&request, &billing_profile("acme"), datetime!(2026-12-01 15:00 UTC))
        .and_then(|d| d.numbered(42))
        .expect("factura");
    assert_eq!(invoice.kind, DocumentKind::Factura);
    invoice
}

/// A fresh self-signed certificate and 2048-bit RSA key made by openssl: (cert PEM, key PEM).
fn credentials(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let cert: PathBuf = dir.join("issuer.crt.pem");
    let key: PathBuf = dir.join("issuer.key.pem");
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj"])
        .arg("/C=PE/O=ACME Telecom S.A.C./CN=20100070970")
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (std::fs::read(&cert).expect("cert"), std::fs::read(&key).expect("key"))
}

/// utime + stime of this process, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after[0] is field 3 (state): utime is field 14, stime field 15.
    let field = |n: usize| fields[n - 3].parse::<u64>().expect("a tick count");
    field(14) + field(15)
}

/// Clock ticks as time, with the kernel's USER_HZ (100 on Linux for x86_64 and arm64).
fn ticks_to_duration(ticks: u64) -> Duration {
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|hz| *hz > 0)
        .unwrap_or(100);
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// A `VmHWM`/`VmRSS` line of /proc/self/status, in kB.
fn vm_kb(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("the line in /proc/self/status")
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
