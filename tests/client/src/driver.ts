// The SPA's whole flow through a client generated from the committed spec (openapi-typescript +
// openapi-fetch), type-checked under `--strict` with no casts, run against a live server:
// register, login, me, library CRUD, an edit lock, import and export jobs followed over SSE
// (EventSource with a ticket, reconnecting; fetch with the bearer), their results, refresh with
// the cookie alone, logout, and the 401 after it. Usage: `node dist/driver.js <base URL>`.

import assert from "node:assert/strict";

import createClient from "openapi-fetch";

import type { components, paths } from "./generated/schema.js";
import { followWithEventSource, readWithFetch } from "./sse.js";

type Problem = components["schemas"]["Problem"];

const base: string = (() => {
  const url = process.argv[2] ?? process.env.BASE_URL;
  if (url === undefined) {
    throw new Error("usage: node dist/driver.js <base URL>");
  }
  return url;
})();

/** The data of a successful answer with `status`, or a failure naming what came instead. */
function expect<T>(result: { data?: T; error?: unknown; response: Response }, status: number): T {
  assert.equal(result.response.status, status, `expected ${status}: ${JSON.stringify(result.error ?? result.data)}`);
  if (result.data === undefined) {
    throw new Error(`${status} without a body`);
  }
  return result.data;
}

/** The problem of a failed answer with `status`. */
function problem(result: { error?: Problem; response: Response }, status: number): Problem {
  assert.equal(result.response.status, status);
  if (result.error === undefined) {
    throw new Error(`${status} without a problem body`);
  }
  return result.error;
}

const client = createClient<paths>({ baseUrl: base });

// Lines that must not compile: the generated client knows the job types and their params.
export function neverRuns(token: string): void {
  const authed = createClient<paths>({ baseUrl: base, headers: { authorization: `Bearer ${token}` } });
  // @ts-expect-error an unknown job type
  void authed.POST("/api/v1/jobs", { body: { type: "library.exprot", params: { format: "csv" } } });
  // @ts-expect-error params of the wrong shape for the type
  void authed.POST("/api/v1/jobs", { body: { type: "library.export", params: 42 } });
  // @ts-expect-error the export's format is `json` or `csv`
  void authed.POST("/api/v1/jobs", { body: { type: "library.export", params: { format: "xml" } } });
  // @ts-expect-error a library item's type is one of four
  void authed.POST("/api/v1/library", { body: { type: "movie", title: "x" } });
}

