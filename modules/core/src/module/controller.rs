//! Controllers from any module, combined into one API: one router, one spec.
//!
//! poem-openapi combines controllers by type (a tuple in one `OpenApiService`), which a list of
//! modules chosen at run time cannot name. So each module hands in a [`Controller`]: its routes,
//! the spec of its operations (poem-openapi's own document of that controller alone), and the
//! rate-limit rules its operations declare. [`compose`] merges the documents (a path, an
//! operation id or a differing schema defined twice is a start-up error) and puts every route in
//! one [`Router`].

use std::{collections::HashMap, marker::PhantomData};

use poem::{endpoint::BoxEndpoint, http::Method};
use poem_openapi::{OpenApi, OpenApiService, registry::MetaApi};
use serde_json::{Map, Value};

use super::Router;
use crate::throttle::ThrottleRule;

/// The routes of controllers, by path template and method (what `OpenApi::add_routes` fills).
type RouteTable = HashMap<String, HashMap<Method, BoxEndpoint<'static>>>;

/// A module's controller, ready to be combined with the others.
pub struct Controller {
    name: &'static str,
    spec: fn() -> String,
    routes: Box<dyn FnOnce(&mut RouteTable) + Send>,
    rules: &'static [&'static ThrottleRule],
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").field("name", &self.name).finish()
    }
}

/// `T`'s operations and schemas without its routes: what poem-openapi documents for `T` alone.
struct SpecOf<T>(PhantomData<T>);

impl<T: OpenApi> OpenApi for SpecOf<T> {
    fn meta() -> Vec<MetaApi> {
        T::meta()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        T::register(registry);
    }

    fn add_routes(self, _: &mut RouteTable) {}
}

impl Controller {
    /// A controller (a `#[OpenApi]` impl, or a tuple of them).
    pub fn new<T: OpenApi + Send + 'static>(api: T) -> Self {
        Self {
            name: std::any::type_name::<T>(),
            spec: || OpenApiService::new(SpecOf::<T>(PhantomData), "", "").spec(),
            routes: Box::new(move |table| api.add_routes(table)),
            rules: &[],
        }
    }

    /// The rate-limit rules its operations declare (with [`throttle_policy!`] and
    /// [`skip_throttle!`]); each must name one of its operations, or the app does not start.
    ///
    /// [`throttle_policy!`]: crate::throttle_policy
    /// [`skip_throttle!`]: crate::skip_throttle
    pub fn throttled(mut self, rules: &'static [&'static ThrottleRule]) -> Self {
        self.rules = rules;
        self
    }
}

/// Every controller as one API.
pub struct Composed {
    /// The merged document (before the finalizer).
    pub spec: Value,
    /// One router over every route.
    pub endpoint: Router,
    /// The rules every operation declares.
    pub rules: Vec<&'static ThrottleRule>,
}

/// Merges the controllers' documents and routes. The document's `info` and `servers` are the
/// caller's to set.
pub fn compose(controllers: Vec<Controller>) -> Result<Composed, String> {
    let mut spec = Value::Object(Map::new());
    let mut table = RouteTable::new();
    let mut rules = Vec::new();
    for controller in controllers {
        let part: Value = serde_json::from_str(&(controller.spec)())
            .map_err(|e| format!("{}: its spec is not JSON: {e}", controller.name))?;
        merge(&mut spec, part).map_err(|e| format!("{}: {e}", controller.name))?;
        (controller.routes)(&mut table);
        rules.extend_from_slice(controller.rules);
    }
    check_operation_ids(&spec)?;
    for rule in &rules {
        if !has_operation(&spec, rule.operation) {
            return Err(format!("a rate-limit rule names the operation `{}`, which no controller has", rule.operation));
        }
    }
    let endpoint = Router::new(table)?;
    Ok(Composed { spec, endpoint, rules })
}

