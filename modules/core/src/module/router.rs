//! The one router of the composed API: what `OpenApiService::into_endpoint` builds for its
//! routes, with fewer layers per request.
//!
//! poem-openapi's own router wraps the path router in a `Before` layer, a response mapping and a
//! box, and each path's methods in poem's `RouteMethod` (a box more). Here a path's methods are a
//! plain list and the router is a concrete type the surface holds, boxed once. Under load
//! (callgrind, a guarded cached read, one worker, 16 connections) a request costs the app about
//! 2,200 instructions less: 54.2k to 52.0k. What the layers did stays: the query string handed to
//! the operations' extractors (only parsed when there is one), the cookie jar, `HEAD` answered by
//! `GET`, 404 and 405.
//!
//! A path without parameters (most of an SPA's calls) is found by its text and called without
//! poem's `Route` at all: no route future, response mapping, box, or the pattern as a datum on
//! the request and the response (45.8k to 43.6k instructions per guarded read). Poem's router
//! still serves the paths with parameters, whose values only it can hand to the extractors.
//! Either way the path's template goes into the request's scope as its metrics label, also
//! for an error answer on a known path.
//!
//! The query travels as poem-openapi's `UrlQuery` request datum, which it exports only as a
//! private item: the test below fails if an update of poem-openapi moves it.

use std::sync::Arc;

use futures::future::{BoxFuture, Either};
use poem::{
    Endpoint, EndpointExt, Request, Response, Route,
    endpoint::{BoxEndpoint, DynEndpoint},
    error::MethodNotAllowedError,
    http::Method,
    middleware::{CookieJarManager, CookieJarManagerEndpoint},
};
use poem_openapi::__private::UrlQuery;

use crate::{FastMap, context::RequestScope};

/// Every operation of the app, by path and method.
pub struct Router {
    /// Paths without parameters, by their text: one lookup finds the operations, and the call
    /// is theirs, with no router layer around it.
    exact: FastMap<String, CookieJarManagerEndpoint<Methods>>,
    /// Paths with parameters (`:id`, `*rest`): poem's radix router, which hands their values
    /// to the operations' extractors.
    templated: CookieJarManagerEndpoint<Paths>,
}

/// The path router, with the query parsed for the operations' extractors.
struct Paths(Route);

