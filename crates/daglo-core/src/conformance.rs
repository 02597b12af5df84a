//! The behaviour every [`Journal`] must show, as one check the SQLite and the Redis journals
//! both run in their tests: the same rules, proven the same way.

use std::time::{Duration, SystemTime};

use crate::delivery::OutcomeKind;
use crate::job::JobState;
use crate::journal::{Claim, EntryState, Intent, Journal};
use crate::request::Rid;
use crate::status::Status;

/// Runs every check on `journal`, which must be empty, panicking with what failed. Keys and
/// inputs start with `prefix`.
pub async fn check_journal(journal: &dyn Journal, prefix: &str) {
    let name = |what: &str| format!("{prefix}-{what}");
    let intent = |what: &str| {
        Intent::new(name(what), "fnv1a64:0", "polling")
            .with_key(Some(name(&format!("key-{what}"))))
            .with_labels([("team".to_owned(), "sales".to_owned())].into())
            .with_callback_key(Some(format!("cb-{what}")))
            .with_owner(Some("host-1:42".to_owned()))
    };

    // A claim records the intent with everything it carries.
    let first = intent("a");
    let job = first.job.clone();
    let Claim::Created(a) = journal.claim(first.clone()).await.expect("claim") else {
        panic!("a new key is recorded");
    };
    let entry = journal.by_job(&job).await.expect("by_job").expect("found by job");
    assert_eq!(entry.id, a);
    assert_eq!(entry.intent.key, first.key);
    assert_eq!(entry.intent.labels, first.labels);
    assert_eq!(entry.intent.callback_key.as_deref(), Some("cb-a"));
    assert_eq!(entry.intent.owner.as_deref(), Some("host-1:42"));
    assert_eq!(entry.state, EntryState::Intended);
    assert!(entry.is_leased(), "a fresh claim's lease is alive");
    assert_eq!(
        entry.snapshot().state,
        JobState::Submitting,
        "a fresh intent may be a submit under way"
    );
    // Renewing moves the lease on and changes nothing else.
    journal.renew(a).await.expect("renew");
    let renewed = journal.by_job(&job).await.expect("by_job").expect("found");
    assert!(
        renewed.updated_at >= entry.updated_at,
        "a renewal never moves the lease back"
    );
    assert_eq!(renewed.state, EntryState::Intended);
    assert_eq!(renewed.intent, entry.intent);

    // The same key again: the existing entry, and nothing recorded.
    let again = intent("a");
    match journal.claim(again).await.expect("claim again") {
        Claim::Existing(existing) => assert_eq!(existing.id, a),
        other => panic!("a held key is not recorded twice: {other:?}"),
    }
    assert_eq!(journal.entries().await.expect("entries").len(), 1);
    assert!(
        journal.intend(intent("a")).await.is_err(),
        "intend refuses a held key"
    );
    let found = journal
        .by_key(&name("key-a"))
        .await
        .expect("by_key")
        .expect("found by key");
    assert_eq!(found.id, a);
    assert!(journal.by_key(&name("key-none")).await.expect("by_key").is_none());

    // Without a key, every intent is a new entry.
    let keyless = Intent::new(name("b"), "fnv1a64:0", "polling");
    let b = journal.intend(keyless.clone()).await.expect("intend");
    let c = journal
        .intend(Intent::new(name("b"), "fnv1a64:0", "polling"))
        .await
        .expect("intend");
    assert_ne!(b, c);
    assert_eq!(
        journal
            .latest_for(&name("b"))
            .await
            .expect("latest")
            .map(|e| e.id),
        Some(c)
    );

    // The states, and the progress between them.
    let rid = Rid::new(format!("{prefix}-rid-a"));
    journal.submitted(a, &rid).await.expect("submitted");
    journal
        .progressed(a, &Status::Transcribing, Some(40))
        .await
        .expect("progressed");
    let running = journal.by_job(&job).await.expect("by_job").expect("found");
    assert_eq!(running.state, EntryState::Submitted { rid: rid.clone() });
    assert_eq!(running.status, Some(Status::Transcribing));
    assert_eq!(running.progress, Some(40));
    assert!(running.updated_at >= running.intent.at);
    journal
        .renew(a)
        .await
        .expect("renewing a submitted entry is no error");
    let still = journal.by_job(&job).await.expect("by_job").expect("found");
    assert_eq!(still.state, running.state, "a submitted entry is not renewed");
    assert!(!still.is_leased(), "an entry with a rid holds no lease");
    journal
        .not_submitted(b, "refused: 400")
        .await
        .expect("not_submitted");
    let recovery = journal.recover().await.expect("recover");
    assert_eq!(recovery.pending.iter().map(|e| e.id).collect::<Vec<_>>(), vec![a]);
    assert_eq!(
        recovery.uncertain.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![c]
    );
    journal
        .finished(a, &OutcomeKind::Transcript, Some("results/a.json"))
        .await
        .expect("finished");
    let finished = journal.by_job(&job).await.expect("by_job").expect("found");
    assert_eq!(finished.snapshot().state, JobState::Finished);
    assert!(
        matches!(finished.state, EntryState::Finished { result: Some(ref r), .. } if r == "results/a.json")
    );

    // A key whose entry was provably not submitted is free again; the old entry stays listed.
    let (first_r, second_r) = (intent("r"), intent("r"));
    let (refused_job, retried_job) = (first_r.job.clone(), second_r.job.clone());
    let Claim::Created(refused) = journal.claim(first_r).await.expect("claim") else {
        panic!("a new key is recorded");
    };
    journal
        .not_submitted(refused, "429")
        .await
        .expect("not_submitted");
    let Claim::Created(retried) = journal.claim(second_r).await.expect("claim") else {
        panic!("a not-submitted entry gives its key up");
    };
    assert_ne!(refused, retried);
    assert_eq!(
        journal
            .by_key(&name("key-r"))
            .await
            .expect("by_key")
            .map(|e| e.id),
        Some(retried)
    );
    journal
        .not_submitted(retried, "429")
        .await
        .expect("not_submitted");

    // Writes to an entry the journal does not hold fail.
    assert!(journal.submitted(crate::EntryId(i64::MAX), &rid).await.is_err());

    // Deleting one job: only an ended entry goes, with its key; others are left alone.
    let doomed = intent("d");
    let doomed_job = doomed.job.clone();
    let Claim::Created(d) = journal.claim(doomed).await.expect("claim") else {
        panic!("a new key is recorded");
    };
    assert!(
        !journal.forget(&doomed_job).await.expect("forget"),
        "an entry under way is not removed"
    );
    journal.submitted(d, &rid).await.expect("submitted");
    assert!(
        !journal.forget(&doomed_job).await.expect("forget"),
        "nor a running one"
    );
    journal
        .finished(d, &OutcomeKind::Empty, None)
        .await
        .expect("finished");
    assert!(
        journal.forget(&doomed_job).await.expect("forget"),
        "an ended one is"
    );
    assert!(journal.by_job(&doomed_job).await.expect("by_job").is_none());
    assert!(journal.by_key(&name("key-d")).await.expect("by_key").is_none());
    assert!(!journal.forget(&doomed_job).await.expect("forget"), "once");
    assert!(!journal.forget(&crate::JobId::random()).await.expect("forget"));

    // Retention: only ended entries changed before the cut-off go, and the key is free again.
    let past = SystemTime::now() - Duration::from_secs(3600);
    assert!(
        journal.prune(past, 100).await.expect("prune").is_empty(),
        "nothing that recent"
    );
    // In steps of at most two, oldest first, until a step removes fewer.
    let mut pruned = Vec::new();
    loop {
        let step = journal
            .prune(SystemTime::now() + Duration::from_secs(1), 2)
            .await
            .expect("prune");
        assert!(step.len() <= 2, "a step removes at most what it may");
        let last = step.len() < 2;
        pruned.extend(step.into_iter().map(|entry| entry.intent.job));
        if last {
            break;
        }
    }
    pruned.sort();
    let mut expected = vec![job, keyless.job, refused_job, retried_job];
    expected.sort();
    // `a` went (finished), `b` and both `r`s went (not submitted), `c` stays (uncertain).
    assert_eq!(pruned, expected);
    let left = journal.entries().await.expect("entries");
    assert_eq!(left.iter().map(|e| e.id).collect::<Vec<_>>(), vec![c]);
    assert!(journal.by_key(&name("key-a")).await.expect("by_key").is_none());
    assert!(matches!(
        journal.claim(intent("a")).await.expect("claim"),
        Claim::Created(_)
    ));

    check_pages(journal, prefix).await;
}

