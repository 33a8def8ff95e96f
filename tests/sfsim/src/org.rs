//! Orgs: identity (production or sandbox, My Domain), schema, data, users' credentials,
//! installed client apps, API counters, faults and outbound rules; plus the specs used to create them.

use crate::error::ApiError;
use crate::faults::Faults;
use crate::outbound::{OutboundState, RuleSpec};
use crate::schema::{FieldDef, ObjectDef, ObjectSpec, custom_object, standard_objects};
use crate::store::{self, Fields, IdGen, Prepared, Record, Table};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use time::OffsetDateTime;

/// A client app (Connected App / External Client App) that orgs can install.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AppSpec {
    /// Consumer key.
    pub client_id: String,
    /// Consumer secret.
    pub client_secret: String,
    /// Allowed callback URLs (exact match; an entry ending in `*` matches by prefix, a sim extension).
    pub callback_urls: Vec<String>,
    /// PKCE required on the web server flow.
    pub pkce_required: bool,
    /// Refresh-token rotation.
    pub rotate_refresh_tokens: bool,
    /// Idle refresh-token expiry in seconds (None = never).
    pub refresh_idle_expiry_secs: Option<u64>,
    /// Client secret required on the web-server token call.
    pub require_secret: bool,
}

/// The client id of the app every simulated org has installed by default.
pub const DEFAULT_CLIENT_ID: &str = "3MVG9sfsim.DefaultConsumerKey.forcelink";
/// The client secret of that app.
pub const DEFAULT_CLIENT_SECRET: &str = "SFSIMSECRET0123456789";

impl Default for AppSpec {
    fn default() -> Self {
        Self {
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            callback_urls: vec![
                "http://localhost:*".into(),
                "http://127.0.0.1:*".into(),
                "https://localhost:*".into(),
                "https://127.0.0.1:*".into(),
            ],
            pkce_required: true,
            rotate_refresh_tokens: true,
            refresh_idle_expiry_secs: Some(30 * 86400),
            require_secret: true,
        }
    }
}

/// A user to seed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UserSpec {
    /// Login name (globally unique).
    pub username: String,
    /// Email (defaults to the username).
    pub email: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name (defaults to the username's local part).
    pub last_name: Option<String>,
    /// Password for password and SOAP logins (default `password`).
    pub password: Option<String>,
    /// Security token appended to the password in SOAP login (default `TOKEN`).
    pub security_token: Option<String>,
    /// Active (default true).
    pub is_active: Option<bool>,
    /// Title.
    pub title: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Manager's username.
    pub manager: Option<String>,
    /// Role name (created if missing).
    pub role: Option<String>,
    /// Parent role of a created role.
    pub parent_role: Option<String>,
    /// Any other fields, e.g. `{"isQstreamUser__c": true}`.
    pub fields: Map<String, Value>,
}

/// An org to create.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OrgSpec {
    /// Company name.
    pub name: String,
    /// My Domain name, e.g. `acme` (sandboxes: `acme--uat`).
    pub my_domain: String,
    /// Sandbox org.
    pub sandbox: bool,
    /// Daily API request limit.
    pub daily_api_limit: u64,
    /// Users to seed.
    pub users: Vec<UserSpec>,
    /// Client apps to register (if new) and install.
    pub apps: Vec<AppSpec>,
    /// Client ids of already registered apps to install.
    pub install_apps: Vec<String>,
    /// Extra custom objects.
    pub objects: Vec<ObjectSpec>,
    /// Extra fields on existing objects: object name → fields.
    pub fields: BTreeMap<String, Vec<FieldDef>>,
    /// Outbound message rules.
    pub outbound_rules: Vec<RuleSpec>,
    /// Records to seed: object → list of field maps.
    pub records: BTreeMap<String, Vec<Map<String, Value>>>,
    /// Initial faults.
    pub faults: Faults,
}

impl Default for OrgSpec {
    fn default() -> Self {
        Self {
            name: "Acme".into(),
            my_domain: "acme".into(),
            sandbox: false,
            daily_api_limit: 100_000,
            users: Vec::new(),
            apps: Vec::new(),
            install_apps: Vec::new(),
            objects: Vec::new(),
            fields: BTreeMap::new(),
            outbound_rules: Vec::new(),
            records: BTreeMap::new(),
            faults: Faults::default(),
        }
    }
}

