// Server-Sent Events for the driver: a `fetch` reader (what an SPA uses when it can send the
// bearer header) and an `EventSource` whose connection is cut once, to prove the browser's own
// reconnection (same URL, `Last-Event-ID`) is served.

import { EventSource, type FetchLike } from "eventsource";

import type { components } from "./generated/schema.js";

export type Job = components["schemas"]["Job"];

/** One event of a job's stream. */
export interface JobEvent {
  event: string;
  id: string;
  job: Job;
}

const TERMINAL = ["completed", "failed", "cancelled"];

function parseJob(data: string): Job {
  // The spec says every event's data is a `Job`: JSON.parse gives `any`, checked at the edge.
  const job: Job = JSON.parse(data);
  if (typeof job.id !== "string" || typeof job.status !== "string") {
    throw new Error(`not a Job: ${data}`);
  }
  return job;
}

/** Reads a job's stream with `fetch` and the bearer token, until the server ends it. */
export async function readWithFetch(url: string, accessToken: string): Promise<JobEvent[]> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${accessToken}`, accept: "text/event-stream" } });
  if (response.status !== 200 || response.body === null) {
    throw new Error(`the stream answered ${response.status}`);
  }
  const events: JobEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = "";
  const reader = response.body.getReader();
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    buffer += decoder.decode(chunk.value, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = new Map<string, string>();
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        fields.set(name, (fields.has(name) && name === "data" ? `${fields.get(name)}\n` : "") + value);
      }
      const data = fields.get("data");
      if (data !== undefined) {
        events.push({ event: fields.get("event") ?? "message", id: fields.get("id") ?? "", job: parseJob(data) });
      }
      end = buffer.indexOf("\n\n");
    }
  }
  return events;
}

/** What an `EventSource` saw, and the requests it made. */
export interface Followed {
  events: JobEvent[];
  /** Each request's status and the `Last-Event-ID` it sent. */
  requests: { status: number; lastEventId: string | null }[];
}

/**
 * Follows a job's stream with `EventSource` and a ticket (no header can be sent), cutting its
 * first connection after the first chunk, as a flaky network does: the browser reconnects by
 * itself to the same URL with `Last-Event-ID`, which must be served until the terminal event.
 */
export function followWithEventSource(url: string): Promise<Followed> {
  const requests: Followed["requests"] = [];
  const cutOnce: FetchLike = async (input, init) => {
    const response = await fetch(input, init);
    const headers = new Headers(init.headers);
    requests.push({ status: response.status, lastEventId: headers.get("last-event-id") });
    if (requests.length > 1 || response.body === null) {
      return response;
    }
    const reader = response.body.getReader();
    const cut = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const first = await reader.read();
        if (!first.done) controller.enqueue(first.value);
        await reader.cancel();
        controller.close();
      },
    });
    return { body: cut, url: response.url, status: response.status, redirected: response.redirected, headers: response.headers };
  };
  return new Promise((resolve, reject) => {
    const source = new EventSource(url, { fetch: cutOnce });
    const events: JobEvent[] = [];
    const timer = setTimeout(() => {
      source.close();
      reject(new Error(`no terminal event after 30 s: ${JSON.stringify(requests)}`));
    }, 30_000);
    const listen = (name: string) =>
      source.addEventListener(name, (message) => {
        events.push({ event: name, id: message.lastEventId, job: parseJob(message.data) });
        if (TERMINAL.includes(name)) {
          clearTimeout(timer);
          source.close();
          resolve({ events, requests });
        }
      });
    ["snapshot", "progress", ...TERMINAL].forEach(listen);
    source.addEventListener("error", (error) => {
      if (source.readyState === EventSource.CLOSED) {
        clearTimeout(timer);
        reject(new Error(`the stream failed for good (${error.code ?? "no status"}): ${JSON.stringify(requests)}`));
      }
    });
  });
}
