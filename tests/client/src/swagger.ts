// Swagger UI in a real browser (Debian's chromium, driven by playwright-core): open /docs,
// Authorize with an access token, "Try it out" on a GET and on a POST with Swagger UI's own
// sample body, and read the status it shows. No request may leave the machine (no CDN).
// Usage: `node dist/swagger.js <base URL> <access token>`.

import assert from "node:assert/strict";

import { chromium } from "playwright-core";

const [base, token] = process.argv.slice(2);
if (base === undefined || token === undefined) {
  throw new Error("usage: node dist/swagger.js <base URL> <access token>");
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const page = await browser.newPage();
  const origin = new URL(base).origin;
  const outside: string[] = [];
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith("data:")) {
      return route.continue();
    }
    outside.push(url);
    return route.abort();
  });
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  // A Content-Security-Policy violation is a console error.
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });

  const docs = await page.goto(`${base}/docs`);
  const policy = docs?.headers()["content-security-policy"] ?? "";
  assert.ok(policy.includes("frame-ancestors 'none'") && policy.includes("script-src 'self'"), policy);
  await page.locator(".swagger-ui .info .title").waitFor();

  // Authorize with the bearer token.
  await page.locator("button.authorize").first().click();
  const dialog = page.locator(".modal-ux");
  const bearer = dialog.locator("form").filter({ hasText: "bearer (http" });
  await bearer.locator("input").first().fill(token);
  await bearer.locator("button.authorize").click();
  await dialog.locator("button.btn-done, button.close-modal").first().click();

  /** Expands an operation, tries it out as Swagger UI fills it in, and returns the status it shows. */
  async function tryItOut(operation: string): Promise<string> {
    const block = page.locator(`[id$="-${operation}"]`).first();
    await block.locator(".opblock-summary").first().click();
    await block.locator("button.try-out__btn").click();
    await block.locator("button.execute").click();
    const status = block.locator(".live-responses-table .response .response-col_status").first();
    await status.waitFor({ timeout: 15_000 });
    return (await status.innerText()).trim();
  }

  const me = await tryItOut("getMe");
  assert.match(me, /^200/, `GET /users/me showed ${me}`);
  const created = await tryItOut("createLibraryItem");
  assert.match(created, /^201/, `POST /library with Swagger UI's sample body showed ${created}`);

  assert.deepEqual(outside, [], "no request leaves the machine");
  assert.deepEqual(errors, [], "no script error on the page");
  console.log(`swagger: GET ${me}, POST ${created}`);
} finally {
  await browser.close();
}
