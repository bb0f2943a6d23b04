//! Loading the configuration: built-in defaults < `app.toml` < `APP_*` environment variables
//! (`__` nests: `APP_REDIS__URL`) < the conventional names (`PORT`, `REDIS_URL`, `DATABASE_URL`,
//! `JWT_SECRET`, `SESSION_ENCRYPTION_KEY`).
//!
//! Environment values are handed to figment verbatim as strings and extracted "lossily", so
//! `PORT=8080` still reads as a number while `JWT_SECRET=0123...` keeps every character (a
//! secret that looks like a number must not be parsed as one). A bad value stops start-up with
//! one line: the key, where the value came from, and what is wrong.

use std::{fmt, path::Path};

use app_auth::AuthConfig;
pub use app_auth::{DEV_JWT_SECRET, DEV_SESSION_KEY};
use app_cache::CacheConfig;
use app_core::config::{ConfigIssue, LogConfig, Profile, ServerConfig, Validate};
use app_database::DatabaseConfig;
use app_health::HealthConfig;
use app_jobs::JobsConfig;
use app_library::LibraryConfig;
use app_ratelimit::RateLimitConfig;
use app_redis::RedisConfig;
use app_users::UsersConfig;
use figment::{
    Figment, Metadata, Profile as FigmentProfile, Provider,
    providers::{Format, Serialized, Toml},
    value::{Dict, Map, Value},
};
use serde::{Deserialize, Serialize};

/// The file read when no `--config` is given (optional).
pub const DEFAULT_FILE: &str = "app.toml";

/// Conventional environment variable names and the keys they set.
const CONVENTIONAL: &[(&str, &str)] = &[
    ("PORT", "server.port"),
    ("REDIS_URL", "redis.url"),
    ("DATABASE_URL", "database.url"),
    ("JWT_SECRET", "auth.jwt_secret"),
    ("SESSION_ENCRYPTION_KEY", "auth.session_encryption_key"),
];

/// The top-level keys: `APP_<SECTION>...` variables outside these are not ours (a platform's
/// `APP_ENV`, Kubernetes' `APP_PORT=tcp://...` for a Service named `app`) and are ignored with a
/// warning; unknown keys *inside* a section are typos and stop start-up.
const SECTIONS: &[&str] = &[
    "profile",
    "server",
    "log",
    "redis",
    "database",
    "health",
    "auth",
    "rate_limit",
    "cache",
    "users",
    "library",
    "jobs",
];

/// `APP_` variables that are read elsewhere (the config file path, by the CLI).
const NOT_KEYS: &[&str] = &["APP_CONFIG"];