async function main(): Promise<void> {
  const email = `driver-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`;
  const password = "correct horse battery";

  const user = expect(await client.POST("/api/v1/auth/register", { body: { email, password, name: "Driver" } }), 201);
  assert.equal(user.email, email);
  const login = await client.POST("/api/v1/auth/login", { body: { email, password } });
  const tokens = expect(login, 200);
  const setCookie = login.response.headers.getSetCookie().find((c) => c.startsWith("refresh_token="));
  assert.ok(setCookie, "login sets the refresh cookie");
  const cookie = setCookie.split(";")[0] ?? "";

  const api = createClient<paths>({ baseUrl: base, headers: { authorization: `Bearer ${tokens.accessToken}` } });
  const me = expect(await api.GET("/api/v1/users/me"), 200);
  assert.equal(me.id, user.id);

  // Library CRUD.
  const created = expect(
    await api.POST("/api/v1/library", { body: { type: "song", title: "Blue in Green", artist: "Miles Davis", tags: ["jazz"] } }),
    201,
  );
  const page = expect(await api.GET("/api/v1/library", { params: { query: { page: 1, pageSize: 10, type: "song" } } }), 200);
  assert.equal(page.total, 1);
  assert.equal(page.items[0]?.id, created.id);
  const item = { params: { path: { id: created.id } } };
  expect(await api.GET("/api/v1/library/{id}", item), 200);
  const renamed = expect(await api.PATCH("/api/v1/library/{id}", { ...item, body: { title: "So What", artist: null } }), 200);
  assert.equal(renamed.title, "So What");
  assert.equal(renamed.artist, undefined);
  const invalid = problem(await api.PATCH("/api/v1/library/{id}", { ...item, body: { title: "" } }), 400);
  assert.equal(invalid.code, "VALIDATION_FAILED");
  assert.equal(invalid.errors?.[0]?.field, "title");

  // An edit lock: writes carry its token; others meet 423 until it is released.
  const lock = expect(await api.POST("/api/v1/library/{id}/lock", item), 201);
  const locked = { params: { path: { id: created.id }, header: { "X-Lock-Token": lock.lockToken } } };
  expect(await api.PATCH("/api/v1/library/{id}", { ...locked, body: { title: "Locked edit" } }), 200);
  assert.equal(problem(await api.PATCH("/api/v1/library/{id}", { ...item, body: { title: "No lock" } }), 423).code, "LOCKED");
  const state = expect(await api.GET("/api/v1/library/{id}/lock", item), 200);
  assert.ok(state.locked && state.heldByMe);
  const released = await api.DELETE("/api/v1/library/{id}/lock", locked);
  assert.equal(released.response.status, 204);

  // An import, followed by EventSource with a ticket (whose connection is cut once).
  const items = Array.from({ length: 1200 }, (_, i) => ({ type: "podcast" as const, title: `Episode ${i}` }));
  const imported = expect(await api.POST("/api/v1/jobs", { body: { type: "library.import", params: { items } } }), 202);
  const ticket = expect(await api.POST("/api/v1/jobs/{id}/events/ticket", { params: { path: { id: imported.id } } }), 201);
  const followed = await followWithEventSource(`${base}/api/v1/jobs/${imported.id}/events?ticket=${ticket.ticket}`);
  assert.equal(followed.events[0]?.event, "snapshot");
  assert.equal(followed.events.at(-1)?.event, "completed");
  assert.ok(followed.requests.length >= 2, `the browser reconnected: ${JSON.stringify(followed.requests)}`);
  const reconnection = followed.requests[1];
  assert.ok(reconnection?.lastEventId, "the reconnection sent Last-Event-ID");
  assert.ok(reconnection.status === 200 || reconnection.status === 204, `the reconnection was served: ${reconnection.status}`);
  const report = expect(await api.GET("/api/v1/jobs/{id}/result", { params: { path: { id: imported.id } } }), 200);
  if (typeof report === "string" || Array.isArray(report)) {
    throw new Error("the import's result is its report");
  }
  assert.equal(report.imported, 1200);
  assert.deepEqual(report.failed, []);

  // Exports, followed with fetch and the bearer.
  const exported = expect(await api.POST("/api/v1/jobs", { body: { type: "library.export", params: { format: "json" } } }), 202);
  const events = await readWithFetch(`${base}/api/v1/jobs/${exported.id}/events`, tokens.accessToken);
  assert.equal(events.at(-1)?.event, "completed");
  assert.equal(events.at(-1)?.job.type, "library.export");
  const document = expect(await api.GET("/api/v1/jobs/{id}/result", { params: { path: { id: exported.id } } }), 200);
  assert.ok(Array.isArray(document), "the JSON export is the items");
  assert.equal(document.length, 1201);
  const csvJob = expect(await api.POST("/api/v1/jobs", { body: { type: "library.export", params: { format: "csv" } } }), 202);
  await readWithFetch(`${base}/api/v1/jobs/${csvJob.id}/events`, tokens.accessToken);
  const csv = await api.GET("/api/v1/jobs/{id}/result", { params: { path: { id: csvJob.id } }, parseAs: "text" });
  assert.equal(csv.response.headers.get("content-type")?.split(";")[0], "text/csv");
  assert.ok(csv.response.headers.get("content-disposition")?.startsWith("attachment"));
  assert.ok(expect(csv, 200).includes("Locked edit"));

  // Refresh with the cookie alone: no body, no content type (what a browser's
  // `fetch(url, {method: "POST", credentials: "include"})` sends; node sends the cookie itself).
  const refreshed = await fetch(`${base}/api/v1/auth/refresh`, { method: "POST", headers: { cookie } });
  assert.equal(refreshed.status, 200);
  const pair: components["schemas"]["TokenPair"] = await refreshed.json();
  assert.ok(pair.accessToken.length > 0);

  // Logout, then the old token is refused.
  const fresh = createClient<paths>({ baseUrl: base, headers: { authorization: `Bearer ${pair.accessToken}` } });
  const logout = await fresh.POST("/api/v1/auth/logout");
  assert.equal(logout.response.status, 204);
  const refused = problem(await fresh.GET("/api/v1/users/me"), 401);
  assert.equal(refused.code, "SESSION_REVOKED");
  assert.equal((await fresh.GET("/api/v1/users/me")).response.headers.get("www-authenticate"), "Bearer");
  console.log("driver: the whole flow passed");
}

await main();
