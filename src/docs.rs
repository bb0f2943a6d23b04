//! Swagger UI at `/docs`, served as files of its own (the page, the bundle, its stylesheet, the
//! start-up script) so the page's Content-Security-Policy allows this server's assets only: no
//! inline script or style, no other origin, and no framing (`frame-ancestors 'none'`). The
//! spec itself is fetched from `/openapi.json`.

use bytes::Bytes;
use poem::{
    Response,
    http::{HeaderValue, header},
};
use poem_openapi::OpenApiService;

/// The page's policy: its own scripts, styles, fonts and the API; images may be inline data
/// (Swagger UI's icons); nothing may frame it.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   font-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>API documentation</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-init.js"></script>
</body>
</html>
"#;

const INIT: &str = "SwaggerUIBundle({ dom_id: '#ui', url: '/openapi.json', deepLinking: true, filter: false });\n";

/// Swagger UI's files, made once.
pub struct Docs {
    bundle: Bytes,
    css: Bytes,
}

/// One of the documentation's answers.
pub enum Asset {
    /// `/docs`.
    Page,
    /// `/docs/swagger-ui-bundle.js`.
    Bundle,
    /// `/docs/swagger-ui.css`.
    Css,
    /// `/docs/swagger-init.js`.
    Init,
}

impl Asset {
    /// The asset at `path`, if any.
    pub fn at(path: &str) -> Option<Self> {
        match path {
            "/docs" => Some(Self::Page),
            "/docs/swagger-ui-bundle.js" => Some(Self::Bundle),
            "/docs/swagger-ui.css" => Some(Self::Css),
            "/docs/swagger-init.js" => Some(Self::Init),
            _ => None,
        }
    }
}

/// The text between `open` and the next `close` in `html`.
fn between<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
    let start = html.find(open).map_or(html.len(), |i| i + open.len());
    let end = html[start..].find(close).map_or(html.len(), |i| start + i);
    &html[start..end]
}

impl Docs {
    /// Swagger UI's bundle and stylesheet, as poem-openapi ships them (it inlines both in one
    /// page; they are taken apart here, once, so each is a file of its own).
    pub fn new() -> Self {
        let html = OpenApiService::new((), "", "").swagger_ui_html();
        let css = between(&html, "<style charset=\"UTF-8\">", "</style>").to_owned();
        let bundle = between(&html, "<script charset=\"UTF-8\">", "</script>").to_owned();
        Self { bundle: bundle.into(), css: css.into() }
    }

    /// The answer for `asset`.
    pub fn answer(&self, asset: &Asset) -> Response {
        let (body, content_type, policy) = match asset {
            Asset::Page => (Bytes::from_static(PAGE.as_bytes()), "text/html; charset=utf-8", true),
            Asset::Bundle => (self.bundle.clone(), "text/javascript; charset=utf-8", false),
            Asset::Css => (self.css.clone(), "text/css; charset=utf-8", false),
            Asset::Init => (Bytes::from_static(INIT.as_bytes()), "text/javascript; charset=utf-8", false),
        };
        let mut resp = Response::builder().content_type(content_type).body(body);
        if policy {
            resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
            resp.headers_mut().insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
        resp
    }
}
