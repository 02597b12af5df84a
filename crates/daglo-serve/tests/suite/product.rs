//! `daglo serve` as a product several teams share: tenants that see only their own jobs and
//! get a fair share of Daglo's submit budget, failures that say so, a strict API with typed
//! errors, deletion and retention.

use std::path::Path;
use std::time::Duration;

use crate::serve::{KEY, Serve, dir};
use daglo::sim::{SimConfig, Simulator};
use serde_json::{Value, json};

const SALES: &str = "sk-sales-0123456789abcdef";
const SUPPORT: &str = "sk-support-0123456789abcdef";
const ADMIN: &str = "sk-admin-0123456789abcdef";

/// Two tenants (`sales` with `KEY`'s default tenant beside them) and an admin key.
fn tenants_config(sim: &Simulator, data: &Path, extra: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\nbase_url = \"{}\"\ndata_dir = \"{}\"\nstrategy = \"polling\"\n\
         grace_secs = 5\napi_keys = [\"{KEY}\"]\nadmin_api_keys = [\"{ADMIN}\"]\n{extra}\n\
         [[tenants]]\nname = \"sales\"\napi_keys = [\"{SALES}\"]\n\n\
         [[tenants]]\nname = \"support\"\napi_keys = [\"{SUPPORT}\"]\n",
        sim.base_url(),
        data.display()
    )
}

