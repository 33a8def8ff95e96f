//! In-memory org data: records per object with an external-id index, value coercion and the
//! two-phase (prepare, commit) writes that give all-or-none semantics cheaply.

use crate::clock::{fmt_rest, parse_date, parse_datetime};
use crate::error::ApiError;
use crate::ids;
use crate::schema::{FieldDef, FieldType, ObjectDef};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use time::OffsetDateTime;

/// Field values of a record, keyed by canonical field name.
pub type Fields = Map<String, Value>;

/// A stored record.
#[derive(Debug, Clone)]
pub struct Record {
    /// 18-char id.
    pub id: String,
    /// Values by canonical field name (all fields of the object are present).
    pub fields: Fields,
    /// Soft-deleted (visible to `queryAll`).
    pub deleted: bool,
}

/// Global id sequence shared by all orgs, so ids are unique across the simulator.
#[derive(Debug)]
pub struct IdGen(AtomicU64);

impl IdGen {
    /// Starts at `start`.
    pub fn new(start: u64) -> Self {
        Self(AtomicU64::new(start))
    }
    /// The next 18-char id for a prefix.
    pub fn next(&self, prefix: &str, pod: &str) -> String {
        ids::make(prefix, pod, self.0.fetch_add(1, Ordering::Relaxed))
    }
    /// A fresh number.
    pub fn next_n(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// The records of one object.
#[derive(Debug, Default)]
pub struct Table {
    /// Records by id; ids are generated in ascending order, so this is creation order too.
    pub records: BTreeMap<String, Record>,
    /// External-id field (canonical) → lowercased value → ids.
    ext: HashMap<String, HashMap<String, Vec<String>>>,
}

/// A validated write, ready to commit.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// Insert these values.
    Insert(Fields),
    /// Update record `id` with these values.
    Update(String, Fields),
}

/// Text of a value for indexes and CSV.
pub fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

impl Table {
    fn ext_keys(obj: &ObjectDef, rec: &Record) -> Vec<Option<String>> {
        obj.fields
            .iter()
            .filter(|f| f.external_id || f.unique)
            .map(|f| rec.fields.get(&f.name).and_then(value_text).map(|v| v.to_lowercase()))
            .collect()
    }

    fn index_add(&mut self, obj: &ObjectDef, rec: &Record) {
        for f in obj.fields.iter().filter(|f| f.external_id || f.unique) {
            if let Some(v) = rec.fields.get(&f.name).and_then(value_text) {
                self.ext.entry(f.name.clone()).or_default().entry(v.to_lowercase()).or_default().push(rec.id.clone());
            }
        }
    }

    fn index_remove(&mut self, obj: &ObjectDef, rec: &Record) {
        for f in obj.fields.iter().filter(|f| f.external_id || f.unique) {
            if let Some(v) = rec.fields.get(&f.name).and_then(value_text)
                && let Some(m) = self.ext.get_mut(&f.name)
                && let Some(list) = m.get_mut(&v.to_lowercase())
            {
                list.retain(|i| i != &rec.id);
                if list.is_empty() {
                    m.remove(&v.to_lowercase());
                }
            }
        }
    }

    /// Live records whose external-id field equals `value` (case-insensitive).
    pub fn find_ext(&self, obj: &ObjectDef, field: &str, value: &str) -> Vec<String> {
        let Some(f) = obj.field(field) else { return Vec::new() };
        // Unique fields (Username) are indexed too, so lookups by them stay O(1).
        if f.external_id || f.unique {
            let key: std::borrow::Cow<'_, str> =
                if value.chars().any(char::is_uppercase) { value.to_lowercase().into() } else { value.into() };
            return self
                .ext
                .get(&f.name)
                .and_then(|m| m.get(key.as_ref()))
                .map(|v| v.iter().filter(|id| self.records.get(*id).is_some_and(|r| !r.deleted)).cloned().collect())
                .unwrap_or_default();
        }
        if f.name == "Id" {
            return ids::normalize(value).filter(|id| self.records.get(id).is_some_and(|r| !r.deleted)).into_iter().collect();
        }
        let lc = value.to_lowercase();
        self.records
            .values()
            .filter(|r| !r.deleted && r.fields.get(&f.name).and_then(value_text).is_some_and(|v| v.to_lowercase() == lc))
            .map(|r| r.id.clone())
            .collect()
    }

