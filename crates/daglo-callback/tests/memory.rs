//! The receiver's memory under attack, measured (`-- --nocapture` prints the figures). In a
//! binary of its own, so no other test moves the process's resident set.

mod support;

use std::time::Duration;

use bytes::Bytes;
use daglo_callback::{CallbackConfig, CallbackDelivery, FinalCallbacks};
use serde_json::json;
use support::Rig;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

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

/// Resets the peak resident set, so the next peak is this measurement's.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_under_half_sent_heads_and_maximum_bodies() {
    let Some(_) = rss_kib() else {
        println!("no /proc/self/status here: memory not measured");
        return;
    };
    // Half-sent heads: as many as the open-file limit lets one process hold on both ends.
    let heads = 1000.min(open_file_limit().saturating_sub(300) / 2);
    let client = support::unused_client();
    let (_callbacks, server) = CallbackDelivery::loopback(client, |c: CallbackConfig| {
        c.max_connections(heads + 8).finals(FinalCallbacks::TrustBody)
    })
    .await
    .unwrap();
    let addr = server.local_addr();
    let (before, _) = rss_kib().unwrap();
    let mut held = Vec::with_capacity(heads);
    // Each sends a head just under what the receiver buffers, and never its end.
    let filler = format!(
        "POST /daglo/x HTTP/1.1\r\nhost: x\r\nx-filler: {}\r\n",
        "a".repeat(15 * 1024)
    );
    for _ in 0..heads {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(filler.as_bytes()).await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // let the receiver read what was sent
    let (during, _) = rss_kib().unwrap();
    let grew = during.saturating_sub(before);
    println!(
        "{heads} half-sent 15 KiB heads: RSS {before} KiB -> {during} KiB (+{grew} KiB, {:.1} KiB per connection)",
        grew as f64 / heads as f64
    );
    assert!(
        grew < 48 * heads as u64 + 32 * 1024,
        "a half-sent head costs at most the 16 KiB head buffer plus the connection: +{grew} KiB"
    );
    drop(held);

    server.shutdown().await;

    // Eight maximum bodies at once, each from a genuine credential: by default only their
    // status is decoded (the result is confirmed with the service); trusted, they are decoded
    // in full.
    for finals in [FinalCallbacks::Confirm, FinalCallbacks::TrustBody] {
        eight_maximum_bodies(finals).await;
    }
}

/// The largest body the receivers below accept: a quarter of the default, so that decoding eight
/// of them in a debug build stays quick; the bounds asserted scale with it.
const MAX_BODY: usize = daglo_callback::DEFAULT_MAX_BODY_BYTES / 4;

async fn eight_maximum_bodies(finals: FinalCallbacks) {
    let (callbacks, server) = CallbackDelivery::loopback(support::unused_client(), |c: CallbackConfig| {
        // Decodes wait for their share of the budget one after another: on a busy machine in a
        // debug build that takes longer than the default body timeout and connection lifetime.
        c.finals(finals)
            .max_body_bytes(MAX_BODY)
            .body_timeout(Duration::from_secs(300))
            .max_connection_time(Duration::from_secs(300))
    })
    .await
    .unwrap();
    let max = MAX_BODY;
    let mut jobs = Vec::new();
    for _ in 0..8 {
        let mut options = daglo_core::JobOptions::default();
        let ticket = daglo_core::ResultDelivery::prepare(&callbacks, &mut options)
            .await
            .unwrap();
        jobs.push((ticket, Rig::credential(&options)));
    }
    let words = (0..)
        .map(|i| {
            json!({"word": "word ", "startTime": {"seconds": (i / 3).to_string(), "nanos": 0},
                        "endTime": {"seconds": (i / 3).to_string(), "nanos": 300_000_000}, "speaker": "1"})
        })
        .take_while({
            let mut size = 0usize;
            move |w| {
                size += w.to_string().len() + 1;
                size < max - 4096
            }
        })
        .collect::<Vec<_>>();
    let body = Bytes::from(
        json!({"status": "transcribed", "sttResults": [{"transcript": "word", "words": words}]}).to_string(),
    );
    assert!(body.len() <= max);
    let http = reqwest::Client::new();
    reset_peak();
    let (before, _) = rss_kib().unwrap();
    let posts = jobs.iter().map(|(_, (url, name, value))| {
        let (http, body) = (http.clone(), body.clone());
        async move {
            http.post(url)
                .header(name, value)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map(|a| a.status().as_u16())
                .unwrap_or(0)
        }
    });
    let answers = futures_util::future::join_all(posts).await;
    let (_, peak) = rss_kib().unwrap();
    assert_eq!(answers, vec![200; 8]);
    let grew = peak.saturating_sub(before);
    println!(
        "8 concurrent {} MiB bodies, finals {finals:?} (budget {} MiB in flight): peak RSS +{} MiB",
        body.len() >> 20,
        (4 * max) >> 20,
        grew >> 10
    );
    assert!(
        grew < (64 * max as u64) >> 10,
        "bounded by the body budget and decoding: +{grew} KiB"
    );
    drop(jobs);
    server.shutdown().await;
}
