//! The `Store` port on Amazon DynamoDB: one table, one global secondary index, native TTL.
//!
//! Table layout: `pk` (S, hash key), `sk` (S, range key), index `gsi1` on `gsi1pk`/`gsi1sk`
//! (S, all attributes projected), `ttl` (N, epoch seconds, DynamoDB's TTL attribute), `v`
//! (N, version) and `d` (S, the JSON body). Writes are `UpdateItem`s that `ADD v 1`, so the
//! version bumps atomically; DynamoDB deletes expired items lazily (up to days later), so every
//! read and every condition treats an item whose `ttl` has passed as absent.
//!
//! Items and transactions over DynamoDB's size limits are refused before any call, counted as
//! [`crate::ports::item_size`] does, with the embedded store's error; DynamoDB's own refusal
//! of a size maps to the same [`StoreError::TooLarge`]. Query pages end at 1 MB as DynamoDB's do.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, ReturnValue, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TransactWriteItem, Update,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::ports::BackendError;
use crate::ports::item_size::attr::{BODY, GSI1PK, GSI1SK, PK, SK, TTL, VERSION};
use crate::ports::store::{
    Cond, Index, Item, MAX_ITEM_BYTES, MAX_PAGE_BYTES, MAX_TRANSACTION_BYTES, Page, Query, Store, StoreError, WriteOp, check_item,
    item_size, validate_transaction,
};

/// The name of the secondary index.
pub const GSI1: &str = "gsi1";
/// Most items a query page returns.
pub const MAX_PAGE: usize = 1000;

/// A [`Store`] on one DynamoDB table (see the module docs for its layout).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store on `table`, which must exist with the layout [`create_table`] makes.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }
}

/// Creates `table` with forcelink's layout: on-demand billing, index `gsi1`, TTL on `ttl`.
/// Waits until the table is active. A table that already exists is left as it is.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let build = |e: aws_smithy_types::error::operation::BuildError| StoreError::Backend(BackendError::new("request", e));
    let attr =
        |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().map_err(build);
    let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(build);
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key(GSI1PK, KeyType::Hash)?)
        .key_schema(key(GSI1SK, KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(build)?;
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(PK)?)
        .attribute_definitions(attr(SK)?)
        .attribute_definitions(attr(GSI1PK)?)
        .attribute_definitions(attr(GSI1SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(gsi)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
        Err(e) => return Err(backend(e)),
    }
    for _ in 0..120 {
        let described = client.describe_table().table_name(table).send().await.map_err(backend)?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let ttl = TimeToLiveSpecification::builder().attribute_name(TTL).enabled(true).build().map_err(build)?;
    client.update_time_to_live().table_name(table).time_to_live_specification(ttl).send().await.map_err(backend)?;
    Ok(())
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Any SDK error as `Backend`, with the full error chain (the bare `Display` says only
/// "service error"); a `ValidationException` as `Invalid`.
fn backend<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if e.code() == Some("ValidationException") {
        return StoreError::Invalid(e.message().unwrap_or("validation error").to_string());
    }
    StoreError::Backend(BackendError::new("DynamoDB", e))
}

/// Whether DynamoDB's message refuses a size ("Item size has exceeded the maximum allowed
/// size", "Item size to update has exceeded …").
fn says_too_large(message: Option<&str>) -> bool {
    message.is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("size") && (m.contains("exceeded") || m.contains("larger than"))
    })
}

/// Maps a conditional write's error: a failed condition names the key; a refused size is
/// [`StoreError::TooLarge`], sized as [`item_size`] counts `item`.
fn write_err<E, R>(e: SdkError<E, R>, pk: &str, sk: &str, item: Option<&Item>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if e.code() == Some("ConditionalCheckFailedException") {
        return StoreError::ConditionFailed { pk: pk.to_string(), sk: sk.to_string() };
    }
    if let Some(item) = item
        && e.code() == Some("ValidationException")
        && says_too_large(e.message())
    {
        return StoreError::TooLarge { what: format!("item {pk}/{sk}"), size: item_size(item), limit: MAX_ITEM_BYTES };
    }
    backend(e)
}

/// Expression attribute names and values, collected as an expression is built.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_string());
        placeholder
    }

    fn value(&mut self, key: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{key}");
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }

    /// `item is live` (absent `ttl` or one still in the future).
    fn live(&mut self, now: i64) -> String {
        let ttl = self.name(TTL);
        let now = self.value("now", n(now));
        format!("(attribute_not_exists({ttl}) OR {ttl} > {now})")
    }

    /// The condition expression for `cond`, if any.
    fn condition(&mut self, cond: Cond, now: i64) -> Option<String> {
        match cond {
            Cond::Always => None,
            Cond::NotExists => {
                let pk = self.name(PK);
                let ttl = self.name(TTL);
                let now = self.value("now", n(now));
                Some(format!("attribute_not_exists({pk}) OR {ttl} <= {now}"))
            }
            Cond::Version(version) => {
                let v = self.name(VERSION);
                let expected = self.value("expected", n(version));
                Some(format!("{v} = {expected} AND {}", self.live(now)))
            }
            Cond::Exists => {
                let pk = self.name(PK);
                Some(format!("attribute_exists({pk}) AND {}", self.live(now)))
            }
        }
    }

    /// The update expression writing `item` (body, expiry, index entry) and bumping the version.
    fn put(&mut self, item: &Item) -> String {
        let mut set = vec![format!("{} = {}", self.name(BODY), self.value("d", s(&item.body)))];
        let mut remove = Vec::new();
        match item.expires_at {
            Some(t) => set.push(format!("{} = {}", self.name(TTL), self.value("ttl", n(t)))),
            None => remove.push(self.name(TTL)),
        }
        match &item.gsi1 {
            Some((gpk, gsk)) => {
                set.push(format!("{} = {}", self.name(GSI1PK), self.value("g1pk", s(gpk))));
                set.push(format!("{} = {}", self.name(GSI1SK), self.value("g1sk", s(gsk))));
            }
            None => {
                remove.push(self.name(GSI1PK));
                remove.push(self.name(GSI1SK));
            }
        }
        let mut expr = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        expr.push_str(&format!(" ADD {} {}", self.name(VERSION), self.value("one", n(1))));
        expr
    }
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

