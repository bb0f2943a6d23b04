//! The Lua script registry.
//!
//! Atomic multi-step operations are Lua scripts. Each is registered once by name; the registry
//! loads every script on each (re)connect (`SCRIPT LOAD` on every node of a cluster), and
//! [`Redis::eval`](crate::Redis::eval) runs them with EVALSHA, loading and retrying once on
//! `NOSCRIPT` (a failover to a replica that never saw the script, a `SCRIPT FLUSH`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use fred::{clients::Client, types::scripts::Script as FredScript};

/// A registered Lua script.
#[derive(Clone)]
pub struct Script {
    name: &'static str,
    inner: Arc<FredScript>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script").field("name", &self.name).field("sha1", &self.sha1()).finish()
    }
}

impl Script {
    /// The name it was registered under.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The SHA1 EVALSHA uses.
    pub fn sha1(&self) -> &str {
        self.inner.sha1()
    }

    pub(crate) fn fred(&self) -> &FredScript {
        &self.inner
    }
}

/// Scripts by name.
#[derive(Default)]
pub(crate) struct ScriptRegistry {
    scripts: Mutex<HashMap<&'static str, Script>>,
}

impl ScriptRegistry {
    /// Registers `lua` as `name`. Registering the same name again returns the same script;
    /// a different body under a taken name is a programming error and panics at start-up.
    pub(crate) fn register(&self, name: &'static str, lua: &'static str) -> Script {
        let mut scripts = self.scripts.lock().unwrap_or_else(|p| p.into_inner());
        let script =
            scripts.entry(name).or_insert_with(|| Script { name, inner: Arc::new(FredScript::from_lua(lua)) }).clone();
        assert_eq!(
            script.sha1(),
            FredScript::from_lua(lua).sha1().to_string(),
            "two different Lua scripts registered as {name:?}"
        );
        script
    }

    /// Loads every registered script; failures are left to the NOSCRIPT fallback.
    pub(crate) async fn load_all(&self, client: &Client) {
        let scripts: Vec<Script> = self.scripts.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for script in scripts {
            if let Err(err) = script.inner.load(client).await {
                tracing::debug!(script = script.name, error = %err, "could not preload a Lua script");
            }
        }
    }
}
