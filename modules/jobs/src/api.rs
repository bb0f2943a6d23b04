//! The jobs controllers: `/api/v1/jobs/*` and `/api/v1/admin/queues/*`.

use std::{borrow::Cow, sync::Arc, time::Duration};

use app_core::{
    AdminAuth, BearerAuth, Problems, Timestamp,
    guard::Verifier,
    pagination::Pagination,
    problem::markers::{BadRequest, Conflict, Forbidden, NotFound, QuotaExceeded, Unauthorized, Unavailable},
    throttle::ThrottleRule,
};
use futures::{StreamExt, stream::BoxStream};
use poem::{
    IntoResponse, Request, Response,
    http::{StatusCode, header},
    web::sse::Event,
};
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi, SecurityScheme, Tags,
    auth::ApiKey,
    param::{Header, Path, Query},
    payload::{EventStream, Json},
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};
use uuid::Uuid;

use crate::{
    JobRecord, JobStatus, JobsService, QueueStats,
    service::{Liveness, StreamEvent},
};

#[derive(Tags)]
enum JobsTags {
    /// Background jobs: submit, follow (polling or Server-Sent Events), fetch the result, cancel.
    Jobs,
    /// Administration (role `admin`).
    Admin,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "JobStatus", rename_all = "lowercase")]
pub enum JobStatusDto {
    /// Waiting for a worker (also between retries).
    Pending,
    /// A worker runs it.
    Active,
    /// Finished successfully.
    Completed,
    /// Finished without success after its last attempt.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
}

impl From<JobStatus> for JobStatusDto {
    fn from(status: JobStatus) -> Self {
        match status {
            JobStatus::Pending => JobStatusDto::Pending,
            JobStatus::Active => JobStatusDto::Active,
            JobStatus::Completed => JobStatusDto::Completed,
            JobStatus::Failed => JobStatusDto::Failed,
            JobStatus::Cancelled => JobStatusDto::Cancelled,
        }
    }
}

impl From<JobStatusDto> for JobStatus {
    fn from(status: JobStatusDto) -> Self {
        match status {
            JobStatusDto::Pending => JobStatus::Pending,
            JobStatusDto::Active => JobStatus::Active,
            JobStatusDto::Completed => JobStatus::Completed,
            JobStatusDto::Failed => JobStatus::Failed,
            JobStatusDto::Cancelled => JobStatus::Cancelled,
        }
    }
}

/// A background job.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Job", rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct JobDto {
    /// The job's id (UUID v7).
    pub id: Uuid,
    /// The job type (one of those the app's modules register).
    #[oai(rename = "type")]
    pub kind: String,
    /// `pending` (waiting, also between retries), `active`, `completed`, `failed` or `cancelled`.
    pub status: JobStatusDto,
    /// 0 to 100.
    pub progress: u8,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed before the job fails for good.
    pub max_attempts: u32,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// When it was submitted (RFC 3339, UTC).
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When the current (or last) attempt started.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
}

impl From<JobRecord> for JobDto {
    fn from(r: JobRecord) -> Self {
        JobDto {
            id: r.id,
            kind: r.kind,
            status: r.status.into(),
            progress: r.progress,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            error: r.error,
            created_at: Timestamp::from_millis(r.created_ms),
            updated_at: Timestamp::from_millis(r.updated_ms),
            started_at: r.started_ms.map(Timestamp::from_millis),
            finished_at: r.finished_ms.map(Timestamp::from_millis),
        }
    }
}

/// A job to run.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
struct SubmitJob {
    /// The job type (one of those the app's modules register).
    #[oai(rename = "type")]
    kind: String,
    /// The job's parameters, as its type defines them.
    params: serde_json::Value,
}

