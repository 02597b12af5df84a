//! Jobs you can ask about: start, look up, follow, restart — against the emulator.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use daglo::jobs::{DirResults, JobFilter};
use daglo::journal::{Journal, SqliteJournal};
use daglo::sim::{SimConfig, Simulator};
use daglo::{
    Client, Input, JobEvent, JobOptions, JobState, Outcome, StrategyConfig, TranscribeError, Transcriber,
};
use futures_util::StreamExt;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/standup.wav");
/// Every test's own limit: a busy machine is slow, a hung one fails here rather than never.
const DEADLINE: Duration = Duration::from_secs(120);

fn dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("daglo-jobs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn sim(processing: Duration) -> (Simulator, Client) {
    let sim = Simulator::start(SimConfig::default().rate_limit(None).processing_time(processing))
        .await
        .unwrap();
    let client = daglo::sim::client(&sim).unwrap();
    (sim, client)
}

fn polling(client: &Client) -> daglo::TranscriberBuilder {
    Transcriber::builder(client.clone()).delivery(support::fast_polling(client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_job_can_be_looked_up_followed_and_awaited_and_its_key_never_submits_twice() {
    tokio::time::timeout(DEADLINE, async {
        let (sim, client) = sim(Duration::from_millis(600)).await;
        let dir = dir("lifecycle");
        let journal = Arc::new(SqliteJournal::open(dir.join("jobs.sqlite")).unwrap());
        let transcriber = polling(&client).journal(journal.clone()).build().await.unwrap();
        let options = JobOptions::default();

        let job = transcriber
            .start(
                Input::file(SAMPLE).key("meeting-42").label("team", "sales"),
                &options,
            )
            .await
            .unwrap();
        assert!(job.is_new());
        let id = job.id();
        assert!(job.rid().is_some(), "start returns once the submit is answered");
        let snapshot = transcriber.job(&id).await.unwrap().expect("known");
        assert_eq!(snapshot.key.as_deref(), Some("meeting-42"));
        assert_eq!(snapshot.labels.get("team").map(String::as_str), Some("sales"));
        assert_eq!(snapshot.state, JobState::Running);

        let mut events = transcriber.events(&id);
        let again = transcriber
            .start(Input::file(SAMPLE).key("meeting-42"), &options)
            .await
            .unwrap();
        assert_eq!(again.id(), id);
        assert!(!again.is_new());
        let running = transcriber
            .jobs(
                JobFilter::default()
                    .state(JobState::Running)
                    .label("team", "sales"),
            )
            .await
            .unwrap();
        assert!(running.iter().any(|s| s.key.as_deref() == Some("meeting-42")));

        let outcome = transcriber.outcome(&id).await.unwrap();
        assert!(matches!(outcome, Outcome::Transcript { .. }), "{outcome:?}");
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            seen.push(event);
        }
        assert!(
            seen.iter().any(|e| matches!(e, JobEvent::Progress { .. })),
            "{seen:?}"
        );
        assert!(
            matches!(
                seen.last(),
                Some(JobEvent::Ended {
                    state: JobState::Finished,
                    ..
                })
            ),
            "the stream ends after the outcome: {seen:?}"
        );
        let ended = transcriber.job(&id).await.unwrap().unwrap();
        assert_eq!(ended.state, JobState::Finished);
        assert_eq!(ended.progress, Some(100));
        // A third start after the end: still the same job, still one submit.
        let third = transcriber
            .start(Input::file(SAMPLE).key("meeting-42"), &options)
            .await
            .unwrap();
        assert_eq!(third.id(), id);
        assert_eq!(sim.jobs().len(), 1, "one key, one submit");
        // The journal row holds the key and labels, and never a transcript.
        let entry = journal.by_job(&id).await.unwrap().unwrap();
        assert_eq!(entry.intent.key.as_deref(), Some("meeting-42"));
        let rows = std::fs::read(dir.join("jobs.sqlite")).unwrap();
        let text = outcome.transcript().unwrap();
        assert!(
            !String::from_utf8_lossy(&rows).contains(&text),
            "no transcript in the journal"
        );
        transcriber.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_transcribers_sharing_a_journal_start_one_key_with_one_submit() {
    tokio::time::timeout(DEADLINE, async {
        let (sim, client) = sim(Duration::from_millis(300)).await;
        let dir = dir("shared-key");
        let path = dir.join("jobs.sqlite");
        // Two connections to one file: two processes in all but name, with one result store.
        let results = Arc::new(DirResults::open(dir.join("results")).unwrap());
        let a = polling(&client)
            .journal(Arc::new(SqliteJournal::open(&path).unwrap()))
            .results(results.clone())
            .build()
            .await
            .unwrap();
        let b = polling(&client)
            .journal(Arc::new(SqliteJournal::open(&path).unwrap()))
            .results(results)
            .build()
            .await
            .unwrap();
        let options = JobOptions::default();
        let mut starts = Vec::new();
        for round in 0..8 {
            let (a, b, options) = (a.clone(), b.clone(), options.clone());
            let key = format!("call-{round}");
            starts.push(tokio::spawn(async move {
                let (x, y) = tokio::join!(
                    a.start(Input::file(SAMPLE).key(key.clone()), &options),
                    b.start(Input::file(SAMPLE).key(key), &options)
                );
                let (x, y) = (x.unwrap(), y.unwrap());
                assert_eq!(x.id(), y.id(), "one key, one job");
                assert!(x.is_new() != y.is_new(), "exactly one of them submitted");
                x.id()
            }));
        }
        let mut ids = Vec::new();
        for start in starts {
            ids.push(start.await.unwrap());
        }
        assert_eq!(sim.jobs().len(), 8, "eight keys, eight submits");
        for id in &ids {
            // Either one can wait: the other follows the job from the journal.
            assert!(matches!(b.outcome(id).await.unwrap(), Outcome::Transcript { .. }));
        }
        a.shutdown().await;
        b.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_and_streams_are_uploaded_and_bad_keys_are_refused() {
    tokio::time::timeout(DEADLINE, async {
        let names = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = names.clone();
        let planner = daglo::sim::Planner::new(move |submission, _| {
            seen.lock().unwrap().push(submission.audio_name.clone());
        });
        let sim = Simulator::start(
            SimConfig::default()
                .rate_limit(None)
                .processing_time(Duration::from_millis(200))
                .planner(planner),
        )
        .await
        .unwrap();
        let client = daglo::sim::client(&sim).unwrap();
        let transcriber = polling(&client).build().await.unwrap();
        let audio = std::fs::read(SAMPLE).unwrap();
        let options = JobOptions::default();
        let from_bytes = transcriber
            .start(Input::bytes("upload.wav", audio.clone()), &options)
            .await
            .unwrap();
        let length = audio.len() as u64;
        let from_stream = transcriber
            .start(
                Input::stream("streamed.wav", length, std::io::Cursor::new(audio)),
                &options,
            )
            .await
            .unwrap();
        for job in [&from_bytes, &from_stream] {
            assert!(matches!(
                transcriber.outcome(&job.id()).await.unwrap(),
                Outcome::Transcript { .. }
            ));
        }
        let names = names.lock().unwrap().clone();
        assert!(names.contains(&"upload.wav".to_owned()), "{names:?}");
        assert!(names.contains(&"streamed.wav".to_owned()), "{names:?}");
        let snapshot = transcriber.job(&from_bytes.id()).await.unwrap().unwrap();
        assert_eq!(snapshot.input, "upload:upload.wav");

        let refused = transcriber
            .start(Input::url("https://example.com/a.wav").key("bad\nkey"), &options)
            .await
            .unwrap_err();
        assert!(matches!(refused, TranscribeError::Invalid(_)), "{refused:?}");
        assert!(!refused.may_have_created_job());
        let unknown = daglo::JobId::random();
        assert!(transcriber.job(&unknown).await.unwrap().is_none());
        assert!(matches!(
            transcriber.outcome(&unknown).await,
            Err(TranscribeError::UnknownJob { .. })
        ));
        transcriber.shutdown().await;
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_transcriber_recovers_running_jobs_and_answers_from_the_result_store() {
    tokio::time::timeout(DEADLINE, async {
        let (sim, client) = sim(Duration::from_millis(1500)).await;
        let dir = dir("recover");
        let path = dir.join("jobs.sqlite");
        let results = Arc::new(DirResults::open(dir.join("results")).unwrap());
        let options = JobOptions::default();

        let first = polling(&client)
            .journal(Arc::new(SqliteJournal::open(&path).unwrap()))
            .results(results.clone())
            .build()
            .await
            .unwrap();
        let done = first
            .start(Input::file(SAMPLE).key("done"), &options)
            .await
            .unwrap();
        first.outcome(&done.id()).await.unwrap();
        let running = first
            .start(Input::file(SAMPLE).key("running"), &options)
            .await
            .unwrap();
        // The process stops mid-job: its background waits end, the job goes on at the service.
        first.shutdown().await;
        drop(first);

        let second = polling(&client)
            .journal(Arc::new(SqliteJournal::open(&path).unwrap()))
            .results(results.clone())
            .build()
            .await
            .unwrap();
        let report = second.recover().await.unwrap();
        assert_eq!(report.resumed, vec![running.id()], "{report:?}");
        assert!(report.uncertain.is_empty());
        let outcome = second.outcome(&running.id()).await.unwrap();
        assert!(matches!(outcome, Outcome::Transcript { .. }));
        // The job that ended before the restart answers from the store.
        let kept = second.outcome(&done.id()).await.unwrap();
        assert!(kept.transcript().is_some_and(|t| !t.is_empty()));
        assert_eq!(second.result(&done.id()).await.unwrap(), Some(kept));
        assert!(results.dir().join(format!("{}.txt", done.id())).exists());
        // Subtitles through the transcriber, kept once fetched.
        let srt = second.srt(&done.id()).await.unwrap();
        assert!(
            matches!(&srt, daglo::client::SrtAnswer::Ready(text) if text.contains("-->")),
            "{srt:?}"
        );
        let asked = sim.jobs().iter().map(|j| j.srt_requests).sum::<u64>();
        second.srt(&done.id()).await.unwrap();
        assert_eq!(
            sim.jobs().iter().map(|j| j.srt_requests).sum::<u64>(),
            asked,
            "kept, not asked again"
        );
        assert_eq!(sim.jobs().len(), 2, "nothing submitted again");

        // Retention: ended entries and their results go; nothing running is touched.
        assert!(
            second.prune(Duration::from_secs(3600)).await.unwrap().is_empty(),
            "nothing that old"
        );
        let mut pruned = second.prune(Duration::ZERO).await.unwrap();
        pruned.sort();
        let mut both = vec![done.id(), running.id()];
        both.sort();
        assert_eq!(pruned, both);
        let journal = SqliteJournal::open(&path).unwrap();
        assert!(journal.entries().await.unwrap().is_empty());
        assert!(
            !results.dir().join(format!("{}.txt", done.id())).exists(),
            "its result went too"
        );
        assert!(second.job(&done.id()).await.unwrap().is_none());
        second.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

/// The child process of the restart test: starts (or, restarted, recovers) one callback job
/// and prints what happens. Does nothing unless the parent test set `DAGLO_JOBS_CHILD`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_child() {
    let Ok(role) = std::env::var("DAGLO_JOBS_CHILD") else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap();
    let client = Client::builder()
        .token(var("DAGLO_JOBS_TOKEN"))
        .base_url(var("DAGLO_JOBS_BASE_URL"))
        .build()
        .unwrap();
    let config: StrategyConfig = serde_json::from_str(&var("DAGLO_JOBS_STRATEGY")).unwrap();
    let journal = Arc::new(SqliteJournal::open(var("DAGLO_JOBS_JOURNAL")).unwrap());
    // The two processes give the builder its parts in opposite orders: the keys are signed with
    // the journal's kept secret either way, so the restarted one takes the callbacks back.
    let builder = Transcriber::builder(client);
    let builder = if role == "start" {
        builder.config(&config).journal(journal)
    } else {
        builder.journal(journal).config(&config)
    };
    let transcriber = builder.build().await.unwrap();
    let id = if role == "start" {
        let job = transcriber
            .start(Input::file(SAMPLE).key("restarted"), &JobOptions::default())
            .await
            .unwrap();
        println!("started {}", job.id());
        job.id()
    } else {
        let report = transcriber.recover().await.unwrap();
        assert_eq!(report.resumed.len(), 1, "{report:?}");
        println!("recovered {}", report.resumed[0]);
        report.resumed[0].clone()
    };
    let outcome = transcriber.outcome(&id).await.unwrap();
    println!(
        "outcome {}",
        if outcome.transcript().is_some() {
            "transcript"
        } else {
            "other"
        }
    );
    transcriber.shutdown().await;
}

/// The harness's name of this file's test `name`: `name` when the file is a binary of its own,
/// `jobs::name` in the package's `suite` binary.
fn test_name(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_crate, module)) => format!("{module}::{name}"),
        None => name.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_job_restarts_and_its_final_callback_ends_the_job() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    tokio::time::timeout(DEADLINE, async {
        // Long enough for the restart; the emulator sends each callback once.
        let (sim, _) = sim(Duration::from_secs(6)).await;
        let dir = dir("restart");
        let journal = dir.join("jobs.sqlite");
        // The receiver's port, picked free here and used by both processes.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let strategy =
            serde_json::json!({"strategy": "callback", "callback": {"listen": format!("127.0.0.1:{port}")}});
        let child = |role: &str| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    &test_name("restart_child"),
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env("DAGLO_JOBS_CHILD", role)
                .env("DAGLO_JOBS_TOKEN", sim.token())
                .env("DAGLO_JOBS_BASE_URL", sim.base_url())
                .env("DAGLO_JOBS_STRATEGY", strategy.to_string())
                .env("DAGLO_JOBS_JOURNAL", &journal)
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(dir.join(format!("{role}.stderr"))).unwrap())
                .spawn()
                .unwrap()
        };
        let mut first = child("start");
        let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
        let started = tokio::task::spawn_blocking(move || {
            // The harness writes `test [jobs::]restart_child ... ` before the child's first line.
            lines.find_map(|line| {
                let line = line.ok()?;
                line.split_once("started ").map(|(_, id)| id.trim().to_owned())
            })
        })
        .await
        .unwrap()
        .expect("the first process started the job");
        // SIGKILL: no shutdown, no goodbye.
        first.kill().unwrap();
        first.wait().unwrap();
        assert_eq!(sim.jobs().len(), 1);

        let mut second = child("recover");
        let lines = BufReader::new(second.stdout.take().unwrap()).lines();
        let said: Vec<String> = tokio::task::spawn_blocking(move || lines.map_while(Result::ok).collect())
            .await
            .unwrap();
        let status = second.wait().unwrap();
        assert!(status.success(), "{said:?}");
        let said_line = |text: &str| said.iter().any(|line| line.contains(text));
        assert!(said_line(&format!("recovered {started}")), "{said:?}");
        assert!(said_line("outcome transcript"), "{said:?}");
        let finals: Vec<_> = sim.callback_log().into_iter().filter(|c| c.is_final).collect();
        assert_eq!(finals.len(), 1);
        assert_eq!(
            finals[0].answer,
            Ok(200),
            "the restarted process accepted the final callback"
        );
        assert_eq!(sim.jobs().len(), 1, "submitted once");
        // The key secret was kept beside the journal, readable by its owner only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = dir.join("jobs.sqlite.key");
            assert_eq!(
                std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncertain_submit_settles_when_a_callback_names_its_rid() {
    use daglo::callback::{CallbackDelivery, FinalCallbacks};

    tokio::time::timeout(DEADLINE, async {
        // The service creates the job but answers the submit too late for the client: the
        // submit is uncertain. Its callbacks, which carry the rid, then settle it.
        let planner = daglo::sim::Planner::new(|_, plan| {
            plan.faults.slow_answers = Some(Duration::from_secs(4));
        });
        // Long enough that the job is still uncertain when it is listed, on a busy machine too.
        let sim = Simulator::start(
            SimConfig::default()
                .rate_limit(None)
                .processing_time(Duration::from_millis(2500))
                .planner(planner),
        )
        .await
        .unwrap();
        let client = Client::builder()
            .token(sim.token())
            .base_url(sim.base_url())
            .request_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let (callbacks, server) =
            CallbackDelivery::loopback(client.clone(), |c| c.finals(FinalCallbacks::TrustBody))
                .await
                .unwrap();
        let dir = dir("settle");
        let journal = Arc::new(SqliteJournal::open(dir.join("jobs.sqlite")).unwrap());
        let transcriber = Transcriber::builder(client)
            .delivery(callbacks)
            .journal(journal.clone())
            .build()
            .await
            .unwrap();
        let failed = transcriber
            .start(
                Input::url("https://example.com/a.wav").key("late-answer"),
                &JobOptions::default(),
            )
            .await
            .unwrap_err();
        assert!(failed.may_have_created_job(), "{failed:?}");
        let job = transcriber
            .jobs(JobFilter::default().key("late-answer"))
            .await
            .unwrap()
            .pop()
            .expect("the job is listed under its key");
        // Uncertain — or already settled, when the first callback (at 5 % of the job) got in
        // before the listing, as it may on a loaded machine; never failed or forgotten.
        assert!(
            matches!(job.state, JobState::Uncertain | JobState::Running),
            "{:?}",
            job.state
        );
        // Wait for the settled job (the journal is read; nothing here sleeps to synchronise).
        let settled = loop {
            let now = transcriber.job(&job.id).await.unwrap().unwrap();
            if now.state == JobState::Finished {
                break now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(settled.rid.as_ref(), sim.jobs().first().map(|j| &j.rid));
        let entry = journal.by_job(&job.id).await.unwrap().unwrap();
        assert!(
            matches!(entry.state, daglo::journal::EntryState::Finished { .. }),
            "{entry:?}"
        );
        assert_eq!(sim.jobs().len(), 1, "settled, never submitted again");
        transcriber.shutdown().await;
        server.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}
