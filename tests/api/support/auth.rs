//! Client helpers for the auth and users routes.

use app_auth::AuthService;
use app_core::Role;
use app_users::{Email, UserName};
use reqwest::Method;
use serde_json::{Value, json};
use shaku::HasComponent;

use super::TestApp;

/// A registered account.
#[derive(Debug, Clone)]
pub struct Account {
    pub email: String,
    pub password: String,
    pub id: String,
}

/// A token pair from login or refresh.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub session_id: String,
}

impl Tokens {
    /// Reads a `TokenPair` body.
    pub fn from_json(body: &Value) -> Tokens {
        Tokens {
            access: body["accessToken"].as_str().expect("accessToken").to_owned(),
            refresh: body["refreshToken"].as_str().expect("refreshToken").to_owned(),
            session_id: body["sessionId"].as_str().expect("sessionId").to_owned(),
        }
    }
}

/// A fresh email address.
pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::now_v7().simple())
}

#[allow(dead_code)]
impl TestApp {
    /// `POST /api/v1/auth/register`.
    pub async fn register(&self, email: &str, password: &str, name: &str) -> reqwest::Response {
        self.post_json("/api/v1/auth/register", json!({"email": email, "password": password, "name": name})).await
    }

    /// `POST /api/v1/auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json("/api/v1/auth/login", json!({"email": email, "password": password})).await
    }

    /// `POST /api/v1/auth/refresh` with the token in the body.
    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post_json("/api/v1/auth/refresh", json!({"refreshToken": refresh_token})).await
    }

    /// `POST <path>` with a JSON body.
    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.request(Method::POST, path).json(&body).send().await.expect("request sent")
    }

    /// A request carrying `Authorization: Bearer <token>`.
    pub fn authed(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.request(method, path).bearer_auth(token)
    }

    /// `GET /api/v1/users/me`.
    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.authed(Method::GET, "/api/v1/users/me", token).send().await.expect("request sent")
    }

    /// Registers a fresh account over HTTP.
    pub async fn signed_up(&self) -> Account {
        let (email, password) = (unique_email(), "correct horse battery".to_owned());
        let resp = self.register(&email, &password, "Test User").await;
        assert_eq!(resp.status(), 201, "register");
        let body: Value = resp.json().await.expect("json");
        Account { email, password, id: body["id"].as_str().expect("id").to_owned() }
    }

    /// Logs an account in, expecting success.
    pub async fn logged_in(&self, account: &Account) -> Tokens {
        let resp = self.login(&account.email, &account.password).await;
        assert_eq!(resp.status(), 200, "login");
        Tokens::from_json(&resp.json().await.expect("json"))
    }

    /// A fresh account, logged in.
    pub async fn user(&self) -> (Account, Tokens) {
        let account = self.signed_up().await;
        let tokens = self.logged_in(&account).await;
        (account, tokens)
    }

    /// A fresh admin (created through the service, as `app user create --admin` does), logged in.
    pub async fn admin(&self) -> (Account, Tokens) {
        let (email, password) = (unique_email(), "admin password".to_owned());
        let container = self.container::<app_auth::AuthContainer>();
        let auth: &dyn AuthService = container.resolve_ref();
        let name = UserName::parse("Admin").expect("name");
        let user = auth.register(Email::normalize(&email), password.clone(), name, Role::Admin).await.expect("admin");
        let account = Account { email, password, id: user.id.to_string() };
        let tokens = self.logged_in(&account).await;
        (account, tokens)
    }
}
