//! Loading the app's configuration: every module's section, with the framework's loader
//! (defaults < `app.toml` < `APP_*` variables < conventional names such as `PORT`).

use std::path::Path;

pub use app_auth::{DEV_JWT_SECRET, DEV_SESSION_KEY};
pub use app_core::config::{Config, ConfigError, DEFAULT_FILE, Loaded};
use app_core::module::ModuleSet;

/// Loads and validates the configuration of `modules`' sections; returns it with the warnings
/// start-up should log.
///
/// `file`: an explicit config file (then it must exist); `None` reads `app.toml` if present.
/// `env`: the environment to read (the process environment in `main`).
pub fn load(
    modules: &ModuleSet,
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    app_core::config::load(&modules.sections(), file, env)
}

/// The configuration table of the README (between its `config:start` and `config:end`
/// markers), from what `modules` declare.
pub fn table(modules: &ModuleSet) -> String {
    app_core::config::table(&modules.sections())
}
#[cfg(test)]
mod tests {
    use std::io::Write;

    use app_auth::AuthConfig;
    use app_core::config::{LogConfig, LogFormat, Profile, ServerConfig};
    use app_database::DatabaseConfig;
    use app_ratelimit::RateLimitConfig;
    use app_redis::RedisConfig;

    use super::*;

    fn load(file: Option<&Path>, env: Vec<(String, String)>) -> Result<Config, ConfigError> {
        load_with_warnings(file, env).map(|loaded| loaded.config)
    }

    fn load_with_warnings(file: Option<&Path>, env: Vec<(String, String)>) -> Result<Loaded, ConfigError> {
        super::load(&crate::modules(), file, env)
    }

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const SECRET_A: &str = "0123456789012345678901234567890123456789";
    const SECRET_B: &str = "9876543210987654321098765432109876543210";

    #[test]
    fn one_field_of_a_policy_can_be_overridden_alone() {
        let cfg = load(
            None,
            env(&[("APP_RATE_LIMIT__POLICIES__AUTH__LIMIT", "10"), ("APP_RATE_LIMIT__POLICIES__API__BLOCK", "30s")]),
        )
        .expect("valid");
        let auth = &cfg.get::<RateLimitConfig>().policies["auth"];
        assert_eq!(auth.limit, 10);
        assert_eq!(auth.window, std::time::Duration::from_secs(15 * 60), "the rest of the entry is kept");
        assert_eq!(cfg.get::<RateLimitConfig>().policies["api"].block, Some(std::time::Duration::from_secs(30)));
        assert_eq!(cfg.get::<RateLimitConfig>().policies.len(), 5);
    }

    #[test]
    fn defaults_need_nothing() {
        let cfg = load(None, env(&[])).expect("defaults are valid");
        assert_eq!(cfg.get::<ServerConfig>().port, 3000);
        assert_eq!(cfg.profile, Profile::Development);
        assert!(!cfg.get::<RedisConfig>().is_configured());
        assert_eq!(cfg.get::<AuthConfig>().jwt_secret.expose(), DEV_JWT_SECRET, "development fills the secret");
    }

    #[test]
    fn environment_layers_nest_and_conventional_names_win() {
        let cfg = load(
            None,
            env(&[
                ("APP_SERVER__PORT", "4000"),
                ("PORT", "5000"),
                ("APP_REDIS__KEY_PREFIX", "shop:"),
                ("APP_SERVER__CORS_ORIGINS", "https://a.example.com, https://b.example.com"),
                ("APP_SERVER__SHUTDOWN_TIMEOUT", "5s"),
                ("APP_DATABASE__MIGRATE_ON_START", "false"),
                ("REDIS_URL", "redis://127.0.0.1:6380"),
            ]),
        )
        .expect("valid");
        assert_eq!(cfg.get::<ServerConfig>().port, 5000, "PORT beats APP_SERVER__PORT");
        assert_eq!(cfg.get::<RedisConfig>().key_prefix, "shop:");
        assert_eq!(cfg.get::<ServerConfig>().cors_origins, ["https://a.example.com", "https://b.example.com"]);
        assert_eq!(cfg.get::<ServerConfig>().shutdown_timeout, std::time::Duration::from_secs(5));
        assert!(!cfg.get::<DatabaseConfig>().migrate_on_start);
        assert_eq!(cfg.get::<RedisConfig>().url.as_deref(), Some("redis://127.0.0.1:6380"));
    }

