//! The app's modules: resolved from a list (imports first, each once), then built in order.

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    sync::Arc,
};

use super::{Context, Controller, Customizers, Lifecycle, Migration, Module, ModuleError, context::SpecPatch};
use crate::{
    ErrorCode,
    config::{Config, LogConfig, Section, ServerConfig},
    metrics::Metrics,
};

/// The modules of an app, in build order: every module after the modules it imports.
#[derive(Default)]
pub struct ModuleSet {
    modules: Vec<Box<dyn Module>>,
}

impl std::fmt::Debug for ModuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.modules.iter().map(|m| m.name())).finish()
    }
}

impl ModuleSet {
    /// The modules of `roots` and everything they import. An import cycle is a programming
    /// error, reported with the modules on it.
    pub fn new(roots: Vec<Box<dyn Module>>) -> Self {
        let mut set = Self::default();
        for root in roots {
            set.add(root, &mut Vec::new());
        }
        set
    }

    /// This set with one more module (and what it imports).
    pub fn with(mut self, module: impl Module) -> Self {
        self.add(Box::new(module), &mut Vec::new());
        self
    }

    fn add(&mut self, module: Box<dyn Module>, path: &mut Vec<(TypeId, &'static str)>) {
        let id = module.id();
        if self.modules.iter().any(|m| m.id() == id) {
            return;
        }
        if path.iter().any(|(p, _)| *p == id) {
            let names: Vec<&str> = path.iter().map(|(_, n)| *n).chain([module.name()]).collect();
            panic!("modules import each other in a cycle: {}", names.join(" -> "));
        }
        path.push((id, module.name()));
        for import in module.imports() {
            self.add(import, path);
        }
        path.pop();
        self.modules.push(module);
    }

    /// The modules, in build order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Module> {
        self.modules.iter().map(AsRef::as_ref)
    }

    /// The configuration sections: the framework's (`server`, `log`), then each module's.
    pub fn sections(&self) -> Vec<Section> {
        let mut sections = vec![Section::of::<ServerConfig>(), Section::of::<LogConfig>()];
        for section in self.modules.iter().filter_map(|m| m.config()) {
            if !sections.iter().any(|s| s.key == section.key) {
                sections.push(section);
            }
        }
        sections
    }

    /// Every module's migrations, in version order; two with one version stop the app.
    pub fn migrations(&self) -> Result<Vec<Migration>, ModuleError> {
        let mut all: Vec<(&'static str, Migration)> =
            self.modules.iter().flat_map(|m| m.migrations().into_iter().map(|mig| (m.name(), mig))).collect();
        all.sort_by_key(|(_, m)| m.version);
        for pair in all.windows(2) {
            if pair[0].1.version == pair[1].1.version {
                return Err(ModuleError {
                    module: pair[1].0,
                    message: format!("its migration version {} is taken by `{}`", pair[1].1.version, pair[0].0),
                });
            }
        }
        Ok(all.into_iter().map(|(_, m)| m).collect())
    }

    /// The framework's error codes and every module's; a name declared twice with different
    /// meanings stops the app.
    pub fn error_codes(&self) -> Result<Vec<ErrorCode>, ModuleError> {
        let mut codes: Vec<ErrorCode> = ErrorCode::FRAMEWORK.to_vec();
        for module in &self.modules {
            for code in module.error_codes() {
                match codes.iter().find(|c| *c == code) {
                    Some(known) if known.description() != code.description() => {
                        return Err(ModuleError {
                            module: module.name(),
                            message: format!("its error code `{code}` is declared by another module too"),
                        });
                    }
                    Some(_) => {}
                    None => codes.push(*code),
                }
            }
        }
        Ok(codes)
    }

    /// Builds every module in order.
    pub async fn build(
        &self,
        config: Arc<Config>,
        metrics: Metrics,
        customizers: Customizers,
    ) -> Result<Built, ModuleError> {
        let migrations: Arc<[Migration]> = self.migrations()?.into();
        let error_codes = self.error_codes()?;
        let mut ctx = Context::new(config, metrics, migrations, customizers);
        for module in &self.modules {
            ctx.module = module.name();
            module.build(&mut ctx).await.map_err(|e| ModuleError { module: module.name(), message: e.message })?;
        }
        ctx.readiness_slot.fill(std::mem::take(&mut ctx.readiness));
        Ok(Built {
            controllers: std::mem::take(&mut ctx.controllers),
            lifecycles: std::mem::take(&mut ctx.lifecycles),
            spec_patches: std::mem::take(&mut ctx.spec_patches),
            error_codes,
            values: ctx.into_values(),
        })
    }
}

/// A built app: what the modules made and contributed.
pub struct Built {
    /// Every controller, in module order.
    pub controllers: Vec<Controller>,
    /// Every lifecycle, in build order, with its module's name.
    pub lifecycles: Vec<(&'static str, Arc<dyn Lifecycle>)>,
    /// Changes to the finalized spec.
    pub spec_patches: Vec<SpecPatch>,
    /// Every error code the app can answer.
    pub error_codes: Vec<ErrorCode>,
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built").field("controllers", &self.controllers.len()).finish()
    }
}

impl Built {
    /// A container or value a module made (tests resolve services from containers).
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.values.get(&TypeId::of::<T>()).cloned().and_then(|v| v.downcast::<T>().ok())
    }

    /// The values, for a handle that outlives the controllers (taken by the server).
    pub fn values(&self) -> Values {
        Values(Arc::new(self.values.clone()))
    }
}

/// What the modules made, kept after the app is built (tests resolve services through it).
#[derive(Clone)]
pub struct Values(Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Values").field("count", &self.0.len()).finish()
    }
}

impl Values {
    /// A container or value a module made.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0.get(&TypeId::of::<T>()).cloned().and_then(|v| v.downcast::<T>().ok())
    }
}