    /// A live record by id.
    pub fn get(&self, id: &str) -> Option<&Record> {
        self.records.get(id).filter(|r| !r.deleted)
    }

    /// Changes a record in place, maintaining the index; false if absent.
    pub fn modify(&mut self, obj: &ObjectDef, id: &str, f: impl FnOnce(&mut Record)) -> bool {
        let Some(rec) = self.records.get(id) else { return false };
        let before = Self::ext_keys(obj, rec);
        let Some(rec) = self.records.get_mut(id) else { return false };
        f(rec);
        let after = Self::ext_keys(obj, rec);
        let id = rec.id.clone();
        let ext_fields = obj.fields.iter().filter(|f| f.external_id || f.unique);
        for ((f, b), a) in ext_fields.zip(before).zip(after) {
            if b == a {
                continue;
            }
            let m = self.ext.entry(f.name.clone()).or_default();
            if let Some(b) = b
                && let Some(list) = m.get_mut(&b)
            {
                list.retain(|i| *i != id);
                if list.is_empty() {
                    m.remove(&b);
                }
            }
            if let Some(a) = a {
                m.entry(a).or_default().push(id.clone());
            }
        }
        true
    }

    /// Stores a record, maintaining the index.
    pub fn put(&mut self, obj: &ObjectDef, rec: Record) {
        if let Some(old) = self.records.remove(&rec.id) {
            self.index_remove(obj, &old);
        }
        self.index_add(obj, &rec);
        self.records.insert(rec.id.clone(), rec);
    }
}

/// Coerces one input value to the field's type (JSON from REST, strings from CSV).
pub fn coerce(obj: &ObjectDef, f: &FieldDef, v: &Value) -> Result<Value, ApiError> {
    let bad = |what: &str| {
        ApiError::bad("JSON_PARSER_ERROR", format!("Cannot deserialize instance of {what} from {v} value for {}.{}", obj.name, f.name))
            .with_fields(vec![f.name.clone()])
    };
    if v.is_null() || v.as_str() == Some("") || v.as_str() == Some("#N/A") {
        return Ok(if f.ftype == FieldType::Boolean { Value::Bool(false) } else { Value::Null });
    }
    Ok(match f.ftype {
        FieldType::Boolean => match v {
            Value::Bool(b) => Value::Bool(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") || s == "1" => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") || s == "0" => Value::Bool(false),
            _ => return Err(bad("boolean")),
        },
        FieldType::Int => match v {
            Value::Number(n) if n.is_i64() => v.clone(),
            Value::Number(n) => Value::from(n.as_f64().unwrap_or(0.0) as i64),
            Value::String(s) => Value::from(s.trim().parse::<i64>().map_err(|_| bad("int"))?),
            _ => return Err(bad("int")),
        },
        FieldType::Double | FieldType::Currency => match v {
            Value::Number(n) => Value::from(n.as_f64().unwrap_or(0.0)),
            Value::String(s) => Value::from(s.trim().parse::<f64>().map_err(|_| bad("double"))?),
            _ => return Err(bad("double")),
        },
        FieldType::Date => {
            let s = v.as_str().ok_or_else(|| bad("date"))?;
            let d = parse_date(s.get(..10).unwrap_or(s)).ok_or_else(|| bad("date"))?;
            Value::String(d.to_string())
        }
        FieldType::Datetime => {
            let s = v.as_str().ok_or_else(|| bad("datetime"))?;
            Value::String(fmt_rest(parse_datetime(s).ok_or_else(|| bad("datetime"))?))
        }
        FieldType::Id | FieldType::Reference => {
            let s = v.as_str().ok_or_else(|| bad("id"))?;
            let id = ids::normalize(s).ok_or_else(|| {
                ApiError::bad("MALFORMED_ID", format!("{}: id value of incorrect type: {s}", f.name)).with_fields(vec![f.name.clone()])
            })?;
            Value::String(id)
        }
        _ => match v {
            Value::String(s) => Value::String(s.clone()),
            Value::Number(_) | Value::Bool(_) => Value::String(v.to_string()),
            _ => return Err(bad("string")),
        },
    })
}

/// Validates input values for a write, returning canonical field values.
pub fn coerce_input(obj: &ObjectDef, input: &Map<String, Value>, is_insert: bool) -> Result<Fields, ApiError> {
    let mut out = Fields::new();
    for (k, v) in input {
        if k == "attributes" || k.eq_ignore_ascii_case("id") {
            continue;
        }
        let f = obj.field(k).ok_or_else(|| {
            ApiError::bad("INVALID_FIELD", format!("No such column '{k}' on sobject of type {}", obj.name)).with_fields(vec![k.clone()])
        })?;
        let allowed = if is_insert { f.createable } else { f.updateable };
        if !allowed {
            return Err(ApiError::bad(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!("Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", f.name),
            )
            .with_fields(vec![f.name.clone()]));
        }
        out.insert(f.name.clone(), coerce(obj, f, v)?);
    }
    Ok(out)
}

/// Fills derived fields (Name from first and last names).
fn derive(obj: &ObjectDef, fields: &mut Fields) {
    if matches!(obj.name.as_str(), "User" | "Contact" | "Lead") {
        let first = fields.get("FirstName").and_then(Value::as_str).unwrap_or("");
        let last = fields.get("LastName").and_then(Value::as_str).unwrap_or("");
        let name = format!("{first} {last}").trim().to_string();
        fields.insert("Name".into(), Value::String(name));
    }
}

/// Checks required fields of a full record.
pub fn check_required(obj: &ObjectDef, fields: &Fields) -> Result<(), ApiError> {
    let missing: Vec<String> =
        obj.fields.iter().filter(|f| f.required && fields.get(&f.name).is_none_or(Value::is_null)).map(|f| f.name.clone()).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::bad("REQUIRED_FIELD_MISSING", format!("Required fields are missing: [{}]", missing.join(", "))).with_fields(missing))
    }
}

