//! Never billed twice, never lost: the batch under concurrent runs, a full disk, a journal that
//! is moved, deleted, flushed or killed, other options, one file by several names, and a
//! failing service — each with the real mechanism (a second process, a tmpfs, a private
//! redis-server killed or flushed, the emulator's injected answers).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;
use daglo::journal::{EntryState, Journal};
use daglo::sim::{Endpoint, ErrorBurst, Simulator};

/// Every test here ends within this.
const DEADLINE: Duration = Duration::from_secs(150);

/// Runs the binary against `sim` and waits for it.
async fn run(sim: &Simulator, args: &[&str]) -> std::process::Output {
    run_with_token(sim.token(), sim, args).await
}

async fn run_with_token(token: &str, sim: &Simulator, args: &[&str]) -> std::process::Output {
    let base_url = sim.base_url();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args(args)
        .args(["--base-url", &base_url])
        .env("DAGLO_API_TOKEN", token)
        .output()
        .await
        .expect("the binary runs")
}

/// Starts the binary against `sim` without waiting.
fn spawn(sim: &Simulator, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args(args)
        .args(["--base-url", &sim.base_url()])
        .env("DAGLO_API_TOKEN", sim.token())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs")
}

fn batch<'a>(inputs: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "transcribe",
        inputs.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

fn txt_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "txt"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Where a batch saves transcripts it could not write to `out`.
fn rescued(out: &Path) -> PathBuf {
    out.with_file_name(format!("{}.rescued", out.file_name().unwrap().to_string_lossy()))
}

fn submits(sim: &Simulator) -> u64 {
    sim.stats().endpoint(Endpoint::Submit).requests
}

/// The batch's journal on Redis, as the binary names it.
async fn redis_journal(url: &str, out: &Path) -> daglo::redis::RedisJournal {
    let store = daglo::redis::RedisStore::connect(url).await.unwrap();
    let name = std::path::absolute(out.join("daglo-journal.sqlite")).unwrap();
    daglo::redis::RedisJournal::new(store, &name.display().to_string())
}

