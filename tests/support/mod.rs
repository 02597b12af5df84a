//! Shared set-up for the facade's tests: an emulator with a client, and a callback receiver.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use daglo::{CallbackConfig, CallbackDelivery, CallbackServer, Client};
use daglo_sim::{SimConfig, Simulator};

/// An emulator (rate limit off, 100 ms jobs) configured by `config`, and a client for it.
pub async fn sim(config: SimConfig) -> (Simulator, Client) {
    let sim = Simulator::start(
        config
            .rate_limit(None)
            .processing_time(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let client = Client::builder()
        .token(sim.token())
        .base_url(sim.base_url())
        .build()
        .unwrap();
    (sim, client)
}

/// A callback delivery served on `127.0.0.1:0`.
pub async fn callbacks() -> (CallbackDelivery, CallbackServer) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}/cb", listener.local_addr().unwrap());
    let callbacks = CallbackDelivery::new(CallbackConfig::new(&public).unwrap()).unwrap();
    let server = callbacks.serve(listener).unwrap();
    (callbacks, server)
}
