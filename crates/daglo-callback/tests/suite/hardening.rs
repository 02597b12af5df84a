//! The receiver against attackers: peers that never read, idle or churn, oversized heads,
//! credentials seen once, bodies built to leak into logs, liveness probes.

use crate::support;

use std::time::Duration;

use crate::support::Rig;
use daglo_callback::{CallbackConfig, CallbackDelivery, FinalCallbacks};
use daglo_core::Outcome;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const JSON: (&str, &str) = ("content-type", "application/json");

/// An emulator with jobs long enough to attack while they run, and a receiver limited to
/// `max_connections` connections that each live at most `lifetime`.
async fn rig(max_connections: usize, lifetime: Duration) -> Rig {
    Rig::start(
        Rig::sim_config().processing_time(Duration::from_secs(1)),
        |config| {
            config
                .max_connections(max_connections)
                .max_connection_time(lifetime)
        },
    )
    .await
}

/// A request head and a few pipelined copies, never reading an answer: the peer that used to
/// keep its connection, and its slot, for ever.
async fn slow_reader(addr: std::net::SocketAddr, path: String) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
    );
    let burst = request.repeat(200);
    let _ = stream.write_all(burst.as_bytes()).await;
    Some(stream)
}

#[tokio::test]
async fn peers_that_never_read_cannot_hold_the_receiver() {
    let rig = rig(4, Duration::from_secs(2)).await;
    let (rid, ticket, options) = rig.submit("https://a.example/a.wav").await;
    let (url, name, value) = Rig::credential(&options);
    let addr = rig.server.local_addr();
    let path = url::Url::parse(&url).unwrap().path().to_owned();

    // Far more attackers than slots, each reconnecting as soon as it is dropped.
    let attack = tokio::spawn(async move {
        let mut held = Vec::new();
        // (At the cap an idle one is closed after a second idle, so each holds its slot about
        // that long: 60 of them keep the cap of 4 full for ~15 s.)
        for _ in 0..60 {
            if let Some(stream) = slow_reader(addr, path.clone()).await {
                held.push(stream);
            }
            tokio::task::yield_now().await;
        }
        held
    });
    // A legitimate callback during the attack is answered within a few seconds.
    let legit = tokio::time::timeout(
        Duration::from_secs(10),
        rig.post(
            &url,
            &[(&name, &value), JSON],
            json!({"status": "transcribing", "progress": 40}).to_string(),
        ),
    )
    .await
    .expect("answered during the attack");
    assert_eq!(legit.0, 200);
    let held = attack.await.unwrap();
    assert!(!held.is_empty());
    // And the job still completes through the receiver.
    let outcome = rig.wait(rid, ticket).await;
    assert!(matches!(outcome, Outcome::Transcript { .. }), "{outcome:?}");
}

#[tokio::test]
async fn idle_connections_are_closed_and_give_their_slot_back() {
    let rig = rig(2, Duration::from_secs(1)).await;
    let addr = rig.server.local_addr();
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // Both slots taken by peers that send nothing: they are closed within the connection's
    // lifetime (or the header timeout), and a legitimate callback gets through.
    let (_, ticket, options) = rig.submit("https://a.example/a.wav").await;
    let (url, name, value) = Rig::credential(&options);
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        rig.post(
            &url,
            &[(&name, &value), JSON],
            json!({"status": "uploaded", "progress": 5}).to_string(),
        ),
    )
    .await
    .expect("answered");
    assert_eq!(answer.0, 200);
    for mut stream in idle {
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await;
        assert!(read.is_ok(), "the idle connection was closed");
    }
    drop(ticket);
}

