//! The architecture invariants of the README's code map, checked on the code itself: what must
//! not depend on what, and where HTTP types may appear.

use std::path::{Path, PathBuf};

/// The framework kernel.
const CORE: &str = "core";
/// Modules that serve features and know none of them; every other module is a feature.
const INFRASTRUCTURE: &[&str] = &["redis", "database", "cache", "locks", "ratelimit", "jobs", "health"];

/// Feature modules: every module crate that is neither core nor infrastructure.
fn features() -> Vec<String> {
    modules().into_iter().filter(|m| m != CORE && !INFRASTRUCTURE.contains(&m.as_str())).collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every module crate under `modules/`.
fn modules() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("modules"))
        .expect("modules/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The module crates `module` depends on (its `[dependencies]`, not its dev-dependencies).
fn dependencies(module: &str) -> Vec<String> {
    let manifest = std::fs::read_to_string(root().join("modules").join(module).join("Cargo.toml")).expect("manifest");
    let table: toml::Table = manifest.parse().expect("a TOML manifest");
    let deps = table.get("dependencies").and_then(toml::Value::as_table).cloned().unwrap_or_default();
    let mut crates: Vec<String> = deps.keys().filter_map(|name| name.strip_prefix("app-").map(str::to_owned)).collect();
    crates.sort();
    crates
}

/// Every Rust file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.clone(), std::fs::read_to_string(&path).expect("source")));
        }
    }
    out
}

/// The module's own code: `src/` (its tests included) and `tests/`.
fn code(module: &str) -> Vec<(PathBuf, String)> {
    let dir = root().join("modules").join(module);
    let mut files = sources(&dir.join("src"));
    files.extend(sources(&dir.join("tests")));
    files
}

/// What naming a feature looks like: its crate, its routes, the word `library` (the feature
/// whose name is not also plain English), and the error codes the app's modules declare
/// (another module's: `core` names no module's code).
fn feature_marks(module: &str) -> Vec<String> {
    let mut marks = Vec::new();
    for feature in features() {
        marks.push(format!("app_{feature}"));
        marks.push(format!("app-{feature}"));
        marks.push(format!("/api/v1/{feature}"));
    }
    marks.push("library".into());
    for declared in app::modules().iter() {
        if declared.name().replace('_', "") != module {
            marks.extend(declared.error_codes().iter().map(|code| code.as_str().to_owned()));
        }
    }
    marks
}

fn names_a_feature(module: &str) -> Vec<String> {
    let marks = feature_marks(module);
    let mut found = Vec::new();
    for (path, text) in code(module) {
        let lower = text.to_lowercase();
        for mark in &marks {
            let hit = if mark.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                text.contains(mark.as_str())
            } else {
                lower.contains(mark.as_str())
            };
            if hit {
                found.push(format!("{} names `{mark}`", path.display()));
            }
        }
    }
    found
}

#[test]
fn the_features_are_what_is_left() {
    let features = features();
    for feature in ["auth", "library", "users"] {
        assert!(features.iter().any(|f| f == feature), "{feature} is a feature: {features:?}");
    }
}

#[test]
fn core_depends_on_no_module_and_names_no_feature() {
    assert_eq!(dependencies(CORE), Vec::<String>::new());
    assert_eq!(names_a_feature(CORE), Vec::<String>::new());
}

#[test]
fn infrastructure_depends_on_no_feature_and_names_none() {
    for module in INFRASTRUCTURE {
        let deps = dependencies(module);
        let features: Vec<_> = deps.iter().filter(|d| features().contains(d)).collect();
        assert!(features.is_empty(), "{module} depends on {features:?}");
        assert_eq!(names_a_feature(module), Vec::<String>::new(), "{module}");
    }
}

#[test]
fn feature_modules_depend_on_neither_auth_nor_ratelimit() {
    for module in modules() {
        let deps = dependencies(&module);
        if module != "auth" {
            assert!(!deps.contains(&"auth".to_owned()), "{module} depends on auth (use core's guards)");
        }
        if module != "ratelimit" {
            assert!(!deps.contains(&"ratelimit".to_owned()), "{module} depends on ratelimit (use core's ThrottleRule)");
        }
    }
}

#[test]
fn only_api_files_name_poem() {
    for module in modules().iter().filter(|m| *m != CORE) {
        for (path, text) in sources(&root().join("modules").join(module).join("src")) {
            if path.file_name().is_some_and(|n| n == "api.rs") {
                continue;
            }
            assert!(!text.contains("poem"), "{} names poem (HTTP belongs in api.rs)", path.display());
        }
    }
}

#[test]
fn unsafe_code_is_allowed_in_the_allocator_alone() {
    let mut files = sources(&root().join("src"));
    files.extend(sources(&root().join("modules")));
    files.extend(sources(&root().join("tests")));
    files.extend(sources(&root().join("examples")));
    let allowing: Vec<String> = files
        .iter()
        .filter(|(_, text)| text.contains(concat!("allow(", "unsafe_code)")))
        .map(|(path, _)| path.strip_prefix(root()).unwrap_or(path).display().to_string())
        .collect();
    assert_eq!(allowing, ["src/alloc.rs"], "only the global allocator may use unsafe code");
}
