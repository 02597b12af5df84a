//! A flood of idle connections against a receiver short of file descriptors: 1,500 peers that
//! connect and never send a byte, against a receiver at `ulimit -n 256` (a child process, so the
//! limit is real and this test's own sockets do not count against it). Genuine callbacks sent
//! during the flood are answered; `-- --nocapture` prints how fast.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use daglo_callback::CallbackDelivery;
use daglo_core::{JobOptions, ResultDelivery};

/// The variable that makes this binary the receiver's child.
const CHILD: &str = "DAGLO_FLOOD_CHILD";
/// Idle connections in the flood.
const IDLE: usize = 1_500;
/// Genuine callbacks sent during it.
const GENUINE: usize = 6;

/// The child: a receiver with `GENUINE` registered jobs; prints each job's callback URL and
/// credential, then serves until its stdin closes.
async fn child() {
    let (callbacks, server) = CallbackDelivery::loopback(support::unused_client(), |c| c)
        .await
        .unwrap();
    let mut tickets = Vec::new();
    for _ in 0..GENUINE {
        let mut options = JobOptions::default();
        tickets.push(callbacks.prepare(&mut options).await.unwrap());
        let (url, name, value) = support::Rig::credential(&options);
        println!("JOB {url}\t{name}\t{value}");
    }
    println!("READY {}", server.local_addr());
    tokio::task::spawn_blocking(|| {
        let mut rest = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut rest);
    })
    .await
    .unwrap();
    drop(tickets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genuine_callbacks_are_answered_during_a_flood_of_idle_connections() {
    if std::env::var_os(CHILD).is_some() {
        return child().await;
    }
    if !cfg!(target_os = "linux") {
        eprintln!("SKIPPED: the flood test needs Linux's ulimit");
        return;
    }
    let mut receiver = Command::new("sh")
        .args(["-c", "ulimit -n 256 && exec \"$0\" \"$@\""])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "genuine_callbacks_are_answered_during_a_flood_of_idle_connections",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(receiver.stdout.take().unwrap()).lines();
    let mut jobs = Vec::new();
    let addr = loop {
        let line = lines.next().expect("the receiver starts").unwrap();
        if let Some(job) = line.strip_prefix("JOB ") {
            let parts: Vec<String> = job.split('\t').map(str::to_owned).collect();
            jobs.push(parts);
        } else if let Some(addr) = line.strip_prefix("READY ") {
            break addr.parse::<std::net::SocketAddr>().unwrap();
        }
    };
    let outcome = tokio::time::timeout(Duration::from_secs(120), async {
        // The flood: connect and send nothing, holding every connection open.
        let mut connecting = tokio::task::JoinSet::new();
        for _ in 0..IDLE {
            connecting.spawn(async move {
                tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
                    .await
                    .ok()
                    .and_then(Result::ok)
            });
        }
        let mut idle = Vec::new();
        while let Some(connected) = connecting.join_next().await {
            if let Some(stream) = connected.unwrap() {
                idle.push(stream);
            }
        }
        // Genuine callbacks, each on a connection of its own, while the flood holds on. (This
        // test's own reqwest client is built before anything of the project's made one.)
        daglo_client::install_crypto_provider();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let mut took = Vec::new();
        for job in &jobs {
            let started = Instant::now();
            let (status, _) = support::post(
                &http,
                &job[0],
                &[(&job[1], &job[2]), ("content-type", "application/json")],
                r#"{"status":"transcribing","progress":40}"#,
            )
            .await;
            took.push(started.elapsed());
            assert_eq!(status, 200, "a genuine callback is accepted during the flood");
        }
        (idle.len(), took)
    })
    .await;
    drop(receiver.stdin.take());
    let _ = receiver.kill();
    let _ = receiver.wait();
    let (connected, took) = outcome.expect("every genuine callback was answered during the flood");
    let slowest = took.iter().max().copied().unwrap_or_default();
    println!(
        "{connected} of {IDLE} idle connections open; {GENUINE} genuine callbacks answered in {took:?} (slowest {slowest:?})"
    );
    // The goal is 100 ms; the bound here leaves room for a loaded machine (figures above).
    assert!(
        slowest < Duration::from_secs(2),
        "slowest genuine callback took {slowest:?}"
    );
}