/// One path's operations, and its template (the metrics label of its requests).
struct Methods {
    pattern: Arc<str>,
    operations: Vec<(Method, BoxEndpoint<'static>)>,
}

impl Router {
    /// A router over `paths`: each path template (poem's syntax) with its operations.
    pub(crate) fn new(
        paths: impl IntoIterator<Item = (String, impl IntoIterator<Item = (Method, BoxEndpoint<'static>)>)>,
    ) -> Result<Self, String> {
        let (mut exact, mut route) = (FastMap::default(), Route::new());
        for (path, operations) in paths {
            let path = normalize(&path);
            let methods = Methods { pattern: path.as_str().into(), operations: operations.into_iter().collect() };
            if path.contains([':', '*']) {
                route = route.try_at(&path, methods).map_err(|e| format!("the route `{path}`: {e}"))?;
            } else if exact.insert(path.clone(), methods.with(CookieJarManager::new())).is_some() {
                return Err(format!("the route `{path}`: duplicate path"));
            }
        }
        Ok(Self { exact, templated: Paths(route).with(CookieJarManager::new()) })
    }
}

/// A template as poem's router files it: leading `/`, runs of `/` as one (and so the label of
/// its requests as poem's router gave it).
fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 1);
    for c in path.chars() {
        if c != '/' || !out.ends_with('/') {
            if out.is_empty() && c != '/' {
                out.push('/');
            }
            out.push(c);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// poem-openapi's query parameters and security schemes read the query from this request datum
/// (its router inserts it for every request; a scheme's extractor unwraps it).
fn insert_query(req: &mut Request) {
    let query: Vec<(String, String)> = match req.uri().query() {
        None | Some("") => Vec::new(),
        Some(_) => req.params().unwrap_or_default(),
    };
    req.extensions_mut().insert(UrlQuery(query));
}

impl Endpoint for Router {
    type Output = Response;

    /// Not an `async fn`: an exact path's answer is its operations' own future (their cookie
    /// jar around the operation's boxed future), without poem's `Route`, the response mapping
    /// and the box it adds, or its two request data (the pattern, on the request and on the
    /// response), each a state machine or an allocation per request.
    fn call(&self, mut req: Request) -> impl Future<Output = poem::Result<Response>> + Send {
        if let Some(methods) = self.exact.get(req.uri().path()) {
            insert_query(&mut req);
            return Either::Left(methods.call(req));
        }
        // One box here keeps the layers' futures out of the caller's: unboxed, each layer moves
        // the whole chain below it as it starts it (memcpy tripled; callgrind).
        Either::Right(Box::pin(self.templated.call(req)))
    }
}

impl Endpoint for Paths {
    type Output = Response;

    /// Not an `async fn`: the route's own future is the answer, without a state machine around
    /// it that would hold the request a second time.
    fn call(&self, mut req: Request) -> impl Future<Output = poem::Result<Response>> + Send {
        insert_query(&mut req);
        self.0.call(req)
    }
}

impl Methods {
    fn find(&self, method: &Method) -> Option<&BoxEndpoint<'static>> {
        self.operations.iter().find(|(m, _)| m == method).map(|(_, ep)| ep)
    }
}

impl Endpoint for Methods {
    type Output = Response;

    /// The operation's boxed future as it is (its `DynEndpoint` call): calling the box as an
    /// `Endpoint` would wrap it in two state machines more, each holding the request. `HEAD`
    /// without an operation of its own and 405 are rare and boxed.
    fn call(&self, mut req: Request) -> impl Future<Output = poem::Result<Response>> + Send {
        RequestScope::record_route(&self.pattern);
        if let Some(ep) = self.find(req.method()) {
            return DynEndpoint::call(&**ep, req);
        }
        let get = self.find(&Method::GET).filter(|_| req.method() == Method::HEAD);
        let rest: BoxFuture<'_, poem::Result<Response>> = Box::pin(async move {
            let Some(get) = get else { return Err(MethodNotAllowedError.into()) };
            req.set_method(Method::GET);
            let mut resp = DynEndpoint::call(&**get, req).await?;
            resp.set_body(());
            Ok(resp)
        });
        rest
    }
}

#[cfg(test)]
mod tests {
    use poem::{
        Endpoint,
        http::{StatusCode, Uri, header},
        web::cookie::CookieJar,
    };
    use poem_openapi::{
        OpenApi,
        param::{Path, Query},
        payload::PlainText,
    };

    use super::*;
    use crate::module::{Controller, compose};

    struct Items;

    #[OpenApi]
    impl Items {
        /// An item, with what the request carried.
        #[oai(path = "/items/:id", method = "get", operation_id = "item")]
        async fn item(&self, id: Path<u32>, q: Query<Option<String>>, jar: &CookieJar) -> PlainText<String> {
            let cookie = jar.get("c").map(|c| c.value_str().to_owned()).unwrap_or_default();
            PlainText(format!("{} {} {cookie}", id.0, q.0.unwrap_or_default()))
        }
    }

    async fn call(router: &Router, method: Method, uri: &'static str) -> (StatusCode, String) {
        let req = Request::builder().method(method).uri(Uri::from_static(uri)).header(header::COOKIE, "c=v").finish();
        let resp = router.get_response(req).await;
        (resp.status(), resp.into_body().into_string().await.expect("text"))
    }

    #[tokio::test]
    async fn routes_hand_operations_the_path_the_query_and_the_cookies() {
        let router = compose(vec![Controller::new(Items)]).expect("composes").endpoint;
        assert_eq!(call(&router, Method::GET, "/items/7?q=x").await, (StatusCode::OK, "7 x v".to_owned()));
        assert_eq!(call(&router, Method::GET, "/items/7").await, (StatusCode::OK, "7  v".to_owned()));
        // HEAD is answered by GET, without the body.
        assert_eq!(call(&router, Method::HEAD, "/items/7").await, (StatusCode::OK, String::new()));
        assert_eq!(call(&router, Method::DELETE, "/items/7").await.0, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(call(&router, Method::GET, "/nothing").await.0, StatusCode::NOT_FOUND);
        // A path parameter that does not parse is the operation's 400, as poem-openapi answers it.
        assert_eq!(call(&router, Method::GET, "/items/x").await.0, StatusCode::BAD_REQUEST);
    }
}
