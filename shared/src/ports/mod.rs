//! The ports every handler works through. Each has an AWS backend and an embedded one
//! (see [`crate::backends`]); the contract tests in `shared/tests/` hold both to the same behaviour.

pub mod backend_error;
pub mod clock;
pub mod item_size;
pub mod keyring;
pub mod mailer;
pub mod queue;
pub mod store;

pub use backend_error::{BackendError, BoxError, Chain};
pub use clock::{Clock, ManualClock, SystemClock};
pub use keyring::{KeyError, KeyRing, Sealed, Signature};
pub use mailer::{Email, MailError, Mailer};
pub use queue::{Message, Queue, QueueError, Receive};
pub use store::{Cond, Index, Item, Page, Query, Store, StoreError, WriteOp};