/// The whole configuration: one section per module.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppConfig {
    /// `development` (default) or `production`. Env: `APP_PROFILE`.
    pub profile: Profile,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `[redis]`.
    pub redis: RedisConfig,
    /// `[database]`.
    pub database: DatabaseConfig,
    /// `[health]`.
    pub health: HealthConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[rate_limit]`.
    pub rate_limit: RateLimitConfig,
    /// `[cache]`.
    pub cache: CacheConfig,
    /// `[users]`.
    pub users: UsersConfig,
    /// `[library]`.
    pub library: LibraryConfig,
    /// `[jobs]`.
    pub jobs: JobsConfig,
}

impl AppConfig {
    /// Checks every section for the configured profile.
    pub fn validate(&self) -> Result<(), ConfigIssue> {
        let profile = self.profile;
        self.server.validate(profile)?;
        self.log.validate(profile)?;
        self.redis.validate(profile)?;
        self.database.validate(profile)?;
        self.health.validate(profile)?;
        self.auth.validate(profile)?;
        self.rate_limit.validate(profile)?;
        self.cache.validate(profile)?;
        self.users.validate(profile)?;
        self.library.validate(profile)?;
        self.jobs.validate(profile)
    }
}

/// Why the configuration cannot be used: one line naming key, source and problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted key, when known.
    pub key: Option<String>,
    /// Where the value came from (`environment variable PORT`, `app.toml`, `the built-in default`).
    pub source: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration: ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}` ")?;
        }
        if let Some(source) = &self.source {
            write!(f, "(from {source}) ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A loaded configuration and what start-up should warn about.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: AppConfig,
    /// Things worth a warning line once logging is up (ignored variables, development secrets).
    pub warnings: Vec<String>,
}

/// Loads, extracts and validates the configuration.
///
/// `file`: an explicit config file (then it must exist); `None` reads `app.toml` if present.
/// `env`: the environment to read (the process environment in `main`).
pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<AppConfig, ConfigError> {
    load_with_warnings(file, env).map(|loaded| loaded.config)
}

/// As [`load`], also returning the warnings start-up should log.
pub fn load_with_warnings(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();
    // The defaults are a layer of their own, so a file or a variable that sets one field of a
    // nested entry (`APP_RATE_LIMIT__POLICIES__AUTH__LIMIT`) merges into it instead of
    // replacing the whole entry.
    let mut figment = Figment::from(Serialized::defaults(AppConfig::default()));
    match file {
        Some(path) if !path.is_file() => {
            return Err(ConfigError {
                key: None,
                source: Some(path.display().to_string()),
                message: "the config file does not exist".into(),
            });
        }
        Some(path) => figment = figment.merge(Toml::file_exact(path)),
        None if Path::new(DEFAULT_FILE).is_file() => figment = figment.merge(Toml::file_exact(DEFAULT_FILE)),
        None => {}
    }
    let env: Vec<(String, String)> = env.into_iter().collect();
    for (name, value) in &env {
        if let Some(rest) = name.strip_prefix("APP_").filter(|_| !NOT_KEYS.contains(&name.as_str())) {
            let key = rest.to_ascii_lowercase().split("__").collect::<Vec<_>>().join(".");
            let section = key.split('.').next().unwrap_or_default();
            if SECTIONS.contains(&section) {
                figment = figment.merge(EnvVar::new(name, &key, value));
            } else {
                warnings
                    .push(format!("ignoring environment variable {name}: `{section}` is not a configuration section"));
            }
        }
    }
    for (name, key) in CONVENTIONAL {
        if let Some((_, value)) = env.iter().find(|(n, _)| n == name) {
            figment = figment.merge(EnvVar::new(name, key, value));
        }
    }
    let mut config: AppConfig = figment.extract_lossy().map_err(from_figment)?;
    config.validate().map_err(|issue| {
        let source = figment.find_metadata(&issue.key).map(describe_source);
        ConfigError {
            key: Some(issue.key),
            source: Some(source.unwrap_or_else(|| "the built-in default".into())),
            message: issue.message,
        }
    })?;
    if !config.profile.is_production() {
        let filled = config.auth.apply_development_defaults();
        if !filled.is_empty() {
            warnings.push(format!(
                "{} not set: using the development defaults, which anyone reading the source can use to forge \
                 tokens; set JWT_SECRET and SESSION_ENCRYPTION_KEY (the production profile requires them)",
                filled.join(" and ")
            ));
        }
    }
    Ok(Loaded { config, warnings })
}

fn from_figment(err: figment::Error) -> ConfigError {
    let key = (!err.path.is_empty()).then(|| err.path.join("."));
    let source = err.metadata.as_ref().map(describe_source);
    let message = match &err.kind {
        figment::error::Kind::UnknownField(field, _) => {
            format!("`{field}` is not a configuration key (check its spelling against the README's table)")
        }
        kind => kind.to_string(),
    };
    ConfigError { key, source, message }
}

/// Names where a value came from: the environment variable, or the file and its path.
fn describe_source(metadata: &Metadata) -> String {
    match &metadata.source {
        Some(figment::Source::File(path)) => format!("{} {}", metadata.name, path.display()),
        _ => metadata.name.to_string(),
    }
}

/// One environment variable, as a figment provider that keeps its value verbatim.
struct EnvVar {
    name: String,
    key: String,
    value: String,
}

impl EnvVar {
    fn new(name: &str, key: &str, value: &str) -> Self {
        Self { name: name.to_owned(), key: key.to_owned(), value: value.to_owned() }
    }
}

impl Provider for EnvVar {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable {}", self.name))
    }

    fn data(&self) -> Result<Map<FigmentProfile, Dict>, figment::Error> {
        let mut value = Value::from(self.value.clone());
        for part in self.key.rsplit('.') {
            let mut dict = Dict::new();
            dict.insert(part.to_owned(), value);
            value = Value::from(dict);
        }
        let dict = value.into_dict().unwrap_or_default();
        Ok(FigmentProfile::Default.collect(dict))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

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
        let auth = &cfg.rate_limit.policies["auth"];
        assert_eq!(auth.limit, 10);
        assert_eq!(auth.window, std::time::Duration::from_secs(15 * 60), "the rest of the entry is kept");
        assert_eq!(cfg.rate_limit.policies["api"].block, Some(std::time::Duration::from_secs(30)));
        assert_eq!(cfg.rate_limit.policies.len(), 5);
    }

    #[test]
    fn defaults_need_nothing() {
        let cfg = load(None, env(&[])).expect("defaults are valid");
        assert_eq!(cfg.server.port, 3000);
        assert_eq!(cfg.profile, Profile::Development);
        assert!(!cfg.redis.is_configured());
        assert_eq!(cfg.auth.jwt_secret.expose(), DEV_JWT_SECRET, "development fills the secret");
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
        assert_eq!(cfg.server.port, 5000, "PORT beats APP_SERVER__PORT");
        assert_eq!(cfg.redis.key_prefix, "shop:");
        assert_eq!(cfg.server.cors_origins, ["https://a.example.com", "https://b.example.com"]);
        assert_eq!(cfg.server.shutdown_timeout, std::time::Duration::from_secs(5));
        assert!(!cfg.database.migrate_on_start);
        assert_eq!(cfg.redis.url.as_deref(), Some("redis://127.0.0.1:6380"));
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
        assert_eq!(cfg.auth.jwt_secret.expose(), "000123456789012345678901234567890123");
        assert_eq!(cfg.auth.session_encryption_key.expose(), SECRET_B);
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
        assert_eq!(loaded.config.server.port, 3000);
        assert!(loaded.warnings.iter().any(|w| w.contains("APP_PORT")), "{:?}", loaded.warnings);
        assert!(loaded.warnings.iter().any(|w| w.contains("development defaults")), "{:?}", loaded.warnings);
        let strong = load_with_warnings(None, env(&[("JWT_SECRET", SECRET_A), ("SESSION_ENCRYPTION_KEY", SECRET_B)]))
            .expect("valid");
        assert!(strong.warnings.is_empty(), "{:?}", strong.warnings);
    }

    #[test]
    fn the_bind_host_follows_the_profile_unless_set() {
        let dev = load(None, env(&[])).expect("valid");
        assert_eq!(dev.server.bind_host(dev.profile), "127.0.0.1");
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
        assert_eq!(prod.server.bind_host(prod.profile), "0.0.0.0");
        let set = load(None, env(&[("APP_SERVER__HOST", "0.0.0.0")])).expect("valid");
        assert_eq!(set.server.bind_host(set.profile), "0.0.0.0");
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
        assert_eq!(ok.auth.jwt_secret.expose(), SECRET_A);
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
        assert_eq!((cfg.server.port, cfg.server.host.as_deref()), (4100, Some("127.0.0.1")));
        assert_eq!(cfg.log.format, app_core::config::LogFormat::Json);
        let cfg = load(Some(file.path()), env(&[("PORT", "4200")])).expect("valid");
        assert_eq!(cfg.server.port, 4200);

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

    /// Dotted keys of every leaf of a serialized config.
    fn leaf_keys(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        match value.as_object() {
            Some(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    leaf_keys(&key, v, out);
                }
            }
            None => out.push(prefix.to_owned()),
        }
    }

    #[test]
    fn the_readme_table_lists_exactly_the_configuration_keys() {
        let readme = include_str!("../README.md");
        let table = readme
            .split("<!-- config:start -->")
            .nth(1)
            .and_then(|rest| rest.split("<!-- config:end -->").next())
            .expect("README has the config table markers");
        let mut documented = Vec::new();
        for row in table.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let key = cells[1].trim_matches('`').to_owned();
            let env = format!("APP_{}", key.to_ascii_uppercase().replace('.', "__"));
            assert!(cells[3].contains(&env), "README row {key} names {env}");
            documented.push(key);
        }
        let mut actual = Vec::new();
        leaf_keys("", &serde_json::to_value(AppConfig::default()).expect("serializable"), &mut actual);
        documented.sort();
        actual.sort();
        assert_eq!(documented, actual, "README configuration table vs AppConfig");
        for (name, key) in CONVENTIONAL {
            assert!(table.lines().any(|l| l.contains(&format!("`{key}`")) && l.contains(name)), "{name} documented");
        }
    }
}
