//! What a module sees while it is built: its configuration, the containers and values of the
//! modules before it, and where its contributions go.

use std::{
    any::{Any, TypeId, type_name},
    collections::HashMap,
    sync::{Arc, OnceLock},
};

use shaku::ModuleBuilder;

use super::{Controller, Lifecycle, Migration, ModuleError};
use crate::{
    config::{Config, ConfigSection, Profile},
    metrics::Metrics,
    readiness::ReadinessCheck,
    versions::UserVersions,
};

/// Changes to containers' builders before they are built (tests override components), by the
/// container's type.
#[derive(Default)]
pub struct Customizers(HashMap<TypeId, Box<dyn Any + Send>>);

/// A change to one container's builder.
type Customize<M> = Box<dyn FnOnce(ModuleBuilder<M>) -> ModuleBuilder<M> + Send>;

impl Customizers {
    /// Applies `f` to the builder of container `M` (a shaku module) before it is built.
    pub fn add<M: shaku::Module>(
        &mut self,
        f: impl FnOnce(ModuleBuilder<M>) -> ModuleBuilder<M> + Send + 'static,
    ) -> &mut Self {
        let f: Customize<M> = Box::new(f);
        self.0.insert(TypeId::of::<M>(), Box::new(f));
        self
    }

    fn take<M: shaku::Module>(&mut self) -> Option<Customize<M>> {
        self.0.remove(&TypeId::of::<M>())?.downcast::<Customize<M>>().ok().map(|f| *f)
    }
}

impl std::fmt::Debug for Customizers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Customizers").field("count", &self.0.len()).finish()
    }
}

/// Contributions collected from every module, handed to a module that was built before them
/// (the health module's readiness checks come from modules built after it). Empty until the
/// whole app is built, which is before anything serves.
pub struct Collected<T>(Arc<OnceLock<Vec<T>>>);

impl<T> Clone for Collected<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Default for Collected<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T> Collected<T> {
    /// Everything collected (empty while the app is still being built).
    pub fn get(&self) -> &[T] {
        self.0.get().map_or(&[], Vec::as_slice)
    }

    pub(super) fn fill(&self, items: Vec<T>) {
        let _ = self.0.set(items);
    }
}

/// A change to the finalized spec (e.g. the job types a jobs module learnt at build time).
pub type SpecPatch = Box<dyn Fn(&mut serde_json::Value) + Send + Sync>;

/// The build context of one module.
pub struct Context {
    config: Arc<Config>,
    metrics: Metrics,
    migrations: Arc<[Migration]>,
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    customizers: Customizers,
    pub(super) controllers: Vec<Controller>,
    pub(super) readiness: Vec<Arc<dyn ReadinessCheck>>,
    pub(super) readiness_slot: Collected<Arc<dyn ReadinessCheck>>,
    pub(super) lifecycles: Vec<(&'static str, Arc<dyn Lifecycle>)>,
    pub(super) spec_patches: Vec<SpecPatch>,
    pub(super) module: &'static str,
}

impl Context {
    pub(super) fn new(
        config: Arc<Config>,
        metrics: Metrics,
        migrations: Arc<[Migration]>,
        customizers: Customizers,
    ) -> Self {
        let mut values: HashMap<TypeId, Arc<dyn Any + Send + Sync>> = HashMap::new();
        values.insert(TypeId::of::<UserVersions>(), Arc::new(UserVersions::default()));
        Self {
            config,
            metrics,
            migrations,
            values,
            customizers,
            controllers: Vec::new(),
            readiness: Vec::new(),
            readiness_slot: Collected::default(),
            lifecycles: Vec::new(),
            spec_patches: Vec::new(),
            module: "",
        }
    }

    pub(super) fn into_values(self) -> HashMap<TypeId, Arc<dyn Any + Send + Sync>> {
        self.values
    }

    /// The module's configuration section (or an imported module's).
    pub fn config<T: ConfigSection>(&self) -> &T {
        self.config.get()
    }

    /// The whole configuration.
    pub fn whole_config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The deployment profile.
    pub fn profile(&self) -> Profile {
        self.config.profile
    }

    /// The app's metrics registry, to register the module's metrics in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Users' versions (see [`crate::versions`]): a module that keeps copies of a user's shared
    /// state in process has them read with each request, to know when its copies went stale.
    pub fn versions(&self) -> Arc<UserVersions> {
        self.try_get::<UserVersions>().unwrap_or_default()
    }

    /// Every module's migrations, in version order (for the database module).
    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// Builds container `M` (a shaku module) from `builder`, after any customization a test
    /// asked for, and keeps it for the modules that import this one ([`get`](Self::get)).
    pub fn container<M: shaku::Module>(&mut self, builder: ModuleBuilder<M>) -> Arc<M> {
        let builder = match self.customizers.take::<M>() {
            Some(customize) => customize(builder),
            None => builder,
        };
        let built = Arc::new(builder.build());
        self.values.insert(TypeId::of::<M>(), built.clone());
        built
    }

    /// Provides `value` to the modules built after this one and to the composition root (a
    /// port implementation such as the session verifier).
    pub fn provide<T: Any + Send + Sync>(&mut self, value: T) -> Arc<T> {
        let value = Arc::new(value);
        self.values.insert(TypeId::of::<T>(), value.clone());
        value
    }

    /// A container or value a module built before this one made ([`container`](Self::container),
    /// [`provide`](Self::provide)).
    pub fn get<T: Any + Send + Sync>(&self) -> Result<Arc<T>, ModuleError> {
        self.try_get().ok_or_else(|| {
            ModuleError::new(format!(
                "needs `{}`, which no module built before it made: import the module that makes it",
                type_name::<T>()
            ))
        })
    }

    /// As [`get`](Self::get), when the value is optional.
    pub fn try_get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.values.get(&TypeId::of::<T>()).cloned().and_then(|v| v.downcast::<T>().ok())
    }

    /// Adds a controller (its routes, their spec and rate-limit rules).
    pub fn controller(&mut self, controller: Controller) {
        self.controllers.push(controller);
    }

    /// Adds a readiness check to `/health/ready`.
    pub fn readiness(&mut self, check: impl ReadinessCheck) {
        self.readiness.push(Arc::new(check));
    }

    /// Every module's readiness checks, once the app is built.
    pub fn readiness_checks(&self) -> Collected<Arc<dyn ReadinessCheck>> {
        self.readiness_slot.clone()
    }

    /// Adds the module's lifecycle hooks.
    pub fn lifecycle(&mut self, lifecycle: impl Lifecycle) {
        self.lifecycles.push((self.module, Arc::new(lifecycle)));
    }

    /// Changes the spec after it is composed and finalized.
    pub fn patch_spec(&mut self, patch: impl Fn(&mut serde_json::Value) + Send + Sync + 'static) {
        self.spec_patches.push(Box::new(patch));
    }
}
