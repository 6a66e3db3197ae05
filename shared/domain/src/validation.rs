//! Field-level validation results shared by every domain constructor.
//!
//! Value types validate themselves and say *what* is wrong ([`Invalid`]); the aggregate that
//! holds them says *where* ([`FieldError::field`], a dotted path such as
//! `customer.document.number` or `items[2].quantity`), so an API client can point at the input.

use serde::Serialize;

/// Why a single value was refused: a stable machine code and a human sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub detail: String,
}

impl Invalid {
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    /// Attach the field path this value came from.
    pub fn at(self, field: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            code: self.code,
            detail: self.detail,
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.detail, self.code)
    }
}

impl std::error::Error for Invalid {}

/// A refused value with the path of the field that carried it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub detail: String,
}

/// Collects every field error of one input, so a client learns all of them in one round trip.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// Keep the value if valid; otherwise record the error under `field` and return `None`.
    pub fn check<T>(&mut self, field: impl Into<String>, result: Result<T, Invalid>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(invalid) => {
                self.0.push(invalid.at(field));
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    /// `Ok(())` when nothing was recorded.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() { Ok(()) } else { Err(self.0) }
    }
}

/// Echo a short input in a detail, cut so a huge or hostile value does not flood logs.
pub(crate) fn shown(raw: &str) -> String {
    const MAX: usize = 30;
    if raw.chars().count() <= MAX {
        format!("{raw:?}")
    } else {
        format!("{:?}…", raw.chars().take(MAX).collect::<String>())
    }
}
