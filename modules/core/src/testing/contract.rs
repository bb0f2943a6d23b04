//! One contract suite per port, run against every adapter.

/// Generates one `#[tokio::test]` per (adapter, contract test) pair.
///
/// A contract suite is a module of `pub async fn name(port: P)` functions; each adapter is an
/// `async fn() -> P` factory in scope. The memory adapter and the Redis adapter (on a real
/// `redis-server`) then run exactly the same assertions, so they cannot drift apart:
///
/// ```ignore
/// app_core::contract_tests! {
///     suite = contract,
///     adapters = { memory => memory_store, redis => redis_store },
///     tests = [get_returns_what_set_stored, values_expire],
/// }
/// ```
#[macro_export]
macro_rules! contract_tests {
    (suite = $suite:ident, adapters = { $($adapter:ident => $factory:ident),+ $(,)? }, tests = $tests:tt $(,)?) => {
        $( $crate::__contract_adapter!($adapter, $factory, $suite, $tests); )+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __contract_adapter {
    ($adapter:ident, $factory:ident, $suite:ident, [$($test:ident),+ $(,)?]) => {
        mod $adapter {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let port = super::$factory().await;
                    super::$suite::$test(port).await;
                }
            )+
        }
    };
}
