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
    lua: &'static str,
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

    /// The Lua source.
    pub(crate) fn lua(&self) -> &'static str {
        self.lua
    }
}

/// Scripts by name.
#[derive(Default)]
pub(crate) struct ScriptRegistry {
    scripts: Mutex<HashMap<&'static str, Script>>,
    /// Combined scripts by their parts' names, found without allocating (hot path).
    combinations: Mutex<Vec<(Vec<&'static str>, Script)>>,
}

impl ScriptRegistry {
    /// Registers `lua` as `name`. Registering the same name again returns the same script;
    /// a different body under a taken name is a programming error and panics at start-up.
    pub(crate) fn register(&self, name: &'static str, lua: &'static str) -> Script {
        let mut scripts = self.scripts.lock().unwrap_or_else(|p| p.into_inner());
        let script = scripts
            .entry(name)
            .or_insert_with(|| Script { name, lua, inner: Arc::new(FredScript::from_lua(lua)) })
            .clone();
        assert_eq!(
            script.sha1(),
            FredScript::from_lua(lua).sha1().to_string(),
            "two different Lua scripts registered as {name:?}"
        );
        script
    }

    /// The script combining `parts` (see [`crate::batch`]), registered on first use. The
    /// combinations are few (the scripts one request issues together), so their names and
    /// sources are leaked once each.
    pub(crate) fn combined(&self, parts: &[Script]) -> Script {
        let mut combinations = self.combinations.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, script)) =
            combinations.iter().find(|(names, _)| names.iter().copied().eq(parts.iter().map(Script::name)))
        {
            return script.clone();
        }
        let names: Vec<&'static str> = parts.iter().map(Script::name).collect();
        let mut lua = String::from("local PARTS = {}\n");
        for (i, part) in parts.iter().enumerate() {
            lua.push_str(&format!("PARTS[{}] = function(KEYS, ARGV)\n{}\nend\n", i + 1, part.lua()));
        }
        lua.push_str(crate::batch::COMBINER);
        let name = Box::leak(names.join("+").into_boxed_str());
        let script = self.register(name, Box::leak(lua.into_boxed_str()));
        combinations.push((names, script.clone()));
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
