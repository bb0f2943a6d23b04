//! The spec: committed, served, and complete.

use serde_json::Value;

use crate::support::spawn_app;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[tokio::test]
async fn the_committed_spec_is_what_the_server_serves() {
    let app = spawn_app().await;
    let resp = app.openapi().await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let served = resp.text().await.expect("text");
    assert!(
        served.trim_end() == COMMITTED.trim_end(),
        "openapi/openapi.json is stale: regenerate it with `cargo run -- openapi -o openapi/openapi.json`"
    );
}

#[test]
fn every_operation_declares_problem_json_errors() {
    let spec: Value = serde_json::from_str(COMMITTED).expect("the committed spec is JSON");
    assert_eq!(spec["info"]["title"], app::routes::TITLE);
    let paths = spec["paths"].as_object().expect("paths");
    assert!(
        paths.contains_key("/health/live") && paths.contains_key("/health/ready") && paths.contains_key("/metrics")
    );
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let default = &op["responses"]["default"]["content"]["application/problem+json"]["schema"]["$ref"];
            assert_eq!(default, "#/components/schemas/Problem", "{method} {path} declares the problem default");
            assert!(op["operationId"].is_string(), "{method} {path} has an operationId for generated clients");
        }
    }
    let ready = &spec["paths"]["/health/ready"]["get"]["responses"];
    assert!(ready["200"].is_object() && ready["503"].is_object(), "readiness documents 503");
    let problem = &spec["components"]["schemas"]["Problem"]["properties"];
    for field in ["type", "title", "status", "detail", "code", "requestId", "retryAfter", "errors"] {
        assert!(problem[field].is_object(), "Problem.{field} is documented");
    }
}

#[tokio::test]
async fn swagger_ui_is_served_at_docs_from_its_own_files_under_a_strict_policy() {
    let app = spawn_app().await;
    let resp = app.docs().await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
    let policy = resp.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let html = resp.text().await.expect("html");
    assert!(!html.contains("<script>") && !html.contains("<style"), "nothing inline: {html}");
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/swagger-init.js"] {
        assert!(html.contains(asset), "{asset}");
        let resp = app.get(asset).await;
        assert_eq!(resp.status(), 200, "{asset}");
        assert!(resp.text().await.expect("text").len() > 40, "{asset}");
    }
    let init = app.get("/docs/swagger-init.js").await.text().await.expect("js");
    assert!(init.contains("url: '/openapi.json'"), "the page reads the served spec: {init}");
    let resp = app.get("/docs/").await;
    assert_eq!(resp.status(), 308);
    assert_eq!(resp.headers()["location"], "/docs");
}