/// A user's login secrets.
#[derive(Debug, Clone)]
pub struct Creds {
    /// Password.
    pub password: String,
    /// Security token.
    pub security_token: String,
}

/// One simulated org.
#[derive(Debug)]
pub struct Org {
    /// 18-char org id.
    pub id: String,
    /// Company name.
    pub name: String,
    /// My Domain name.
    pub my_domain: String,
    /// Sandbox?
    pub sandbox: bool,
    /// 2-char pod used in generated ids.
    pub pod: &'static str,
    objects: Vec<ObjectDef>,
    obj_index: HashMap<String, usize>,
    tables: Vec<Table>,
    /// Credentials by user id.
    pub creds: HashMap<String, Creds>,
    /// Installed client ids.
    pub installed_apps: BTreeSet<String>,
    /// API requests counted against the daily limit.
    pub api_used: u64,
    /// Daily limit.
    pub api_max: u64,
    /// Calls by kind.
    pub calls: BTreeMap<String, u64>,
    /// Faults.
    pub faults: Faults,
    /// Outbound rules, queue and delivery log.
    pub outbound: OutboundState,
    /// The host the org moved to (an instance migration): token answers then carry
    /// `{base}/{host}` as `instance_url`, which serves the same REST API.
    pub moved_to: Option<String>,
    next_custom: u32,
}

/// Context of a write: time, acting user, id source.
pub struct WriteCtx<'a> {
    /// Now.
    pub now: OffsetDateTime,
    /// Acting user id (18).
    pub by: &'a str,
    /// Id generator.
    pub ids: &'a IdGen,
}

impl Org {
    /// A fresh org with the standard schema and no data.
    pub fn new(id: String, spec: &OrgSpec) -> Self {
        let mut o = Self {
            id,
            name: spec.name.clone(),
            my_domain: spec.my_domain.clone(),
            sandbox: spec.sandbox,
            pod: if spec.sandbox { "1k" } else { "5g" },
            objects: Vec::new(),
            obj_index: HashMap::new(),
            tables: Vec::new(),
            creds: HashMap::new(),
            installed_apps: BTreeSet::new(),
            api_used: 0,
            api_max: spec.daily_api_limit,
            calls: BTreeMap::new(),
            faults: spec.faults.clone(),
            outbound: OutboundState::default(),
            moved_to: None,
            next_custom: 2,
        };
        for obj in standard_objects() {
            o.add_object(obj);
        }
        o
    }

    fn add_object(&mut self, obj: ObjectDef) {
        let lc = obj.name.to_ascii_lowercase();
        if let Some(&i) = self.obj_index.get(&lc) {
            self.objects[i] = obj;
        } else {
            self.obj_index.insert(lc, self.objects.len());
            self.objects.push(obj);
            self.tables.push(Table::default());
        }
    }

    /// Declares a custom object (key prefix `a02`, `a03`, …).
    pub fn declare_object(&mut self, spec: &ObjectSpec) -> Result<(), ApiError> {
        if !spec.name.ends_with("__c") {
            return Err(ApiError::bad("INVALID_TYPE", format!("custom object names end in __c: {}", spec.name)));
        }
        if let Some(i) = self.obj_index.get(&spec.name.to_ascii_lowercase()).copied() {
            for f in &spec.fields {
                self.objects[i].add_field(f.clone());
            }
            return Ok(());
        }
        let prefix = format!("a{:02}", self.next_custom);
        self.next_custom += 1;
        self.add_object(custom_object(&spec.name, &prefix, spec.fields.clone()));
        Ok(())
    }

    /// Adds a field to an object.
    pub fn declare_field(&mut self, object: &str, f: FieldDef) -> Result<(), ApiError> {
        let i = self.index(object)?;
        if f.external_id {
            // Re-index existing records for the new external id.
            let obj = self.objects[i].clone();
            self.objects[i].add_field(f);
            let recs: Vec<Record> = self.tables[i].records.values().cloned().collect();
            let new_obj = self.objects[i].clone();
            let _ = obj;
            for r in recs {
                self.tables[i].put(&new_obj, r);
            }
        } else {
            self.objects[i].add_field(f);
        }
        Ok(())
    }

    fn index(&self, name: &str) -> Result<usize, ApiError> {
        let found = self.objects.iter().position(|o| o.name == name);
        found.or_else(|| self.objects.iter().position(|o| o.name.eq_ignore_ascii_case(name))).ok_or_else(|| {
            ApiError::new(404, "NOT_FOUND", format!("The requested resource does not exist: sObject type '{name}' is not supported."))
        })
    }

