//! The coordination contract (leases, compare-and-set state) against both
//! implementations: in memory, and JetStream key-value buckets on a real
//! `nats-server`. A lease whose holder dies is taken over within its TTL.

use super::bus;
use crate::split::deps::{JetStreamAdmin, Nats, NatsCluster};
use oglogstream::bus::Bus;
use oglogstream::bus::coordination::{
    Acquired, Coordination, CoordinationError, LeaseKeeper, MemoryCoordination, Versioned,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The contract every implementation meets; `ttl` is the implementation's.
/// Exercises takeover by waiting past the TTL, so call it with a short one.
pub async fn coordination_contract(first: Arc<dyn Coordination>, second: Arc<dyn Coordination>) {
    // Leases: one holder at a time.
    let Acquired::Held(lease) = first.acquire("alerts", "a").await.unwrap() else {
        panic!("a free lease is granted");
    };
    assert_eq!(
        second.acquire("alerts", "b").await.unwrap(),
        Acquired::HeldBy("a".into())
    );
    let renewed = first.renew(&lease).await.unwrap();
    assert!(renewed.revision > lease.revision);
    assert!(
        matches!(
            first.renew(&lease).await,
            Err(CoordinationError::Conflict(_))
        ),
        "a stale revision cannot renew"
    );
    first.release(&renewed).await.unwrap();
    let Acquired::Held(taken) = second.acquire("alerts", "b").await.unwrap() else {
        panic!("a released lease is free at once");
    };
    assert!(matches!(
        first.renew(&renewed).await,
        Err(CoordinationError::Conflict(_))
    ));
    // Not renewed for the TTL: free for the other.
    let abandoned_at = Instant::now();
    let deadline = abandoned_at + first.lease_ttl() * 3;
    let retaken = loop {
        if let Acquired::Held(lease) = first.acquire("alerts", "a").await.unwrap() {
            break lease;
        }
        assert!(
            Instant::now() < deadline,
            "the abandoned lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        abandoned_at.elapsed() >= first.lease_ttl() / 2,
        "taken over only after the lease ran out"
    );
    assert!(!taken.is_valid(), "the old holder's view ended first");
    assert!(retaken.is_valid());

    // State: compare-and-set by revision.
    assert_eq!(first.load("alerts.state").await.unwrap(), None);
    let one = first.store("alerts.state", b"one", None).await.unwrap();
    assert!(matches!(
        second.store("alerts.state", b"other", None).await,
        Err(CoordinationError::Conflict(_))
    ));
    let two = second
        .store("alerts.state", b"two", Some(one))
        .await
        .unwrap();
    assert!(two > one);
    assert!(matches!(
        first.store("alerts.state", b"stale", Some(one)).await,
        Err(CoordinationError::Conflict(_))
    ));
    assert_eq!(
        first.load("alerts.state").await.unwrap(),
        Some(Versioned {
            value: b"two".to_vec(),
            revision: two
        })
    );
    assert!(matches!(
        first.load("no spaces").await,
        Err(CoordinationError::InvalidKey(_))
    ));

    // Expiring sets (revoked sessions): what one instance remembers, every
    // other finds at once; a shorter remember never shortens a longer one.
    let set = "revoked_sessions";
    assert!(!second.remembers(set, "s1").await.unwrap(), "nothing yet");
    first
        .remember(set, "s1", Duration::from_secs(600))
        .await
        .unwrap();
    assert!(second.remembers(set, "s1").await.unwrap());
    assert!(!second.remembers(set, "s2").await.unwrap());
    second
        .remember(set, "s2", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(first.remembers(set, "s2").await.unwrap());
    assert!(first.remembers(set, "s1").await.unwrap());
    assert!(!first.remembers("other_set", "s1").await.unwrap());
    assert!(matches!(
        first
            .remember("bad.set", "s1", Duration::from_secs(1))
            .await,
        Err(CoordinationError::InvalidKey(_))
    ));
}

#[actix_web::test]
async fn memory_coordination_meets_the_contract() {
    let shared = Arc::new(MemoryCoordination::new(Duration::from_secs(2)));
    coordination_contract(shared.clone(), shared).await;
}

#[actix_web::test]
async fn jetstream_coordination_meets_the_contract() {
    let nats = Nats::start().await;
    let first = bus(&nats.url(), 1, Duration::from_secs(2)).await;
    let second = bus(&nats.url(), 1, Duration::from_secs(2)).await;
    coordination_contract(first.coordination(), second.coordination()).await;
    // The set's bucket keeps keys as long as the longest remember asked.
    let admin = JetStreamAdmin::connect(&nats.url()).await.expect("admin");
    let info = admin.stream_info("KV_OGLOGSTREAM_revoked_sessions").await;
    assert_eq!(info["config"]["max_age"], 600_000_000_000u64, "{info}");
}

/// Three instances keep the same lease on an R3 cluster; the holder dies
/// (its keeper and connection vanish without a release); another instance
/// takes the lease within the TTL and never while the dead holder's view
/// was still valid.
#[actix_web::test]
async fn a_dead_holders_lease_is_taken_over_within_its_ttl_on_a_cluster() {
    const TTL: Duration = Duration::from_secs(3);
    let cluster = NatsCluster::start().await;
    let mut buses = Vec::new();
    let mut keepers = Vec::new();
    for n in 0..3 {
        let bus = bus(&cluster.url(), 3, TTL).await;
        keepers.push(LeaseKeeper::start(
            bus.coordination(),
            "alerts",
            &format!("instance-{n}"),
        ));
        buses.push(bus);
    }
    let holder = crate::support::eventually("one holder", Duration::from_secs(20), || async {
        let holders: Vec<usize> = (0..3)
            .filter(|n| keepers[*n].held().borrow().is_some())
            .collect();
        assert!(holders.len() <= 1, "two holders at once: {holders:?}");
        holders.first().copied()
    })
    .await;
    // The buckets are replicated like the stream.
    let admin = JetStreamAdmin::connect(&cluster.url())
        .await
        .expect("admin");
    for bucket in ["KV_OGLOGSTREAM_leases", "KV_OGLOGSTREAM_state"] {
        let info = admin.stream_info(bucket).await;
        assert_eq!(info["config"]["num_replicas"], 3, "{bucket}: {info}");
    }

    // The holder dies: no release, its connection gone.
    let last = keepers[holder].held().borrow().clone().expect("held");
    let died = Instant::now();
    drop(keepers.remove(holder));
    buses.remove(holder).close().await;
    let (successor, successor_lease) =
        crate::support::eventually("another instance to take the lease", TTL * 3, || async {
            keepers
                .iter()
                .enumerate()
                .find_map(|(n, keeper)| keeper.held().borrow().clone().map(|lease| (n, lease)))
        })
        .await;
    let taken_after = died.elapsed();
    println!(
        "lease: holder instance-{holder} killed; {} took over after {taken_after:?} (TTL {TTL:?})",
        successor_lease.holder
    );
    // Renewals come every TTL/3, so the broker drops the dead holder's lease
    // at most a TTL after the kill; the next acquire comes at most TTL/3
    // later.
    assert!(
        taken_after <= TTL + TTL / 3 + Duration::from_secs(1),
        "taken over after {taken_after:?}"
    );
    assert!(
        successor_lease.valid_until - TTL >= last.valid_until,
        "never two valid holders: the successor asked for the lease after the dead one's validity ended"
    );
    assert!(
        keepers
            .iter()
            .enumerate()
            .all(|(n, k)| n == successor || k.held().borrow().is_none())
    );
    for keeper in keepers {
        keeper.stop().await;
    }
}
