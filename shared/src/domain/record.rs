//! Typed records over the `Store`: every domain struct knows its keys and is stored as JSON.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::store::{Cond, Item, Query, Store, StoreError};

/// A domain struct with a place in the store.
pub trait Record: Serialize + DeserializeOwned {
    /// Partition key.
    fn pk(&self) -> String;
    /// Sort key.
    fn sk(&self) -> String;
    /// Secondary index entry, if the record is found by a global id.
    fn gsi1(&self) -> Option<(String, String)> {
        None
    }
    /// Expiry (epoch seconds), if the record is temporary.
    fn expires_at(&self) -> Option<i64> {
        None
    }

    /// The store item for this record.
    fn to_item(&self) -> Result<Item, RecordError> {
        let body = serde_json::to_string(self).map_err(RecordError::Encode)?;
        Ok(Item { pk: self.pk(), sk: self.sk(), gsi1: self.gsi1(), expires_at: self.expires_at(), version: 0, body })
    }
}

/// A record read back with its version, for conditional updates.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub record: T,
    pub version: u64,
}

/// Failures reading or writing records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored body that no longer parses as its type: reported, never silently skipped.
    #[error("record {pk}/{sk} does not parse: {source}")]
    Corrupt { pk: String, sk: String, source: serde_json::Error },
    #[error("record does not encode: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Parses a stored item as `T`.
pub fn decode<T: DeserializeOwned>(item: &Item) -> Result<T, RecordError> {
    serde_json::from_str(&item.body).map_err(|e| RecordError::Corrupt { pk: item.pk.clone(), sk: item.sk.clone(), source: e })
}

/// Reads a record.
pub async fn load<T: Record>(store: &dyn Store, pk: &str, sk: &str) -> Result<Option<Versioned<T>>, RecordError> {
    match store.get(pk, sk).await? {
        Some(item) => Ok(Some(Versioned { record: decode(&item)?, version: item.version })),
        None => Ok(None),
    }
}

/// Writes a record under a condition; returns its new version.
pub async fn save<T: Record>(store: &dyn Store, record: &T, cond: Cond) -> Result<u64, RecordError> {
    Ok(store.put(record.to_item()?, cond).await?)
}

/// Reads every record of a prefix query, following pages.
pub async fn list<T: Record>(store: &dyn Store, query: Query) -> Result<Vec<T>, RecordError> {
    all_items(store, query).await?.iter().map(decode).collect()
}

/// [`list`] with each record's version, for conditional writes after.
pub async fn list_versioned<T: Record>(store: &dyn Store, query: Query) -> Result<Vec<Versioned<T>>, RecordError> {
    all_items(store, query).await?.iter().map(|item| Ok(Versioned { record: decode(item)?, version: item.version })).collect()
}

/// Reads every item of a prefix query, following pages.
pub async fn all_items(store: &dyn Store, mut query: Query) -> Result<Vec<Item>, StoreError> {
    let mut out = Vec::new();
    loop {
        let page = store.query(&query).await?;
        out.extend(page.items);
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    #[test]
    fn a_corrupt_body_keeps_its_parse_error() {
        let item = Item::new("site#a", "x", "{not json");
        let e = decode::<serde_json::Value>(&item).unwrap_err();
        assert!(e.to_string().starts_with("record site#a/x does not parse: "), "{e}");
        let cause = e.source().and_then(|s| s.downcast_ref::<serde_json::Error>());
        assert!(cause.is_some_and(serde_json::Error::is_syntax), "{e:?}");
    }
}
