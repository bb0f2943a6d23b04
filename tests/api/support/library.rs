//! Client helpers for the library routes.

use reqwest::Method;
use serde_json::{Value, json};

use super::TestApp;

#[allow(dead_code)]
impl TestApp {
    /// `POST /api/v1/library`.
    pub async fn create_item(&self, token: &str, body: Value) -> reqwest::Response {
        self.authed(Method::POST, "/api/v1/library", token).json(&body).send().await.expect("request sent")
    }

    /// Adds a song titled `title`, expecting success; returns the item.
    pub async fn song(&self, token: &str, title: &str) -> Value {
        let resp = self.create_item(token, json!({"type": "song", "title": title})).await;
        assert_eq!(resp.status(), 201, "create");
        resp.json().await.expect("json")
    }

    /// `GET /api/v1/library?<query>`.
    pub async fn list_items(&self, token: &str, query: &str) -> reqwest::Response {
        self.authed(Method::GET, &format!("/api/v1/library?{query}"), token).send().await.expect("request sent")
    }

    /// `GET /api/v1/library?<query>`, expecting 200; returns the page.
    pub async fn page(&self, token: &str, query: &str) -> Value {
        let resp = self.list_items(token, query).await;
        assert_eq!(resp.status(), 200, "list");
        resp.json().await.expect("json")
    }

    /// `GET /api/v1/library/{id}`.
    pub async fn get_item(&self, token: &str, id: &str) -> reqwest::Response {
        self.authed(Method::GET, &format!("/api/v1/library/{id}"), token).send().await.expect("request sent")
    }

    /// `PATCH /api/v1/library/{id}`, with `X-Lock-Token` when given.
    pub async fn patch_item(&self, token: &str, id: &str, lock: Option<&str>, body: Value) -> reqwest::Response {
        let mut req = self.authed(Method::PATCH, &format!("/api/v1/library/{id}"), token).json(&body);
        if let Some(lock) = lock {
            req = req.header("x-lock-token", lock);
        }
        req.send().await.expect("request sent")
    }

    /// `DELETE /api/v1/library/{id}`, with `X-Lock-Token` when given.
    pub async fn delete_item(&self, token: &str, id: &str, lock: Option<&str>) -> reqwest::Response {
        let mut req = self.authed(Method::DELETE, &format!("/api/v1/library/{id}"), token);
        if let Some(lock) = lock {
            req = req.header("x-lock-token", lock);
        }
        req.send().await.expect("request sent")
    }

    /// `POST /api/v1/library/{id}/lock`.
    pub async fn lock_item(&self, token: &str, id: &str) -> reqwest::Response {
        self.authed(Method::POST, &format!("/api/v1/library/{id}/lock"), token).send().await.expect("request sent")
    }

    /// `GET /api/v1/library/{id}/lock`.
    pub async fn lock_status(&self, token: &str, id: &str) -> reqwest::Response {
        self.authed(Method::GET, &format!("/api/v1/library/{id}/lock"), token).send().await.expect("request sent")
    }

    /// `POST /api/v1/library/{id}/lock/extend`.
    pub async fn extend_lock(&self, token: &str, id: &str, lock: &str) -> reqwest::Response {
        self.authed(Method::POST, &format!("/api/v1/library/{id}/lock/extend"), token)
            .header("x-lock-token", lock)
            .send()
            .await
            .expect("request sent")
    }

    /// `DELETE /api/v1/library/{id}/lock`.
    pub async fn unlock_item(&self, token: &str, id: &str, lock: &str) -> reqwest::Response {
        self.authed(Method::DELETE, &format!("/api/v1/library/{id}/lock"), token)
            .header("x-lock-token", lock)
            .send()
            .await
            .expect("request sent")
    }

    /// `GET /api/v1/admin/cache`, as a map namespace -> counters.
    pub async fn cache_stats(&self, admin_token: &str) -> Value {
        let resp = self.authed(Method::GET, "/api/v1/admin/cache", admin_token).send().await.expect("request sent");
        assert_eq!(resp.status(), 200, "cache stats");
        let list: Vec<Value> = resp.json().await.expect("json");
        list.into_iter().map(|ns| (ns["namespace"].as_str().expect("namespace").to_owned(), ns)).collect()
    }

    /// A counter from `/metrics` (the sum over matching series).
    pub async fn metric(&self, name: &str, labels: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}
