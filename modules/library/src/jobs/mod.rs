//! The library's job types, registered with the jobs module: `library.import` and
//! `library.export`.

mod export;
mod import;

pub use export::LibraryExport;
pub use import::{LibraryImport, MAX_IMPORT_ITEMS};