#[tokio::test]
async fn an_oversized_request_head_is_refused() {
    let rig = rig(8, Duration::from_secs(5)).await;
    let mut stream = TcpStream::connect(rig.server.local_addr()).await.unwrap();
    let head = format!(
        "POST /daglo/x HTTP/1.1\r\nhost: x\r\nx-filler: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "refused, not buffered: {text}"
    );

    // Header lines: 32 pass on to the service (here the receiver: an unknown key, `404`); 33,
    // and hyper's own bound of 100, are `431` and the connection is closed.
    for (lines, refused) in [(32, false), (33, true), (101, true)] {
        let mut stream = TcpStream::connect(rig.server.local_addr()).await.unwrap();
        // `host`, `lines - 2` more, `connection`.
        let many = (2..lines).map(|i| format!("x-h{i}: v\r\n")).collect::<String>();
        let head = format!("POST /daglo/x HTTP/1.1\r\nhost: x\r\n{many}connection: close\r\n\r\n");
        let _ = stream.write_all(head.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer);
        if refused {
            assert!(
                text.is_empty() || text.starts_with("HTTP/1.1 431"),
                "{lines} lines: {text}"
            );
        } else {
            assert!(text.starts_with("HTTP/1.1 404"), "{lines} lines: {text}");
        }
    }
}

#[tokio::test]
async fn a_credential_seen_once_cannot_change_the_transcript() {
    let rig = Rig::start(
        Rig::sim_config().processing_time(Duration::from_millis(600)),
        |c| c,
    )
    .await;
    let (rid, ticket, options) = rig.submit("https://a.example/board.wav").await;
    let (url, name, value) = Rig::credential(&options);
    // Whoever saw the headers posts a final body before the real one.
    let forged = json!({"rid": rid.as_str(), "status": "transcribed",
        "sttResults": [{"transcript": "INJECTED approve the wire transfer"}]});
    let (status, _) = rig.post(&url, &[(&name, &value), JSON], forged.to_string()).await;
    assert_eq!(
        status, 200,
        "the credential is genuine, so the body is taken as a trigger"
    );
    let outcome = rig.wait(rid.clone(), ticket).await;
    let text = outcome.transcript().expect("the real transcript");
    assert!(!text.contains("INJECTED"), "{text}");
    let Some(record) = rig.sim.job(&rid) else {
        panic!("the emulator knows the job")
    };
    assert!(record.status_requests >= 1, "the outcome came from the service");
}

#[tokio::test]
async fn trusting_bodies_is_a_choice_that_skips_the_request() {
    let rig = Rig::start(Rig::sim_config(), |c| c.finals(FinalCallbacks::TrustBody)).await;
    let (rid, ticket, _) = rig.submit("https://a.example/a.wav").await;
    let outcome = rig.wait(rid.clone(), ticket).await;
    assert!(matches!(outcome, Outcome::Transcript { .. }));
    assert_eq!(rig.sim.job(&rid).unwrap().status_requests, 0);
}

#[tokio::test]
async fn pending_and_gone_jobs_refuse_a_bogus_credential_alike() {
    let rig = Rig::start(Rig::sim_config(), |c| c).await;
    let (_, pending, options) = rig.submit("https://a.example/a.wav").await;
    let (pending_url, name, value) = Rig::credential(&options);
    let (_, gone, gone_options) = rig.submit("https://a.example/b.wav").await;
    let (gone_url, _, gone_value) = Rig::credential(&gone_options);
    drop(gone);
    let bogus = format!("Bearer {}", "A".repeat(43));
    let body = json!({"status": "transcribing", "progress": 50}).to_string();
    let on_pending = rig
        .post(&pending_url, &[(&name, &bogus), JSON], body.clone())
        .await;
    let on_gone = rig.post(&gone_url, &[(&name, &bogus), JSON], body.clone()).await;
    assert_eq!((on_pending.0, on_gone.0), (401, 401), "no oracle of liveness");
    assert_eq!(on_pending.1, on_gone.1);
    // The gone job's own credential is still accepted, and changes nothing.
    let late = rig
        .post(&gone_url, &[(&name, &gone_value), JSON], body.clone())
        .await;
    assert_eq!((late.0, late.1["status"].as_str()), (200, Some("ignored")));
    // And a pending job's credential does not open the gone one.
    let crossed = rig.post(&gone_url, &[(&name, &value), JSON], body).await;
    assert_eq!(crossed.0, 401);
    drop(pending);
}

