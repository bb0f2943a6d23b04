//! A module defined in this file only, added to the app with one line (`.module(NotesModule)`):
//! its route answers and is in the spec, its config section loads from `APP_NOTES__*` and a bad
//! value stops start-up naming the key, its migration runs on SQLite and PostgreSQL, its error
//! code is in a problem answer and in the spec, its readiness check shows in `/health/ready`,
//! and its shutdown hook runs, also on SIGTERM. Nothing outside this file names it.

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use app_core::{
    ApiError, Context, Controller, ErrorCode, Lifecycle, Migration, Module, ModuleError, Problems,
    config::{ConfigIssue, ConfigSection, Profile, Row, Section, Validate},
    problem::markers::{BadRequest, Unavailable},
    readiness::{Check, ReadinessCheck},
    testing::TestDatabase,
};
use app_database::{DatabaseContainer, DatabaseModule, SqlDatabase};
use async_trait::async_trait;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shaku::HasComponent;

use crate::support::{app, assert_problem};

/// `[notes]`: the module's own configuration section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct NotesConfig {
    greeting: String,
    max_notes: u32,
}

impl Default for NotesConfig {
    fn default() -> Self {
        Self { greeting: "hello".into(), max_notes: 3 }
    }
}

impl Validate for NotesConfig {
    fn validate(&self, _: Profile) -> Result<(), ConfigIssue> {
        if !(1..=100).contains(&self.max_notes) {
            return Err(ConfigIssue::new("notes.max_notes", "must be 1 to 100"));
        }
        Ok(())
    }
}

impl ConfigSection for NotesConfig {
    const KEY: &'static str = "notes";

    fn rows(&self) -> Vec<Row> {
        vec![
            Row::new("notes.greeting", "what `GET /api/v1/notes` says"),
            Row::new("notes.max_notes", "notes kept at most"),
        ]
    }
}

/// The module's own error code.
const NOTES_FULL: ErrorCode = ErrorCode::new("NOTES_FULL", "The notebook holds `notes.max_notes` notes already.");

app_core::problem_status! {
    /// 409 `NOTES_FULL`.
    NotesFull = 409, [NOTES_FULL], "the notebook is full";
}

/// A note to add.
#[derive(Debug, Object)]
struct NewNote {
    /// What it says.
    body: String,
}

/// The notebook.
#[derive(Debug, Object)]
struct Notebook {
    /// `notes.greeting`.
    greeting: String,
    /// Notes kept.
    notes: i64,
}

#[derive(ApiResponse)]
enum Added {
    /// Added.
    #[oai(status = 201)]
    Created(Json<Notebook>),
}

struct NotesApi {
    db: Arc<dyn SqlDatabase>,
    config: NotesConfig,
}

impl NotesApi {
    async fn notebook(&self) -> Result<Notebook, ApiError> {
        let count = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM notes")
            .fetch_one(self.db.database().pool())
            .await
            .map_err(ApiError::internal)?;
        Ok(Notebook { greeting: self.config.greeting.clone(), notes: count })
    }
}

#[OpenApi(prefix_path = "/api/v1/notes")]
impl NotesApi {
    /// The notebook
    #[oai(path = "/", method = "get", operation_id = "notebook")]
    async fn get(&self) -> Result<Json<Notebook>, Problems<(Unavailable,)>> {
        Ok(Json(self.notebook().await?))
    }

    /// Add a note
    #[oai(path = "/", method = "post", operation_id = "addNote")]
    async fn add(&self, note: Json<NewNote>) -> Result<Added, Problems<(BadRequest, NotesFull, Unavailable)>> {
        if self.notebook().await?.notes >= i64::from(self.config.max_notes) {
            return Err(ApiError::conflict(NOTES_FULL, "The notebook is full").into());
        }
        sqlx::query("INSERT INTO notes (id, body) VALUES ($1, $2)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&note.0.body)
            .execute(self.db.database().pool())
            .await
            .map_err(ApiError::internal)?;
        Ok(Added::Created(Json(self.notebook().await?)))
    }
}

/// The module's readiness check.
struct NotesCheck;

#[async_trait]
impl ReadinessCheck for NotesCheck {
    fn name(&self) -> &'static str {
        "notes"
    }

    async fn check(&self) -> Check {
        Check::up("notes", Duration::ZERO)
    }
}

/// The module's shutdown hook: records that it ran.
struct Stopped(Arc<AtomicBool>);

#[async_trait]
impl Lifecycle for Stopped {
    async fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The module: everything above, declared in one place.
#[derive(Default)]
struct NotesModule {
    stopped: Arc<AtomicBool>,
}

#[async_trait]
impl Module for NotesModule {
    fn name(&self) -> &'static str {
        "notes"
    }

    fn imports(&self) -> Vec<Box<dyn Module>> {
        vec![Box::new(DatabaseModule)]
    }

    fn config(&self) -> Option<Section> {
        Some(Section::of::<NotesConfig>())
    }

