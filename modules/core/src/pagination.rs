//! The pagination contract of every list: `?page=1&pageSize=20`, 1-based, at most 100 per page.
//!
//! Out-of-range values are a 400 naming the parameter, never a silent clamp.

use crate::problem::{ApiError, FieldError};

/// Largest accepted `pageSize`.
pub const MAX_PAGE_SIZE: u64 = 100;
/// `pageSize` when the client sends none.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// Largest accepted `page`: far beyond any real list, small enough that `offset` never overflows.
pub const MAX_PAGE: u64 = 1_000_000;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    /// 1-based page number.
    pub page: u64,
    /// Items per page.
    pub page_size: u64,
}

impl Pagination {
    /// Validates the raw query values; both are optional.
    pub fn new(page: Option<u64>, page_size: Option<u64>) -> Result<Self, ApiError> {
        let page = page.unwrap_or(1);
        let page_size = page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        let mut errors = Vec::new();
        if !(1..=MAX_PAGE).contains(&page) {
            errors.push(FieldError::new("page", format!("must be between 1 and {MAX_PAGE}")));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            errors.push(FieldError::new("pageSize", format!("must be between 1 and {MAX_PAGE_SIZE}")));
        }
        if errors.is_empty() { Ok(Self { page, page_size }) } else { Err(ApiError::validation(errors)) }
    }

    /// Rows to skip (`OFFSET`).
    pub fn offset(&self) -> u64 {
        (self.page - 1) * self.page_size
    }

    /// Rows to return (`LIMIT`).
    pub fn limit(&self) -> u64 {
        self.page_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn defaults_and_offsets() {
        let p = Pagination::new(None, None).expect("defaults are valid");
        assert_eq!((p.page, p.page_size, p.offset()), (1, 20, 0));
        assert_eq!(Pagination::new(Some(3), Some(10)).expect("valid").offset(), 20);
    }

    #[test]
    fn out_of_range_values_are_refused_by_name() {
        let err = Pagination::new(Some(0), Some(101)).expect_err("both out of range");
        assert_eq!(err.code(), ErrorCode::VALIDATION_FAILED);
        let fields: Vec<_> = err.problem().errors.expect("errors").into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["page", "pageSize"]);
        assert!(Pagination::new(Some(u64::MAX), None).is_err());
    }
}