/// Adds one controller's document to the merged one.
fn merge(into: &mut Value, part: Value) -> Result<(), String> {
    let Value::Object(part) = part else { return Err("its spec is not an object".into()) };
    let Some(into) = into.as_object_mut() else { return Err("the merged spec is not an object".into()) };
    for (key, value) in part {
        match key.as_str() {
            "paths" => {
                let paths = object(into, "paths");
                for (path, item) in value.as_object().into_iter().flatten() {
                    let methods = paths.entry(path.clone()).or_insert_with(|| Value::Object(Map::new()));
                    for (method, op) in item.as_object().into_iter().flatten() {
                        let methods = methods.as_object_mut().ok_or("a path item is not an object")?;
                        if methods.contains_key(method) {
                            return Err(format!("`{} {path}` is defined by two controllers", method.to_uppercase()));
                        }
                        methods.insert(method.clone(), op.clone());
                    }
                }
            }
            "components" => {
                let components = object(into, "components");
                for (kind, entries) in value.as_object().into_iter().flatten() {
                    let merged = components.entry(kind.clone()).or_insert_with(|| Value::Object(Map::new()));
                    let merged = merged.as_object_mut().ok_or("components are not an object")?;
                    for (name, entry) in entries.as_object().into_iter().flatten() {
                        match merged.get(name) {
                            Some(existing) if existing != entry => {
                                return Err(format!("`{kind}.{name}` is defined differently by two controllers"));
                            }
                            Some(_) => {}
                            None => {
                                merged.insert(name.clone(), entry.clone());
                            }
                        }
                    }
                }
            }
            "tags" => {
                let tags = into.entry("tags").or_insert_with(|| Value::Array(Vec::new()));
                let tags = tags.as_array_mut().ok_or("tags are not a list")?;
                for tag in value.as_array().into_iter().flatten() {
                    if !tags.iter().any(|t| t.get("name") == tag.get("name")) {
                        tags.push(tag.clone());
                    }
                }
                tags.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            }
            // `openapi`, `info`, `servers`: the same in every part; the caller sets its own.
            _ => {
                into.entry(key).or_insert(value);
            }
        }
    }
    Ok(())
}

fn object<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map.entry(key.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("made an object above")
}

fn operations(spec: &Value) -> impl Iterator<Item = &Value> {
    spec.get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|paths| paths.values().filter_map(Value::as_object).flat_map(|item| item.values()))
}

fn has_operation(spec: &Value, id: &str) -> bool {
    operations(spec).any(|op| op.get("operationId").and_then(Value::as_str) == Some(id))
}

fn check_operation_ids(spec: &Value) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for id in operations(spec).filter_map(|op| op.get("operationId").and_then(Value::as_str)) {
        if !seen.insert(id) {
            return Err(format!("the operation id `{id}` is used twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use poem::Endpoint;
    use poem_openapi::{OpenApi, payload::PlainText};

    use super::*;

    struct One;

    #[OpenApi]
    impl One {
        /// One
        #[oai(path = "/one", method = "get", operation_id = "one")]
        async fn one(&self) -> PlainText<&'static str> {
            PlainText("one")
        }
    }

    struct Two;

    #[OpenApi]
    impl Two {
        /// Two
        #[oai(path = "/one", method = "post", operation_id = "two")]
        async fn two(&self) -> PlainText<&'static str> {
            PlainText("two")
        }
    }

    struct Clash;

    #[OpenApi]
    impl Clash {
        /// Clash
        #[oai(path = "/one", method = "get", operation_id = "clash")]
        async fn clash(&self) -> PlainText<&'static str> {
            PlainText("clash")
        }
    }

    static GHOST: ThrottleRule = ThrottleRule::new("ghost", &["x"]);
    static GHOSTS: &[&ThrottleRule] = &[&GHOST];

    #[tokio::test]
    async fn controllers_of_two_modules_share_one_router_and_one_spec() {
        let composed = compose(vec![Controller::new(One), Controller::new(Two)]).expect("composes");
        let paths = &composed.spec["paths"]["/one"];
        assert_eq!(paths["get"]["operationId"], "one");
        assert_eq!(paths["post"]["operationId"], "two");
        let call = |method: Method| {
            let req = poem::Request::builder().method(method).uri(poem::http::Uri::from_static("/one")).finish();
            composed.endpoint.get_response(req)
        };
        assert_eq!(call(Method::GET).await.into_body().into_string().await.expect("text"), "one");
        assert_eq!(call(Method::POST).await.into_body().into_string().await.expect("text"), "two");
        assert_eq!(call(Method::PUT).await.status(), poem::http::StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn a_route_defined_twice_or_a_rule_for_no_operation_stops_the_app() {
        let err = compose(vec![Controller::new(One), Controller::new(Clash)]).err().expect("a clash");
        assert!(err.contains("`GET /one` is defined by two controllers"), "{err}");
        let err = compose(vec![Controller::new(One).throttled(GHOSTS)]).err().expect("an unknown operation");
        assert!(err.contains("`ghost`"), "{err}");
    }
}
