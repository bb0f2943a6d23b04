//! The SPA's own checks against the real server: a TypeScript client generated from the
//! committed spec (openapi-typescript + openapi-fetch) and a driver of the whole flow, both
//! type-checked under `--strict` (the driver also holds lines that must not compile); the spec
//! under Redocly's recommended rules; and Swagger UI in Debian's chromium, with and without CORS.
//! The node packages are pinned in `tests/client/package-lock.json` and installed with `npm ci`.

use std::{
    path::PathBuf,
    process::{Command, Output},
    sync::OnceLock,
};

use crate::support::{app, spawn_app};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/client")
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command in `tests/client`, blocking (before any server of the test runs).
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir())
        .output()
        .map_err(|e| format!("cannot run {program} (install Node.js 20 and npm; ./scripts/test.sh does): {e}"))?;
    if out.status.success() { Ok(()) } else { Err(describe(&format!("{program} {}", args.join(" ")), &out)) }
}

/// Installs the pinned packages (when missing), generates the client from the committed spec
/// and type-checks it with the driver, once per test binary.
fn prepared() -> &'static Result<(), String> {
    static PREPARED: OnceLock<Result<(), String>> = OnceLock::new();
    PREPARED.get_or_init(|| {
        let installed = dir().join("node_modules/.package-lock.json");
        if !installed.is_file() {
            run("npm", &["ci", "--no-audit", "--no-fund"])?;
        }
        run("npm", &["run", "--silent", "generate"])?;
        run("npm", &["run", "--silent", "build"])
    })
}

async fn prepare() {
    let ready = tokio::task::spawn_blocking(prepared).await.expect("prepare");
    if let Err(err) = ready {
        panic!("{err}");
    }
}

/// Runs `node dist/<script>.js <args>` without blocking the server the test runs in process.
async fn node(script: &str, args: &[&str]) {
    let out = tokio::process::Command::new("node")
        .arg(format!("dist/{script}.js"))
        .args(args)
        .current_dir(dir())
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    assert!(out.status.success(), "{}", describe(script, &out));
}

#[tokio::test]
async fn the_generated_client_drives_the_spas_whole_flow() {
    prepare().await;
    let app = spawn_app().await;
    node("driver", &[&app.base]).await;
}

#[tokio::test]
async fn the_spec_passes_redoclys_recommended_rules() {
    prepare().await;
    let out = tokio::process::Command::new("npm")
        .args(["run", "--silent", "lint-spec"])
        .current_dir(dir())
        .output()
        .await
        .expect("npm runs");
    assert!(out.status.success(), "{}", describe("redocly lint", &out));
}

#[tokio::test]
async fn swagger_ui_tries_a_get_and_a_post_in_chromium_without_and_with_cors() {
    prepare().await;
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).is_file(),
        "Debian's chromium is needed at {chromium} (./scripts/test.sh installs it: apt-get install chromium)"
    );
    for cors in [false, true] {
        let app = app()
            .config(move |c| {
                if cors {
                    c.get_mut::<app_core::config::ServerConfig>().cors_origins = vec!["https://spa.example.com".into()];
                }
            })
            .spawn()
            .await;
        let (_, tokens) = app.user().await;
        node("swagger", &[&app.base, &tokens.access]).await;
    }
}