    /// An object by case-insensitive name.
    pub fn object(&self, name: &str) -> Result<&ObjectDef, ApiError> {
        Ok(&self.objects[self.index(name)?])
    }

    /// An object and its table.
    pub fn table(&self, name: &str) -> Result<(&ObjectDef, &Table), ApiError> {
        let i = self.index(name)?;
        Ok((&self.objects[i], &self.tables[i]))
    }

    /// All objects.
    pub fn objects(&self) -> &[ObjectDef] {
        &self.objects
    }

    /// The object whose key prefix starts this id.
    pub fn object_for_id(&self, id: &str) -> Option<&ObjectDef> {
        let p = id.get(..3)?;
        self.objects.iter().find(|o| o.key_prefix == p)
    }

    /// A live record of any object by id.
    pub fn find_record(&self, id: &str) -> Option<(&ObjectDef, &Record)> {
        let obj = self.object_for_id(id)?;
        let (_, t) = self.table(&obj.name).ok()?;
        Some((obj, t.get(id)?))
    }

    /// Validates an insert.
    pub fn prepare_insert(&self, object: &str, input: &Map<String, Value>) -> Result<Prepared, ApiError> {
        let obj = self.object(object)?;
        let values = store::coerce_input(obj, input, true)?;
        self.check_refs(obj, &values)?;
        store::check_required(obj, &values)?;
        if obj.name == "User"
            && let Some(u) = values.get("Username").and_then(Value::as_str)
            && self.user_by_username(u).is_some()
        {
            return Err(ApiError::bad("DUPLICATE_USERNAME", format!("Duplicate Username.<br>The username already exists in this or another Salesforce organization. Usernames must be unique across all Salesforce organizations. {u}")).with_fields(vec!["Username".into()]));
        }
        Ok(Prepared::Insert(values))
    }

    /// Validates an update of record `id`.
    pub fn prepare_update(&self, object: &str, id: &str, input: &Map<String, Value>) -> Result<Prepared, ApiError> {
        let (obj, t) = self.table(object)?;
        let id18 = crate::ids::normalize(id)
            .filter(|i| t.get(i).is_some())
            .ok_or_else(|| ApiError::new(404, "NOT_FOUND", "The requested resource does not exist"))?;
        let values = store::coerce_input(obj, input, false)?;
        self.check_refs(obj, &values)?;
        let nulled: Vec<String> =
            obj.fields.iter().filter(|f| f.required && values.get(&f.name).is_some_and(Value::is_null)).map(|f| f.name.clone()).collect();
        if !nulled.is_empty() {
            return Err(ApiError::bad("REQUIRED_FIELD_MISSING", format!("Required fields are missing: [{}]", nulled.join(", ")))
                .with_fields(nulled));
        }
        Ok(Prepared::Update(id18, values))
    }

    fn check_refs(&self, obj: &ObjectDef, values: &Fields) -> Result<(), ApiError> {
        for f in obj.fields.iter().filter(|f| f.reference_to.is_some()) {
            if let Some(Value::String(id)) = values.get(&f.name) {
                let ok = self.find_record(id).is_some_and(|(o, _)| Some(&o.name) == f.reference_to.as_ref());
                if !ok {
                    return Err(ApiError::bad("INVALID_CROSS_REFERENCE_KEY", format!("{}: id value of incorrect type: {id}", f.name))
                        .with_fields(vec![f.name.clone()]));
                }
            }
        }
        Ok(())
    }

    /// Commits a prepared write; returns the id and whether it was created.
    pub fn commit(&mut self, object: &str, p: Prepared, ctx: &WriteCtx<'_>) -> Result<(String, bool), ApiError> {
        let i = self.index(object)?;
        let (id, created) = match p {
            Prepared::Insert(values) => {
                let obj = &self.objects[i];
                let id = ctx.ids.next(&obj.key_prefix, self.pod);
                let rec = store::new_record(obj, id.clone(), &values, ctx.now, ctx.by);
                self.tables[i].put(obj, rec);
                (id, true)
            }
            Prepared::Update(id, values) => {
                let obj = &self.objects[i];
                if self.tables[i].get(&id).is_none() {
                    return Err(ApiError::not_found());
                }
                self.tables[i].modify(obj, &id, |rec| store::apply_update(obj, rec, &values, ctx.now, ctx.by));
                (id, false)
            }
        };
        let name = self.objects[i].name.clone();
        self.outbound.on_write(&name, &id, ctx);
        Ok((id, created))
    }