    #[test]
    fn numeric_looking_secrets_keep_every_character() {
        let cfg = load(
            None,
            env(&[
                ("JWT_SECRET", "000123456789012345678901234567890123"),
                ("APP_AUTH__SESSION_ENCRYPTION_KEY", SECRET_B),
            ]),
        )
        .expect("valid");
        assert_eq!(cfg.get::<AuthConfig>().jwt_secret.expose(), "000123456789012345678901234567890123");
        assert_eq!(cfg.get::<AuthConfig>().session_encryption_key.expose(), SECRET_B);
    }

    #[test]
    fn a_bad_value_names_the_key_and_its_source() {
        let err = load(None, env(&[("PORT", "eighty")])).expect_err("not a number");
        assert_eq!(err.key.as_deref(), Some("server.port"));
        assert_eq!(err.source.as_deref(), Some("environment variable PORT"));
        let line = err.to_string();
        assert!(line.contains("`server.port`") && line.contains("environment variable PORT"), "{line}");
        assert!(!line.contains('\n'));

        let err = load(None, env(&[("APP_SERVER__MAX_BODY_BYTES", "0")])).expect_err("zero");
        assert_eq!(err.key.as_deref(), Some("server.max_body_bytes"));
        assert_eq!(err.source.as_deref(), Some("environment variable APP_SERVER__MAX_BODY_BYTES"));

        let err = load(None, env(&[("APP_SERVER__PROT", "1")])).expect_err("typo");
        assert!(err.to_string().contains("prot"), "{err}");
    }

    #[test]
    fn foreign_app_variables_are_ignored_with_a_warning() {
        let loaded = load_with_warnings(
            None,
            env(&[("APP_PORT", "tcp://10.0.0.1:80"), ("APP_SERVICE_HOST", "10.0.0.1"), ("APP_ENV", "staging")]),
        )
        .expect("platform variables do not stop start-up");
        assert_eq!(loaded.config.get::<ServerConfig>().port, 3000);
        assert!(loaded.warnings.iter().any(|w| w.contains("APP_PORT")), "{:?}", loaded.warnings);
        assert!(loaded.warnings.iter().any(|w| w.contains("development defaults")), "{:?}", loaded.warnings);
        let strong = load_with_warnings(None, env(&[("JWT_SECRET", SECRET_A), ("SESSION_ENCRYPTION_KEY", SECRET_B)]))
            .expect("valid");
        assert!(strong.warnings.is_empty(), "{:?}", strong.warnings);
    }

    #[test]
    fn the_bind_host_follows_the_profile_unless_set() {
        let dev = load(None, env(&[])).expect("valid");
        assert_eq!(dev.get::<ServerConfig>().bind_host(dev.profile), "127.0.0.1");
        let prod = load(
            None,
            env(&[
                ("APP_PROFILE", "production"),
                ("REDIS_URL", "redis://127.0.0.1:6379"),
                ("JWT_SECRET", SECRET_A),
                ("SESSION_ENCRYPTION_KEY", SECRET_B),
            ]),
        )
        .expect("valid");
        assert_eq!(prod.get::<ServerConfig>().bind_host(prod.profile), "0.0.0.0");
        let set = load(None, env(&[("APP_SERVER__HOST", "0.0.0.0")])).expect("valid");
        assert_eq!(set.get::<ServerConfig>().bind_host(set.profile), "0.0.0.0");
    }