/// One page of the caller's jobs, newest first.
#[derive(Debug, Object)]
#[oai(rename = "JobPage", rename_all = "camelCase")]
struct JobPageDto {
    /// The jobs on this page.
    items: Vec<JobDto>,
    /// Matching jobs across all pages (of the caller's newest 1000).
    total: u64,
    /// This page's number (1-based).
    page: u64,
    /// The page size asked for.
    page_size: u64,
}

/// A single-use ticket for the event stream.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
struct StreamTicket {
    /// Pass it as `?ticket=` to `GET /api/v1/jobs/{id}/events` (for `EventSource`, which cannot
    /// send an `Authorization` header). It works once, for this job only.
    ticket: String,
    /// Seconds it stays valid.
    expires_in: u64,
}

/// A queue's counts.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
struct QueueDto {
    /// The queue (one per job type, named after it: `items.export` runs in `items_export`).
    name: String,
    /// Jobs waiting for a worker.
    waiting: u64,
    /// Jobs being run.
    active: u64,
    /// Jobs waiting for a retry.
    delayed: u64,
    /// Completed jobs still kept.
    completed: u64,
    /// Failed and cancelled jobs still kept.
    failed: u64,
    /// Whether workers take no new jobs from it.
    paused: bool,
}

impl QueueDto {
    fn new(name: String, s: QueueStats) -> Self {
        QueueDto {
            name,
            waiting: s.waiting,
            active: s.active,
            delayed: s.delayed,
            completed: s.completed,
            failed: s.failed,
            paused: s.paused,
        }
    }
}

// A ticket from `POST /api/v1/jobs/{id}/events/ticket`, checked by the operation itself (it is
// single use and bound to the job in the path).
/// A single-use ticket from `POST /api/v1/jobs/{id}/events/ticket`, as `?ticket=`, for
/// `EventSource` (which cannot send an `Authorization` header).
#[derive(SecurityScheme)]
#[oai(rename = "streamTicket", ty = "api_key", key_name = "ticket", key_in = "query", checker = "take_ticket")]
struct TicketAuth(String);

async fn take_ticket(_req: &Request, key: ApiKey) -> Option<String> {
    Some(key.key)
}

/// The event stream accepts the bearer token or a ticket.
#[derive(SecurityScheme)]
enum StreamAuth {
    /// `Authorization: Bearer <access token>` (for `fetch`-based readers).
    Bearer(BearerAuth),
    /// `?ticket=` (for `EventSource`).
    Ticket(TicketAuth),
}

