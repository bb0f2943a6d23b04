//! The Lua script registry.
//!
//! Atomic multi-step operations are Lua scripts. Each is registered once by name; the registry
//! loads every script on each (re)connect (`SCRIPT LOAD` on every node of a cluster), and
//! [`Redis::eval`](crate::Redis::eval) runs them with EVALSHA, loading and retrying once on
//! `NOSCRIPT` (a failover to a replica that never saw the script, a `SCRIPT FLUSH`).

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
};

use fred::{clients::Client, types::scripts::Script as FredScript};

use crate::rebase::Slice;

/// A registered Lua script. Copying it is free: the script is interned (see [`intern`]), so
/// queueing one on the hot path touches no reference count that every core shares.
#[derive(Clone, Copy)]
pub struct Script {
    name: &'static str,
    lua: &'static str,
    inner: &'static FredScript,
    /// How many values the body returns: 1, or more for a script registered with
    /// [`ScriptRegistry::register_values`].
    values: usize,
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

    /// The SHA1 as fred's string, sharing the interned script's bytes (no copy, no count).
    pub(crate) fn sha1_str(&self) -> fred::bytes_utils::Str {
        let sha1: &'static str = self.inner.sha1();
        fred::bytes_utils::Str::from_static(sha1)
    }

    pub(crate) fn fred(&self) -> &'static FredScript {
        self.inner
    }

    /// The script's identity: its interned source's address (equal sources, equal identity).
    pub(crate) fn id(&self) -> usize {
        std::ptr::from_ref(self.inner) as usize
    }

    /// The Lua source.
    pub(crate) fn lua(&self) -> &'static str {
        self.lua
    }

    /// How many values the script's body returns (its reply's elements when it runs alone).
    pub(crate) fn values(&self) -> usize {
        self.values
    }
}

/// The script for `source`, made once per process and kept for its life. Sources are a fixed
/// set (the modules' scripts, their combinations, one per rate-limit policy), so this holds a
/// bounded amount however many clients register them (tests make hundreds).
/// `text`, kept for the life of the process once however often it is asked for: the names and
/// sources of generated scripts, made again by every client that registers them.
fn intern_str(text: String) -> &'static str {
    static TEXTS: OnceLock<Mutex<std::collections::HashSet<&'static str>>> = OnceLock::new();
    let mut texts = TEXTS.get_or_init(Mutex::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(known) = texts.get(text.as_str()) {
        return known;
    }
    let text: &'static str = Box::leak(text.into_boxed_str());
    texts.insert(text);
    text
}

fn intern(source: String) -> &'static FredScript {
    static SCRIPTS: OnceLock<Mutex<HashMap<String, &'static FredScript>>> = OnceLock::new();
    let mut scripts = SCRIPTS.get_or_init(Mutex::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(script) = scripts.get(&source) {
        return script;
    }
    let script: &'static FredScript = Box::leak(Box::new(FredScript::from_lua(source.clone())));
    scripts.insert(source, script);
    script
}

/// Defined ahead of every registered script: `server_ms()` answers Redis `TIME` in
/// milliseconds (with the microseconds as a fraction), read once per script run. Scripts
/// combined into one (see [`crate::batch`]) share it: they see one clock and the server runs
/// `TIME` once for all.
const PRELUDE: &str = "local server_ms_read\n\
local function server_ms() if not server_ms_read then local t = redis.call('TIME') \
server_ms_read = t[1] * 1000 + t[2] / 1000 end return server_ms_read end\n";

/// The most values a script registered with [`ScriptRegistry::register_values`] may return:
/// with the most parts a combined script has (32), its locals stay within Lua's 200.
const MOST_VALUES: usize = 4;

/// Lua that puts what `run` returns into the new `locals`, one value each (or, without `run`,
/// settles the locals a part assigned inline). A nil (a part that returns nothing, or fewer
/// values) becomes false: in the reply's array a nil would end the array there, and false
/// answers nil in its place.
fn bind(locals: &[String], run: Option<&str>) -> String {
    let mut lua = run.map(|run| format!("local {} = {run}\n", locals.join(", "))).unwrap_or_default();
    for local in locals {
        lua.push_str(&format!("if {local} == nil then {local} = false end\n"));
    }
    lua
}

/// Opens every combined script: the globals its parts read, as locals of the script. A part
/// then reads `redis.call`, `KEYS[n]` or `math.floor` from a register or an upvalue instead of
/// looking the global up by name each time (Redis 7.0's scripts cannot assign globals, so the
/// locals always hold what the globals do). With parts run inline (see
/// [`crate::rebase::ending`]): 16.1k to 14.7k Redis instructions per guarded read, combined
/// 14 to a call (callgrind on `redis-server`).
const SHADOWS: &str = "local redis, math, KEYS, ARGV = redis, math, KEYS, ARGV\n";

/// The most locals a combined script holds at once when a part runs inline (its own and the
/// locals that part declares): Lua allows 200 per function, and 250 registers for them and the
/// temporaries of an expression. Past it, the part runs as a function of its own.
const MOST_LOCALS: usize = 160;

/// The locals every combined script holds: [`PRELUDE`]'s two and [`SHADOWS`]'s four.
const OWN_LOCALS: usize = 6;

/// A part of a combined script: the script and how many KEYS and ARGV it is handed.
pub(crate) type Part<'a> = (&'a Script, usize, usize);