#[tokio::test]
async fn only_the_receiver_path_is_answered() {
    let rig = Rig::start(Rig::sim_config(), |c| c).await;
    let (_, ticket, options) = rig.submit("https://a.example/a.wav").await;
    let (url, name, value) = Rig::credential(&options);
    let key = url.rsplit('/').next().unwrap();
    let base = format!("http://{}", rig.server.local_addr());
    let body = json!({"status": "uploaded", "progress": 5}).to_string();
    for wrong in [
        format!("{base}/x/y/{key}"),
        format!("{base}/{key}"),
        format!("{base}/daglo/extra/{key}"),
        format!("{base}/daglo{key}"),
    ] {
        let (status, _) = rig.post(&wrong, &[(&name, &value), JSON], body.clone()).await;
        assert_eq!(status, 404, "{wrong}");
    }
    assert_eq!(rig.post(&url, &[(&name, &value), JSON], body).await.0, 200);
    drop(ticket);
}

#[tokio::test]
async fn a_method_other_than_post_says_what_is_allowed() {
    let rig = Rig::start(Rig::sim_config(), |c| c).await;
    let (_, ticket, options) = rig.submit("https://a.example/a.wav").await;
    let (url, _, _) = Rig::credential(&options);
    let answer = rig.http.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 405);
    assert_eq!(answer.headers()["allow"], "POST");
    drop(ticket);
}

#[tokio::test]
async fn decode_errors_name_the_path_never_the_body_s_words() {
    let rig = Rig::start(Rig::sim_config(), |c| c).await;
    let (_, ticket, options) = rig.submit("https://a.example/a.wav").await;
    let (url, name, value) = Rig::credential(&options);
    let body = json!({"status": {"secret": "merger acme"}, "progress": 5});
    let (status, answer) = rig.post(&url, &[(&name, &value), JSON], body.to_string()).await;
    assert_eq!(
        status, 400,
        "a body without a readable status cannot move the job"
    );
    let reason = answer["error"].as_str().unwrap();
    assert!(reason.contains("`status`"), "{reason}");
    assert!(!reason.contains("merger"), "{reason}");
    drop(ticket);
}

#[tokio::test]
async fn a_trusted_final_whose_results_cannot_be_read_is_fetched_not_lost() {
    let rig = Rig::start(
        Rig::sim_config().processing_time(Duration::from_millis(400)),
        |c| c.finals(FinalCallbacks::TrustBody),
    )
    .await;
    let (rid, ticket, options) = rig.submit("https://a.example/a.wav").await;
    let (url, name, value) = Rig::credential(&options);
    let odd = json!({"rid": rid.as_str(), "status": "transcribed", "sttResults": "not a list"});
    assert_eq!(
        rig.post(&url, &[(&name, &value), JSON], odd.to_string()).await.0,
        200
    );
    let outcome = rig.wait(rid.clone(), ticket).await;
    assert!(
        matches!(&outcome, Outcome::Transcript { body, .. } if !body.full_transcript().is_empty()),
        "{outcome:?}"
    );
    assert!(
        rig.sim.job(&rid).unwrap().status_requests >= 1,
        "fetched from the service"
    );
}

#[tokio::test]
async fn a_late_unknown_status_cannot_move_the_bar_back() {
    let rig = Rig::start(Rig::sim_config().processing_time(Duration::from_secs(30)), |c| c).await;
    let (_, ticket, options) = rig.submit("https://a.example/a.wav").await;
    let (url, name, value) = Rig::credential(&options);
    let headers = [(name.as_str(), value.as_str()), JSON];
    let post = |body: serde_json::Value| rig.post(&url, &headers, body.to_string());
    assert_eq!(
        post(json!({"status": "post_processing", "progress": 90})).await.1["status"],
        "accepted"
    );
    assert_eq!(post(json!({"status": "queued"})).await.1["status"], "stale");
    assert_eq!(
        post(json!({"status": "uploaded", "progress": 5})).await.1["status"],
        "stale"
    );
    drop(ticket);
}

