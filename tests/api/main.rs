//! Black-box tests of the whole app over HTTP, against a real `redis-server` (one per test
//! binary, plus private ones for outage tests) and a real database (SQLite, and PostgreSQL when
//! `TEST_DATABASE_URL` is set). Set `TEST_LOG=1` to see the app's logs.

mod architecture;
mod auth;
mod cli;
mod client;
mod connections;
mod di;
mod docker;
mod errors;
mod faults;
mod health;
mod hot_path;
mod jobs;
mod lanes;
mod library;
mod modules;
mod openapi;
mod rate_limit;
mod rate_limit_rules;
mod shutdown;
mod spa;
mod support;