    fn migrations(&self) -> Vec<Migration> {
        vec![Migration::new(
            20990101000001,
            "notes",
            "CREATE TABLE notes (id TEXT PRIMARY KEY NOT NULL, body TEXT NOT NULL)",
        )]
    }

    fn error_codes(&self) -> &'static [ErrorCode] {
        &[NOTES_FULL]
    }

    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError> {
        let db: Arc<dyn SqlDatabase> = ctx.get::<DatabaseContainer>()?.resolve();
        ctx.controller(Controller::new(NotesApi { db, config: ctx.config::<NotesConfig>().clone() }));
        ctx.readiness(NotesCheck);
        ctx.lifecycle(Stopped(self.stopped.clone()));
        Ok(())
    }
}

#[tokio::test]
async fn a_module_defined_in_a_test_gets_its_route_spec_migration_code_check_and_shutdown_from_one_line() {
    for database in TestDatabase::all().await {
        let backend = database.backend();
        let stopped = Arc::new(AtomicBool::new(false));
        let app = app()
            .database(database)
            .config(|c| c.get_mut::<NotesConfig>().max_notes = 1)
            .module(NotesModule { stopped: stopped.clone() })
            .spawn()
            .await;

        let resp = app.get("/api/v1/notes").await;
        assert_eq!(resp.status(), 200, "{backend}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body, serde_json::json!({"greeting": "hello", "notes": 0}), "{backend}: the migration ran");
        let add =
            || app.request(reqwest::Method::POST, "/api/v1/notes").json(&serde_json::json!({"body": "hi"})).send();
        assert_eq!(add().await.expect("sent").status(), 201, "{backend}");
        assert_problem(add().await.expect("sent"), 409, "NOTES_FULL").await;

        let spec: Value = app.openapi().await.json().await.expect("spec");
        let post = &spec["paths"]["/api/v1/notes"]["post"];
        assert_eq!(post["operationId"], "addNote");
        assert!(post["responses"]["409"]["description"].as_str().unwrap_or_default().contains("`NOTES_FULL`"));
        let codes = spec["components"]["schemas"]["ErrorCode"]["enum"].as_array().expect("codes");
        assert!(codes.contains(&Value::from("NOTES_FULL")), "{codes:?}");
        assert!(post["description"].as_str().unwrap_or_default().contains("**Rate limits:** the default policy"));

        let ready: Value = app.ready().await.json().await.expect("readiness");
        assert_eq!(ready["checks"]["notes"]["status"], "ok", "{ready}");

        assert!(!stopped.load(Ordering::SeqCst));
        app.shutdown().await.expect("stops");
        assert!(stopped.load(Ordering::SeqCst), "{backend}: the shutdown hook ran");
    }
}

#[test]
fn its_config_section_loads_from_the_environment_and_a_bad_value_stops_start_up_naming_the_key() {
    let modules = app::modules().with(NotesModule::default());
    let env = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    let loaded = app::config::load(&modules, None, env(&[("APP_NOTES__GREETING", "hi there")])).expect("valid");
    assert_eq!(loaded.config.get::<NotesConfig>().greeting, "hi there");
    assert_eq!(loaded.config.get::<NotesConfig>().max_notes, 3, "the default");

    let err = app::config::load(&modules, None, env(&[("APP_NOTES__MAX_NOTES", "0")])).expect_err("out of range");
    assert_eq!(err.key.as_deref(), Some("notes.max_notes"));
    assert_eq!(err.source.as_deref(), Some("environment variable APP_NOTES__MAX_NOTES"));
    let err = app::config::load(&modules, None, env(&[("APP_NOTES__MAX_NOTES", "many")])).expect_err("not a number");
    assert_eq!(err.key.as_deref(), Some("notes.max_notes"), "{err}");
    let err = app::config::load(&modules, None, env(&[("APP_NOTES__GREETNG", "x")])).expect_err("a typo");
    assert!(err.to_string().contains("greetng"), "{err}");

    // Without the module, `APP_NOTES__*` is not the app's: ignored with a warning.
    let loaded = app::config::load(&app::modules(), None, env(&[("APP_NOTES__GREETING", "hi")])).expect("valid");
    assert!(loaded.warnings.iter().any(|w| w.contains("APP_NOTES__GREETING")), "{:?}", loaded.warnings);

    let table = app::config::table(&modules);
    assert!(table.contains("| `notes.max_notes` | `3` | `APP_NOTES__MAX_NOTES` | notes kept at most |"), "{table}");
}

#[tokio::test]
async fn its_shutdown_hook_runs_on_sigterm() {
    let stopped = Arc::new(AtomicBool::new(false));
    let mut app = app().module(NotesModule { stopped: stopped.clone() }).spawn_until(app::shutdown_signal()).await;
    assert_eq!(app.live().await.status(), 200);
    let sent = Command::new("kill").args(["-TERM", &std::process::id().to_string()]).status().expect("kill");
    assert!(sent.success());
    app.stopped().await.expect("the server stops cleanly");
    assert!(stopped.load(Ordering::SeqCst), "the shutdown hook ran");
}