/// Returns once `journal` holds `count` entries, each with its rid.
async fn submitted(journal: &dyn Journal, count: usize) {
    loop {
        if let Ok(entries) = journal.entries().await
            && entries.len() == count
            && entries
                .iter()
                .all(|e| matches!(e.state, EntryState::Submitted { .. }))
        {
            return;
        }
        // Polling a journal another process writes: there is no event to wait on.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one command to the Redis at `url` (`redis://127.0.0.1:<port>`) and reads its answer.
fn redis_command(url: &str, command: &str) -> String {
    use std::io::{Read, Write};
    let address = url.trim_start_matches("redis://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(format!("{command}\r\n").as_bytes()).unwrap();
    let mut answer = [0_u8; 64];
    let n = stream.read(&mut answer).unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_batches_sharing_a_redis_journal_submit_each_file_once_and_call_none_uncertain() {
    let Some((redis, _guard)) =
        test_redis("two_batches_sharing_a_redis_journal_submit_each_file_once_and_call_none_uncertain")
    else {
        return;
    };
    tokio::time::timeout(DEADLINE, async {
        let (sim, inputs, out) = outliving_service("redis-twice", 8, 1).await;
        let args = batch(&inputs, &out, &["--redis", &redis, "--concurrency", "8"]);
        let (first, second) = tokio::join!(run(&sim, &args), run(&sim, &args));
        for run in [first, second] {
            let stderr = text(&run.stderr);
            assert_eq!(run.status.code(), Some(0), "{stderr}");
            assert!(
                stderr.contains("0 uncertain, 0 errors"),
                "a peer's job is never uncertain: {stderr}"
            );
        }
        assert_eq!(
            sim.jobs().len(),
            8,
            "one submit per file, whichever batch made it"
        );
        assert_eq!(txt_files(&out).len(), 8);
        let _ = std::fs::remove_dir_all(inputs);
        let _ = std::fs::remove_dir_all(out);
    })
    .await
    .expect("within the deadline");
}

/// The output directory on a 64 KiB tmpfs that is full: no empty or partial output is left,
/// nothing is recorded finished, the fetched transcripts are saved beside it, the run exits
/// non-zero — and once there is room, the rerun writes them without submitting again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_counts_nothing_done_keeps_the_transcripts_and_the_rerun_writes_them() {
    let (sim, inputs, out) = outliving_service("full-disk", 3, 1).await;
    std::fs::create_dir_all(&out).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&out)
        .output();
    if !mounted.as_ref().is_ok_and(|m| m.status.success()) {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED a_full_disk_…: cannot mount a tmpfs here (needs root): {mounted:?}"
        );
        return;
    }
    let unmount = Unmount(out.clone());
    tokio::time::timeout(DEADLINE, async {
        // Fill it.
        let filler = out.join("filler.bin");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&filler).unwrap();
            while file
                .write_all(&[0_u8; 1024])
                .and_then(|()| file.sync_all())
                .is_ok()
            {}
        }
        let journal = temp("full-disk-journal.sqlite");
        let _ = std::fs::remove_file(&journal);
        let args = batch(&inputs, &out, &["--journal", journal.to_str().unwrap()]);
        let full = run(&sim, &args).await;
        let stderr = text(&full.stderr);
        assert_eq!(full.status.code(), Some(4), "{stderr}");
        assert!(txt_files(&out).is_empty(), "no empty or partial output: {stderr}");
        let rescued = rescued(&out);
        assert_eq!(txt_files(&rescued).len(), 3, "{stderr}");
        for file in txt_files(&rescued) {
            assert!(!std::fs::read_to_string(&file).unwrap().is_empty());
        }
        assert!(stderr.contains("saved to"), "{stderr}");
        let listed = daglo(&["jobs", "--journal", journal.to_str().unwrap()]);
        assert_eq!(
            text(&listed.stdout).matches("finished").count(),
            0,
            "nothing is recorded finished before its output exists"
        );
        assert_eq!(sim.jobs().len(), 3);

        std::fs::remove_file(&filler).unwrap();
        let rerun = run(&sim, &args).await;
        let stderr = text(&rerun.stderr);
        assert_eq!(rerun.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("3 done"), "{stderr}");
        assert_eq!(sim.jobs().len(), 3, "fetched again, not submitted again");
        for file in txt_files(&out) {
            assert!(!std::fs::read_to_string(&file).unwrap().is_empty());
        }
        assert_eq!(txt_files(&out).len(), 3);
        let _ = std::fs::remove_dir_all(rescued);
        let _ = std::fs::remove_file(journal);
    })
    .await
    .expect("within the deadline");
    drop(unmount);
    let _ = std::fs::remove_dir_all(inputs);
    let _ = std::fs::remove_dir_all(out);
}

/// Unmounts a tmpfs when dropped.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A rerun with the journal elsewhere finds outputs it has no entry for: it reports them and
/// bills nothing; `--force` submits them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_without_a_journal_entry_are_reported_not_resubmitted() {
    tokio::time::timeout(DEADLINE, async {
        let (sim, inputs, out) = outliving_service("elsewhere", 5, 1).await;
        let first = run(&sim, &batch(&inputs, &out, &[])).await;
        assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
        let other = temp("elsewhere-journal.sqlite");
        let _ = std::fs::remove_file(&other);
        let elsewhere = batch(&inputs, &out, &["--journal", other.to_str().unwrap()]);
        let rerun = run(&sim, &elsewhere).await;
        let stderr = text(&rerun.stderr);
        assert_eq!(rerun.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("5 with an output but no journal entry"),
            "{stderr}"
        );
        assert!(stderr.contains("--force"), "{stderr}");
        assert_eq!(sim.jobs().len(), 5, "nothing billed again");

        let mut forced = elsewhere.clone();
        forced.push("--force");
        let forced = run(&sim, &forced).await;
        assert_eq!(forced.status.code(), Some(0), "{}", text(&forced.stderr));
        assert_eq!(sim.jobs().len(), 10, "--force submits them");
        let _ = std::fs::remove_file(other);
        let _ = std::fs::remove_dir_all(inputs);
        let _ = std::fs::remove_dir_all(out);
    })
    .await
    .expect("within the deadline");
}

