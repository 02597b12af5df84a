//! The behaviour every [`JobRegistry`] must show, as one check both the in-memory registry and
//! shared backends (`daglo-redis`) run in their tests: the same rules, proven the same way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use daglo_core::{Rid, Status, StatusBody};

use crate::keys::JobKey;
use crate::registry::{JobRegistry, Registered};
use crate::state::Applied;

/// Runs every check on `registry`, panicking with what failed. Keys start with `prefix`, so
/// several runs can share one store. Needs a Tokio runtime with timers.
pub async fn check_registry(registry: Arc<dyn JobRegistry>, prefix: &str) {
    let key = |name: &str| JobKey::new(format!("{prefix}-{name}"));
    let later = Instant::now() + Duration::from_secs(300);
    let body = |status: Status, percent: Option<u32>| {
        let mut body = StatusBody::new(status);
        body.progress = percent;
        body
    };

    // Unknown jobs: nothing to look up, apply or follow.
    let unknown = key("unknown");
    assert!(registry.lookup(&unknown).await.expect("lookup").is_none());
    assert!(
        registry
            .apply(&unknown, body(Status::Transcribed, Some(100)))
            .await
            .expect("apply")
            .is_none()
    );
    assert!(registry.subscribe(&unknown).await.expect("subscribe").is_none());
    assert!(
        registry
            .set_rid(&unknown, Rid::new("r"))
            .await
            .expect("set_rid")
            .is_none()
    );

    // Forward only, terminal absorbing, first final wins.
    let job = key("rules");
    registry
        .register(job.clone(), Registered::new(None), later)
        .await
        .expect("register");
    assert!(registry.lookup(&job).await.expect("lookup").is_some());
    // A registry that answers look-ups at once answers them as `lookup` does.
    if let Some(now) = registry.lookup_now(&job) {
        assert!(now.is_some(), "{prefix}: `lookup_now` misses a registered job");
        assert!(
            matches!(registry.lookup_now(&unknown), Some(None)),
            "{prefix}: `lookup_now` finds an unknown job, or answers for one job and not another"
        );
    }
    let apply = |status, percent| {
        let registry = registry.clone();
        let job = job.clone();
        async move { registry.apply(&job, body(status, percent)).await.expect("apply") }
    };
    assert_eq!(
        apply(Status::Transcribing, Some(40)).await,
        Some(Applied::Progress)
    );
    assert_eq!(
        apply(Status::Uploaded, Some(5)).await,
        Some(Applied::Stale),
        "backwards"
    );
    assert_eq!(
        apply(Status::Transcribing, Some(40)).await,
        Some(Applied::Stale),
        "repeat"
    );
    assert_eq!(apply(Status::Transcribed, Some(100)).await, Some(Applied::Final));
    assert_eq!(apply(Status::FileError, None).await, Some(Applied::Duplicate));
    assert_eq!(
        apply(Status::PostProcessing, Some(95)).await,
        Some(Applied::Stale),
        "late"
    );
    let view = registry
        .subscribe(&job)
        .await
        .expect("subscribe")
        .expect("registered");
    let stored = view.borrow().clone();
    assert_eq!(
        stored.status,
        Some(Status::Transcribed),
        "a late subscriber reads the stored state"
    );
    assert_eq!(
        stored.final_body.as_deref().map(|b| &b.status),
        Some(&Status::Transcribed)
    );

    // The submit answer's rid is trusted over a callback's.
    let claimed = key("claimed");
    registry
        .register(claimed.clone(), Registered::new(None), later)
        .await
        .expect("register");
    let mut forged = body(Status::Transcribed, Some(100));
    forged.rid = Some(Rid::new("forged"));
    assert_eq!(
        registry.apply(&claimed, forged).await.expect("apply"),
        Some(Applied::Final)
    );
    assert_eq!(
        registry
            .set_rid(&claimed, Rid::new("real"))
            .await
            .expect("set_rid"),
        Some(Err(Rid::new("forged")))
    );
    let mut other = body(Status::Transcribing, Some(50));
    other.rid = Some(Rid::new("forged"));
    assert_eq!(
        registry.apply(&claimed, other).await.expect("apply"),
        Some(Applied::RidMismatch)
    );
    let view = registry
        .subscribe(&claimed)
        .await
        .expect("subscribe")
        .expect("registered");
    assert!(
        view.borrow().final_body.is_none(),
        "the forged final was set aside"
    );

    // Racing finals: exactly one wins, wherever they come from.
    let raced = key("race");
    registry
        .register(raced.clone(), Registered::new(None), later)
        .await
        .expect("register");
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let registry = registry.clone();
            let raced = raced.clone();
            tokio::spawn(async move {
                let mut final_body = StatusBody::new(Status::Transcribed);
                final_body.message = Some(format!("racer {i}"));
                registry.apply(&raced, final_body).await.expect("apply")
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, racer) in racers.into_iter().enumerate() {
        match racer.await.expect("racer") {
            Some(Applied::Final) => winners.push(format!("racer {i}")),
            Some(Applied::Duplicate) => {}
            other => panic!("a racing final was {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let view = registry
        .subscribe(&raced)
        .await
        .expect("subscribe")
        .expect("registered");
    assert_eq!(
        view.borrow().final_body.as_ref().and_then(|b| b.message.clone()),
        winners.pop()
    );

    // A waiter wakes on a change, and the sender closes when the job is removed.
    let woken = key("wake");
    registry
        .register(woken.clone(), Registered::new(None), later)
        .await
        .expect("register");
    let mut view = registry
        .subscribe(&woken)
        .await
        .expect("subscribe")
        .expect("registered");
    let waiter = tokio::spawn(async move {
        loop {
            if view.borrow_and_update().final_body.is_some() {
                break Some(view);
            }
            if view.changed().await.is_err() {
                break None;
            }
        }
    });
    assert_eq!(
        registry
            .apply(&woken, body(Status::Transcribed, Some(100)))
            .await
            .expect("apply"),
        Some(Applied::Final)
    );
    let mut view = waiter.await.expect("waiter").expect("woken by the final body");
    registry.remove(&woken).await.expect("remove");
    assert!(registry.lookup(&woken).await.expect("lookup").is_none());
    assert!(
        !matches!(registry.lookup_now(&woken), Some(Some(_))),
        "{prefix}: `lookup_now` still finds a removed job"
    );
    // Removal closes the sender, at the latest when expired registrations are swept.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            registry.expire(Instant::now()).await;
            if tokio::time::timeout(Duration::from_millis(20), view.changed())
                .await
                .is_ok_and(|r| r.is_err())
            {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the watch did not close after removal");

    // Expiry.
    let short = key("short");
    registry
        .register(
            short.clone(),
            Registered::new(None),
            Instant::now() + Duration::from_millis(50),
        )
        .await
        .expect("register");
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            registry.expire(Instant::now()).await;
            if registry.lookup(&short).await.expect("lookup").is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "a registration outlived its time to live");

    for name in ["rules", "claimed", "race"] {
        registry.remove(&key(name)).await.expect("remove");
    }
}

/// Runs the checks two replicas of one shared registry must pass together: `one` and `other`
/// are two registries on the same store (for a registry that is not shared, the same one
/// twice). Whatever either replica knows or caches, a change made through one is never undone,
/// doubled or lost through the other; what the other hears late it hears within seconds.
/// Keys start with `prefix`. Needs a Tokio runtime with timers.
pub async fn check_replicas(one: Arc<dyn JobRegistry>, other: Arc<dyn JobRegistry>, prefix: &str) {
    let key = |name: &str| JobKey::new(format!("{prefix}-{name}"));
    let later = Instant::now() + Duration::from_secs(300);
    let body = |status: Status, percent: Option<u32>| {
        let mut body = StatusBody::new(status);
        body.progress = percent;
        body
    };
    let apply = |registry: &Arc<dyn JobRegistry>, job: &JobKey, status, percent| {
        let (registry, job) = (registry.clone(), job.clone());
        async move { registry.apply(&job, body(status, percent)).await.expect("apply") }
    };

    // Registered on one replica, known at once on the other; each replica's changes build on
    // the other's, whatever either saw last.
    let job = key("turns");
    one.register(job.clone(), Registered::new(None), later)
        .await
        .expect("register");
    assert!(
        other.lookup(&job).await.expect("lookup").is_some(),
        "known on the other replica"
    );
    assert!(one.lookup(&job).await.expect("lookup").is_some());
    assert_eq!(
        apply(&other, &job, Status::Transcribing, Some(40)).await,
        Some(Applied::Progress)
    );
    assert_eq!(
        apply(&one, &job, Status::Transcribing, Some(30)).await,
        Some(Applied::Stale),
        "a body behind the other replica's change is stale here too"
    );
    assert_eq!(
        apply(&one, &job, Status::Transcribing, Some(60)).await,
        Some(Applied::Progress)
    );
    assert_eq!(
        apply(&other, &job, Status::Transcribing, Some(50)).await,
        Some(Applied::Stale),
        "and the other way round"
    );
    assert_eq!(
        apply(&other, &job, Status::Transcribed, Some(100)).await,
        Some(Applied::Final)
    );
    assert_eq!(
        apply(&one, &job, Status::FileError, None).await,
        Some(Applied::Duplicate),
        "a second final, on the other replica, does not win"
    );
    assert_eq!(
        apply(&one, &job, Status::PostProcessing, Some(95)).await,
        Some(Applied::Stale)
    );
    let seen = one.subscribe(&job).await.expect("subscribe").expect("registered");
    assert_eq!(seen.borrow().status, Some(Status::Transcribed));

    // A final naming a forged rid on one replica, the submit answer's rid on the other — which
    // sets it aside — then the real final on the first: it wins, whatever the first knew.
    let claimed = key("claimed");
    one.register(claimed.clone(), Registered::new(None), later)
        .await
        .expect("register");
    let mut forged = body(Status::Transcribed, Some(100));
    forged.rid = Some(Rid::new("forged"));
    assert_eq!(
        one.apply(&claimed, forged).await.expect("apply"),
        Some(Applied::Final)
    );
    assert_eq!(
        other.set_rid(&claimed, Rid::new("real")).await.expect("set_rid"),
        Some(Err(Rid::new("forged")))
    );
    let mut real = body(Status::Transcribed, Some(100));
    real.rid = Some(Rid::new("real"));
    assert_eq!(
        one.apply(&claimed, real).await.expect("apply"),
        Some(Applied::Final),
        "the real final, after the forged one was set aside on another replica"
    );

    // Removed on one replica: the other never changes it again, and soon no longer knows it.
    let gone = key("gone");
    one.register(gone.clone(), Registered::new(None), later)
        .await
        .expect("register");
    assert!(other.lookup(&gone).await.expect("lookup").is_some());
    one.remove(&gone).await.expect("remove");
    assert_eq!(
        apply(&other, &gone, Status::Transcribed, Some(100)).await,
        None,
        "a final for a job removed on another replica is not applied"
    );
    let forgotten = tokio::time::timeout(Duration::from_secs(5), async {
        while other.lookup(&gone).await.expect("lookup").is_some() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        forgotten.is_ok(),
        "the other replica still knew a removed job after 5 s"
    );

    // Finals racing on both replicas: exactly one wins.
    let raced = key("race");
    one.register(raced.clone(), Registered::new(None), later)
        .await
        .expect("register");
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let registry = if i % 2 == 0 { one.clone() } else { other.clone() };
            let raced = raced.clone();
            tokio::spawn(async move {
                let mut final_body = StatusBody::new(Status::Transcribed);
                final_body.message = Some(format!("racer {i}"));
                registry.apply(&raced, final_body).await.expect("apply")
            })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        match racer.await.expect("racer") {
            Some(Applied::Final) => winners += 1,
            Some(Applied::Duplicate) => {}
            other => panic!("a racing final was {other:?}"),
        }
    }
    assert_eq!(winners, 1, "finals racing on two replicas");

    // A registration that expires is gone on both.
    let short = key("short");
    one.register(
        short.clone(),
        Registered::new(None),
        Instant::now() + Duration::from_millis(50),
    )
    .await
    .expect("register");
    let expired = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            one.expire(Instant::now()).await;
            other.expire(Instant::now()).await;
            if one.lookup(&short).await.expect("lookup").is_none()
                && other.lookup(&short).await.expect("lookup").is_none()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        expired.is_ok(),
        "a registration outlived its time to live on a replica"
    );

    for name in ["turns", "claimed", "race"] {
        one.remove(&key(name)).await.expect("remove");
    }
}
