//! What decoding a status body costs in memory, measured (`-- --nocapture` prints the figures).
//! In a binary of its own, so the process's peak resident set is this test's.

use daglo_core::{DECODE_FLOOR, DECODE_RATIO, decode_status_body};

/// This process's resident set and its peak since the last reset, in KiB (Linux).
fn rss_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// A body of `count` copies of `word` in one result.
fn body(word: &str, count: usize) -> Vec<u8> {
    let mut body =
        String::from(r#"{"status":"transcribed","rid":"r","sttResults":[{"transcript":"x","words":["#);
    for i in 0..count {
        if i > 0 {
            body.push(',');
        }
        body.push_str(word);
    }
    body.push_str("]}]}");
    body.into_bytes()
}

/// Decodes `bytes`, returning whether it decoded and the peak growth of the resident set in KiB.
fn measure(bytes: &[u8]) -> (bool, u64) {
    // Resets the peak, so the next one is this decode's.
    std::fs::write("/proc/self/clear_refs", "5").expect("Linux can reset the peak resident set");
    let (before, _) = rss_kib().expect("Linux reports the resident set");
    let decoded = decode_status_body(bytes);
    let (_, peak) = rss_kib().unwrap();
    let ok = decoded.is_ok();
    drop(decoded);
    (ok, peak.saturating_sub(before))
}

#[test]
fn decoding_a_body_takes_at_most_four_times_its_size() {
    if rss_kib().is_none() {
        eprintln!("SKIPPED: no /proc/self/status here");
        return;
    }
    let bound = |bytes: &[u8]| (bytes.len() * DECODE_RATIO + DECODE_FLOOR) as u64 / 1024;
    // Words as the service sends them (times, a speaker), and words as short as the schema
    // allows with times: both decode, within the bound.
    let real = body(
        r#"{"word":"안녕하세요 ","startTime":{"seconds":"1","nanos":200000000},"endTime":{"seconds":"1","nanos":700000000},"speaker":"1"}"#,
        200_000,
    );
    let short = body(
        r#"{"word":"a","startTime":{"seconds":0},"endTime":{"seconds":0}}"#,
        300_000,
    );
    // One-letter words with nothing else: over ten times their size as structs — refused.
    let tiny = body(r#"{"word":"a"}"#, 1_500_000);
    for (name, bytes, decodes) in [
        ("real", &real, true),
        ("short", &short, true),
        ("tiny", &tiny, false),
    ] {
        let (ok, grew) = measure(bytes);
        println!(
            "{name}: body {} KiB, decoded: {ok}, peak +{grew} KiB = {:.2}× (bound {} KiB)",
            bytes.len() / 1024,
            grew as f64 / (bytes.len() / 1024) as f64,
            bound(bytes)
        );
        assert_eq!(ok, decodes, "{name}");
        assert!(
            grew <= bound(bytes),
            "{name}: +{grew} KiB over the bound {} KiB",
            bound(bytes)
        );
    }
}