/// What identifies a combined script: its parts' names and arities, in order.
type Combination = Vec<(&'static str, usize, usize)>;

/// Scripts by name.
#[derive(Default)]
pub(crate) struct ScriptRegistry {
    scripts: Mutex<HashMap<&'static str, Script>>,
    /// Combined scripts by their parts (names and arities), found without allocating (hot path).
    combinations: Mutex<Vec<(Combination, Script)>>,
}

impl ScriptRegistry {
    /// Registers `lua` as `name` (run with [`PRELUDE`] ahead of it). Registering the same name
    /// again returns the same script; a different body under a taken name is a programming
    /// error and panics at start-up.
    pub(crate) fn register(&self, name: &'static str, lua: &'static str) -> Script {
        self.register_with(name, lua, 1, format!("{PRELUDE}{lua}"))
    }

    /// Registers `lua`, a body that ends by returning `values` values (`return a, b`), as
    /// `name`. Run alone, the script answers them as one array. Combined with others (see
    /// [`crate::batch`]), its values go into the combined reply as they are, beside the other
    /// parts' values: an array per part cost Redis a table and its conversion per part, and the
    /// client a nested reply to decode.
    pub(crate) fn register_values(&self, name: &'static str, lua: &'static str, values: usize) -> Script {
        // Every value is a local of the combined script, which Lua caps at 200 per function.
        assert!((1..=MOST_VALUES).contains(&values), "the script {name:?} returns 1 to {MOST_VALUES} values");
        let locals: Vec<String> = (1..=values).map(|v| format!("v{v}")).collect();
        let bound = bind(&locals, Some("values()"));
        let source = format!("{PRELUDE}local function values()\n{lua}\nend\n{bound}return {{{}}}\n", locals.join(", "));
        self.register_with(name, lua, values, source)
    }

    fn register_with(&self, name: &'static str, lua: &'static str, values: usize, source: String) -> Script {
        let inner = intern(source);
        let mut scripts = self.scripts.lock().unwrap_or_else(|p| p.into_inner());
        let script = *scripts.entry(name).or_insert(Script { name, lua, inner, values });
        assert!(std::ptr::eq(script.inner, inner), "two different Lua scripts registered as {name:?}");
        script
    }

    /// Registers a script generated at run time (say, with a policy's numbers written into
    /// it), its name and source interned: every client makes them again, and they are kept once.
    pub(crate) fn register_generated(&self, name: String, lua: String) -> Script {
        self.register(intern_str(name), intern_str(lua))
    }

    /// As [`register_values`](Self::register_values), for a script generated at run time.
    pub(crate) fn register_generated_values(&self, name: String, lua: String, values: usize) -> Script {
        self.register_values(intern_str(name), intern_str(lua), values)
    }

    /// The script running `parts` one after the other (see [`crate::batch`]), registered on
    /// first use. Each part reads its own slices of KEYS and ARGV at fixed offsets (in place, or
    /// handed as tables of its own when it uses them other than by literal position), and runs
    /// inline in a block of its own when it returns only at its end (else as a local function),
    /// so the combination costs the server no bookkeeping: it is generated per
    /// (scripts, arities), and those are few (the scripts one request issues together), so
    /// their names and sources are interned.
    pub(crate) fn combined<'a>(&self, parts: impl Iterator<Item = Part<'a>> + Clone) -> Script {
        let mut combinations = self.combinations.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, script)) =
            combinations.iter().find(|(key, _)| key.iter().copied().eq(parts.clone().map(|(s, k, a)| (s.name(), k, a))))
        {
            return *script;
        }
        let key: Combination = parts.clone().map(|(s, k, a)| (s.name(), k, a)).collect();
        let (mut lua, mut call) = (String::from(SHADOWS), String::new());
        let (mut k, mut a) = (0, 0);
        let slice = |table: &str, from: usize, n: usize| {
            (from + 1..=from + n).map(|i| format!("{table}[{i}]")).collect::<Vec<_>>().join(", ")
        };
        // `held`: the combined script's locals so far (its own, the parts' values and functions).
        let (mut results, mut held) = (Vec::new(), OWN_LOCALS);
        for (i, (script, keys, args)) in parts.enumerate() {
            let n = i + 1;
            let values: Vec<String> = (1..=script.values()).map(|v| format!("r{n}_{v}")).collect();
            // A part reading only literal positions reads the combined call's KEYS and ARGV in
            // place; any other part is handed tables of its own. A part that returns only at its
            // end runs inline, within the locals Lua allows one function.
            let (own_keys, own_args) = (Slice { from: k, len: keys }, Slice { from: a, len: args });
            let body = crate::rebase::rebase(script.lua(), own_keys, own_args);
            match body.as_deref().and_then(crate::rebase::ending) {
                Some(ending) if held + values.len() + ending.locals <= MOST_LOCALS => {
                    let (before, returned) = (ending.before, ending.values);
                    call.push_str(&format!("local {0}\ndo\n{before}\n{0} = {returned}\nend\n", values.join(", ")));
                    call.push_str(&bind(&values, None));
                }
                _ => {
                    held += 1;
                    let run = match body {
                        Some(body) => {
                            lua.push_str(&format!("local function part{n}()\n{body}\nend\n"));
                            format!("part{n}()")
                        }
                        None => {
                            lua.push_str(&format!("local function part{n}(KEYS, ARGV)\n{}\nend\n", script.lua()));
                            format!("part{n}({{{}}}, {{{}}})", slice("KEYS", k, keys), slice("ARGV", a, args))
                        }
                    };
                    call.push_str(&bind(&values, Some(&run)));
                }
            }
            held += values.len();
            results.extend(values);
            (k, a) = (k + keys, a + args);
        }
        lua.push_str(&call);
        lua.push_str(&format!("return {{{}}}\n", results.join(", ")));
        let name = key.iter().map(|(s, k, a)| format!("{s}/{k}/{a}")).collect::<Vec<_>>().join("+");
        let script = self.register(intern_str(name), intern_str(lua));
        combinations.push((key, script));
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