#[tokio::test]
async fn callbacks_before_the_submit_answer_cannot_lock_out_the_real_rid() {
    let rig = Rig::start(
        Rig::sim_config().processing_time(Duration::from_millis(400)),
        |c| c,
    )
    .await;
    let mut options = daglo_core::JobOptions::default();
    let ticket = daglo_core::ResultDelivery::prepare(&rig.callbacks, &mut options)
        .await
        .unwrap();
    let (url, name, value) = Rig::credential(&options);
    // Before the submit: a callback naming a rid that is not the job's.
    let early = json!({"rid": "not-the-real-one", "status": "transcribing", "progress": 50});
    assert_eq!(
        rig.post(&url, &[(&name, &value), JSON], early.to_string())
            .await
            .0,
        200
    );
    let rid = rig
        .client
        .submit_url("https://a.example/a.wav", &options)
        .await
        .unwrap()
        .rid;
    // The service's own callbacks, carrying the real rid, are taken and the job completes.
    let outcome = ticket
        .wait(rid.clone(), &daglo_core::IgnoreProgress)
        .await
        .unwrap();
    assert!(
        matches!(&outcome, Outcome::Transcript { rid: r, .. } if *r == rid),
        "{outcome:?}"
    );
    let rejected = rig
        .sim
        .callback_log()
        .into_iter()
        .filter(|c| c.rid == rid && c.answer == Ok(400))
        .count();
    assert_eq!(rejected, 0, "no callback of the real job was refused");
}

#[tokio::test]
async fn the_body_memory_budget_holds_concurrent_maximum_bodies_back() {
    // One maximum body at a time: a second waits for the first, within the body timeout.
    let client = support::unused_client();
    let (callbacks, server) = CallbackDelivery::loopback(client, |c: CallbackConfig| {
        c.max_body_bytes(1 << 20)
            .max_body_memory(1 << 20)
            .finals(FinalCallbacks::TrustBody)
    })
    .await
    .unwrap();
    let mut jobs = Vec::new();
    for _ in 0..4 {
        let mut options = daglo_core::JobOptions::default();
        let ticket = daglo_core::ResultDelivery::prepare(&callbacks, &mut options)
            .await
            .unwrap();
        jobs.push((ticket, Rig::credential(&options)));
    }
    let text = "word ".repeat((1 << 20) / 5 - 40);
    let body = json!({"status": "transcribed", "sttResults": [{"transcript": text}]}).to_string();
    assert!(body.len() <= 1 << 20);
    let http = reqwest::Client::new();
    let posts = jobs.iter().map(|(_, (url, name, value))| {
        let (http, body) = (http.clone(), body.clone());
        async move { support::post(&http, url, &[(name, value), JSON], body).await.0 }
    });
    let answers = futures_util::future::join_all(posts).await;
    assert_eq!(answers, vec![200; 4], "all taken, one after another");
    drop(server);
}

