// The README's example ("For the SPA developer"), compiled with the driver so it stays true.

import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

const api = createClient<paths>({ baseUrl: "/", credentials: "include" });
let token = "";
api.use({ onRequest: ({ request }) => { if (token) request.headers.set("Authorization", `Bearer ${token}`); } });

export async function signIn(email: string, password: string) {
  const { data, error } = await api.POST("/api/v1/auth/login", { body: { email, password } });
  if (error) throw new Error(error.code); // "INVALID_CREDENTIALS", "RATE_LIMITED", ...
  token = data.accessToken;                // keep it in memory; the refresh token is a cookie
}

export async function addSong(title: string): Promise<components["schemas"]["LibraryItem"]> {
  const { data, error } = await api.POST("/api/v1/library", { body: { type: "song", title } });
  if (error) throw new Error(error.errors?.map((e) => `${e.field}: ${e.message}`).join("; ") ?? error.code);
  return data;
}

export const exportCsv = () => api.POST("/api/v1/jobs", { body: { type: "library.export", params: { format: "csv" } } });
