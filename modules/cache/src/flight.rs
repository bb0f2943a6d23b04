//! Single flight inside the process: concurrent misses on one key wait for one leader's load
//! instead of each querying the database. (Across instances the fill lock does the same.)

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::watch;

/// What a finished flight hands its followers: the encoded value, or `None` when the leader's
/// load failed (errors are never shared or cached; followers then load by themselves).
pub(crate) type Landing = Option<Arc<Vec<u8>>>;

type Slot = watch::Receiver<Option<Landing>>;

/// The flights in progress, by entry.
#[derive(Default)]
pub(crate) struct Flights(Mutex<HashMap<String, Slot>>);

/// The caller's part in a flight.
pub(crate) enum Role {
    /// Loads, then [`Leader::land`]s.
    Leader(Leader),
    /// Waits for the leader.
    Follower(Follower),
}

impl Flights {
    /// Joins the flight for `key`, or starts it.
    pub(crate) fn join(self: &Arc<Self>, key: String) -> Role {
        let mut flights = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = flights.get(&key) {
            return Role::Follower(Follower(slot.clone()));
        }
        let (tx, rx) = watch::channel(None);
        flights.insert(key.clone(), rx);
        Role::Leader(Leader { flights: self.clone(), key, tx: Some(tx) })
    }

    fn leave(&self, key: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    #[cfg(test)]
    pub(crate) fn in_progress(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The one caller that loads. Dropped without landing (its request was cancelled), it lets the
/// followers go and load by themselves.
pub(crate) struct Leader {
    flights: Arc<Flights>,
    key: String,
    tx: Option<watch::Sender<Option<Landing>>>,
}

impl Leader {
    /// Ends the flight with its outcome.
    pub(crate) fn land(mut self, landing: Landing) {
        // Leave first: a caller arriving now reads the cache (or starts a new flight), it does
        // not wait for this one.
        self.flights.leave(&self.key);
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Some(landing));
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.flights.leave(&self.key);
        }
    }
}

/// A caller waiting for the leader.
pub(crate) struct Follower(Slot);

impl Follower {
    /// The leader's value; `None` when it failed or went away.
    pub(crate) async fn wait(mut self) -> Landing {
        match self.0.wait_for(Option::is_some).await {
            Ok(landing) => landing.clone().flatten(),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_leaders_value_and_the_flight_ends() {
        let flights = Arc::new(Flights::default());
        let Role::Leader(leader) = flights.join("k".into()) else { panic!("the first caller leads") };
        let Role::Follower(follower) = flights.join("k".into()) else { panic!("the second follows") };
        let waiting = tokio::spawn(follower.wait());
        leader.land(Some(Arc::new(b"v".to_vec())));
        assert_eq!(waiting.await.expect("task").as_deref().map(Vec::as_slice), Some(&b"v"[..]));
        assert_eq!(flights.in_progress(), 0);
        assert!(matches!(flights.join("k".into()), Role::Leader(_)), "a new flight after landing");
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_its_followers() {
        let flights = Arc::new(Flights::default());
        let Role::Leader(leader) = flights.join("k".into()) else { panic!("leads") };
        let Role::Follower(follower) = flights.join("k".into()) else { panic!("follows") };
        drop(leader);
        assert_eq!(follower.wait().await, None);
        assert_eq!(flights.in_progress(), 0);
    }
}
