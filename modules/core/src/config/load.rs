//! Loading the configuration of an app's sections: built-in defaults < `app.toml` < `APP_*`
//! environment variables (`__` nests: `APP_REDIS__URL`) < the sections' conventional names
//! (`PORT`, `REDIS_URL`, ...).
//!
//! Environment values are handed to figment verbatim as strings and extracted "lossily", so
//! `PORT=8080` still reads as a number while `JWT_SECRET=0123...` keeps every character (a
//! secret that looks like a number must not be parsed as one). A bad value stops start-up with
//! one line: the key, where the value came from, and what is wrong.

use std::{fmt, path::Path};

use figment::{
    Figment, Metadata, Profile as FigmentProfile, Provider,
    providers::{Format, Serialized, Toml},
    value::{Dict, Map, Value},
};

use super::{Config, Profile, Section};

/// The file read when no `--config` is given (optional).
pub const DEFAULT_FILE: &str = "app.toml";

/// `APP_` variables that are read elsewhere (the config file path, by the CLI).
const NOT_KEYS: &[&str] = &["APP_CONFIG"];

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
    pub config: Config,
    /// Things worth a warning line once logging is up (ignored variables, development secrets).
    pub warnings: Vec<String>,
}

/// Loads, extracts, validates and finishes the configuration of `sections`.
///
/// `file`: an explicit config file (then it must exist); `None` reads `app.toml` if present.
/// `env`: the environment to read (the process environment in `main`).
pub fn load(
    sections: &[Section],
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();
    // The defaults are a layer of their own, so a file or a variable that sets one field of a
    // nested entry (`APP_RATE_LIMIT__POLICIES__AUTH__LIMIT`) merges into it instead of
    // replacing the whole entry.
    let defaults = Config::defaults(sections);
    let mut figment = Figment::from(Serialized::defaults(defaults.to_json()));
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
    let known = |section: &str| section == "profile" || sections.iter().any(|s| s.key == section);
    let env: Vec<(String, String)> = env.into_iter().collect();
    for (name, value) in &env {
        if let Some(rest) = name.strip_prefix("APP_").filter(|_| !NOT_KEYS.contains(&name.as_str())) {
            let key = rest.to_ascii_lowercase().split("__").collect::<Vec<_>>().join(".");
            let section = key.split('.').next().unwrap_or_default();
            // Variables outside the sections are not ours (a platform's `APP_ENV`, Kubernetes'
            // `APP_PORT=tcp://...` for a Service named `app`): ignored with a warning. Unknown
            // keys *inside* a section are typos and stop start-up.
            if known(section) {
                figment = figment.merge(EnvVar::new(name, &key, value));
            } else {
                warnings
                    .push(format!("ignoring environment variable {name}: `{section}` is not a configuration section"));
            }
        }
    }
    for (name, key) in sections.iter().flat_map(|s| s.aliases) {
        if let Some((_, value)) = env.iter().find(|(n, _)| n == name) {
            figment = figment.merge(EnvVar::new(name, key, value));
        }
    }
    let merged = figment.data().map_err(from_figment)?;
    for key in merged.values().flat_map(|dict| dict.keys()) {
        if !known(key) {
            let source = figment.find_metadata(key).map(describe_source);
            return Err(ConfigError {
                key: None,
                source,
                message: format!(
                    "`{key}` is not a configuration section (check its spelling against the README's table)"
                ),
            });
        }
    }
    let mut config = defaults;
    config.profile = figment.extract_inner_lossy::<Profile>("profile").map_err(from_figment)?;
    for section in sections {
        let value = section.extract(&figment.focus(section.key)).map_err(|mut err| {
            err.path.insert(0, section.key.to_owned());
            from_figment(*err)
        })?;
        config.insert(section.key, value);
    }
    config.validate().map_err(|issue| {
        let source = figment.find_metadata(&issue.key).map(describe_source);
        ConfigError {
            key: Some(issue.key),
            source: Some(source.unwrap_or_else(|| "the built-in default".into())),
            message: issue.message,
        }
    })?;
    warnings.extend(config.finish());
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

/// The README's configuration table (its rows, between the `config:start` and `config:end`
/// markers) for `sections`: what their modules declare, with the defaults read off the values.
pub fn table(sections: &[Section]) -> String {
    let defaults = Config::defaults(sections);
    let mut out = String::from("| key | default | environment | what it does |\n|---|---|---|---|\n");
    out.push_str(&format!(
        "| `profile` | `{}` | `APP_PROFILE` | `development` or `production` (strict secrets, JSON logs, Redis required) |\n",
        serde_json::to_value(defaults.profile).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    ));
    for section in sections {
        let value = defaults.sections().find(|(k, _)| *k == section.key).map(|(_, v)| v);
        let Some(value) = value else { continue };
        let json = value.to_json();
        for row in value.section_rows() {
            let default = row.default.clone().unwrap_or_else(|| {
                let leaf = row.key.split('.').skip(1).try_fold(&json, |v, part| v.get(part));
                match leaf {
                    None | Some(serde_json::Value::Null) => "none".to_owned(),
                    Some(serde_json::Value::String(s)) if s.is_empty() => "none".to_owned(),
                    Some(serde_json::Value::Array(a)) if a.is_empty() => "none".to_owned(),
                    Some(serde_json::Value::String(s)) => format!("`{s}`"),
                    Some(other) => format!("`{other}`"),
                }
            });
            let mut env: Vec<String> = section
                .aliases
                .iter()
                .filter(|(_, key)| *key == row.key)
                .map(|(name, _)| format!("`{name}`"))
                .collect();
            env.push(format!("`APP_{}`", row.key.to_ascii_uppercase().replace('.', "__")));
            let mut env = env.join(", ");
            if let Some(note) = row.env_note {
                env.push(' ');
                env.push_str(note);
            }
            out.push_str(&format!("| `{}` | {default} | {env} | {} |\n", row.key, row.what));
        }
    }
    out
}

/// Dotted keys of every leaf of a configuration's JSON (what the table must list).
pub fn leaf_keys(config: &Config) -> Vec<String> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        match value.as_object() {
            Some(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&key, v, out);
                }
            }
            None => out.push(prefix.to_owned()),
        }
    }
    let mut out = Vec::new();
    walk("", &config.to_json(), &mut out);
    out
}
