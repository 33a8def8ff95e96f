//! [`BackendError`]: a backend's failure as the ports report it — what was being done, and
//! the SDK, SQLite, serde or I/O error that caused it, kept as the error's source.

use std::error::Error;
use std::fmt;

/// Any error a backend may wrap.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A backend failed: `context` says what it was doing, `source` (when there is one) why.
///
/// `Display` writes the context and then the source's [`Chain`]: reports and logs print only
/// `Display`, and an SDK error's own text is often just "service error".
#[derive(Debug)]
pub struct BackendError {
    context: String,
    source: Option<BoxError>,
}

impl BackendError {
    /// A failure caused by `source`.
    pub fn new(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self { context: context.into(), source: Some(source.into()) }
    }

    /// A failure with no underlying error (an answer missing a field, a poisoned lock…).
    pub fn msg(context: impl Into<String>) -> Self {
        Self { context: context.into(), source: None }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source() {
            Some(source) => write!(f, "{}: {}", self.context, Chain(source)),
            None => f.write_str(&self.context),
        }
    }
}

/// Displays an error and each of its causes, `: `-separated, skipping a cause whose text an
/// outer one already gave.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut written = self.0.to_string();
        f.write_str(&written)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            let text = e.to_string();
            if !written.contains(&text) {
                write!(f, ": {text}")?;
                written.push_str(&text);
            }
            cause = e.source();
        }
        Ok(())
    }
}

impl Error for BackendError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("service error")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn keeps_the_cause_and_prints_the_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let e = BackendError::new("put", Outer(io));
        assert_eq!(e.to_string(), "put: service error: connection reset");
        let cause = e.source().and_then(|s| s.downcast_ref::<Outer>());
        assert!(cause.is_some_and(|o| o.0.kind() == std::io::ErrorKind::ConnectionReset), "{e:?}");
    }

    #[test]
    fn skips_a_cause_already_said() {
        let e = BackendError::new("insert", Box::<dyn Error + Send + Sync>::from("database is locked"));
        assert_eq!(BackendError::new("x", e).to_string(), "x: insert: database is locked");
        assert_eq!(BackendError::msg("no version").to_string(), "no version");
        assert!(BackendError::msg("no version").source().is_none());
    }
}
