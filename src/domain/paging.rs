//! Page sizes as the contract defines them: 0 means 50, above 500 means 500, negative is refused.

use super::error::ValidationError;

/// Page size when the caller gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page served.
pub const MAX_PAGE_SIZE: u32 = 500;

/// Turns a requested page size into the one served.
pub fn page_size(requested: i32) -> Result<u32, ValidationError> {
    match requested {
        n if n < 0 => Err(ValidationError::invalid(
            "page_size",
            "page_size must not be negative",
        )),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as u32).min(MAX_PAGE_SIZE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_follow_the_contract() {
        assert_eq!(page_size(0).unwrap(), 50);
        assert_eq!(page_size(1).unwrap(), 1);
        assert_eq!(page_size(500).unwrap(), 500);
        assert_eq!(page_size(501).unwrap(), 500);
        assert!(page_size(-1).is_err());
    }
}