/// A loopback receiver taking bodies of up to 1 MiB that may take 30 s to arrive, with the
/// default budget of four maximum bodies.
async fn slow_bodies_receiver() -> (CallbackDelivery, daglo_callback::CallbackServer) {
    CallbackDelivery::loopback(support::unused_client(), |c: CallbackConfig| {
        c.max_body_bytes(1 << 20).body_timeout(Duration::from_secs(30))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_jobs_progress_callback_is_not_held_behind_its_own_trickling_body() {
    tokio::time::timeout(Duration::from_secs(60), async {
        // The job's turn is held by a body that never finishes.
        let (callbacks, server) = slow_bodies_receiver().await;
        let mut options = daglo_core::JobOptions::default();
        let _ticket = daglo_core::ResultDelivery::prepare(&callbacks, &mut options)
            .await
            .unwrap();
        let (url, name, value) = Rig::credential(&options);
        let path = url::Url::parse(&url).unwrap().path().to_owned();
        // A maximum body that never comes. `100 Continue` is sent once the receiver reads the
        // body, which it does holding the job's turn.
        let mut trickling = TcpStream::connect(server.local_addr()).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\n{name}: {value}\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n",
            1 << 20
        );
        trickling.write_all(head.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("100 Continue") {
            let mut buffer = [0u8; 256];
            let n = trickling.read(&mut buffer).await.unwrap();
            assert!(n > 0, "closed before 100 Continue: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buffer[..n]);
        }
        // A small body of the same job takes no turn: answered now, not after the 30 s.
        let http = reqwest::Client::new();
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            support::post(
                &http,
                &url,
                &[(name.as_str(), value.as_str()), JSON],
                json!({"status": "transcribing", "progress": 30}).to_string(),
            ),
        )
        .await
        .expect("the job's small callback is answered while its large body trickles");
        assert_eq!(answer.0, 200);
        drop(trickling);
        drop(server);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test]
async fn one_jobs_credential_cannot_take_the_other_jobs_share_of_body_memory() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let (callbacks, server) = slow_bodies_receiver().await;
        let mut jobs = Vec::new();
        for _ in 0..2 {
            let mut options = daglo_core::JobOptions::default();
            let ticket = daglo_core::ResultDelivery::prepare(&callbacks, &mut options)
                .await
                .unwrap();
            jobs.push((ticket, Rig::credential(&options)));
        }
        let (leaked_url, name, value) = jobs[0].1.clone();
        let path = url::Url::parse(&leaked_url).unwrap().path().to_owned();
        // A leaked credential trickles ten maximum bodies at once and never finishes them.
        let mut trickling = Vec::new();
        for _ in 0..10 {
            let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\n{name}: {value}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{{",
                1 << 20
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            trickling.push(stream);
        }
        // The other job's callback is not held back by them.
        let (url, name, value) = &jobs[1].1;
        let http = reqwest::Client::new();
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            support::post(
                &http,
                url,
                &[(name, value), JSON],
                json!({"status": "transcribing", "progress": 30}).to_string(),
            ),
        )
        .await
        .expect("the other job's callback is answered while the leaked credential trickles");
        assert_eq!(answer.0, 200);
        println!("answered in {:?} beside ten trickled bodies of one job", started.elapsed());
        drop(trickling);
        drop(server);
    })
    .await
    .expect("within the deadline");
}

/// A sender that keeps its connections alive and sends each callback once, as Daglo does, with
/// more connections than the receiver's cap: at the cap the receiver makes room by closing a
/// busy connection after its answer (which says `connection: close`) or one idle for a while,
/// never one its sender may be reusing that instant — which used to lose about one callback in
/// a hundred ("connection closed before message completed").
#[tokio::test]
async fn a_sender_reusing_connections_past_the_cap_loses_no_callback() {
    let rig = rig(8, Duration::from_secs(30)).await;
    let (_rid, ticket, options) = rig.submit("https://a.example/a.wav").await;
    let (url, name, value) = Rig::credential(&options);
    let http = reqwest::Client::new();
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..48u32 {
        let (http, url, name, value) = (http.clone(), url.clone(), name.clone(), value.clone());
        senders.spawn(async move {
            let mut failures = Vec::new();
            for n in 0..40u32 {
                let body = json!({"status": "transcribing", "progress": (sender + n) % 90}).to_string();
                let sent = http
                    .post(&url)
                    .header(&name, &value)
                    .header(JSON.0, JSON.1)
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(answer) if answer.status() == 200 => {}
                    Ok(answer) => failures.push(format!("answered {}", answer.status())),
                    Err(e) => failures.push(format!("{e:?}")),
                }
            }
            failures
        });
    }
    let failures = tokio::time::timeout(Duration::from_secs(120), async {
        let mut all = Vec::new();
        while let Some(failures) = senders.join_next().await {
            all.extend(failures.unwrap());
        }
        all
    })
    .await
    .expect("every callback answered within two minutes");
    assert!(
        failures.is_empty(),
        "{} of 1920 callbacks lost: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    drop(ticket);
}

/// A server with a header timeout of `HEAD_TIMEOUT` whose one route reads the whole body, then
/// waits `answer_after` before answering `200` — a slow upload or a slow answer, in flight far
/// longer than the header timeout.
const HEAD_TIMEOUT: Duration = Duration::from_millis(300);

fn slow_answers(answer_after: Duration) -> daglo_callback::CallbackServer {
    use http_body_util::BodyExt;
    let service = tower::service_fn(move |request: http::Request<hyper::body::Incoming>| async move {
        let body = request.into_body().collect().await?.to_bytes();
        tokio::time::sleep(answer_after).await;
        Ok::<_, hyper::Error>(http::Response::new(http_body_util::Full::new(body)))
    });
    with_head_timeout(service)
}

/// `service` behind the receiver's server, with a header timeout of `HEAD_TIMEOUT`.
fn with_head_timeout<S, B>(service: S) -> daglo_callback::CallbackServer
where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let limits = daglo_callback::ConnectionLimits::default().header_timeout(HEAD_TIMEOUT);
    daglo_callback::CallbackServer::serve(listener, service, limits).unwrap()
}

/// Reads until the server closes the connection (within a deadline); what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server closed the connection")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_request_head_that_never_completes_is_cut_at_the_header_timeout() {
    let server = slow_answers(Duration::ZERO);
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let started = std::time::Instant::now();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert_eq!(answer, "", "closed without an answer");
    // Never before the timeout (the watcher counts whole milliseconds).
    assert!(started.elapsed() + Duration::from_millis(5) >= HEAD_TIMEOUT);
}

#[tokio::test]
async fn a_kept_alive_connection_that_sends_no_next_request_is_closed_at_the_header_timeout() {
    let server = slow_answers(Duration::ZERO);
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nok")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
}

#[tokio::test]
async fn a_body_or_an_answer_slower_than_the_header_timeout_is_not_cut() {
    // The answer comes three header timeouts after the request.
    let server = slow_answers(HEAD_TIMEOUT * 3);
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 6\r\n\r\nfir")
        .await
        .unwrap();
    // The rest of the body two header timeouts later: the request is in flight meanwhile.
    tokio::time::sleep(HEAD_TIMEOUT * 2).await;
    stream.write_all(b"st!").await.unwrap();
    // Then the connection idles and is closed: the answer came first, whole.
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("first!"), "{answer}");
}

#[tokio::test]
async fn a_streamed_answer_longer_than_the_header_timeout_is_not_cut() {
    // An event stream, say: its first part at once, its last three header timeouts later.
    let service = tower::service_fn(|_request: http::Request<hyper::body::Incoming>| async {
        let parts = futures_util::stream::unfold(0u8, |part| async move {
            match part {
                0 => Some((
                    Ok::<_, std::convert::Infallible>(http_body::Frame::data(bytes::Bytes::from("first "))),
                    1,
                )),
                1 => {
                    tokio::time::sleep(HEAD_TIMEOUT * 3).await;
                    Some((Ok(http_body::Frame::data(bytes::Bytes::from("last"))), 2))
                }
                _ => None,
            }
        });
        Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::StreamBody::new(parts)))
    });
    let server = with_head_timeout(service);
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    // The stream ends whole (chunked: its last chunk and the terminator), then the idle
    // connection is closed.
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("first ") && answer.contains("last"), "{answer}");
    assert!(answer.ends_with("0\r\n\r\n"), "{answer}");
}