#[derive(ApiResponse)]
enum Accepted {
    /// Accepted: queued. `Location` is the job's URL.
    #[oai(status = 202)]
    Accepted(Json<JobDto>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
enum CancelRequested {
    /// Cancelled (a pending job), or cancellation requested (a running job stops at its next
    /// check); the job as it is now.
    #[oai(status = 202)]
    Accepted(Json<JobDto>),
}

#[derive(ApiResponse)]
enum TicketCreated {
    /// The ticket.
    #[oai(status = 201)]
    Created(Json<StreamTicket>),
}

#[derive(ApiResponse)]
enum Done {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

/// One event of a job's stream: its name, id and the job.
struct JobEvent {
    name: &'static str,
    id: Option<u64>,
    job: JobDto,
}

impl Type for JobEvent {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        JobDto::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        JobDto::schema_ref()
    }

    fn register(registry: &mut Registry) {
        JobDto::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ToJSON for JobEvent {
    fn to_json(&self) -> Option<serde_json::Value> {
        self.job.to_json()
    }
}

#[derive(ApiResponse)]
enum Events {
    /// The stream: `snapshot` (the job now), `progress` events, then one of `completed`, `failed`,
    /// `cancelled`, after which the server closes it (close your `EventSource` on it). Every
    /// event's `data` is the `Job`; ids grow, so a reconnect with `Last-Event-ID` resumes. Comment
    /// lines keep an idle stream open.
    #[oai(status = 200)]
    Stream(EventStream<BoxStream<'static, JobEvent>>),
    /// The client already saw the terminal event (`Last-Event-ID`): nothing more will come, and
    /// `EventSource` stops reconnecting.
    #[oai(status = 204)]
    Finished,
}

/// A completed job's result document, streamed from the database as the client reads it.
pub struct ResultDocument {
    download: crate::ResultDownload,
    filename: String,
}

impl IntoResponse for ResultDocument {
    fn into_response(self) -> Response {
        Response::builder()
            .status(StatusCode::OK)
            .content_type(self.download.content_type)
            .header(header::CONTENT_LENGTH, self.download.size)
            .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", self.filename))
            .body(poem::Body::from_bytes_stream(self.download.body))
    }
}

impl ApiResponse for ResultDocument {
    fn meta() -> MetaResponses {
        let json = MetaSchemaRef::Inline(Box::new(MetaSchema::ANY));
        let text = MetaSchemaRef::Inline(Box::new(MetaSchema::new("string")));
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The result: `application/json` (an import's report, a JSON export) or `text/csv` (a CSV export), as an attachment",
                status: Some(200),
                status_range: None,
                content: vec![
                    MetaMediaType { content_type: "application/json", schema: json },
                    MetaMediaType { content_type: "text/csv", schema: text },
                ],
                headers: vec![MetaHeader {
                    name: "Content-Disposition".into(),
                    description: Some("`attachment; filename=\"...\"`".into()),
                    required: true,
                    deprecated: false,
                    schema: String::schema_ref(),
                }],
            }],
        }
    }

    fn register(_registry: &mut Registry) {}
}

fn to_event(event: StreamEvent) -> JobEvent {
    let (name, id, record) = match event {
        // A snapshot of a finished job is followed by its terminal event, which carries the id.
        StreamEvent::Snapshot(r) => ("snapshot", (!r.status.is_terminal()).then_some(r.seq), r),
        StreamEvent::Progress(r) => ("progress", Some(r.seq), r),
        StreamEvent::Terminal(r) => (r.status.as_str(), Some(r.seq), r),
    };
    JobEvent { name, id, job: record.into() }
}

fn sse_event(event: JobEvent) -> Event {
    let data = event.job.to_json().map(|v| v.to_string()).unwrap_or_default();
    let e = Event::message(data).event_type(event.name);
    match event.id {
        Some(id) => e.id(id.to_string()),
        None => e,
    }
}

/// `/api/v1/jobs/*`.
pub struct JobsApi {
    service: Arc<JobsService>,
    heartbeat: Duration,
}

impl JobsApi {
    /// The controller over the service; `heartbeat`: the comment interval of event streams.
    pub fn new(service: Arc<JobsService>, heartbeat: Duration) -> Self {
        Self { service, heartbeat }
    }
}

static SUBMIT_LIMITS: ThrottleRule = ThrottleRule::new("submitJob", &["jobs"]);

/// The rate-limit rules of the jobs operations.
pub const RULES: &[&ThrottleRule] = &[&SUBMIT_LIMITS];

#[OpenApi(prefix_path = "/api/v1/jobs", tag = "JobsTags::Jobs")]
impl JobsApi {
    /// Submit a job
    ///
    /// Queues the job and answers at once (202, `Location`); follow it with `GET /jobs/{id}` or
    /// its event stream. Submissions are rate limited by the `jobs` policy, and a user may have
    /// at most `jobs.max_open_per_user` (10) pending and running jobs of each type: beyond, 409
    /// `QUOTA_EXCEEDED` until one finishes.
    #[oai(path = "/", method = "post", operation_id = "submitJob")]
    async fn submit(
        &self,
        auth: BearerAuth,
        body: Json<SubmitJob>,
    ) -> Result<Accepted, Problems<(BadRequest, Unauthorized, QuotaExceeded, Unavailable)>> {
        let job = self.service.submit(auth.0.user_id, &body.0.kind, body.0.params).await?;
        let location = format!("/api/v1/jobs/{}", job.id);
        Ok(Accepted::Accepted(Json(job.into()), location))
    }

    /// List the caller's jobs
    ///
    /// Newest first, optionally of one `status`; `page` >= 1, `pageSize` 1-100. Finished jobs are
    /// kept for 24 hours (configurable).
    #[oai(path = "/", method = "get", operation_id = "listJobs")]
    async fn list(
        &self,
        auth: BearerAuth,
        status: Query<Option<JobStatusDto>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<Option<u64>>,
        #[oai(name = "pageSize", validator(minimum(value = "1"), maximum(value = "100")))] page_size: Query<
            Option<u64>,
        >,
    ) -> Result<Json<JobPageDto>, Problems<(BadRequest, Unauthorized, Unavailable)>> {
        let pagination = Pagination::new(page.0, page_size.0)?;
        let found = self.service.list(auth.0.user_id, status.0.map(Into::into), pagination).await?;
        Ok(Json(JobPageDto {
            items: found.items.into_iter().map(Into::into).collect(),
            total: found.total,
            page: pagination.page,
            page_size: pagination.page_size,
        }))
    }

    /// One of the caller's jobs
    ///
    /// Another user's job is a 404, like one that does not exist (or expired).
    #[oai(path = "/:id", method = "get", operation_id = "getJob")]
    async fn get(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<Json<JobDto>, Problems<(BadRequest, Unauthorized, NotFound, Unavailable)>> {
        Ok(Json(self.service.get(auth.0.user_id, id.0).await?.into()))
    }

    /// Cancel a job
    ///
    /// A pending job is cancelled at once; a running one is asked to stop and ends `cancelled`
    /// shortly after (watch its status or stream). 409 `CONFLICT` when it has already finished.
    #[oai(path = "/:id", method = "delete", operation_id = "cancelJob")]
    async fn cancel(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<CancelRequested, Problems<(BadRequest, Unauthorized, NotFound, Conflict, Unavailable)>> {
        Ok(CancelRequested::Accepted(Json(self.service.cancel(auth.0.user_id, id.0).await?.into())))
    }

    /// A completed job's result
    ///
    /// The import report (`application/json`) or the export file (`application/json` or
    /// `text/csv`), until the job expires. 409 `CONFLICT` while the job has not completed.
    #[oai(path = "/:id/result", method = "get", operation_id = "getJobResult")]
    async fn result(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<ResultDocument, Problems<(BadRequest, Unauthorized, NotFound, Conflict, Unavailable)>> {
        let download = self.service.result(auth.0.user_id, id.0).await?;
        let extension = if download.content_type.starts_with("text/csv") { "csv" } else { "json" };
        Ok(ResultDocument { download, filename: format!("job-{}.{extension}", id.0) })
    }

    /// A ticket for the job's event stream
    ///
    /// For `EventSource`, which cannot send an `Authorization` header: open
    /// `GET /api/v1/jobs/{id}/events?ticket=<ticket>` within `expiresIn` seconds. It opens one
    /// stream, bound to this job and the caller's session; `EventSource`'s own reconnections to
    /// the same URL (with `Last-Event-ID`) keep working while the session lives.
    #[oai(path = "/:id/events/ticket", method = "post", operation_id = "createJobEventsTicket")]
    async fn ticket(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<TicketCreated, Problems<(BadRequest, Unauthorized, NotFound, Unavailable)>> {
        let (ticket, ttl) = self.service.ticket(auth.0.user_id, &auth.0.session_id, id.0).await?;
        Ok(TicketCreated::Created(Json(StreamTicket { ticket, expires_in: ttl.as_secs() })))
    }

    /// Follow a job (Server-Sent Events)
    ///
    /// Authenticate with the bearer token (a `fetch`-based reader) or with `?ticket=` from
    /// `POST /jobs/{id}/events/ticket` (`EventSource`, whose reconnections send `Last-Event-ID`
    /// and keep working while the session lives). An expired, foreign or used ticket (other than
    /// for a reconnection) is a 401. The stream ends within one heartbeat of its session ending
    /// (logout, logout-all, revocation).
    #[oai(path = "/:id/events", method = "get", operation_id = "streamJobEvents")]
    async fn events(
        &self,
        req: &Request,
        auth: StreamAuth,
        id: Path<Uuid>,
        #[oai(name = "Last-Event-ID")] last_event_id: Header<Option<String>>,
    ) -> Result<Events, Problems<(BadRequest, Unauthorized, NotFound, Unavailable)>> {
        let verifier = app_core::guard::verifier(req).cloned();
        let (owner, session) = match auth {
            StreamAuth::Bearer(bearer) => (bearer.0.user_id, bearer.0.session_id.to_string()),
            StreamAuth::Ticket(TicketAuth(ticket)) => {
                let reconnect = last_event_id.0.is_some();
                let (owner, session) = self.service.redeem(&ticket, id.0, reconnect).await?;
                // A ticket is worth nothing once its session has ended.
                if let Some(verifier) = &verifier {
                    verifier.0.check_session(owner, &session).await?;
                }
                (owner, session)
            }
        };
        let after = last_event_id.0.as_deref().and_then(|v| v.trim().parse::<u64>().ok());
        let alive = liveness(verifier, owner, session);
        let Some(events) = self.service.events(owner, id.0, after, alive).await? else {
            return Ok(Events::Finished);
        };
        let stream = events.map(to_event).boxed();
        Ok(Events::Stream(EventStream::new(stream).keep_alive(self.heartbeat).to_event(sse_event)))
    }
}

/// Whether the stream's session still lives: `false` once the verifier refuses it (an outage of
/// the session store is not an end).
fn liveness(verifier: Option<Verifier>, owner: Uuid, session: String) -> Liveness {
    let Some(verifier) = verifier else { return Arc::new(|| Box::pin(async { true })) };
    let session: Arc<str> = session.into();
    Arc::new(move || {
        let (verifier, session) = (verifier.clone(), session.clone());
        Box::pin(async move {
            match verifier.0.check_session(owner, &session).await {
                Ok(_) => true,
                Err(err) => err.status() != StatusCode::UNAUTHORIZED,
            }
        })
    })
}

/// `/api/v1/admin/queues/*`.
pub struct QueuesApi {
    service: Arc<JobsService>,
}

impl QueuesApi {
    /// The controller over the service.
    pub fn new(service: Arc<JobsService>) -> Self {
        Self { service }
    }
}

#[OpenApi(prefix_path = "/api/v1/admin/queues", tag = "JobsTags::Admin")]
impl QueuesApi {
    /// Job queues and their counts (admin only)
    #[oai(path = "/", method = "get", operation_id = "listQueues")]
    async fn list(
        &self,
        _auth: AdminAuth,
    ) -> Result<Json<Vec<QueueDto>>, Problems<(Unauthorized, Forbidden, Unavailable)>> {
        let stats = self.service.queue_stats().await?;
        Ok(Json(stats.into_iter().map(|(name, s)| QueueDto::new(name, s)).collect()))
    }

    /// Pause a queue (admin only)
    ///
    /// Workers finish what they run and take nothing new from it until it is resumed; submissions
    /// are still accepted.
    #[oai(path = "/:name/pause", method = "post", operation_id = "pauseQueue")]
    async fn pause(
        &self,
        _auth: AdminAuth,
        name: Path<String>,
    ) -> Result<Done, Problems<(Unauthorized, Forbidden, NotFound, Unavailable)>> {
        self.service.set_paused(&name.0, true).await?;
        Ok(Done::NoContent)
    }

    /// Resume a queue (admin only)
    #[oai(path = "/:name/resume", method = "post", operation_id = "resumeQueue")]
    async fn resume(
        &self,
        _auth: AdminAuth,
        name: Path<String>,
    ) -> Result<Done, Problems<(Unauthorized, Forbidden, NotFound, Unavailable)>> {
        self.service.set_paused(&name.0, false).await?;
        Ok(Done::NoContent)
    }
}

/// The spec's name of a job type's request schema: `reports.build` -> `ReportsBuildJob`.
fn request_schema_name(kind: &str) -> String {
    let mut name: String = kind
        .split(['.', '_', '-'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    name.push_str("Job");
    name
}

/// Writes the registered job types into the spec: `POST /jobs` takes a union discriminated by
/// `type`, each with its own `params` schema (checked at submission from this very schema);
/// `Job.type` is their enum; `GET /jobs/{id}/result` declares each result document; the event
/// stream is declared as what it is (text, with its events named).
pub(crate) fn document_job_types(spec: &mut serde_json::Value, types: &[(&'static str, crate::JobDoc)]) {
    use serde_json::{Value, json};
    let Some(schemas) = spec.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    let mut branches = Vec::new();
    let mut mapping = serde_json::Map::new();
    let mut results: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (kind, doc) in types {
        for (name, schema) in &doc.components {
            schemas.entry(name.clone()).or_insert_with(|| schema.clone());
        }
        let name = request_schema_name(kind);
        let reference = format!("#/components/schemas/{name}");
        let params = doc.params.clone().unwrap_or_else(|| json!({ "type": "object" }));
        let mut request = json!({
            "type": "object",
            "title": name,
            "required": ["type", "params"],
            "properties": {
                "type": { "type": "string", "enum": [kind] },
                "params": params,
            },
        });
        if !doc.description.is_empty() {
            request["description"] = Value::from(doc.description);
        }
        schemas.insert(name, request);
        branches.push(json!({ "$ref": reference }));
        mapping.insert((*kind).to_owned(), Value::String(reference));
        for (media_type, schema) in &doc.results {
            match results.iter_mut().find(|(m, _)| m == media_type) {
                Some((_, list)) => list.push(schema.clone()),
                None => results.push((media_type, vec![schema.clone()])),
            }
        }
    }
    schemas.insert(
        "SubmitJob".into(),
        json!({
            "description": "A job to run: its `type` and the `params` that type takes.",
            "oneOf": branches,
            "discriminator": { "propertyName": "type", "mapping": mapping },
        }),
    );
    let kinds: Vec<Value> = types.iter().map(|(kind, _)| Value::from(*kind)).collect();
    if let Some(kind) = schemas.get_mut("Job").and_then(|job| job.pointer_mut("/properties/type")) {
        *kind = json!({ "type": "string", "enum": kinds, "description": "The job type." });
    }
    if let Some(content) = spec.pointer_mut("/paths/~1api~1v1~1jobs~1{id}~1result/get/responses/200/content") {
        let mut documents = serde_json::Map::new();
        for (media_type, mut schemas) in results {
            let schema = if schemas.len() == 1 { schemas.remove(0) } else { json!({ "oneOf": schemas }) };
            documents.insert(media_type.to_owned(), json!({ "schema": schema }));
        }
        if !documents.is_empty() {
            *content = Value::Object(documents);
        }
    }
    if let Some(content) = spec.pointer_mut("/paths/~1api~1v1~1jobs~1{id}~1events/get/responses/200/content") {
        *content = json!({ "text/event-stream": { "schema": {
            "type": "string",
            "description": "Server-Sent Events. Event names: `snapshot` (first), `progress`, then one of \
                `completed`, `failed` or `cancelled` (last; the server then closes the stream). Every \
                event's `data` is a `Job` (JSON, the schema `Job`); its `id` is an increasing integer, so a \
                reconnection with `Last-Event-ID` resumes after it. Comment lines (`:`) keep an idle stream open.",
        } } });
    }
}
