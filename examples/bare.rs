//! A bare poem hello-world with the same `/health/live` answer as the app: the baseline
//! `scripts/bench.sh` measures the app against (same poem, same tokio, same build profile).

use poem::{Route, Server, get, handler, listener::TcpListener, web::Json};

/// The same allocator as the app, so the comparison measures the app's own work.
#[global_allocator]
static GLOBAL: app::alloc::MiMalloc = app::alloc::MiMalloc;

#[handler]
fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").ok().and_then(|p| p.parse::<u16>().ok()).unwrap_or(3001);
    Server::new(TcpListener::bind(("127.0.0.1", port))).run(Route::new().at("/health/live", get(live))).await
}
