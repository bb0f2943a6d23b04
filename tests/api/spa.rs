//! The contract as an SPA and its generated client meet it (API.md "Conventions" and "The spec,
//! as a generated client sees it"): what a browser's `fetch` sends, methods and `Allow`, one
//! `Authorization`, and a spec a client generator takes without casts.

use serde_json::Value;

use crate::support::{assert_problem, spawn_app};

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[tokio::test]
async fn refresh_works_with_the_cookie_alone_no_body_no_content_type() {
    let app = spawn_app().await;
    let (_, tokens) = app.user().await;
    // What `fetch("/api/v1/auth/refresh", {method: "POST", credentials: "include"})` sends.
    let resp = app
        .request(reqwest::Method::POST, "/api/v1/auth/refresh")
        .header("cookie", format!("refresh_token={}", tokens.refresh))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let pair: Value = resp.json().await.expect("json");
    assert!(pair["accessToken"].is_string());
    // No cookie and no body: the token is missing, named.
    let resp = app.request(reqwest::Method::POST, "/api/v1/auth/refresh").send().await.expect("sent");
    let problem = assert_problem(resp, 400, "VALIDATION_FAILED").await;
    assert_eq!(problem["errors"][0]["field"], "refreshToken");
}

#[tokio::test]
async fn a_wrong_method_says_which_are_allowed_and_options_answers_them() {
    let app = spawn_app().await;
    let resp = app.request(reqwest::Method::PUT, "/api/v1/library").send().await.expect("sent");
    assert_eq!(resp.headers()["allow"], "GET, HEAD, POST, OPTIONS");
    assert_problem(resp, 405, "METHOD_NOT_ALLOWED").await;
    let resp =
        app.request(reqwest::Method::OPTIONS, "/api/v1/library/0193f2c4-0000-7000-8000-000000000001").send().await;
    let resp = resp.expect("sent");
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["allow"], "GET, HEAD, PATCH, DELETE, OPTIONS");
    let resp = app.request(reqwest::Method::POST, "/openapi.json").send().await.expect("sent");
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
    assert_problem(resp, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn two_authorization_headers_are_a_400() {
    let app = spawn_app().await;
    let (_, tokens) = app.user().await;
    let resp = app
        .request(reqwest::Method::GET, "/api/v1/users/me")
        .header("authorization", format!("Bearer {}", tokens.access))
        .header("authorization", "Bearer someone-else")
        .send()
        .await
        .expect("sent");
    assert_problem(resp, 400, "MALFORMED_REQUEST").await;
}

/// Every operation object of the committed spec, with its method and path.
fn operations(spec: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((method.clone(), path.clone(), op));
        }
    }
    out
}

#[test]
fn the_spec_reads_as_a_generated_client_needs_it() {
    let spec: Value = serde_json::from_str(COMMITTED).expect("JSON");
    for (method, path, op) in operations(&spec) {
        let mut contents: Vec<&str> = Vec::new();
        if let Some(body) = op["requestBody"]["content"].as_object() {
            contents.extend(body.keys().map(String::as_str));
        }
        for (status, response) in op["responses"].as_object().expect("responses") {
            contents.extend(response["content"].as_object().into_iter().flatten().map(|(k, _)| k.as_str()));
            let problem = response["content"]["application/problem+json"].is_object();
            for statused in ["429", "423", "503"] {
                if status == statused && problem {
                    assert!(
                        response["headers"]["Retry-After"].is_object(),
                        "{method} {path} {status} declares Retry-After"
                    );
                }
            }
        }
        for media_type in contents {
            assert!(!media_type.contains(';'), "{method} {path}: media type {media_type} has parameters");
        }
        assert!(op["security"].is_array(), "{method} {path} says its security, `[]` when public");
    }
    let public = &spec["paths"]["/api/v1/auth/login"]["post"]["security"];
    assert_eq!(public, &serde_json::json!([]));

    let schemas = &spec["components"]["schemas"];
    let password = &schemas["RegisterRequest"]["properties"]["password"];
    assert_eq!((password["minLength"].as_u64(), password["maxLength"].as_u64()), (Some(8), Some(128)));
    let tags = &schemas["LibraryItemInput"]["properties"]["tags"];
    assert_eq!((tags["maxItems"].as_u64(), tags["items"]["maxLength"].as_u64()), (Some(20), Some(40)));
    let page_size = spec["paths"]["/api/v1/library"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "pageSize")
        .expect("pageSize")["schema"]
        .clone();
    assert_eq!(page_size["maximum"].as_u64(), Some(app_core::pagination::MAX_PAGE_SIZE));
    assert_eq!(page_size["minimum"].as_u64(), Some(1));

    let submit = &schemas["SubmitJob"];
    assert_eq!(submit["discriminator"]["propertyName"], "type");
    let kinds: Vec<&str> =
        submit["discriminator"]["mapping"].as_object().expect("mapping").keys().map(String::as_str).collect();
    assert_eq!(kinds, ["library.export", "library.import"]);
    assert_eq!(schemas["Job"]["properties"]["type"]["enum"], serde_json::json!(["library.export", "library.import"]));
    let stream = &spec["paths"]["/api/v1/jobs/{id}/events"]["get"]["responses"]["200"]["content"]["text/event-stream"];
    assert_eq!(stream["schema"]["type"], "string", "the stream is text, not a JSON array");
    let result = &spec["paths"]["/api/v1/jobs/{id}/result"]["get"]["responses"]["200"]["content"];
    assert!(result["application/json"]["schema"]["oneOf"].is_array() && result["text/csv"].is_object());
}
