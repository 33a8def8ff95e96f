//! The file outbox `Mailer`: one RFC 5322 `.eml` file per message, for dev and tests.
//!
//! Files are written to a temporary name and renamed, so a reader never sees half a message.
//! Names sort by time: `<epoch ms>-<uuid>.eml`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::ports::mailer::{Email, MailError, Mailer};

/// Writes each email into a directory.
pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    /// An outbox in `dir` (created on first send).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The outbox directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `.eml` files in the outbox, oldest first.
    pub fn messages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        files.sort();
        Ok(files)
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        let message = email.to_message()?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let name = format!("{millis:015}-{id}.eml");
        let io = |e: std::io::Error| MailError::Transport(format!("outbox {}: {e}", self.dir.display()));
        tokio::fs::create_dir_all(&self.dir).await.map_err(io)?;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        tokio::fs::write(&tmp, message.formatted()).await.map_err(io)?;
        tokio::fs::rename(&tmp, self.dir.join(&name)).await.map_err(io)?;
        Ok(id)
    }
}
