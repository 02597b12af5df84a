//! Shared set-up for the facade's tests: an emulator with a client, and a callback receiver.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use daglo::Client;
use daglo::callback::{CallbackDelivery, CallbackServer};
use daglo::poll::{PollPolicy, PollingConfig, PollingDelivery};
use daglo::sim::{SimConfig, Simulator};

/// An emulator (rate limit off, 100 ms jobs) configured by `config`, and a client for it.
pub async fn sim(config: SimConfig) -> (Simulator, Client) {
    let sim = Simulator::start(
        config
            .rate_limit(None)
            .processing_time(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let client = daglo::sim::client(&sim).unwrap();
    (sim, client)
}

/// A callback delivery served on a loopback port, confirming finals through `client`.
pub async fn callbacks(client: &Client) -> (CallbackDelivery, CallbackServer) {
    CallbackDelivery::loopback(client.clone(), |config| config)
        .await
        .unwrap()
}

/// A poller that asks every 30 ms, so short emulated jobs end quickly.
pub fn fast_polling(client: &Client) -> PollingDelivery {
    PollingDelivery::new(
        client.clone(),
        PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_millis(30))),
    )
}