/// Other options make another job, and the summary says so; one file named three ways (plain,
/// with `..`, through a symlinked folder) is one input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_and_canonical_paths_make_the_identity_of_an_input() {
    tokio::time::timeout(DEADLINE, async {
        let (sim, inputs, out) = outliving_service("identity", 3, 1).await;
        let first = run(&sim, &batch(&inputs, &out, &[])).await;
        assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
        let english = run(
            &sim,
            &batch(&inputs, &out, &["--language", "en-US", "--speakers", "2"]),
        )
        .await;
        let stderr = text(&english.stderr);
        assert_eq!(english.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains("3 done, 0 already done"),
            "other options: new jobs: {stderr}"
        );
        assert_eq!(stderr.matches("options differ").count(), 3, "{stderr}");
        assert_eq!(sim.jobs().len(), 6);
        let again = run(
            &sim,
            &batch(&inputs, &out, &["--language", "en-US", "--speakers", "2"]),
        )
        .await;
        assert!(
            text(&again.stderr).contains("0 done, 3 already done"),
            "{}",
            text(&again.stderr)
        );
        assert_eq!(sim.jobs().len(), 6);

        // One file, three names.
        let file = inputs.join("call-000.wav");
        let sub = inputs.join("x");
        std::fs::create_dir_all(&sub).unwrap();
        let link = temp("identity-link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&inputs, &link).unwrap();
        let dotted = sub.join("..").join("call-000.wav");
        let linked = link.join("call-000.wav");
        let other_out = temp("identity-out-2");
        let _ = std::fs::remove_dir_all(&other_out);
        let names = run(
            &sim,
            &[
                "transcribe",
                file.to_str().unwrap(),
                dotted.to_str().unwrap(),
                linked.to_str().unwrap(),
                "--out-dir",
                other_out.to_str().unwrap(),
            ],
        )
        .await;
        let stderr = text(&names.stderr);
        assert_eq!(names.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("1 done"), "{stderr}");
        assert_eq!(sim.jobs().len(), 7, "one submit for one file");
        let _ = std::fs::remove_file(link);
        let _ = std::fs::remove_dir_all(other_out);
        let _ = std::fs::remove_dir_all(inputs);
        let _ = std::fs::remove_dir_all(out);
    })
    .await
    .expect("within the deadline");
}

/// Two folders with a file of the same name: each input keeps its output name whatever the
/// order of the arguments, and the summary and `daglo jobs` say which is whose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_names_are_stable_whatever_the_argument_order() {
    tokio::time::timeout(DEADLINE, async {
        let sim =
            Simulator::start(daglo::sim::SimConfig::default().processing_time(Duration::from_millis(500)))
                .await
                .unwrap();
        let root = temp("names");
        let _ = std::fs::remove_dir_all(&root);
        let (mon, tue) = (root.join("mon"), root.join("tue"));
        for (dir, byte) in [(&mon, 7_u8), (&tue, 9_u8)] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("REC001.wav"), vec![byte; 48_000]).unwrap();
        }
        let out = root.join("out");
        let out_arg = out.to_str().unwrap();
        let run_in = |order: [&Path; 2]| {
            let args = [
                "transcribe".to_owned(),
                order[0].to_str().unwrap().to_owned(),
                order[1].to_str().unwrap().to_owned(),
                "--out-dir".to_owned(),
                out_arg.to_owned(),
            ];
            let sim = &sim;
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                run(sim, &args).await
            }
        };
        // Monday alone first: it is REC001.
        let monday = run(
            &sim,
            &[
                "transcribe",
                mon.join("REC001.wav").to_str().unwrap(),
                "--out-dir",
                out_arg,
            ],
        )
        .await;
        assert_eq!(monday.status.code(), Some(0), "{}", text(&monday.stderr));
        let mon_text = std::fs::read_to_string(out.join("REC001.txt")).unwrap();
        let both = run_in([tue.as_path(), mon.as_path()]).await;
        let stderr = text(&both.stderr);
        assert_eq!(both.status.code(), Some(0), "{stderr}");
        let tue_line = stderr
            .lines()
            .find(|l| l.contains("done") && l.contains("tue"))
            .unwrap_or_else(|| panic!("{stderr}"))
            .to_owned();
        let tue_name = tue_line.rsplit("-> ").next().unwrap().trim().to_owned();
        assert!(
            tue_name.starts_with("REC001-") && tue_name.ends_with(".txt"),
            "{tue_line}"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("REC001.txt")).unwrap(),
            mon_text,
            "Monday's output stays Monday's"
        );
        for order in [[mon.as_path(), tue.as_path()], [tue.as_path(), mon.as_path()]] {
            let rerun = run_in(order).await;
            let stderr = text(&rerun.stderr);
            assert!(stderr.contains("0 done, 2 already done"), "{stderr}");
            assert_eq!(std::fs::read_to_string(out.join("REC001.txt")).unwrap(), mon_text);
        }
        let listed = text(&daglo(&["jobs", "--out-dir", out_arg]).stdout);
        assert!(
            listed
                .lines()
                .any(|l| l.contains("REC001.txt ") && l.contains("/mon/")),
            "{listed}"
        );
        assert!(
            listed
                .lines()
                .any(|l| l.contains(&tue_name) && l.contains("/tue/")),
            "{listed}"
        );
        assert_eq!(sim.jobs().len(), 2);
        let _ = std::fs::remove_dir_all(root);
    })
    .await
    .expect("within the deadline");
}

