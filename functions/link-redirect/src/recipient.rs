//! Who a link is for: a directory user, or a workflow contact of a list (someone a workflow
//! invited, e.g. a Salesforce Contact). The link's claims say which ([`LinkClaims::list`]).

use forcelink::domain::record::{RecordError, Versioned};
use forcelink::domain::{Contact, DirectoryUser};
use forcelink::links::LinkClaims;
use forcelink::ports::Store;

/// A link's recipient, as stored.
#[derive(Debug, Clone)]
pub enum Recipient {
    User(DirectoryUser),
    Contact(Contact),
}

impl Recipient {
    /// The recipient `claims` name on their site, if it exists.
    pub async fn load(store: &dyn Store, claims: &LinkClaims) -> Result<Option<Recipient>, RecordError> {
        Ok(match &claims.list {
            None => DirectoryUser::load(store, &claims.site, &claims.user).await?.map(|Versioned { record, .. }| Recipient::User(record)),
            Some(list) => {
                Contact::load(store, &claims.site, list, &claims.user).await?.map(|Versioned { record, .. }| Recipient::Contact(record))
            }
        })
    }

    /// Whether links for them still work: a deactivated directory user's do not; contacts have
    /// no such state.
    pub fn active(&self) -> bool {
        match self {
            Recipient::User(u) => u.active,
            Recipient::Contact(_) => true,
        }
    }

    /// The stored address: fresh links go there, never to one a request gives.
    pub fn email(&self) -> &str {
        match self {
            Recipient::User(u) => &u.email,
            Recipient::Contact(c) => &c.email,
        }
    }

    pub fn first_name(&self) -> &str {
        match self {
            Recipient::User(u) => &u.first_name,
            Recipient::Contact(c) => c.first_name(),
        }
    }

    pub fn last_name(&self) -> &str {
        match self {
            Recipient::User(u) => &u.last_name,
            Recipient::Contact(c) => c.last_name(),
        }
    }
}
