//! Why a request cannot be run: errors that name the field.

/// Why a request cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The text is not JSON at all.
    #[error("request is not valid JSON: {0}")]
    Json(String),
    /// The JSON does not fit LiveKit's schema; `field` is the path to the offending value.
    #[error("{field}: {reason}")]
    Schema {
        /// Path of the field, e.g. `advanced.width`.
        field: String,
        /// What the schema said.
        reason: String,
    },
    /// A field has a value that cannot be used.
    #[error("{field}: {reason}")]
    Invalid {
        /// Path of the field, e.g. `file_outputs[0].filepath`.
        field: String,
        /// Why the value is refused.
        reason: String,
    },
}

impl RequestError {
    /// An invalid-value error for `field`.
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        RequestError::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The field the error is about, where there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            RequestError::Json(_) => None,
            RequestError::Schema { field, .. } | RequestError::Invalid { field, .. } => Some(field),
        }
    }
}