/// `401` (a refused token) or `403` (an account out of credit) stops every further submit at
/// once; the rest are reported not submitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_or_account_stops_every_further_submit() {
    tokio::time::timeout(DEADLINE, async {
        let (sim, inputs, out) = outliving_service("refused", 12, 1).await;
        let args = batch(&inputs, &out, &["--concurrency", "2"]);
        let refused = run_with_token("not-the-token", &sim, &args).await;
        let stderr = text(&refused.stderr);
        assert_eq!(refused.status.code(), Some(4), "{stderr}");
        assert!(
            submits(&sim) <= 2,
            "at most the submits already under way: {stderr}"
        );
        assert!(stderr.contains("not submitted"), "{stderr}");
        assert!(!stderr.contains("not-the-token"), "{stderr}");

        sim.inject_errors(Endpoint::Submit, ErrorBurst::new(403, 10_000));
        let before = submits(&sim);
        let out_of_credit = run(&sim, &args).await;
        let stderr = text(&out_of_credit.stderr);
        assert_eq!(out_of_credit.status.code(), Some(4), "{stderr}");
        assert!(submits(&sim) - before <= 2, "{stderr}");
        assert!(stderr.contains("not submitted"), "{stderr}");
        assert!(sim.jobs().is_empty());
        let _ = std::fs::remove_dir_all(inputs);
        let _ = std::fs::remove_dir_all(out);
    })
    .await
    .expect("within the deadline");
}

/// `500` on every submit: the batch stops after three in a row (or `--max-server-errors`), and
/// lists each submit that may have created a job, with what to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_server_errors_on_submit_stop_the_batch_and_list_what_may_exist() {
    tokio::time::timeout(DEADLINE, async {
        let (sim, inputs, out) = outliving_service("five-hundred", 12, 1).await;
        sim.inject_errors(Endpoint::Submit, ErrorBurst::new(500, 10_000));
        let failing = run(&sim, &batch(&inputs, &out, &["--concurrency", "1"])).await;
        let stderr = text(&failing.stderr);
        assert_eq!(failing.status.code(), Some(4), "{stderr}");
        assert_eq!(submits(&sim), 3, "{stderr}");
        assert!(
            stderr.contains("3 uncertain") && stderr.contains("9 not submitted"),
            "{stderr}"
        );
        assert_eq!(stderr.matches("check the Daglo console").count(), 3, "{stderr}");

        let out_2 = temp("five-hundred-out-2");
        let _ = std::fs::remove_dir_all(&out_2);
        let more = run(
            &sim,
            &batch(
                &inputs,
                &out_2,
                &["--concurrency", "1", "--max-server-errors", "5"],
            ),
        )
        .await;
        assert_eq!(submits(&sim), 8, "{}", text(&more.stderr));
        let _ = std::fs::remove_dir_all(out_2);
        let _ = std::fs::remove_dir_all(inputs);
        let _ = std::fs::remove_dir_all(out);
    })
    .await
    .expect("within the deadline");
}

/// The journal file deleted mid-run: the run notices, stops submitting and exits 4; the
/// transcripts fetched are written all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_deleted_mid_run_stops_the_run() {
    tokio::time::timeout(DEADLINE, async {
        let (sim, inputs, out) = outliving_service("deleted", 4, 3).await;
        let child = spawn(&sim, &batch(&inputs, &out, &[]));
        all_submitted(&out, 4).await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(out.join(format!("daglo-journal.sqlite{suffix}")));
        }
        let ended = child.wait_with_output().await.unwrap();
        let stderr = text(&ended.stderr);
        assert_eq!(ended.status.code(), Some(4), "{stderr}");
        assert!(stderr.contains("deleted or replaced"), "{stderr}");
        assert_eq!(
            txt_files(&out).len() + txt_files(&rescued(&out)).len(),
            4,
            "fetched transcripts are never dropped: {stderr}"
        );
        assert_eq!(sim.jobs().len(), 4);
        let _ = std::fs::remove_dir_all(rescued(&out));
        let _ = std::fs::remove_dir_all(inputs);
        let _ = std::fs::remove_dir_all(out);
    })
    .await
    .expect("within the deadline");
}

