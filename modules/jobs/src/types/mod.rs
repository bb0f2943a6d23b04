//! The built-in job types.

mod export;
mod import;

pub use export::LibraryExport;
pub use import::{LibraryImport, MAX_IMPORT_ITEMS};
