//! Shared set-up: an emulator, a client, and a callback delivery served on loopback.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use daglo_callback::{CallbackConfig, CallbackDelivery, CallbackServer};
use daglo_client::Client;
use daglo_core::{IgnoreProgress, JobOptions, Outcome, ResultDelivery, Rid, Ticket};
use daglo_sim::{Faults, SimConfig, Simulator};

pub struct Rig {
    pub sim: Simulator,
    pub client: Client,
    pub callbacks: CallbackDelivery,
    pub server: CallbackServer,
    pub public_url: String,
    pub http: reqwest::Client,
}

/// A client for deliveries whose tests never reach a final callback's confirmation: it points
/// at a closed loopback port, so a request it made would fail loudly rather than go anywhere.
pub fn unused_client() -> Client {
    Client::builder()
        .token("tok-unused")
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap()
}

pub fn faults(set: impl FnOnce(&mut Faults)) -> Faults {
    let mut faults = Faults::default();
    set(&mut faults);
    faults
}

impl Rig {
    /// An emulator (rate limit off, 100 ms jobs unless `sim` says otherwise) and a callback
    /// receiver on `127.0.0.1:0`, configured by `config`.
    pub async fn start(sim: SimConfig, config: impl FnOnce(CallbackConfig) -> CallbackConfig) -> Self {
        let sim = Simulator::start(sim).await.unwrap();
        let client = daglo::sim::client(&sim).unwrap();
        let (callbacks, server) = CallbackDelivery::loopback(client.clone(), config).await.unwrap();
        let public_url = format!("http://{}/daglo", server.local_addr());
        Self {
            sim,
            client,
            callbacks,
            server,
            public_url,
            http: reqwest::Client::new(),
        }
    }

    pub fn sim_config() -> SimConfig {
        SimConfig::default()
            .rate_limit(None)
            .processing_time(Duration::from_millis(100))
    }

    /// Prepares and submits one job; returns what `wait` needs and the options sent.
    pub async fn submit(&self, audio: &str) -> (Rid, Box<dyn Ticket>, JobOptions) {
        let mut options = JobOptions::default();
        let prepared = self.callbacks.prepare(&mut options).await.unwrap();
        let rid = self.client.submit_url(audio, &options).await.unwrap().rid;
        (rid, prepared, options)
    }

    pub async fn run(&self, audio: &str) -> Outcome {
        let (rid, prepared, _) = self.submit(audio).await;
        self.wait(rid, prepared).await
    }

    /// Waits for a prepared job, ignoring progress.
    pub async fn wait(&self, rid: Rid, prepared: Box<dyn Ticket>) -> Outcome {
        prepared.wait(rid, &IgnoreProgress).await.unwrap()
    }

    /// The callback URL and credential header a prepared job got.
    pub fn credential(options: &JobOptions) -> (String, String, String) {
        let callback = options.callback.as_ref().unwrap();
        let (name, value) = callback.headers.iter().next().unwrap();
        (callback.url.clone(), name.clone(), value.clone())
    }

    /// POSTs `body` to `url` with the given headers.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        post(&self.http, url, headers, body).await
    }
}

/// POSTs `body` to `url` with the given headers; returns the status and the JSON answer.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> (u16, serde_json::Value) {
    let mut request = http.post(url).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(serde_json::Value::Null))
}
