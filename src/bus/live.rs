//! The live feed of one bus: every batch a live subscriber (`/ws/live`)
//! should see goes out through one broadcast, best effort. Both buses use it:
//! the memory bus sends what ingest publishes, the NATS bus what arrives on
//! the live subject.

use crate::domain::LogBatch;
use std::sync::RwLock;
use tokio::sync::{Notify, broadcast};

/// Batches a live subscriber may fall behind by before it is cut off.
const LIVE_BACKLOG: usize = 256;

pub struct LiveFanOut {
    /// `None` once closed: subscribers see the end of the feed.
    sender: RwLock<Option<broadcast::Sender<LogBatch>>>,
    /// Told of every new subscription, for a feed that starts only once
    /// someone watches (the NATS bus's live subject).
    subscribed: Notify,
}

impl Default for LiveFanOut {
    fn default() -> Self {
        let (sender, _) = broadcast::channel(LIVE_BACKLOG);
        LiveFanOut {
            sender: RwLock::new(Some(sender)),
            subscribed: Notify::new(),
        }
    }
}

impl LiveFanOut {
    /// A new subscription; after [`LiveFanOut::close`], one that ends at once.
    pub fn subscribe(&self) -> broadcast::Receiver<LogBatch> {
        let receiver = self
            .sender
            .read()
            .ok()
            .and_then(|sender| sender.as_ref().map(|s| s.subscribe()));
        self.subscribed.notify_one();
        // A receiver whose sender is already gone sees `Closed` at once.
        receiver.unwrap_or_else(|| broadcast::channel(1).1)
    }

    /// Resolves at the next subscription (at once if there was one since
    /// the last call).
    pub async fn next_subscription(&self) {
        self.subscribed.notified().await;
    }

    /// Whether anyone listens: senders skip building batches nobody sees.
    pub fn is_watched(&self) -> bool {
        self.sender
            .read()
            .ok()
            .is_some_and(|sender| sender.as_ref().is_some_and(|s| s.receiver_count() > 0))
    }

    /// Hands `batch` to every subscriber; a subscriber that lags too far
    /// gets `Lagged` from its receiver rather than slowing the sender.
    pub fn send(&self, batch: LogBatch) {
        if let Ok(sender) = self.sender.read()
            && let Some(sender) = sender.as_ref()
            && sender.receiver_count() > 0
        {
            let _ = sender.send(batch);
        }
    }

    /// Ends every subscription (after what was already sent).
    pub fn close(&self) {
        if let Ok(mut sender) = self.sender.write() {
            sender.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Level, LogRecord};

    fn batch(message: &str) -> LogBatch {
        vec![LogRecord {
            id: "1".into(),
            timestamp: 0,
            level: Level::Info,
            service: "s".into(),
            message: message.into(),
            attributes: Default::default(),
            ..Default::default()
        }]
        .into()
    }

    #[tokio::test]
    async fn every_subscriber_sees_each_batch_then_the_end() {
        let live = LiveFanOut::default();
        assert!(!live.is_watched());
        live.send(batch("unseen"));
        let mut first = live.subscribe();
        let mut second = live.subscribe();
        assert!(live.is_watched());
        live.send(batch("seen"));
        live.close();
        for receiver in [&mut first, &mut second] {
            assert_eq!(receiver.recv().await.unwrap()[0].message, "seen");
            assert!(receiver.recv().await.is_err());
        }
        assert!(
            live.subscribe().recv().await.is_err(),
            "closed: ends at once"
        );
        assert!(!live.is_watched());
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_not_waited_for() {
        let live = LiveFanOut::default();
        let mut slow = live.subscribe();
        for _ in 0..LIVE_BACKLOG + 10 {
            live.send(batch("x"));
        }
        assert!(matches!(
            slow.recv().await,
            Err(broadcast::error::RecvError::Lagged(10))
        ));
    }
}
