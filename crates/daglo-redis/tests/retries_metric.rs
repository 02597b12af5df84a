//! `daglo_redis_registry_retries_total`: the registry counts the changes that took a second
//! round trip, and why. In a binary of its own: the recorder is the process's one global
//! recorder.

mod support;

use std::time::{Duration, Instant};

use daglo::StatusBody;
use daglo::callback::{Applied, JobKey, JobRegistry, Registered};
use daglo::models::Status;
use daglo::redis::RedisRegistry;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// What the counter gained, for each `why`, since the last call (the debugging recorder's
/// snapshot takes the counts).
fn retries(snapshotter: &Snapshotter) -> Vec<(String, u64)> {
    let mut found = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if key.key().name() != daglo::telemetry::REDIS_REGISTRY_RETRIES {
            continue;
        }
        let why = key
            .key()
            .labels()
            .find(|l| l.key() == "why")
            .map(|l| l.value().to_owned())
            .unwrap_or_default();
        if let DebugValue::Counter(count) = value
            && count > 0
        {
            found.push((why, count));
        }
    }
    found.sort();
    found
}

fn body(status: Status, percent: Option<u32>) -> StatusBody {
    let mut body = StatusBody::new(status);
    body.progress = percent;
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_round_trips_are_counted_by_why() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder of this binary");
    let Some(redis) = support::redis("second_round_trips_are_counted_by_why").await else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        let namespace = support::namespace("retries");
        let one = RedisRegistry::new(support::store(&redis.url, &namespace).await).await;
        let other = RedisRegistry::new(support::store(&redis.url, &namespace).await).await;
        let key = JobKey::new("job");
        let later = Instant::now() + Duration::from_secs(60);
        one.register(key.clone(), Registered::new(None), later)
            .await
            .unwrap();

        // Accepted callbacks on the replica that wrote last: one round trip each, no retry.
        for percent in [10, 20, 30] {
            assert_eq!(
                one.apply(&key, body(Status::Transcribing, Some(percent)))
                    .await
                    .unwrap(),
                Some(Applied::Progress)
            );
        }
        assert_eq!(retries(&snapshotter), []);

        // A duplicate final on the replica that knows the final: checked on the stored state.
        assert_eq!(
            one.apply(&key, body(Status::Transcribed, Some(100)))
                .await
                .unwrap(),
            Some(Applied::Final)
        );
        assert_eq!(
            one.apply(&key, body(Status::Transcribed, Some(100)))
                .await
                .unwrap(),
            Some(Applied::Duplicate)
        );
        assert_eq!(retries(&snapshotter), [("recheck".to_owned(), 1)]);

        // A progress body on the other replica: stale whatever it heard by now, and at most one
        // retry — a conflict if it knew an older state, a recheck if it knew the final, none if
        // it knew nothing yet and read the stored state.
        assert_eq!(
            other
                .apply(&key, body(Status::Transcribing, Some(90)))
                .await
                .unwrap(),
            Some(Applied::Stale)
        );
        let last = retries(&snapshotter);
        assert!(
            last.is_empty() || last == [("conflict".to_owned(), 1)] || last == [("recheck".to_owned(), 1)],
            "at most one retry, a conflict or a recheck: {last:?}"
        );
        one.remove(&key).await.unwrap();
    })
    .await
    .expect("the test finished within a minute");
}