    #[test]
    fn production_refuses_missing_weak_and_default_secrets() {
        let base = [("APP_PROFILE", "production"), ("REDIS_URL", "redis://127.0.0.1:6379")];
        let with = |extra: &[(&str, &str)]| {
            let mut vars = base.to_vec();
            vars.extend_from_slice(extra);
            load(None, env(&vars))
        };
        let err = with(&[("SESSION_ENCRYPTION_KEY", SECRET_B)]).expect_err("missing JWT secret");
        assert_eq!(err.key.as_deref(), Some("auth.jwt_secret"));
        let err = with(&[("JWT_SECRET", "short"), ("SESSION_ENCRYPTION_KEY", SECRET_B)]).expect_err("weak");
        assert_eq!(err.key.as_deref(), Some("auth.jwt_secret"));
        assert_eq!(err.source.as_deref(), Some("environment variable JWT_SECRET"));
        let err =
            with(&[("JWT_SECRET", DEV_JWT_SECRET), ("SESSION_ENCRYPTION_KEY", SECRET_B)]).expect_err("dev default");
        assert!(err.message.contains("development default"), "{err}");
        let err = with(&[("JWT_SECRET", SECRET_A)]).expect_err("missing session key");
        assert_eq!(err.key.as_deref(), Some("auth.session_encryption_key"));
        let ok = with(&[("JWT_SECRET", SECRET_A), ("SESSION_ENCRYPTION_KEY", SECRET_B)]).expect("strong secrets");
        assert_eq!(ok.get::<AuthConfig>().jwt_secret.expose(), SECRET_A);
    }

    #[test]
    fn production_refuses_the_memory_backend_unless_allowed() {
        let secrets = [("APP_PROFILE", "production"), ("JWT_SECRET", SECRET_A), ("SESSION_ENCRYPTION_KEY", SECRET_B)];
        let err = load(None, env(&secrets)).expect_err("no Redis");
        assert_eq!(err.key.as_deref(), Some("redis.url"));
        let mut vars = secrets.to_vec();
        vars.push(("APP_REDIS__ALLOW_MEMORY_IN_PRODUCTION", "true"));
        assert!(load(None, env(&vars)).is_ok());
    }

    #[test]
    fn a_config_file_is_read_and_the_environment_overrides_it() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(file, "[server]\nport = 4100\nhost = \"127.0.0.1\"\n\n[log]\nformat = \"json\"").expect("write");
        let cfg = load(Some(file.path()), env(&[])).expect("valid file");
        assert_eq!(
            (cfg.get::<ServerConfig>().port, cfg.get::<ServerConfig>().host.as_deref()),
            (4100, Some("127.0.0.1"))
        );
        assert_eq!(cfg.get::<LogConfig>().format, LogFormat::Json);
        let cfg = load(Some(file.path()), env(&[("PORT", "4200")])).expect("valid");
        assert_eq!(cfg.get::<ServerConfig>().port, 4200);

        let mut bad = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(bad, "[server]\nport = \"high\"").expect("write");
        let err = load(Some(bad.path()), env(&[])).expect_err("bad type");
        assert_eq!(err.key.as_deref(), Some("server.port"));
        assert!(err.source.as_deref().is_some_and(|s| s.contains(&bad.path().display().to_string())), "{err}");

        let err = load(Some(Path::new("/nonexistent/app.toml")), env(&[])).expect_err("missing");
        assert!(err.to_string().contains("does not exist"));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let cfg = load(
            None,
            env(&[
                ("JWT_SECRET", SECRET_A),
                ("REDIS_URL", "redis://:redis-pass-123@cache:6379"),
                ("DATABASE_URL", "postgres://app:db-pass-456@db:5432/app"),
                ("APP_REDIS__PASSWORD", "host-pass-789"),
            ]),
        )
        .expect("valid");
        let dump = format!("{cfg:?}");
        for secret in [SECRET_A, DEV_SESSION_KEY, "redis-pass-123", "db-pass-456", "host-pass-789"] {
            assert!(!dump.contains(secret), "{secret} leaked: {dump}");
        }
    }

    #[test]
    fn the_readme_table_is_what_the_modules_declare() {
        let readme = include_str!("../README.md");
        let documented = readme
            .split("<!-- config:start -->\n")
            .nth(1)
            .and_then(|rest| rest.split("<!-- config:end -->").next())
            .expect("README has the config table markers");
        let declared = table(&crate::modules());
        assert!(
            documented == declared,
            "the README's configuration table differs from what the modules declare; paste this between its markers \
             (or run `cargo run -- config-table`):\n{declared}"
        );
        // Every key a section has is in the table (placeholder rows such as `jobs.queues.<queue>`
        // cover the keys of maps whose entries are named by the operator).
        let config = Config::defaults(&crate::modules().sections());
        for key in app_core::config::leaf_keys(&config) {
            assert!(declared.contains(&format!("| `{key}` |")), "`{key}` has a row in the table");
        }
    }
}