/// Pages through `journal` with several queries and limits, each page compared with what
/// reading every entry and filtering gives; and recovery lists exactly the entries not ended.
async fn check_pages(journal: &dyn Journal, prefix: &str) {
    use crate::journal::{EntryQuery, Stage};
    let rid = Rid::new("page-rid");
    for n in 0..24u32 {
        let labels = [
            ("team".to_owned(), if n % 3 == 0 { "a" } else { "b" }.to_owned()),
            ("kind".to_owned(), if n % 2 == 0 { "x" } else { "y" }.to_owned()),
        ];
        let intent =
            Intent::new(format!("{prefix}-page-{n}"), "fnv1a64:0", "polling").with_labels(labels.into());
        let id = journal.intend(intent).await.expect("intend");
        match n % 5 {
            0 => {}
            1 => journal.submitted(id, &rid).await.expect("submitted"),
            2 | 3 => {
                journal.submitted(id, &rid).await.expect("submitted");
                let outcome = if n % 5 == 2 {
                    OutcomeKind::Transcript
                } else {
                    OutcomeKind::Failed(Status::parse("file_error"))
                };
                journal.finished(id, &outcome, None).await.expect("finished");
            }
            _ => journal.not_submitted(id, "400").await.expect("not_submitted"),
        }
    }
    let all = journal.entries().await.expect("entries");
    let queries = [
        EntryQuery::default(),
        EntryQuery::default().stage(Stage::Finished),
        EntryQuery::default().stage(Stage::Submitted).stage(Stage::Failed),
        EntryQuery::default().label("team", "a"),
        EntryQuery::default().label("team", "b").stage(Stage::Finished),
        EntryQuery::default().label("team", "a").label("kind", "x"),
        EntryQuery::default()
            .label("team", "b")
            .stage(Stage::Intended)
            .stage(Stage::NotSubmitted),
        EntryQuery::default().label("team", "nobody"),
    ];
    for query in queries {
        let expected: Vec<_> = all
            .iter()
            .rev()
            .filter(|entry| query.matches(entry))
            .map(|entry| entry.id)
            .collect();
        for limit in [1, 4, 50] {
            let mut seen = Vec::new();
            let mut before = None;
            loop {
                let mut asked = query.clone().before(before);
                asked.limit = limit;
                let page = journal.page(&asked).await.expect("page");
                assert!(page.entries.len() <= limit, "a page holds at most its limit");
                seen.extend(page.entries.iter().map(|entry| entry.id));
                if !page.more {
                    break;
                }
                assert_eq!(page.entries.len(), limit, "a page followed by more is full");
                before = page.entries.last().map(|entry| entry.id);
                assert!(seen.len() <= all.len(), "pages end");
            }
            assert_eq!(seen, expected, "{query:?} in pages of {limit}");
        }
    }
    let recovery = journal.recover().await.expect("recover");
    let mut unended: Vec<_> = recovery
        .pending
        .iter()
        .chain(&recovery.uncertain)
        .map(|entry| entry.id)
        .collect();
    unended.sort();
    let expected: Vec<_> = all
        .iter()
        .filter(|entry| !entry.is_ended())
        .map(|entry| entry.id)
        .collect();
    assert_eq!(unended, expected, "recovery lists exactly the entries not ended");
}