    /// Soft-deletes a record (users cannot be deleted).
    pub fn delete(&mut self, object: &str, id: &str, ctx: &WriteCtx<'_>) -> Result<(), ApiError> {
        let i = self.index(object)?;
        if self.objects[i].name == "User" {
            return Err(ApiError::bad("INVALID_CROSS_REFERENCE_KEY", "Users cannot be deleted; deactivate them instead"));
        }
        let id18 = crate::ids::normalize(id).ok_or_else(ApiError::not_found)?;
        let obj = &self.objects[i];
        let mut rec = self.tables[i].get(&id18).cloned().ok_or_else(|| ApiError::new(404, "ENTITY_IS_DELETED", "entity is deleted"))?;
        rec.deleted = true;
        rec.fields.insert("IsDeleted".into(), Value::Bool(true));
        let ts = Value::String(crate::clock::fmt_rest(ctx.now));
        rec.fields.insert("SystemModstamp".into(), ts.clone());
        rec.fields.insert("LastModifiedDate".into(), ts);
        self.tables[i].put(obj, rec);
        Ok(())
    }

    /// A user record by username (case-insensitive).
    pub fn user_by_username(&self, username: &str) -> Option<&Record> {
        let (obj, t) = self.table("User").ok()?;
        let ids = t.find_ext(obj, "Username", username);
        ids.first().and_then(|id| t.get(id))
    }

    /// Counts an API call of `kind`; `daily` says whether it counts against the daily limit.
    pub fn count(&mut self, kind: &str, daily: bool) {
        *self.calls.entry(kind.to_string()).or_default() += 1;
        if daily {
            self.api_used += 1;
        }
    }

    /// The effective daily limit (a fault cap lowers it).
    pub fn api_limit(&self) -> u64 {
        self.faults.request_limit.unwrap_or(self.api_max)
    }

    /// `api-usage=N/MAX`.
    pub fn limit_info(&self) -> String {
        format!("api-usage={}/{}", self.api_used, self.api_limit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn external_id_index_follows_updates_and_deletes() {
        let ids = IdGen::new(1);
        let mut o = Org::new(ids.next("00D", "5g"), &OrgSpec::default());
        let ctx = WriteCtx { now: OffsetDateTime::UNIX_EPOCH, by: "", ids: &ids };
        let m = |v: Value| v.as_object().cloned().unwrap_or_default();
        let p = o.prepare_insert("Learning_Result__c", &m(json!({"External_Id__c": "Key-1"}))).expect("prep");
        let (id, created) = o.commit("Learning_Result__c", p, &ctx).expect("commit");
        assert!(created && id.starts_with("a00"));
        let find = |o: &Org, k: &str| {
            let (obj, t) = o.table("Learning_Result__c").expect("t");
            t.find_ext(obj, "external_id__c", k)
        };
        assert_eq!(find(&o, "KEY-1"), vec![id.clone()]);
        let p = o.prepare_update("Learning_Result__c", &id, &m(json!({"External_Id__c": "key-2", "Score__c": 5}))).expect("prep");
        o.commit("Learning_Result__c", p, &ctx).expect("commit");
        assert!(find(&o, "key-1").is_empty());
        assert_eq!(find(&o, "Key-2"), vec![id.clone()]);
        o.delete("Learning_Result__c", &id, &ctx).expect("delete");
        assert!(find(&o, "key-2").is_empty());
        let e = o.prepare_insert("Contact", &m(json!({"Email": "x@y"}))).expect_err("required");
        assert_eq!(e.code, "REQUIRED_FIELD_MISSING");
        let e = o.prepare_insert("Contact", &m(json!({"LastName": "x", "Bogus": 1}))).expect_err("field");
        assert_eq!(e.code, "INVALID_FIELD");
        let e = o.prepare_insert("Contact", &m(json!({"LastName": "x", "CreatedDate": "2020-01-01T00:00:00Z"}))).expect_err("ro");
        assert_eq!(e.code, "INVALID_FIELD_FOR_INSERT_UPDATE");
        let e = o.prepare_insert("Contact", &m(json!({"LastName": "x", "AccountId": "001000000000000AAA"}))).expect_err("ref");
        assert_eq!(e.code, "INVALID_CROSS_REFERENCE_KEY");
    }
}