/// `FLUSHALL` mid-run: the batch notices and stops (exit 4); its finishing jobs never write
/// into the entries a second batch makes afterwards, and entry ids are not reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_journal_stops_the_run_and_no_entry_is_written_by_another_input() {
    let Some((redis, _guard)) = private_redis("a_flushed_redis_journal_…") else {
        return;
    };
    tokio::time::timeout(DEADLINE, async {
        let (sim, inputs, out) = outliving_service("flushed", 4, 3).await;
        let journal = redis_journal(&redis, &out).await;
        let child = spawn(&sim, &batch(&inputs, &out, &["--redis", &redis]));
        submitted(&journal, 4).await;
        let before: Vec<i64> = journal.entries().await.unwrap().iter().map(|e| e.id.0).collect();
        assert!(redis_command(&redis, "FLUSHALL").starts_with("+OK"));
        // A second batch, other inputs, on the same (now empty) journal.
        let others = audio_dir("flushed-others", 2);
        let second = run(&sim, &batch(&others, &out, &["--redis", &redis])).await;
        assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
        let first = child.wait_with_output().await.unwrap();
        let stderr = text(&first.stderr);
        assert_eq!(first.status.code(), Some(4), "{stderr}");
        assert!(stderr.contains("flushed"), "{stderr}");
        let entries = journal.entries().await.unwrap();
        assert_eq!(entries.len(), 2, "{entries:?}");
        for entry in &entries {
            assert!(
                !before.contains(&entry.id.0),
                "entry ids are not reused after a flush"
            );
            assert!(entry.intent.input.contains("flushed-others"), "{entry:?}");
            let EntryState::Finished {
                result: Some(result), ..
            } = &entry.state
            else {
                panic!("the second batch's entry is its own: {entry:?}");
            };
            let stem = entry.intent.labels.get("output").unwrap();
            assert!(result.starts_with(&format!("{stem}.txt ")), "{entry:?}");
        }
        assert_eq!(
            txt_files(&out).len(),
            2,
            "the second batch's outputs, not overwritten"
        );
        assert_eq!(
            txt_files(&rescued(&out)).len(),
            4,
            "the first batch's transcripts, saved beside the output directory: {stderr}"
        );
        let _ = std::fs::remove_dir_all(rescued(&out));
        let _ = std::fs::remove_dir_all(others);
        let _ = std::fs::remove_dir_all(inputs);
        let _ = std::fs::remove_dir_all(out);
    })
    .await
    .expect("within the deadline");
}

/// Redis killed mid-batch: the fetched transcripts are written all the same and the run exits
/// 4; a rerun against a fresh, empty Redis reports the outputs instead of billing them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_killed_mid_batch_loses_no_transcript_and_the_rerun_bills_nothing() {
    let Some((redis, mut guard)) = private_redis("a_redis_killed_mid_batch_…") else {
        return;
    };
    tokio::time::timeout(DEADLINE, async {
        let (sim, inputs, out) = outliving_service("killed-redis", 4, 3).await;
        let journal = redis_journal(&redis, &out).await;
        let child = spawn(&sim, &batch(&inputs, &out, &["--redis", &redis]));
        submitted(&journal, 4).await;
        guard.0.kill().unwrap();
        let _ = guard.0.wait();
        let ended = child.wait_with_output().await.unwrap();
        let stderr = text(&ended.stderr);
        assert_eq!(ended.status.code(), Some(4), "{stderr}");
        assert_eq!(
            txt_files(&out).len(),
            4,
            "no fetched transcript is dropped: {stderr}"
        );
        for file in txt_files(&out) {
            assert!(!std::fs::read_to_string(&file).unwrap().is_empty());
        }

        let (fresh, _fresh_guard) = private_redis("a_redis_killed_mid_batch_…").unwrap();
        let rerun = run(&sim, &batch(&inputs, &out, &["--redis", &fresh])).await;
        let stderr = text(&rerun.stderr);
        assert_eq!(rerun.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("4 with an output but no journal entry"),
            "{stderr}"
        );
        assert_eq!(sim.jobs().len(), 4, "nothing billed twice");
        let _ = std::fs::remove_dir_all(inputs);
        let _ = std::fs::remove_dir_all(out);
    })
    .await
    .expect("within the deadline");
}

