//! Errors: [`SimError`] for the library API, [`ApiError`] for Salesforce-shaped HTTP answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error from the simulator's Rust API (admin operations, startup).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// No org matches the given id or name.
    #[error("unknown org: {0}")]
    UnknownOrg(String),
    /// No object with that name in the org's schema.
    #[error("unknown object: {0}")]
    UnknownObject(String),
    /// A request or spec that cannot be applied.
    #[error("invalid: {0}")]
    Invalid(String),
    /// An error Salesforce itself would return.
    #[error("{0}")]
    Api(#[from] ApiError),
    /// TLS or certificate setup failed.
    #[error("tls: {0}")]
    Tls(String),
    /// File or socket error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A config file that does not parse.
    #[error("config: {0}")]
    Config(String),
}

/// A Salesforce REST error: rendered as `[{"message":…,"errorCode":…,"fields":[…]}]`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Salesforce `errorCode`.
    pub code: String,
    /// Human message.
    pub message: String,
    /// Fields involved, if any.
    pub fields: Vec<String>,
}

impl ApiError {
    /// A new error with status, code and message.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into(), fields: Vec::new() }
    }
    /// 400 with the given code.
    pub fn bad(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    /// 404 NOT_FOUND.
    pub fn not_found() -> Self {
        Self::new(404, "NOT_FOUND", "The requested resource does not exist")
    }
    /// 401 INVALID_SESSION_ID.
    pub fn invalid_session() -> Self {
        Self::new(401, "INVALID_SESSION_ID", "Session expired or invalid")
    }
    /// Adds field names.
    pub fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }
    /// The JSON body Salesforce sends.
    pub fn body(&self) -> serde_json::Value {
        let mut e = serde_json::json!({"message": self.message, "errorCode": self.code});
        if !self.fields.is_empty() {
            e["fields"] = serde_json::json!(self.fields);
        }
        serde_json::json!([e])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, axum::Json(self.body())).into_response()
    }
}

/// An OAuth error: `{"error":…,"error_description":…}`.
#[derive(Debug, Clone)]
pub struct OAuthError {
    /// HTTP status.
    pub status: u16,
    /// `error`.
    pub error: &'static str,
    /// `error_description`.
    pub description: String,
}

impl OAuthError {
    /// A 400 OAuth error.
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self { status: 400, error, description: description.into() }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, axum::Json(serde_json::json!({"error": self.error, "error_description": self.description}))).into_response()
    }
}

impl ApiError {
    /// As an HTTP response with a plain body type.
    pub fn into_response_body(self) -> Response {
        self.into_response()
    }
}