async fn create(http: &reqwest::Client, base: &str, key: &str, body: Value) -> (u16, Value) {
    let answer = http
        .post(format!("{base}/v1/jobs"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

async fn get(http: &reqwest::Client, url: &str, key: &str) -> (u16, Value) {
    let answer = http.get(url).bearer_auth(key).send().await.unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Waits until the job has ended; its last snapshot.
async fn ended(http: &reqwest::Client, base: &str, key: &str, id: &str) -> Value {
    loop {
        let (_, job) = get(http, &format!("{base}/v1/jobs/{id}"), key).await;
        if ["finished", "failed", "not_submitted"].contains(&job["state"].as_str().unwrap_or("")) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_sees_only_its_own_jobs_and_keys_and_admins_see_all() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(300)))
            .await
            .unwrap();
        let dir = dir("tenants");
        let serve = Serve::start(&sim, &dir, &tenants_config(&sim, &dir.join("data"), ""), &[]).await;
        let (base, http) = (&serve.base, reqwest::Client::new());
        let body = json!({"url": "https://a.example/call.wav", "key": "call-1", "labels": {"team": "east"}});
        let (status, a) = create(&http, base, SALES, body.clone()).await;
        assert_eq!(status, 201, "{a}");
        assert_eq!(a["tenant"], "sales");
        assert_eq!(a["key"], "call-1", "the caller's own key, not the journal's");
        assert_eq!(
            a["labels"],
            json!({"team": "east"}),
            "the reserved label is not shown"
        );
        let id = a["id"].as_str().unwrap();
        // Another tenant: the job does not exist for it, in every route.
        for path in ["", "/transcript", "/events", "/callbacks", "/webhooks"] {
            let (status, answer) = get(&http, &format!("{base}/v1/jobs/{id}{path}"), SUPPORT).await;
            assert_eq!(status, 404, "{path}: {answer}");
            assert_eq!(answer["code"], "not_found");
        }
        let gone = http
            .delete(format!("{base}/v1/jobs/{id}"))
            .bearer_auth(SUPPORT)
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), 404);
        let (_, list) = get(&http, &format!("{base}/v1/jobs"), SUPPORT).await;
        assert_eq!(list["jobs"], json!([]), "{list}");
        // Its own key space: the same key is its own new job, never the other tenant's.
        let (status, b) = create(&http, base, SUPPORT, body.clone()).await;
        assert_eq!(status, 201, "{b}");
        assert_ne!(b["id"], a["id"]);
        assert_eq!(b["tenant"], "support");
        let (status, again) = create(&http, base, SALES, body.clone()).await;
        assert_eq!((status, &again["id"]), (200, &a["id"]));
        // The default tenant (top-level api_keys) is one more.
        let (_, list) = get(&http, &format!("{base}/v1/jobs"), KEY).await;
        assert_eq!(list["jobs"], json!([]));
        // Admins see every tenant's jobs, and choose one.
        let (_, all) = get(&http, &format!("{base}/v1/jobs"), ADMIN).await;
        assert_eq!(all["jobs"].as_array().unwrap().len(), 2, "{all}");
        let (_, sales) = get(&http, &format!("{base}/v1/jobs?tenant=sales"), ADMIN).await;
        assert_eq!(sales["jobs"].as_array().unwrap().len(), 1, "{sales}");
        assert_eq!(sales["jobs"][0]["id"], a["id"]);
        let (status, seen) = get(&http, &format!("{base}/v1/jobs/{id}"), ADMIN).await;
        assert_eq!((status, &seen["tenant"]), (200, &json!("sales")));
        // A tenant cannot ask for another's list; an admin creates for a named tenant only.
        let (status, refused) = get(&http, &format!("{base}/v1/jobs?tenant=sales"), SUPPORT).await;
        assert_eq!((status, &refused["code"]), (422, &json!("invalid_request")));
        let (status, refused) = create(&http, base, ADMIN, json!({"url": "https://a.example/x.wav"})).await;
        assert_eq!(status, 422, "{refused}");
        let made = http
            .post(format!("{base}/v1/jobs"))
            .bearer_auth(ADMIN)
            .header("Daglo-Tenant", "support")
            .json(&json!({"url": "https://a.example/x.wav"}))
            .send()
            .await
            .unwrap();
        assert_eq!(made.status(), 201);
        assert_eq!(made.json::<Value>().await.unwrap()["tenant"], "support");
        // Metrics name tenants by their configured names, never keys.
        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("daglo_serve_jobs_created_total{tenant=\"sales\",result=\"submitted\"} 1")
                || metrics
                    .contains("daglo_serve_jobs_created_total{result=\"submitted\",tenant=\"sales\"} 1"),
            "{metrics}"
        );
        assert!(metrics.contains("tenant=\"support\""));
        for key in [SALES, SUPPORT, ADMIN, KEY] {
            assert!(!metrics.contains(key), "a key in the metrics");
        }
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_behind_another_s_queue_of_300_gets_its_share_at_once() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_secs(600)))
            .await
            .unwrap();
        let dir = dir("fair");
        let serve = Serve::start(&sim, &dir, &tenants_config(&sim, &dir.join("data"), ""), &[]).await;
        let base = serve.base.clone();
        let http = reqwest::Client::new();
        let a_done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut queue = Vec::new();
        for n in 0..300 {
            let (http, base, a_done) = (http.clone(), base.clone(), a_done.clone());
            queue.push(tokio::spawn(async move {
                let (status, _) = create(
                    &http,
                    &base,
                    SALES,
                    json!({"url": format!("https://a.example/a-{n}.wav")}),
                )
                .await;
                if status == 201 {
                    a_done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }));
        }
        // The queue is there: Daglo has seen some of its submits.
        while sim.jobs().len() < 5 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let before = a_done.load(std::sync::atomic::Ordering::SeqCst);
        let b: Vec<_> = (0..5)
            .map(|n| {
                let (http, base) = (http.clone(), base.clone());
                tokio::spawn(async move {
                    create(
                        &http,
                        &base,
                        SUPPORT,
                        json!({"url": format!("https://b.example/b-{n}.wav")}),
                    )
                    .await
                })
            })
            .collect();
        for job in b {
            let (status, answer) = job.await.unwrap();
            assert_eq!(status, 201, "{answer}");
        }
        let after = a_done.load(std::sync::atomic::Ordering::SeqCst);
        // At equal shares B's 5 go out interleaved with about 5 of A's — not behind A's ~295
        // still queued. (A generous bound: the order is what is checked, not the time.)
        assert!(
            after - before <= 30,
            "A made {} submits while B's 5 waited (A had {before} before B came)",
            after - before
        );
        assert!(after < 200, "B waited behind A's queue: {after} of A's first");
        drop(serve);
        for job in queue {
            job.abort();
        }
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_says_so_everywhere_and_no_speech_stays_distinct() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(200)))
            .await
            .unwrap();
        let dir = dir("failed");
        let serve = Serve::start(&sim, &dir, &tenants_config(&sim, &dir.join("data"), ""), &[]).await;
        let (base, http) = (&serve.base, reqwest::Client::new());
        let (_, failed) = create(
            &http,
            base,
            SALES,
            json!({"url": "https://a.example/file-error.wav"}),
        )
        .await;
        let id = failed["id"].as_str().unwrap();
        let events = http
            .get(format!("{base}/v1/jobs/{id}/events"))
            .bearer_auth(SALES)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let job = ended(&http, base, SALES, id).await;
        assert_eq!(job["state"], "failed", "{job}");
        let reason = job["reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("file_error"), "{job}");
        assert!(
            reason.len() > "file_error".len(),
            "Daglo's message is in the reason: {job}"
        );
        let ended_event = events
            .split("\n\n")
            .find(|e| e.contains("event: ended"))
            .unwrap_or_else(|| panic!("{events}"));
        assert!(ended_event.contains("file_error"), "{ended_event}");
        // Its transcript is a conflict naming the state and reason, never an empty 200.
        let (status, answer) = get(&http, &format!("{base}/v1/jobs/{id}/transcript"), SALES).await;
        assert_eq!(status, 409, "{answer}");
        assert_eq!(answer["code"], "job_failed");
        assert_eq!(answer["state"], "failed");
        assert_eq!(answer["reason"], job["reason"]);
        let (_, listed) = get(&http, &format!("{base}/v1/jobs?state=failed"), SALES).await;
        assert_eq!(listed["jobs"][0]["reason"], job["reason"], "{listed}");
        // No speech: finished, an empty transcript, no reason.
        let (_, silent) = create(&http, base, SALES, json!({"url": "https://a.example/silent.wav"})).await;
        let id = silent["id"].as_str().unwrap();
        let job = ended(&http, base, SALES, id).await;
        assert_eq!(
            (&job["state"], &job["outcome"]),
            (&json!("finished"), &json!("empty")),
            "{job}"
        );
        let answer = http
            .get(format!("{base}/v1/jobs/{id}/transcript"))
            .bearer_auth(SALES)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "");
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_typos_reused_keys_and_bad_queries_with_typed_json() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(200)))
            .await
            .unwrap();
        let dir = dir("strict");
        let serve = Serve::start(&sim, &dir, &tenants_config(&sim, &dir.join("data"), ""), &[]).await;
        let (base, http) = (&serve.base, reqwest::Client::new());
        // A typo inside options: refused, naming the field, nothing submitted.
        let (status, answer) = create(
            &http,
            base,
            SALES,
            json!({"url": "https://a.example/a.wav", "options": {"sttConfig": {"speakerDiarisation": {"enable": true}}}}),
        )
        .await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["code"], "invalid_request");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains("speakerDiarisation") && error.contains("options.sttConfig"), "{error}");
        // The same refusal in a multipart part.
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(vec![1_u8; 64]).file_name("a.wav"))
            .text("options", r#"{"sttConfig": {"speakerDiarisation": {"enable": true}}}"#);
        let answer = http
            .post(format!("{base}/v1/jobs"))
            .bearer_auth(SALES)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 422);
        assert!(answer.text().await.unwrap().contains("speakerDiarisation"));
        assert_eq!(sim.jobs().len(), 0, "nothing submitted");
        // A key reused with other options or labels: 409 naming the job; the same request: 200.
        let first = json!({"url": "https://a.example/a.wav", "key": "k-1", "labels": {"team": "east"}});
        let (status, job) = create(&http, base, SALES, first.clone()).await;
        assert_eq!(status, 201, "{job}");
        for other in [
            json!({"url": "https://a.example/a.wav", "key": "k-1", "labels": {"team": "west"}}),
            json!({"url": "https://a.example/a.wav", "key": "k-1", "labels": {"team": "east"},
                   "options": {"sttConfig": {"speakerDiarization": {"enable": true}}}}),
        ] {
            let (status, answer) = create(&http, base, SALES, other).await;
            assert_eq!(status, 409, "{answer}");
            assert_eq!((&answer["code"], &answer["job_id"]), (&json!("key_reused"), &job["id"]));
        }
        let (status, same) = create(&http, base, SALES, first).await;
        assert_eq!((status, &same["id"]), (200, &job["id"]));
        // Reserved label names.
        let (status, _) = create(
            &http,
            base,
            SALES,
            json!({"url": "https://a.example/a.wav", "labels": {"daglo.tenant": "support"}}),
        )
        .await;
        assert_eq!(status, 422);
        // Query errors: JSON, 422, naming the parameter.
        for (query, names) in [
            ("limit=x", "limit"),
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("limit=1&limit=2", "limit"),
            ("state=sleeping", "state"),
            ("label=team", "label"),
            ("colour=red", "colour"),
        ] {
            let (status, answer) = get(&http, &format!("{base}/v1/jobs?{query}"), SALES).await;
            assert_eq!(status, 422, "{query}: {answer}");
            assert_eq!(answer["code"], "invalid_request", "{query}");
            assert!(answer["error"].as_str().unwrap().contains(names), "{query}: {answer}");
        }
        let (status, answer) = get(&http, &format!("{base}/v1/jobs/{}/transcript?format=pdf", job["id"].as_str().unwrap()), SALES).await;
        assert_eq!((status, &answer["code"]), (422, &json!("invalid_request")));
        // Several labels: every one must match.
        let (_, two) = create(
            &http,
            base,
            SALES,
            json!({"url": "https://a.example/b.wav", "labels": {"team": "east", "kind": "call"}}),
        )
        .await;
        let (status, page) = get(&http, &format!("{base}/v1/jobs?label=team=east&label=kind=call&limit=500"), SALES).await;
        assert_eq!(status, 200);
        let ids: Vec<&Value> = page["jobs"].as_array().unwrap().iter().map(|j| &j["id"]).collect();
        assert_eq!(ids, vec![&two["id"]], "{page}");
        // Paging: limit 1, the cursor to the next page, to the end.
        let mut seen = Vec::new();
        let mut url = format!("{base}/v1/jobs?limit=1");
        loop {
            let (status, page) = get(&http, &url, SALES).await;
            assert_eq!(status, 200, "{page}");
            seen.extend(page["jobs"].as_array().unwrap().iter().map(|j| j["id"].clone()));
            match page["next_cursor"].as_str() {
                Some(cursor) => url = format!("{base}/v1/jobs?limit=1&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen, vec![two["id"].clone(), job["id"].clone()]);
        // Unknown routes and a missing key: JSON with a code too.
        let (status, answer) = get(&http, &format!("{base}/v1/nothing"), SALES).await;
        assert_eq!((status, &answer["code"]), (404, &json!("not_found")));
        let (status, answer) = get(&http, &format!("{base}/v1/jobs"), "sk-nobody-0123456789abcdef").await;
        assert_eq!((status, &answer["code"]), (401, &json!("unauthorized")));
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_job_removes_its_data_and_frees_its_key_and_retention_does_it_unasked() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(300)))
            .await
            .unwrap();
        let dir = dir("delete");
        let data = dir.join("data");
        let serve = Serve::start(&sim, &dir, &tenants_config(&sim, &data, ""), &[]).await;
        let (base, http) = (&serve.base, reqwest::Client::new());
        let body = json!({"url": "https://a.example/a.wav", "key": "k-del", "labels": {"customer": "acme"}});
        let (_, job) = create(&http, base, SALES, body.clone()).await;
        let id = job["id"].as_str().unwrap().to_owned();
        let delete = || {
            http.delete(format!("{base}/v1/jobs/{id}"))
                .bearer_auth(SALES)
                .send()
        };
        // Running: not yet.
        let answer = delete().await.unwrap();
        if answer.status() == 409 {
            let answer: Value = answer.json().await.unwrap();
            assert_eq!(answer["code"], "not_ended", "{answer}");
        }
        ended(&http, base, SALES, &id).await;
        let (status, text) = get(&http, &format!("{base}/v1/jobs/{id}/transcript"), SALES).await;
        assert_eq!(status, 200);
        assert!(!text.as_str().unwrap_or_default().is_empty());
        let results = data.join("results");
        let kept = |id: &str| {
            std::fs::read_dir(&results)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .any(|e| e.file_name().to_string_lossy().starts_with(id))
                })
                .unwrap_or(false)
        };
        assert!(kept(&id), "the transcript is kept before the delete");
        let answer = delete().await.unwrap();
        assert_eq!(answer.status(), 204);
        assert!(!kept(&id), "the transcript file is gone");
        let (status, _) = get(&http, &format!("{base}/v1/jobs/{id}"), SALES).await;
        assert_eq!(status, 404);
        let (_, list) = get(&http, &format!("{base}/v1/jobs"), SALES).await;
        assert_eq!(list["jobs"], json!([]));
        // Nothing of it in the journal's file: not the input, the key or the label.
        let journal = std::fs::read(data.join("journal.sqlite")).unwrap();
        let journal = String::from_utf8_lossy(&journal);
        for trace in ["k-del", "acme", "https://a.example/a.wav"] {
            assert!(!journal.contains(trace), "{trace} still in the journal");
        }
        // Its key may submit again: a new job.
        let (status, again) = create(&http, base, SALES, body).await;
        assert_eq!(status, 201, "{again}");
        assert_ne!(again["id"], job["id"]);
        drop(serve);
        let _ = std::fs::remove_dir_all(&dir);

        // retention_days: an ended job's data goes by itself (here after ~0.3 s).
        let dir = super::serve::dir("retention");
        let data = dir.join("data");
        let serve = Serve::start(
            &sim,
            &dir,
            &tenants_config(&sim, &data, "retention_days = 0.000004"),
            &[],
        )
        .await;
        let (base, http) = (&serve.base, reqwest::Client::new());
        let (_, job) = create(&http, base, SALES, json!({"url": "https://a.example/r.wav"})).await;
        let id = job["id"].as_str().unwrap();
        loop {
            let (status, _) = get(&http, &format!("{base}/v1/jobs/{id}"), SALES).await;
            if status == 404 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!kept(id) || !data.join("results").exists());
        drop(serve);
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_generated_from_the_api_document_drives_the_service() {
    let Some(python) = crate::serve::python_with(
        "openapi_python_client, openapi_spec_validator, httpx, attrs",
        "the generated Python client",
    ) else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(240), async {
        let sim = Simulator::start(SimConfig::default().processing_time(Duration::from_millis(300)))
            .await
            .unwrap();
        let dir = dir("generated-client");
        let serve = Serve::start(&sim, &dir, &tenants_config(&sim, &dir.join("data"), ""), &[]).await;
        let root = concat!(env!("CARGO_MANIFEST_DIR"));
        let out = tokio::process::Command::new(python)
            .arg(format!("{root}/scripts/drive_generated_client.py"))
            .arg(format!("{root}/docs/serve-openapi.yaml"))
            .arg(dir.join("python"))
            .arg(&serve.base)
            .arg(SALES)
            .output()
            .await
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{said}");
        assert!(said.contains(" passed, 0 failed"), "{said}");
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_from_before_tenants_still_names_its_job_after_the_upgrade() {
    use daglo::journal::{Claim, Intent, Journal as _, OutcomeKind, SqliteJournal};
    tokio::time::timeout(Duration::from_secs(60), async {
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        let dir = dir("upgrade");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        // A job written by a version without tenants: its key as the caller gave it, no label.
        let url = "https://a.example/old.wav";
        let options = daglo::JobOptions::default();
        let old = {
            let journal = SqliteJournal::open(data.join("journal.sqlite")).unwrap();
            let intent = Intent::new(url, options.digest(), "polling").with_key(Some("legacy-1".to_owned()));
            let job = intent.job.clone();
            let Claim::Created(entry) = journal.claim(intent).await.unwrap() else {
                panic!("a new entry");
            };
            journal
                .submitted(entry, &daglo::Rid::new("rid-old"))
                .await
                .unwrap();
            journal.finished(entry, &OutcomeKind::Empty, None).await.unwrap();
            job
        };
        let serve = Serve::start(&sim, &dir, &tenants_config(&sim, &data, ""), &[]).await;
        let (base, http) = (&serve.base, reqwest::Client::new());
        let (status, job) = create(&http, base, KEY, json!({"url": url, "key": "legacy-1"})).await;
        assert_eq!(status, 200, "{job}");
        assert_eq!(job["id"], old.to_string());
        assert_eq!(job["tenant"], "default");
        let (status, other) = create(
            &http,
            base,
            KEY,
            json!({"url": "https://a.example/new.wav", "key": "legacy-1"}),
        )
        .await;
        assert_eq!((status, &other["code"]), (409, &json!("key_reused")), "{other}");
        // Another tenant's same key is its own.
        let (status, _) = create(&http, base, SALES, json!({"url": url, "key": "legacy-1"})).await;
        assert_eq!(status, 201);
        assert_eq!(sim.jobs().len(), 1, "only the other tenant's job was submitted");
        drop(serve);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("within the deadline");
}