/// The first run (`first`, four of six inputs in flight when its journal vanished) exits 4
/// with four submits; the rerun (with `extra`) follows those four and submits the other two —
/// six submits, six transcripts. Removes the directories.
async fn the_rerun_bills_none_twice(
    sim: &Simulator,
    inputs: &Path,
    out: &Path,
    extra: &[&str],
    first: tokio::process::Child,
) {
    let first = first.wait_with_output().await.unwrap();
    let stderr = text(&first.stderr);
    assert_eq!(first.status.code(), Some(4), "{stderr}");
    assert_eq!(submits(sim), 4, "{stderr}");

    let rerun = run(sim, &batch(inputs, out, extra)).await;
    let stderr = text(&rerun.stderr);
    assert_eq!(rerun.status.code(), Some(0), "{stderr}");
    assert_eq!(
        submits(sim),
        6,
        "each file submitted once across both runs: {stderr}"
    );
    assert_eq!(txt_files(out).len(), 6, "{stderr}");
    let _ = std::fs::remove_dir_all(rescued(out));
    let _ = std::fs::remove_dir_all(inputs);
    let _ = std::fs::remove_dir_all(out);
}

/// The journal file deleted while four of six inputs are in flight: the run keeps following
/// those four, writes what it cannot record beside the output directory, and exits 4; the rerun
/// (on a new journal) follows them by their rids and submits only the two never submitted —
/// six submits for six files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_deleted_mid_run_bills_no_input_twice_across_the_rerun() {
    tokio::time::timeout(DEADLINE, async {
        let (sim, inputs, out) = outliving_service("deleted-rerun", 6, 3).await;
        let child = spawn(&sim, &batch(&inputs, &out, &["--concurrency", "4"]));
        all_submitted(&out, 4).await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(out.join(format!("daglo-journal.sqlite{suffix}")));
        }
        the_rerun_bills_none_twice(&sim, &inputs, &out, &[], child).await;
    })
    .await
    .expect("within the deadline");
}

/// `FLUSHALL` on the Redis journal while four of six inputs are in flight: the same — the rerun
/// on the emptied Redis follows the four by their rids and submits the other two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_journal_bills_no_input_twice_across_the_rerun() {
    let Some((redis, _guard)) = private_redis("a_flushed_redis_journal_bills_…") else {
        return;
    };
    tokio::time::timeout(DEADLINE, async {
        let (sim, inputs, out) = outliving_service("flushed-rerun", 6, 3).await;
        let journal = redis_journal(&redis, &out).await;
        let child = spawn(
            &sim,
            &batch(&inputs, &out, &["--redis", &redis, "--concurrency", "4"]),
        );
        submitted(&journal, 4).await;
        assert!(redis_command(&redis, "FLUSHALL").starts_with("+OK"));
        the_rerun_bills_none_twice(&sim, &inputs, &out, &["--redis", &redis], child).await;
    })
    .await
    .expect("within the deadline");
}

/// `--deadline` against a service that outlives the command (a standalone emulator): "stopped
/// waiting" is exit 3 for one input and for a batch, and the jobs go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_against_a_standalone_service_is_exit_3() {
    tokio::time::timeout(DEADLINE, async {
        let (sim, inputs, out) = outliving_service("deadline-3", 2, 60).await;
        let one = inputs.join("call-000.wav");
        let single = run(&sim, &["transcribe", one.to_str().unwrap(), "--deadline", "1"]).await;
        let stderr = text(&single.stderr);
        assert_eq!(single.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains("stopped waiting") && stderr.contains("daglo resume"),
            "{stderr}"
        );
        let batch_run = run(&sim, &batch(&inputs, &out, &["--deadline", "1"])).await;
        let stderr = text(&batch_run.stderr);
        assert_eq!(batch_run.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains("2 pending"), "{stderr}");
        let _ = std::fs::remove_dir_all(inputs);
        let _ = std::fs::remove_dir_all(out);
    })
    .await
    .expect("within the deadline");
}
