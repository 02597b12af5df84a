//! Shared set-up: a raw HTTP client for the emulator and a callback receiver.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use daglo_sim::{SimConfig, Simulator};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub fn quick() -> SimConfig {
    SimConfig::default()
        .rate_limit(None)
        .processing_time(Duration::ZERO)
}

/// Raw access to the emulator, so its own behaviour is tested without the project's client.
pub struct Raw {
    pub sim: Simulator,
    pub http: reqwest::Client,
}

impl Raw {
    pub async fn start(config: SimConfig) -> Self {
        Self {
            sim: Simulator::start(config).await.unwrap(),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/stt/v1/async/transcripts{path}", self.sim.base_url())
    }

    pub async fn submit_json(&self, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(""))
            .bearer_auth(self.sim.token())
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Submits audio by URL with extra fields and returns the rid.
    pub async fn submit(&self, audio: &str, extra: Value) -> String {
        let mut body = json!({"audio": {"source": {"url": audio}}});
        if let Value::Object(extra) = extra {
            body.as_object_mut().unwrap().extend(extra);
        }
        let answer = self.submit_json(body).await;
        assert_eq!(answer.status(), 200);
        answer.json::<Value>().await.unwrap()["rid"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(self.sim.token())
            .send()
            .await
            .unwrap()
    }
}

/// One callback as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub content_type: Option<String>,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Received {
    pub fn status(&self) -> &str {
        self.body["status"].as_str().unwrap_or_default()
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self.status(),
            "transcribed" | "input_error" | "file_error" | "transcript_error"
        )
    }
}

/// A callback receiver on `127.0.0.1:0` that hands every POST to the test and answers 200.
pub struct Receiver {
    pub url: String,
    pub received: mpsc::UnboundedReceiver<Received>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/daglo", listener.local_addr().unwrap());
        let (tx, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let path = request.uri().path().to_owned();
                        let headers = request.headers().clone();
                        let content_type = headers
                            .get(http::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        let bytes = request.into_body().collect().await.unwrap().to_bytes();
                        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        let _ = tx.send(Received {
                            path,
                            content_type,
                            headers,
                            body,
                        });
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new())))
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, received }
    }

    /// Every callback received so far (call after `Simulator::callbacks_done`).
    pub fn drain(&mut self) -> Vec<Received> {
        let mut all = Vec::new();
        while let Ok(r) = self.received.try_recv() {
            all.push(r);
        }
        all
    }
}
