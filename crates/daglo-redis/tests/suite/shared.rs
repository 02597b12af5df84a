//! The shared pieces against a real Redis: the registry passes the same checks as the in-memory
//! one, a restarted waiter gets its outcome, the journal is readable by any replica, and a 429
//! one process sees slows the budget of all.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use daglo::callback::{CallbackConfig, CallbackDelivery, FinalCallbacks, JobRegistry};
use daglo::client::RateBudget;
use daglo::delivery::IgnoreProgress;
use daglo::journal::{Entry, EntryState, Intent, Journal};
use daglo::redis::{BudgetOptions, RedisBudget, RedisJournal, RedisRegistry};
use daglo::sim::{SimConfig, Simulator};
use daglo::{JobOptions, Outcome, ResultDelivery, Rid};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_registry_passes_the_registry_conformance_checks() {
    let Some(redis) = support::redis("the_redis_registry_passes_the_registry_conformance_checks").await
    else {
        return;
    };
    let url = redis.url.clone();
    let store = support::store(&url, &support::namespace("conformance")).await;
    let registry = Arc::new(RedisRegistry::new(store).await);
    assert!(registry.subscribed());
    daglo_callback::conformance::check_registry(registry.clone(), "redis").await;
    assert_eq!(
        registry.count().await.unwrap(),
        0,
        "everything the checks made is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_redis_replicas_pass_the_replica_conformance_checks() {
    let Some(redis) = support::redis("two_redis_replicas_pass_the_replica_conformance_checks").await else {
        return;
    };
    let namespace = support::namespace("replica-conformance");
    let one = Arc::new(RedisRegistry::new(support::store(&redis.url, &namespace).await).await);
    let other = Arc::new(RedisRegistry::new(support::store(&redis.url, &namespace).await).await);
    assert!(one.subscribed() && other.subscribed());
    let deadline = tokio::time::timeout(
        Duration::from_secs(60),
        daglo_callback::conformance::check_replicas(one.clone(), other.clone(), "redis"),
    );
    deadline
        .await
        .expect("the replica checks finished within a minute");
    // The same checks with the roles swapped: each replica is tried stale and fresh.
    daglo_callback::conformance::check_replicas(other.clone(), one.clone(), "redis-swapped").await;
    assert_eq!(
        one.count().await.unwrap(),
        0,
        "everything the checks made is gone"
    );
}

/// Calls of each command since the server started, from `INFO commandstats` (commands a script
/// runs count too).
async fn command_calls(url: &str) -> std::collections::HashMap<String, u64> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// Two replicas' registries on a fresh namespace of `url`, and a job registered on the first
/// for a minute.
async fn two_replicas_with_a_job(
    url: &str,
    test: &str,
) -> (RedisRegistry, RedisRegistry, daglo::callback::JobKey) {
    let namespace = support::namespace(test);
    let first = RedisRegistry::new(support::store(url, &namespace).await).await;
    let second = RedisRegistry::new(support::store(url, &namespace).await).await;
    let key = daglo::callback::JobKey::new("job");
    let later = Instant::now() + Duration::from_secs(60);
    first
        .register(key.clone(), daglo::callback::Registered::new(None), later)
        .await
        .unwrap();
    (first, second, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_callback_costs_one_redis_round_trip() {
    // A private server: nothing else's commands in its counts.
    let Some(redis) = support::OwnRedis::start("an_accepted_callback_costs_one_redis_round_trip").await
    else {
        return;
    };
    let url = redis.url();
    let (one, other, key) = two_replicas_with_a_job(&url, "round-trips").await;
    // What the receiver does for each callback: look the job up (for the credential), apply.
    async fn callback(
        registry: &RedisRegistry,
        key: &daglo::callback::JobKey,
        percent: u32,
    ) -> Option<daglo::callback::Applied> {
        let mut body = daglo::StatusBody::new(daglo::models::Status::Transcribing);
        body.progress = Some(percent);
        assert!(registry.lookup(key).await.unwrap().is_some());
        registry.apply(key, body).await.unwrap()
    }
    // The first callback on the replica that did not register it (it may not have heard of
    // the job yet), then ten more.
    assert_eq!(
        callback(&other, &key, 1).await,
        Some(daglo::callback::Applied::Progress)
    );
    let before = command_calls(&url).await;
    for percent in 2..12 {
        assert_eq!(
            callback(&other, &key, percent).await,
            Some(daglo::callback::Applied::Progress)
        );
    }
    let after = command_calls(&url).await;
    let mut delta: Vec<(String, u64)> = after
        .iter()
        .map(|(name, calls)| (name.clone(), calls - before.get(name).copied().unwrap_or(0)))
        .filter(|(name, calls)| *calls > 0 && name != "info")
        .collect();
    delta.sort();
    // One EVALSHA each — the compare-and-set script, whose own HGET, HSET and PUBLISH Redis
    // counts too — and nothing else: no lookup, no read.
    assert_eq!(
        delta,
        [("evalsha", 10), ("hget", 10), ("hset", 10), ("publish", 10)]
            .map(|(name, calls)| (name.to_owned(), calls))
            .to_vec(),
        "commands for ten accepted callbacks"
    );
    // A callback on the replica whose knowledge is now stale still applies correctly: the
    // compare-and-set hands back the stored state (a second round trip, not a wrong answer).
    assert_eq!(
        callback(&one, &key, 5).await,
        Some(daglo::callback::Applied::Stale)
    );
    assert_eq!(
        callback(&one, &key, 50).await,
        Some(daglo::callback::Applied::Progress)
    );
    one.remove(&key).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_group_commit_takes_its_writes_in_order_and_publishes_them_once() {
    let Some(redis) =
        support::redis("one_group_commit_takes_its_writes_in_order_and_publishes_them_once").await
    else {
        return;
    };
    let namespace = support::namespace("group-commit");
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (one, two, gone) = (
        format!("{namespace}:cb:one"),
        format!("{namespace}:cb:two"),
        format!("{namespace}:cb:gone"),
    );
    for hash in [&one, &two] {
        let () = redis::cmd("HSET")
            .arg(hash)
            .arg(&["reg", "", "ver", "1", "view", "{}"])
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let channel = format!("{namespace}:cb:changes");
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(&channel).await.unwrap();
    let script = redis::Script::new(include_str!("../../src/scripts/cas_views.lua"));
    let mut batch = script.prepare_invoke();
    // The wake-up carries states of up to 20 bytes; a longer one goes by name (`-`).
    batch.arg(&channel).arg(20);
    let (three, long) = (
        format!("{namespace}:cb:three"),
        r#"{"percent":5,"note":"longer"}"#,
    );
    let () = redis::cmd("HSET")
        .arg(&three)
        .arg(&["reg", "", "ver", "1", "view", "{}"])
        .query_async(&mut conn)
        .await
        .unwrap();
    // Two writes to `one` from the same version, one to `two`, one to a job that is not there,
    // one too long to publish.
    for (hash, key, state) in [
        (&one, "one", r#"{"percent":1}"#),
        (&one, "one", r#"{"percent":2}"#),
        (&two, "two", r#"{"percent":3}"#),
        (&gone, "gone", r#"{"percent":4}"#),
        (&three, "three", long),
    ] {
        batch.key(hash).arg(1).arg(state).arg(key);
    }
    let replies: Vec<(i64, u64, String)> =
        tokio::time::timeout(Duration::from_secs(10), batch.invoke_async(&mut conn))
            .await
            .expect("Redis answered within 10 s")
            .unwrap();
    assert_eq!(
        replies,
        vec![
            (2, 0, String::new()),
            // The second write to `one` meets the first one's version, and gets its state back.
            (-2, 2, r#"{"percent":1}"#.to_owned()),
            (2, 0, String::new()),
            (-1, 0, String::new()),
            (2, 0, String::new()),
        ]
    );
    let stored: String = redis::cmd("HGET")
        .arg(&three)
        .arg("view")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored, long, "the long state is stored whole");
    let mut messages = pubsub.on_message();
    let message = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::StreamExt::next(&mut messages),
    )
    .await
    .expect("the wake-up came within 10 s")
    .expect("subscribed");
    assert_eq!(
        message.get_payload::<String>().unwrap(),
        "one\n2\n{\"percent\":1}\ntwo\n2\n{\"percent\":3}\nthree\n2\n-",
        "one message with every change, the long one by name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callbacks_on_two_replicas_land_in_order_whatever_the_batches() {
    let Some(redis) =
        support::redis("concurrent_callbacks_on_two_replicas_land_in_order_whatever_the_batches").await
    else {
        return;
    };
    let namespace = support::namespace("concurrent");
    let one = RedisRegistry::new(support::store(&redis.url, &namespace).await).await;
    let other = RedisRegistry::new(support::store(&redis.url, &namespace).await).await;
    let later = Instant::now() + Duration::from_secs(60);
    let keys: Vec<_> = (0..20)
        .map(|i| daglo::callback::JobKey::new(format!("job-{i}")))
        .collect();
    for key in &keys {
        one.register(key.clone(), daglo::callback::Registered::new(None), later)
            .await
            .unwrap();
    }
    // Every job gets progress 1..=30 from both replicas at once, then a final from each: the
    // writes queue up and go in batches of whatever size, with conflicts inside and across them.
    async fn progress(registry: &RedisRegistry, key: daglo::callback::JobKey, percent: u32) {
        let mut body = daglo::StatusBody::new(daglo::models::Status::Transcribing);
        body.progress = Some(percent);
        registry.apply(&key, body).await.unwrap();
    }
    let mut work = Vec::new();
    for percent in 1..=30 {
        for key in &keys {
            let registry = if percent % 2 == 0 { &one } else { &other };
            work.push(progress(registry, key.clone(), percent));
        }
    }
    tokio::time::timeout(Duration::from_secs(60), futures_util::future::join_all(work))
        .await
        .expect("600 callbacks applied within a minute");
    for key in &keys {
        let view = other.subscribe(key).await.unwrap().expect("registered");
        assert_eq!(
            view.borrow().percent,
            Some(30),
            "{key}: the highest progress stays"
        );
    }
    let mut finals = Vec::new();
    for key in &keys {
        for registry in [&one, &other] {
            let key = key.clone();
            finals.push(async move {
                registry
                    .apply(&key, daglo::StatusBody::new(daglo::models::Status::Transcribed))
                    .await
                    .unwrap()
            });
        }
    }
    let finals = tokio::time::timeout(Duration::from_secs(60), futures_util::future::join_all(finals))
        .await
        .expect("the finals applied within a minute");
    for (key, pair) in keys.iter().zip(finals.chunks(2)) {
        let won = pair
            .iter()
            .filter(|applied| **applied == Some(daglo::callback::Applied::Final))
            .count();
        assert_eq!(won, 1, "{key}: exactly one final wins ({pair:?})");
        let view = one.subscribe(key).await.unwrap().expect("registered");
        assert!(view.borrow().final_body.is_some(), "{key}: the final is stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_on_one_replica_wakes_the_waiter_on_another() {
    let Some(redis) = support::redis("a_change_made_on_one_replica_wakes_the_waiter_on_another").await else {
        return;
    };
    let (here, there, key) = two_replicas_with_a_job(&redis.url, "wake").await;
    let mut view = here.subscribe(&key).await.unwrap().unwrap();
    let body = daglo::StatusBody::new(daglo::models::Status::Transcribed);
    assert_eq!(
        there.apply(&key, body).await.unwrap(),
        Some(daglo::callback::Applied::Final)
    );
    tokio::time::timeout(Duration::from_secs(5), view.wait_for(|v| v.final_body.is_some()))
        .await
        .expect("woken within the timeout")
        .expect("channel open");
    there.remove(&key).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_too_long_to_publish_still_reaches_the_waiter_on_another_replica() {
    let Some(redis) =
        support::redis("a_final_too_long_to_publish_still_reaches_the_waiter_on_another_replica").await
    else {
        return;
    };
    let (here, there, key) = two_replicas_with_a_job(&redis.url, "long-final").await;
    let mut view = here.subscribe(&key).await.unwrap().unwrap();
    // Progress on the other replica first: short states come with the wake-up.
    let mut progress = daglo::StatusBody::new(daglo::models::Status::Transcribing);
    progress.progress = Some(40);
    there.apply(&key, progress).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), view.wait_for(|v| v.percent == Some(40)))
        .await
        .expect("woken within the timeout")
        .expect("channel open");
    // A final whose transcript is far longer than a wake-up carries (tens of KiB).
    let transcript = "word ".repeat(10_000);
    let mut body = daglo::StatusBody::new(daglo::models::Status::Transcribed);
    body.extra
        .insert("transcript".to_owned(), serde_json::json!(transcript));
    assert_eq!(
        there.apply(&key, body).await.unwrap(),
        Some(daglo::callback::Applied::Final)
    );
    let seen = tokio::time::timeout(Duration::from_secs(5), view.wait_for(|v| v.final_body.is_some()))
        .await
        .expect("woken within the timeout")
        .expect("channel open")
        .clone();
    assert_eq!(
        seen.final_body.unwrap().extra.get("transcript"),
        Some(&serde_json::json!(transcript)),
        "the waiter gets the whole final, read from Redis"
    );
    // A late duplicate on the replica that only heard the final's name is still a duplicate.
    assert_eq!(
        here.apply(&key, daglo::StatusBody::new(daglo::models::Status::Transcribed))
            .await
            .unwrap(),
        Some(daglo::callback::Applied::Duplicate)
    );
    there.remove(&key).await.unwrap();
}

/// The emulator and a client for it (rate limit off: these tests are about delivery).
async fn emulator(processing: Duration) -> (Simulator, daglo::Client) {
    let sim = Simulator::start(SimConfig::default().rate_limit(None).processing_time(processing))
        .await
        .unwrap();
    let client = daglo::sim::client(&sim).unwrap();
    (sim, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_restarted_mid_job_still_gets_its_outcome() {
    let Some(redis) = support::redis("a_waiter_restarted_mid_job_still_gets_its_outcome").await else {
        return;
    };
    let url = redis.url.clone();
    let namespace = support::namespace("restart");
    let (sim, client) = emulator(Duration::from_millis(300)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}/daglo", listener.local_addr().unwrap());
    let config = || {
        CallbackConfig::new(&public_url)
            .unwrap()
            .key_secret(daglo::callback::Secret::new(
                "one secret for every replica, at least 32 bytes long",
            ))
            .finals(FinalCallbacks::TrustBody)
    };

    // The replica that prepares the job; its receiver stays up (another replica's would do).
    let registry = Arc::new(RedisRegistry::new(support::store(&url, &namespace).await).await);
    let first = CallbackDelivery::with_registry(client.clone(), config(), registry).unwrap();
    let server = first.serve(listener).unwrap();
    let mut options = JobOptions::default();
    let ticket = first.prepare(&mut options).await.unwrap();
    let job_key = ticket.job_key().unwrap().to_owned();
    let rid = client
        .submit_url("https://example.com/meeting.wav", &options)
        .await
        .unwrap()
        .rid;
    // The waiting process goes away before the job ends: its wait and its delivery are dropped.
    let waiting = tokio::spawn({
        let rid = rid.clone();
        async move { ticket.wait(rid, &IgnoreProgress).await }
    });
    waiting.abort();
    let _ = waiting.await;
    drop(first);
    sim.callbacks_done(&rid).await;

    // Restarted: a new delivery on the same Redis resumes the job by its key and rid, and gets
    // the final callback that arrived while it was down.
    let registry = Arc::new(RedisRegistry::new(support::store(&url, &namespace).await).await);
    let second = CallbackDelivery::with_registry(client.clone(), config(), registry).unwrap();
    let outcome = second
        .resume_job(&job_key)
        .unwrap()
        .wait(rid.clone(), &IgnoreProgress)
        .await
        .unwrap();
    assert!(
        matches!(&outcome, Outcome::Transcript { rid: r, .. } if *r == rid),
        "{outcome:?}"
    );
    assert_eq!(
        second.registered().await.unwrap(),
        0,
        "the outcome taken, the job is forgotten"
    );
    // A key this deployment never minted is refused with a typed error.
    assert!(matches!(
        second.resume_job("not-a-key"),
        Err(daglo::DeliveryError::Prepare { .. })
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn any_replica_recovers_the_pending_jobs_of_another() {
    let Some(redis) = support::redis("any_replica_recovers_the_pending_jobs_of_another").await else {
        return;
    };
    let url = redis.url.clone();
    let namespace = support::namespace("journal");
    let one = RedisJournal::new(support::store(&url, &namespace).await, "batch");
    let pending = one
        .intend(Intent::new("a.wav", "sha256:a", "polling"))
        .await
        .unwrap();
    one.submitted(pending, &Rid::new("r-a")).await.unwrap();
    let done = one
        .intend(Intent::new("b.wav", "sha256:b", "polling"))
        .await
        .unwrap();
    one.submitted(done, &Rid::new("r-b")).await.unwrap();
    one.finished(done, &daglo_core::OutcomeKind::Transcript, Some("out/b.txt"))
        .await
        .unwrap();
    let uncertain = one
        .intend(Intent::new("c.wav", "sha256:c", "callback"))
        .await
        .unwrap();
    let refused = one
        .intend(Intent::new("d.wav", "sha256:d", "callback"))
        .await
        .unwrap();
    one.not_submitted(refused, "400: bad options").await.unwrap();

    let other = RedisJournal::new(support::store(&url, &namespace).await, "batch");
    let recovery = other.recover().await.unwrap();
    let ids = |entries: &[Entry]| entries.iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(&recovery.pending), vec![pending]);
    assert_eq!(
        recovery.pending[0].state,
        EntryState::Submitted { rid: Rid::new("r-a") }
    );
    assert_eq!(recovery.pending[0].intent.input, "a.wav");
    assert_eq!(ids(&recovery.uncertain), vec![uncertain]);
    let entries = other.entries().await.unwrap();
    assert_eq!(entries.len(), 4, "oldest first, all of them");
    assert_eq!(
        entries[1].state,
        EntryState::Finished {
            rid: Rid::new("r-b"),
            outcome: daglo_core::OutcomeKind::Transcript,
            result: Some("out/b.txt".to_owned()),
        }
    );
    assert_eq!(
        entries[3].state,
        EntryState::NotSubmitted {
            reason: "400: bad options".to_owned()
        }
    );
    let latest = other
        .latest_for("b.wav")
        .await
        .unwrap()
        .expect("b.wav has an entry");
    assert_eq!(latest.id, done);
    assert!(other.latest_for("z.wav").await.unwrap().is_none());
    // Another journal name is another journal; an unknown entry is a typed error.
    assert!(
        RedisJournal::new(support::store(&url, &namespace).await, "other")
            .entries()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        other
            .submitted(daglo::journal::EntryId(999), &Rid::new("x"))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_seen_by_one_process_slows_every_process_on_the_account() {
    let Some(redis) = support::redis("a_429_seen_by_one_process_slows_every_process_on_the_account").await
    else {
        return;
    };
    let url = redis.url.clone();
    let namespace = support::namespace("cut");
    let options = BudgetOptions::default();
    let one = RedisBudget::new(
        &support::store(&url, &namespace).await,
        "acct",
        "status",
        options.clone(),
    );
    let two = RedisBudget::new(
        &support::store(&url, &namespace).await,
        "acct",
        "status",
        options.clone(),
    );
    acquire_slot(&two).await;
    assert_eq!(two.current_rate(), 16.0);
    one.on_rate_limited(Instant::now());
    acquire_slot(&one).await;
    acquire_slot(&two).await;
    assert_eq!(one.current_rate(), 8.0, "the process that saw the 429");
    assert_eq!(two.current_rate(), 8.0, "and the one that did not");
    assert!(!one.fallen_back() && !two.fallen_back());
}

/// Takes one slot of `budget`, waiting as it says; fails after 5 s.
async fn acquire_slot(budget: &RedisBudget) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match budget.try_acquire(Instant::now()) {
            Ok(()) => return,
            Err(wait) => {
                assert!(Instant::now() < deadline, "no slot within 5 s");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_journal_passes_the_journal_conformance_checks_and_claims_a_key_once() {
    let Some(redis) =
        support::redis("the_redis_journal_passes_the_journal_conformance_checks_and_claims_a_key_once").await
    else {
        return;
    };
    let url = redis.url.clone();
    let namespace = support::namespace("journal-conformance");
    let store = support::store(&url, &namespace).await;
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        daglo::journal::check_journal(&RedisJournal::new(store.clone(), "checks"), "redis").await;
        daglo::journal::check_job_log(&RedisJournal::new(store, "checks"), "redis").await;
        // Replicas racing for one key: one entry.
        let mut replicas = Vec::new();
        for _ in 0..4 {
            replicas.push(Arc::new(RedisJournal::new(
                support::store(&url, &namespace).await,
                "race",
            )));
        }
        for round in 0..10 {
            let key = format!("key-{round}");
            let claims = replicas.iter().map(|journal| {
                let (journal, key) = (journal.clone(), key.clone());
                tokio::spawn(async move {
                    daglo::journal::Journal::claim(
                        journal.as_ref(),
                        daglo::journal::Intent::new("a.wav", "d", "polling").with_key(Some(key)),
                    )
                    .await
                    .unwrap()
                })
            });
            let mut created = 0;
            for claim in claims {
                if matches!(claim.await.unwrap(), daglo::journal::Claim::Created(_)) {
                    created += 1;
                }
            }
            assert_eq!(created, 1, "round {round}: one entry per key");
        }
        // Replicas of one journal share its callback key secret (made once, by the first).
        let mut secrets = Vec::new();
        for replica in &replicas {
            secrets.push(
                daglo::journal::Journal::key_secret(replica.as_ref())
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        assert!(
            secrets.windows(2).all(|w| w[0] == w[1]),
            "one secret for every replica"
        );
        assert_eq!(secrets[0].len(), 32);
        let other = RedisJournal::new(support::store(&url, &namespace).await, "another-journal");
        assert_ne!(
            daglo::journal::Journal::key_secret(&other)
                .await
                .unwrap()
                .unwrap(),
            secrets[0],
            "another journal, another secret"
        );
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_transcribers_on_one_redis_journal_start_each_key_once() {
    let Some(redis) = support::redis("two_transcribers_on_one_redis_journal_start_each_key_once").await
    else {
        return;
    };
    let url = redis.url.clone();
    let namespace = support::namespace("jobs");
    tokio::time::timeout(std::time::Duration::from_secs(120), async {
        let sim = daglo::sim::Simulator::start(
            daglo::sim::SimConfig::default()
                .rate_limit(None)
                .processing_time(std::time::Duration::from_millis(300)),
        )
        .await
        .unwrap();
        let client = daglo::sim::client(&sim).unwrap();
        let replica = |store| {
            daglo::Transcriber::builder(client.clone())
                .journal(Arc::new(RedisJournal::new(store, "jobs")))
                .build()
        };
        let a = replica(support::store(&url, &namespace).await).await.unwrap();
        let b = replica(support::store(&url, &namespace).await).await.unwrap();
        let options = JobOptions::default();
        let mut ids = Vec::new();
        for round in 0..6 {
            let input = || {
                daglo::Input::url(format!("https://example.com/{round}.wav"))
                    .key(format!("meeting-{round}"))
                    .label("team", "sales")
            };
            let (x, y) = tokio::join!(a.start(input(), &options), b.start(input(), &options));
            let (x, y) = (x.unwrap(), y.unwrap());
            assert_eq!(x.id(), y.id(), "one key, one job");
            assert!(x.is_new() != y.is_new(), "exactly one replica submitted");
            ids.push(x.id());
        }
        assert_eq!(sim.jobs().len(), 6);
        for id in &ids {
            assert!(matches!(
                a.outcome(id).await,
                Ok(Outcome::Transcript { .. }) | Err(daglo::TranscribeError::ResultNotKept { .. })
            ));
        }
        // Both replicas list every job from the shared journal, filtered by label.
        let listed = b
            .jobs(daglo::jobs::JobFilter::default().label("team", "sales"))
            .await
            .unwrap();
        assert_eq!(listed.len(), 6);
        a.shutdown().await;
        b.shutdown().await;
    })
    .await
    .expect("within the deadline");
}
