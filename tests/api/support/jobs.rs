//! Client helpers for the jobs routes, an SSE reader, and job types for tests (registered on
//! top of the built-in ones through the DI overrides).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use app_core::FieldError;
use app_core::{Context, Module, ModuleError};
use app_jobs::{JobContext, JobError, JobHandler, JobOutput, JobRegistry, JobsModule};
use async_trait::async_trait;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use super::TestApp;
use crate::support::AppBuilder;

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub event: String,
    pub id: Option<u64>,
    pub data: Value,
}

#[allow(dead_code)]
impl TestApp {
    /// `POST /api/v1/jobs`.
    pub async fn submit_job(&self, token: &str, kind: &str, params: Value) -> reqwest::Response {
        self.authed(Method::POST, "/api/v1/jobs", token)
            .json(&json!({"type": kind, "params": params}))
            .send()
            .await
            .expect("request sent")
    }

    /// Submits a job expecting 202; returns the job.
    pub async fn job(&self, token: &str, kind: &str, params: Value) -> Value {
        let resp = self.submit_job(token, kind, params).await;
        assert_eq!(resp.status(), 202, "submit");
        resp.json().await.expect("json")
    }

    /// `GET /api/v1/jobs?{query}`.
    pub async fn list_jobs(&self, token: &str, query: &str) -> reqwest::Response {
        self.authed(Method::GET, &format!("/api/v1/jobs?{query}"), token).send().await.expect("request sent")
    }

    /// `GET /api/v1/jobs?{query}`, which must answer 200; returns the page.
    pub async fn jobs_page(&self, token: &str, query: &str) -> Value {
        let resp = self.list_jobs(token, query).await;
        assert_eq!(resp.status(), 200, "list jobs");
        resp.json().await.expect("json")
    }

    /// `GET /api/v1/jobs/{id}`.
    pub async fn get_job(&self, token: &str, id: &str) -> reqwest::Response {
        self.authed(Method::GET, &format!("/api/v1/jobs/{id}"), token).send().await.expect("request sent")
    }

