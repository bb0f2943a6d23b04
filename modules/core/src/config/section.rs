//! Configuration sections: each module owns one (`[notes]` in `app.toml`, `APP_NOTES__*` in
//! the environment), declares it with [`ConfigSection`], and finds it in [`Config`] when it is
//! built. The loader knows sections only through [`Section`], so a new module's section needs no
//! line outside the module.

use std::{
    any::{Any, TypeId},
    collections::BTreeMap,
    fmt,
};

use serde::{Serialize, de::DeserializeOwned};

use super::{ConfigIssue, Profile, Validate};

/// A module's configuration section.
pub trait ConfigSection:
    Validate + Default + Clone + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The section's key: the table in `app.toml`, the `APP_<KEY>__` prefix in the environment.
    const KEY: &'static str;

    /// Conventional environment names that set a key of this section, as (name, dotted key):
    /// `("PORT", "server.port")`. They win over `APP_*` variables.
    const ALIASES: &'static [(&'static str, &'static str)] = &[];

    /// The README's configuration rows for this section, one per key, written from the
    /// defaults (`self`). A test keeps the README's table equal to what the sections declare.
    fn rows(&self) -> Vec<Row>;

    /// Runs after validation: fills what this profile lets go unset (development secrets) and
    /// says what start-up should warn about.
    fn finish(&mut self, _profile: Profile) -> Option<String> {
        None
    }
}

/// One row of the README's configuration table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The dotted key (`server.port`).
    pub key: String,
    /// The default as the table shows it, when the serialized default does not say it well
    /// (`none (memory backend)`); otherwise taken from the default value.
    pub default: Option<String>,
    /// Said after the environment names (`(RUST_LOG wins)`).
    pub env_note: Option<&'static str>,
    /// What the key does, for an operator.
    pub what: String,
}

impl Row {
    /// The row of `key` (dotted, whole) doing `what`.
    pub fn new(key: impl Into<String>, what: impl Into<String>) -> Self {
        Self { key: key.into(), default: None, env_note: None, what: what.into() }
    }

    /// Shows the default as `text` (markdown).
    pub fn default_text(mut self, text: impl Into<String>) -> Self {
        self.default = Some(text.into());
        self
    }

    /// Adds a note after the environment names.
    pub fn env_note(mut self, note: &'static str) -> Self {
        self.env_note = Some(note);
        self
    }
}

/// A section's value as the loader holds it: any [`ConfigSection`], behind one object type.
pub trait SectionValue: Any + fmt::Debug + Send + Sync {
    /// A copy.
    fn clone_box(&self) -> Box<dyn SectionValue>;
    /// [`Validate::validate`].
    fn validate_section(&self, profile: Profile) -> Result<(), ConfigIssue>;
    /// [`ConfigSection::finish`].
    fn finish_section(&mut self, profile: Profile) -> Option<String>;
    /// [`ConfigSection::rows`].
    fn section_rows(&self) -> Vec<Row>;
    /// The value as JSON (the table's defaults; a dump that never shows secrets).
    fn to_json(&self) -> serde_json::Value;
    /// For downcasting.
    fn as_any(&self) -> &dyn Any;
    /// For downcasting.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: ConfigSection> SectionValue for T {
    fn clone_box(&self) -> Box<dyn SectionValue> {
        Box::new(self.clone())
    }

    fn validate_section(&self, profile: Profile) -> Result<(), ConfigIssue> {
        Validate::validate(self, profile)
    }

    fn finish_section(&mut self, profile: Profile) -> Option<String> {
        ConfigSection::finish(self, profile)
    }

    fn section_rows(&self) -> Vec<Row> {
        ConfigSection::rows(self)
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Reads a section from a figment focused on it.
type Extract = fn(&figment::Figment) -> Result<Box<dyn SectionValue>, Box<figment::Error>>;

/// A section as the loader sees it: its key, its conventional names, and how to make and read it.
#[derive(Clone, Copy)]
pub struct Section {
    /// [`ConfigSection::KEY`].
    pub key: &'static str,
    /// [`ConfigSection::ALIASES`].
    pub aliases: &'static [(&'static str, &'static str)],
    type_id: fn() -> TypeId,
    default: fn() -> Box<dyn SectionValue>,
    extract: Extract,
}

impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Section").field(&self.key).finish()
    }
}