fn get_s<'a>(attrs: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    attrs.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n<T: std::str::FromStr>(attrs: &HashMap<String, AttributeValue>, name: &str) -> Result<Option<T>, StoreError> {
    match attrs.get(name) {
        None => Ok(None),
        Some(v) => {
            let text = v.as_n().map_err(|_| StoreError::Backend(BackendError::msg(format!("attribute {name} is not a number"))))?;
            text.parse().map(Some).map_err(|_| StoreError::Backend(BackendError::msg(format!("attribute {name} is not an integer"))))
        }
    }
}

/// Reads a stored item back.
fn item_from(attrs: &HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
    let missing = |name: &str| StoreError::Backend(BackendError::msg(format!("stored item lacks attribute {name}")));
    let pk = get_s(attrs, PK).ok_or_else(|| missing(PK))?;
    let sk = get_s(attrs, SK).ok_or_else(|| missing(SK))?;
    let gsi1 = match (get_s(attrs, GSI1PK), get_s(attrs, GSI1SK)) {
        (Some(a), Some(b)) => Some((a.to_string(), b.to_string())),
        _ => None,
    };
    Ok(Item {
        pk: pk.to_string(),
        sk: sk.to_string(),
        gsi1,
        expires_at: get_n(attrs, TTL)?,
        version: get_n(attrs, VERSION)?.unwrap_or(0),
        body: get_s(attrs, BODY).unwrap_or_default().to_string(),
    })
}

/// The page cursor: the `LastEvaluatedKey` (all string attributes) as base64url JSON.
fn encode_cursor(last: &HashMap<String, AttributeValue>) -> Result<String, StoreError> {
    let mut map = serde_json::Map::new();
    for (name, value) in last {
        let text = value.as_s().map_err(|_| StoreError::Backend(BackendError::msg(format!("non-string key attribute {name}"))))?;
        map.insert(name.clone(), serde_json::Value::String(text.clone()));
    }
    let json = serde_json::to_vec(&map).map_err(|e| StoreError::Backend(BackendError::new("cursor encoding", e)))?;
    Ok(B64.encode(json))
}

/// The `LastEvaluatedKey` DynamoDB would give after `item` on `index`.
fn key_of(item: &Item, index: Index) -> HashMap<String, AttributeValue> {
    let mut last = key(&item.pk, &item.sk);
    if let (Index::Gsi1, Some((gpk, gsk))) = (index, &item.gsi1) {
        last.insert(GSI1PK.to_string(), s(gpk));
        last.insert(GSI1SK.to_string(), s(gsk));
    }
    last
}

