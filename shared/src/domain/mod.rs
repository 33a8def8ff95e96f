//! The records every function shares, with their store keys.

pub mod connection;
pub mod counts;
pub mod directory;
pub mod document;
pub mod export;
pub mod ids;
pub mod keys;
pub mod piped;
pub mod record;
pub mod report;
pub mod site;
pub mod sync;
pub mod workflow;

pub use connection::{Connection, ConnectionStatus, Environment};
pub use counts::{Counter, Counts};
pub use directory::{Contact, DirectoryUser, Group, GroupKind};
pub use document::Document;
pub use export::{ExportMapping, FieldSource};
pub use record::{Record, RecordError, Versioned};
pub use report::{RunKind, RunReport, RunStatus, TaskOutcome};
pub use site::Site;
pub use sync::{SyncJob, SyncKind};
pub use workflow::{Task, Workflow};