    /// Polls the job until `done` says so (or 30 s pass); returns its last state.
    pub async fn wait_job(&self, token: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let job: Value = self.get_job(token, id).await.json().await.expect("json");
            if done(&job) || Instant::now() > deadline {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls the job until it has finished; returns it.
    pub async fn finished_job(&self, token: &str, id: &str) -> Value {
        let job = self
            .wait_job(token, id, |j| matches!(j["status"].as_str(), Some("completed" | "failed" | "cancelled")))
            .await;
        assert!(
            matches!(job["status"].as_str(), Some("completed" | "failed" | "cancelled")),
            "finished in time: {job}"
        );
        job
    }

    /// `GET /api/v1/jobs/{id}/result`.
    pub async fn job_result(&self, token: &str, id: &str) -> reqwest::Response {
        self.authed(Method::GET, &format!("/api/v1/jobs/{id}/result"), token).send().await.expect("request sent")
    }

    /// `DELETE /api/v1/jobs/{id}`.
    pub async fn cancel_job(&self, token: &str, id: &str) -> reqwest::Response {
        self.authed(Method::DELETE, &format!("/api/v1/jobs/{id}"), token).send().await.expect("request sent")
    }

    /// `POST /api/v1/jobs/{id}/events/ticket`.
    pub async fn stream_ticket(&self, token: &str, id: &str) -> reqwest::Response {
        self.authed(Method::POST, &format!("/api/v1/jobs/{id}/events/ticket"), token)
            .send()
            .await
            .expect("request sent")
    }

    /// `GET /api/v1/jobs/{id}/events` (with the bearer, or `?ticket=` when `token` is `None`).
    pub async fn open_events(
        &self,
        id: &str,
        token: Option<&str>,
        ticket: Option<&str>,
        last: Option<u64>,
    ) -> reqwest::Response {
        let path = match ticket {
            Some(t) => format!("/api/v1/jobs/{id}/events?ticket={t}"),
            None => format!("/api/v1/jobs/{id}/events"),
        };
        let mut req = self.request(Method::GET, &path);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(last) = last {
            req = req.header("last-event-id", last.to_string());
        }
        req.send().await.expect("request sent")
    }

    /// `POST /api/v1/admin/queues/{name}/{action}`.
    pub async fn queue_action(&self, admin: &str, name: &str, action: &str) -> reqwest::Response {
        self.authed(Method::POST, &format!("/api/v1/admin/queues/{name}/{action}"), admin)
            .send()
            .await
            .expect("request sent")
    }

    /// `GET /api/v1/admin/queues`, by name.
    pub async fn queues(&self, admin: &str) -> Value {
        let resp = self.authed(Method::GET, "/api/v1/admin/queues", admin).send().await.expect("request sent");
        assert_eq!(resp.status(), 200);
        let list: Vec<Value> = resp.json().await.expect("json");
        list.into_iter().map(|q| (q["name"].as_str().expect("name").to_owned(), q)).collect()
    }
}

/// Reads a whole event stream (until the server ends it, or 30 s).
pub async fn read_events(resp: reqwest::Response) -> Vec<Sse> {
    assert_eq!(resp.status(), 200, "stream opened");
    assert!(resp.headers()["content-type"].to_str().expect("ascii").starts_with("text/event-stream"));
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, body.next()).await {
        text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
    }
    parse_events(&text)
}

/// Parses `event:` / `id:` / `data:` frames (comment lines are skipped).
pub fn parse_events(text: &str) -> Vec<Sse> {
    text.split("\n\n")
        .filter_map(|frame| {
            let (mut event, mut id, mut data) = ("message".to_owned(), None, String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            (!data.is_empty()).then(|| Sse { event, id, data: serde_json::from_str(&data).expect("data is JSON") })
        })
        .collect()
}

/// `test.steps`: `{steps, ms}` steps of `ms` each, with progress; stops when told to.
pub struct Steps;

#[async_trait]
impl JobHandler for Steps {
    fn kind(&self) -> &'static str {
        "test.steps"
    }

    fn validate(&self, _params: &Value) -> Result<(), Vec<FieldError>> {
        Ok(())
    }

    async fn run(&self, ctx: &JobContext, params: Value) -> Result<Option<JobOutput>, JobError> {
        let steps = params["steps"].as_u64().unwrap_or(5);
        let ms = params["ms"].as_u64().unwrap_or(50);
        for step in 1..=steps {
            if ctx.should_stop() {
                return Err(ctx.stopped());
            }
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ctx.progress((step * 100 / steps).min(99) as u8).await;
        }
        Ok(Some(ctx.json_result(&json!({"steps": steps})).await?))
    }
}

/// `test.flaky`: fails its first `{fail}` attempts, then succeeds; records when each attempt began.
#[derive(Clone, Default)]
pub struct Flaky {
    pub starts: Arc<Mutex<Vec<Instant>>>,
}

#[async_trait]
impl JobHandler for Flaky {
    fn kind(&self) -> &'static str {
        "test.flaky"
    }

    fn validate(&self, _params: &Value) -> Result<(), Vec<FieldError>> {
        Ok(())
    }

    async fn run(&self, ctx: &JobContext, params: Value) -> Result<Option<JobOutput>, JobError> {
        self.starts.lock().expect("lock").push(Instant::now());
        if u64::from(ctx.attempt) <= params["fail"].as_u64().unwrap_or(0) {
            return Err(JobError::Failed(format!("attempt {} failed on purpose", ctx.attempt)));
        }
        Ok(None)
    }
}

/// A module of the tests: it registers the test job types with the jobs module, as a feature
/// registers its own.
struct TestJobs {
    flaky: Flaky,
}

#[async_trait]
impl Module for TestJobs {
    fn name(&self) -> &'static str {
        "test_jobs"
    }

    fn imports(&self) -> Vec<Box<dyn Module>> {
        vec![Box::new(JobsModule)]
    }

    async fn build(&self, ctx: &mut Context) -> Result<(), ModuleError> {
        let jobs = ctx.get::<JobRegistry>()?;
        jobs.register(Steps);
        jobs.register(self.flaky.clone());
        Ok(())
    }
}

#[allow(dead_code)]
impl AppBuilder {
    /// Registers the test job types (`test.steps`, and `flaky` as `test.flaky`).
    pub fn with_test_jobs(self, flaky: Flaky) -> Self {
        self.module(TestJobs { flaky })
    }
}