/// Decodes a cursor and checks that it belongs to `query` (right index, partition and prefix).
fn decode_cursor(cursor: &str, query: &Query) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let json = B64.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let map: HashMap<String, String> = serde_json::from_slice(&json).map_err(|_| StoreError::BadCursor)?;
    let (hash, range, names): (&str, &str, &[&str]) = match query.index {
        Index::Primary => (PK, SK, &[PK, SK]),
        Index::Gsi1 => (GSI1PK, GSI1SK, &[PK, SK, GSI1PK, GSI1SK]),
    };
    let fits = map.len() == names.len()
        && names.iter().all(|k| map.contains_key(*k))
        && map.get(hash).is_some_and(|v| *v == query.pk)
        && map.get(range).is_some_and(|v| v.starts_with(&query.prefix));
    if !fits {
        return Err(StoreError::BadCursor);
    }
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}

impl DynamoStore {
    fn transact_item(&self, op: &WriteOp, now: i64) -> Result<TransactWriteItem, StoreError> {
        let build = |e: aws_smithy_types::error::operation::BuildError| StoreError::Backend(BackendError::new("request", e));
        let mut expr = Expr::default();
        let item = match op {
            WriteOp::Put { item, cond } => {
                let update = expr.put(item);
                let condition = expr.condition(*cond, now);
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&item.pk, &item.sk)))
                    .update_expression(update)
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(expr.names())
                    .set_expression_attribute_values(expr.values())
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().update(update).build()
            }
            WriteOp::Delete { pk, sk, cond } => {
                let condition = expr.condition(*cond, now);
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk, sk)))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(expr.names())
                    .set_expression_attribute_values(expr.values())
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().delete(delete).build()
            }
            WriteOp::Check { pk, sk, cond } => {
                // A check needs a condition; `Always` holds for any item or none.
                let condition = expr.condition(*cond, now).unwrap_or_else(|| {
                    let pk = expr.name(PK);
                    format!("attribute_exists({pk}) OR attribute_not_exists({pk})")
                });
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk, sk)))
                    .condition_expression(condition)
                    .set_expression_attribute_names(expr.names())
                    .set_expression_attribute_values(expr.values())
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
        };
        Ok(item)
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        let Some(attrs) = out.item() else { return Ok(None) };
        let item = item_from(attrs)?;
        Ok((!item.is_expired(now_secs())).then_some(item))
    }

    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        let now = now_secs();
        let mut items = Vec::with_capacity(keys.len());
        let mut pending: Vec<HashMap<String, AttributeValue>> = keys.iter().map(|(pk, sk)| key(pk, sk)).collect();
        // DynamoDB may leave keys unprocessed (throttling, 16 MB a response): ask again for those.
        for _ in 0..10 {
            if pending.is_empty() {
                return Ok(items);
            }
            let build = |e: aws_smithy_types::error::operation::BuildError| StoreError::Backend(BackendError::new("request", e));
            let request = KeysAndAttributes::builder().set_keys(Some(pending)).consistent_read(true).build().map_err(build)?;
            let out = self.client.batch_get_item().request_items(&self.table, request).send().await.map_err(backend)?;
            for attrs in out.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                let item = item_from(attrs)?;
                if !item.is_expired(now) {
                    items.push(item);
                }
            }
            pending = out.unprocessed_keys().and_then(|u| u.get(&self.table)).map(|k| k.keys().to_vec()).unwrap_or_default();
        }
        // Still throttled: one key at a time.
        for attrs in pending {
            if let (Some(pk), Some(sk)) = (get_s(&attrs, PK), get_s(&attrs, SK)) {
                items.extend(self.get(pk, sk).await?);
            }
        }
        Ok(items)
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<u64, StoreError> {
        check_item(&item)?;
        let mut expr = Expr::default();
        let update = expr.put(&item);
        let condition = expr.condition(cond, now_secs());
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&item.pk, &item.sk)))
            .update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| write_err(e, &item.pk, &item.sk, Some(&item)))?;
        let attrs = out.attributes().ok_or_else(|| StoreError::Backend(BackendError::msg("update returned no attributes")))?;
        get_n(attrs, VERSION)?.ok_or_else(|| StoreError::Backend(BackendError::msg("update returned no version")))
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        let mut expr = Expr::default();
        let condition = expr.condition(cond, now_secs());
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .send()
            .await
            .map_err(|e| write_err(e, pk, sk, None))?;
        Ok(())
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let mut start = match &query.after {
            Some(cursor) => Some(decode_cursor(cursor, query)?),
            None => None,
        };
        let (hash, range, index) = match query.index {
            Index::Primary => (PK, SK, None),
            Index::Gsi1 => (GSI1PK, GSI1SK, Some(GSI1)),
        };
        let mut expr = Expr::default();
        let mut key_condition = format!("{} = {}", expr.name(hash), expr.value("pk", s(&query.pk)));
        if !query.prefix.is_empty() {
            // DynamoDB refuses an empty string in a key condition; no prefix means every item.
            let range = expr.name(range);
            let prefix = expr.value("prefix", s(&query.prefix));
            key_condition.push_str(&format!(" AND begins_with({range}, {prefix})"));
        }
        let filter = expr.live(now_secs());

        // `Limit` counts items read before the expiry filter, so fill the page over several
        // calls, each asking for no more than the page still lacks: the page never overshoots
        // and the last call's `LastEvaluatedKey` is the cursor. A page also ends at the item
        // that brings it to 1 MB, as the embedded store's do (the cursor is then that item's key).
        let mut items = Vec::with_capacity(limit.min(128));
        let mut bytes = 0;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression(&key_condition)
                .filter_expression(&filter)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .scan_index_forward(!query.reverse)
                .consistent_read(index.is_none())
                .limit((limit - items.len()) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
            let read = out.items();
            for (i, attrs) in read.iter().enumerate() {
                let item = item_from(attrs)?;
                bytes += item_size(&item);
                items.push(item);
                let more = i + 1 < read.len() || out.last_evaluated_key().is_some_and(|k| !k.is_empty());
                if bytes >= MAX_PAGE_BYTES && more {
                    let next = items.last().map(|l| encode_cursor(&key_of(l, query.index))).transpose()?;
                    return Ok(Page { items, next });
                }
            }
            match out.last_evaluated_key() {
                Some(last) if !last.is_empty() => {
                    if items.len() >= limit {
                        return Ok(Page { items, next: Some(encode_cursor(last)?) });
                    }
                    start = Some(last.clone());
                }
                _ => return Ok(Page { items, next: None }),
            }
        }
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        let now = now_secs();
        let items = ops.iter().map(|op| self.transact_item(op, now)).collect::<Result<Vec<_>, _>>()?;
        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let Err(e) = result else { return Ok(()) };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) = e.as_service_error() {
            let reasons = cancel.cancellation_reasons();
            // Reasons come one per operation, in order; "None" for those that were fine.
            if let Some(op) = reasons.iter().position(|r| r.code() == Some("ConditionalCheckFailed")).and_then(|i| ops.get(i)) {
                let (pk, sk) = op.key();
                return Err(StoreError::ConditionFailed { pk: pk.to_string(), sk: sk.to_string() });
            }
            if let Some(WriteOp::Put { item, .. }) =
                reasons.iter().position(|r| r.code() == Some("ValidationError") && says_too_large(r.message())).and_then(|i| ops.get(i))
            {
                let what = format!("item {}/{}", item.pk, item.sk);
                return Err(StoreError::TooLarge { what, size: item_size(item), limit: MAX_ITEM_BYTES });
            }
        }
        if e.code() == Some("ValidationException") && says_too_large(e.message()) {
            let size = ops.iter().map(WriteOp::size).sum();
            return Err(StoreError::TooLarge {
                what: format!("transaction of {} operations", ops.len()),
                size,
                limit: MAX_TRANSACTION_BYTES,
            });
        }
        Err(backend(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_roundtrip_and_binding() {
        let last = HashMap::from([(PK.to_string(), s("site#a")), (SK.to_string(), s("run#0005"))]);
        let cursor = encode_cursor(&last).expect("encode");
        let q = Query::prefix("site#a", "run#");
        assert_eq!(decode_cursor(&cursor, &q).expect("decode"), last);
        assert!(matches!(decode_cursor(&cursor, &Query::prefix("site#b", "run#")), Err(StoreError::BadCursor)));
        assert!(matches!(decode_cursor(&cursor, &Query::prefix("site#a", "job#")), Err(StoreError::BadCursor)));
        assert!(matches!(decode_cursor(&cursor, &q.clone().on_gsi1()), Err(StoreError::BadCursor)));
        assert!(matches!(decode_cursor("!!", &q), Err(StoreError::BadCursor)));
    }

    #[test]
    fn update_expression_sets_and_removes() {
        let mut expr = Expr::default();
        let text = expr.put(&Item::new("a", "b", "{}"));
        assert_eq!(text, "SET #d = :d REMOVE #ttl, #gsi1pk, #gsi1sk ADD #v :one");
        let mut expr = Expr::default();
        let text = expr.put(&Item::new("a", "b", "{}").with_gsi1("x", "y").with_expiry(5));
        assert_eq!(text, "SET #d = :d, #ttl = :ttl, #gsi1pk = :g1pk, #gsi1sk = :g1sk ADD #v :one");
    }
}
