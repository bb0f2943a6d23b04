//! Users' versions in Redis (see `app_core::versions`): the key, and the Lua that moves a
//! version on, for the scripts of the modules whose changes must drop copies kept in process.

use app_core::versions::UserVersions;

use crate::Redis;

/// Defines `bump_version(key, ttl)` for a script: moves the user's version at `key` on, to one
/// more or to the clock in µs when that is later (so a version whose key expired restarts above
/// every value it had, and a copy made under an old value is never current again), and keeps
/// the key at least `ttl` ms (the longer of the callers' TTLs wins). Run it in the script that
/// makes the change, so no request sees the change under the old version.
/// (A macro, so scripts put it together with `concat!`.)
#[macro_export]
macro_rules! bump_version_lua {
    () => {
        "local function bump_version(key, ttl)\n\
          local v = math.max(tonumber(redis.call('GET', key) or '0') + 1, math.floor(server_ms() * 1000))\n\
          local keep = math.max(redis.call('PTTL', key), tonumber(ttl))\n\
          redis.call('SET', key, string.format('%d', v), 'PX', keep)\n\
        end\n"
    };
}

impl Redis {
    /// The key of `user`'s version: `<prefix>ver:{u:<user>}`, in the hash tag of every other
    /// key of the user's (sessions, cache scopes, the user's rate-limit state). Made without the
    /// formatting machinery: the request screen makes one per guarded request.
    pub fn user_version_key(&self, user: &uuid::Uuid) -> String {
        let mut id = uuid::Uuid::encode_buffer();
        let id = user.hyphenated().encode_lower(&mut id);
        let prefix = self.prefix();
        let mut key = String::with_capacity(prefix.len() + 8 + id.len());
        key.push_str(prefix);
        key.push_str("ver:{u:");
        key.push_str(id);
        key.push('}');
        key
    }

    /// Has the request screen read users' versions from this Redis (see `app_core::versions`):
    /// what a module that keeps users' state in process calls.
    pub fn read_user_versions(&self, versions: &UserVersions) {
        let redis = self.clone();
        versions.read(move |user| redis.user_version_key(&user));
    }
}