/// Runs every check on `log`, whose lists and sets named `<prefix>-…` must be empty, panicking
/// with what failed: records kept in order and bounded, lists of different jobs and names apart,
/// sets that add and remove once.
pub async fn check_job_log(log: &dyn crate::JobLog, prefix: &str) {
    let list = format!("{prefix}-inbox");
    let other = format!("{prefix}-deliveries");
    let (a, b) = (crate::JobId::random(), crate::JobId::random());
    assert!(
        log.read(&list, &a).await.expect("read").is_empty(),
        "a new list is empty"
    );
    for n in 0..5 {
        log.append(&list, &a, &format!("{{\"n\":{n}}}"), 3)
            .await
            .expect("append");
    }
    log.append(&other, &a, "other list", 3).await.expect("append");
    log.append(&list, &b, "other job", 3).await.expect("append");
    assert_eq!(
        log.read(&list, &a).await.expect("read"),
        ["{\"n\":2}", "{\"n\":3}", "{\"n\":4}"],
        "the newest `keep` records, oldest first"
    );
    assert_eq!(log.read(&other, &a).await.expect("read"), ["other list"]);
    assert_eq!(log.read(&list, &b).await.expect("read"), ["other job"]);

    let set = format!("{prefix}-pending");
    assert!(log.marked(&set).await.expect("marked").is_empty());
    log.mark(&set, &a, true).await.expect("mark");
    log.mark(&set, &a, true).await.expect("mark twice");
    log.mark(&set, &b, true).await.expect("mark");
    let mut marked = log.marked(&set).await.expect("marked");
    marked.sort();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(marked, expected, "a job is in a set once");
    log.mark(&set, &a, false).await.expect("unmark");
    log.mark(&set, &a, false).await.expect("unmark twice");
    assert_eq!(log.marked(&set).await.expect("marked"), std::slice::from_ref(&b));

    // Clearing one list of one job leaves the others.
    log.clear(&list, &a).await.expect("clear");
    assert!(log.read(&list, &a).await.expect("read").is_empty());
    assert_eq!(log.read(&other, &a).await.expect("read"), ["other list"]);
    assert_eq!(log.read(&list, &b).await.expect("read"), ["other job"]);
    log.clear(&list, &a).await.expect("clear twice");
}
