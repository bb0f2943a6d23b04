//! The one way to bind a DI component: [`component!`](crate::component).

/// Declares a shaku component: its interface, the components it injects from its container (or
/// the containers its container imports), its parameters, and the constructor that builds it.
///
/// ```ignore
/// app_core::component! {
///     /// The notes service over the repository and the cache.
///     pub NotesServiceComponent: dyn NotesService,
///     inject(repo: dyn NotesRepository, cache: CacheManager),
///     params(config: NotesConfig) => Box::new(NotesServiceImpl::new(repo, cache, config))
/// }
/// ```
///
/// Each injected name is an `Arc` of its interface; the parameters are set by the module's
/// `build` (`with_component_parameters::<NotesServiceComponent>(config)`) and default
/// otherwise; the constructor returns the boxed interface. A service keeps a plain `new`, so a
/// test can build it without a container.
#[macro_export]
macro_rules! component {
    (
        $(#[$doc:meta])*
        $vis:vis $name:ident: $iface:ty,
        inject($($dep:ident: $dty:ty),* $(,)?),
        params($p:ident: $pty:ty) => $body:expr $(,)?
    ) => {
        $(#[$doc])*
        $vis struct $name;

        impl<M: ::shaku::Module $(+ ::shaku::HasComponent<$dty>)*> ::shaku::Component<M> for $name {
            type Interface = $iface;
            type Parameters = $pty;

            #[allow(unused_variables)]
            fn build(ctx: &mut ::shaku::ModuleBuildContext<M>, $p: $pty) -> Box<$iface> {
                $(let $dep: ::std::sync::Arc<$dty> = <M as ::shaku::HasComponent<$dty>>::build_component(ctx);)*
                $body
            }
        }
    };
}