impl Section {
    /// The section of `T`.
    pub fn of<T: ConfigSection>() -> Self {
        Self {
            key: T::KEY,
            aliases: T::ALIASES,
            type_id: TypeId::of::<T>,
            default: || Box::new(T::default()),
            // Lossy: environment values arrive as strings, and `PORT=8080` must read as a number.
            extract: |figment| {
                figment.extract_lossy::<T>().map(|t| Box::new(t) as Box<dyn SectionValue>).map_err(Box::new)
            },
        }
    }

    /// The type of the section's value.
    pub fn type_id(&self) -> TypeId {
        (self.type_id)()
    }

    /// The defaults.
    pub fn default_value(&self) -> Box<dyn SectionValue> {
        (self.default)()
    }

    /// Reads the section from `figment` focused on it (`figment.focus(key)`).
    pub fn extract(&self, focused: &figment::Figment) -> Result<Box<dyn SectionValue>, Box<figment::Error>> {
        (self.extract)(focused)
    }
}

/// The whole configuration: the profile and one value per section of the app's modules.
#[derive(Debug)]
pub struct Config {
    /// `development` (default) or `production`. Env: `APP_PROFILE`.
    pub profile: Profile,
    sections: BTreeMap<&'static str, Box<dyn SectionValue>>,
}

impl Clone for Config {
    fn clone(&self) -> Self {
        Self { profile: self.profile, sections: self.sections.iter().map(|(k, v)| (*k, v.clone_box())).collect() }
    }
}

impl Config {
    /// The defaults of `sections`.
    pub fn defaults(sections: &[Section]) -> Self {
        let mut config = Config { profile: Profile::default(), sections: BTreeMap::new() };
        for section in sections {
            config.sections.insert(section.key, section.default_value());
        }
        config
    }

    /// Sets a section's value (replacing the one with the same key).
    pub fn insert(&mut self, key: &'static str, value: Box<dyn SectionValue>) {
        self.sections.insert(key, value);
    }

    /// The section `T`, if the app has it.
    pub fn try_get<T: ConfigSection>(&self) -> Option<&T> {
        self.sections.get(T::KEY).and_then(|v| v.as_any().downcast_ref())
    }

    /// The section `T`. A module reads only its own section and those of the modules it
    /// imports, which are always there; anything else is a programming error.
    pub fn get<T: ConfigSection>(&self) -> &T {
        self.try_get().unwrap_or_else(|| panic!("the configuration has no `{}` section", T::KEY))
    }

    /// The section `T`, to change (tests).
    pub fn get_mut<T: ConfigSection>(&mut self) -> &mut T {
        self.sections
            .get_mut(T::KEY)
            .and_then(|v| v.as_any_mut().downcast_mut())
            .unwrap_or_else(|| panic!("the configuration has no `{}` section", T::KEY))
    }

    /// Every section, by key.
    pub fn sections(&self) -> impl Iterator<Item = (&'static str, &dyn SectionValue)> {
        self.sections.iter().map(|(k, v)| (*k, v.as_ref()))
    }

    /// Checks every section for the profile; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigIssue> {
        self.sections.values().try_for_each(|section| section.validate_section(self.profile))
    }

    /// Runs every section's [`ConfigSection::finish`]; returns the warnings.
    pub fn finish(&mut self) -> Vec<String> {
        let profile = self.profile;
        self.sections.values_mut().filter_map(|section| section.finish_section(profile)).collect()
    }

    /// The configuration as JSON (secrets redacted), keyed by section.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("profile".into(), serde_json::to_value(self.profile).unwrap_or_default());
        for (key, value) in &self.sections {
            map.insert((*key).to_owned(), value.to_json());
        }
        serde_json::Value::Object(map)
    }
}
