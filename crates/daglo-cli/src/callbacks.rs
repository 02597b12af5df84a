//! `daglo callbacks list|replay --job ID`: a running `daglo serve`'s callback inbox, through its
//! API (`GET /v1/jobs/{id}/callbacks`, `POST /v1/jobs/{id}/callbacks/replay`). The API key is
//! read from DAGLO_SERVE_API_KEY only.

use crate::args::{Callbacks, CallbacksArgs};
use crate::failure::{Failure, exit};
use crate::terminal::safe;

pub(crate) async fn run(command: Callbacks) -> Result<u8, Failure> {
    let (args, replay) = match command {
        Callbacks::List(args) => (args, false),
        Callbacks::Replay(args) => (args, true),
    };
    let key = std::env::var("DAGLO_SERVE_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| Failure::usage("set DAGLO_SERVE_API_KEY to one of the service's api_keys"))?;
    let job: daglo::JobId = args
        .job
        .parse()
        .map_err(|e| Failure::usage(format!("--job: {}", crate::failure::chain(&e))))?;
    let base = url(&args)?;
    let path = if replay {
        format!("{base}/v1/jobs/{job}/callbacks/replay")
    } else {
        format!("{base}/v1/jobs/{job}/callbacks")
    };
    daglo::client::install_crypto_provider();
    let http = reqwest::Client::new();
    let request = if replay { http.post(&path) } else { http.get(&path) };
    let answer = request
        .bearer_auth(key.trim())
        .send()
        .await
        .map_err(|e| Failure::service(&e))?;
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap_or_default();
    if !status.is_success() {
        let said = body["error"].as_str().unwrap_or("no reason given");
        return Err(Failure {
            code: if status.is_client_error() {
                exit::USAGE
            } else {
                exit::SERVICE
            },
            message: format!("the service answered {status}: {said}"),
        });
    }
    let rows = if replay {
        &body["replayed"]
    } else {
        &body["callbacks"]
    };
    let rows = rows.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!("no callbacks written down for job {job}");
        return Ok(exit::OK);
    }
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(s) => safe(s),
        serde_json::Value::Null => "-".to_owned(),
        other => safe(&other.to_string()),
    };
    println!("{:<24}  {:<20}  {:>8}  answer", "received", "status", "progress");
    for row in &rows {
        let answer = if replay {
            match (&row["answer"], &row["error"]) {
                (serde_json::Value::String(a), _) => format!("replayed: {}", safe(a)),
                (_, e) => format!("not replayed: {}", text(e)),
            }
        } else {
            format!("{} {}", text(&row["answer_code"]), text(&row["answer"]))
        };
        println!(
            "{:<24}  {:<20}  {:>8}  {answer}",
            text(&row["received_at"]),
            text(&row["status"]),
            text(&row["progress"]),
        );
    }
    if replay {
        println!("job {job} is now {}", text(&body["state"]));
    }
    Ok(exit::OK)
}

/// The service's URL, without a trailing `/`.
fn url(args: &CallbacksArgs) -> Result<String, Failure> {
    match reqwest::Url::parse(&args.server) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            Ok(url.as_str().trim_end_matches('/').to_owned())
        }
        Ok(_) => Err(Failure::usage("--server must be an http(s) URL")),
        Err(e) => Err(Failure::usage(format!("--server: {e}"))),
    }
}