/// Builds a complete new record from validated values.
pub fn new_record(obj: &ObjectDef, id: String, values: &Fields, now: OffsetDateTime, by: &str) -> Record {
    let mut fields = Fields::new();
    let by = if by.is_empty() { id.as_str() } else { by };
    let ts = Value::String(fmt_rest(now));
    for f in &obj.fields {
        let v = match f.name.as_str() {
            "Id" => Value::String(id.clone()),
            "IsDeleted" => Value::Bool(false),
            "CreatedDate" | "LastModifiedDate" | "SystemModstamp" => ts.clone(),
            "CreatedById" | "LastModifiedById" => Value::String(by.to_string()),
            "OwnerId" => values.get("OwnerId").cloned().unwrap_or_else(|| Value::String(by.to_string())),
            "IsActive" if obj.name == "User" => values.get("IsActive").cloned().unwrap_or(Value::Bool(true)),
            _ => values.get(&f.name).cloned().unwrap_or(if f.ftype == FieldType::Boolean { Value::Bool(false) } else { Value::Null }),
        };
        fields.insert(f.name.clone(), v);
    }
    derive(obj, &mut fields);
    Record { id, fields, deleted: false }
}

/// Applies validated values to an existing record, stamping the audit fields.
pub fn apply_update(obj: &ObjectDef, rec: &mut Record, values: &Fields, now: OffsetDateTime, by: &str) {
    for (k, v) in values {
        rec.fields.insert(k.clone(), v.clone());
    }
    let ts = Value::String(fmt_rest(now));
    rec.fields.insert("LastModifiedDate".into(), ts.clone());
    rec.fields.insert("SystemModstamp".into(), ts);
    rec.fields.insert("LastModifiedById".into(), Value::String(by.to_string()));
    derive(obj, &mut rec.fields);
}
