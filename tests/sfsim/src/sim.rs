//! The simulator's shared state ([`Core`]): orgs, apps, tokens, cursors, bulk jobs, the clock and
//! RNG, and the admin operations that tests call directly or through `/_sim/…`.

use crate::bulk::Job;
use crate::clock::SimClock;
use crate::config::SimConfig;
use crate::error::{ApiError, SimError};
use crate::faults::Faults;
use crate::ids::{self, prefix};
use crate::org::{AppSpec, Org, OrgSpec, UserSpec, WriteCtx};
use crate::outbound::{self, Delivery, OutboundRule, OutboundSettings, Pending, RuleSpec};
use crate::schema::{FieldDef, ObjectSpec};
use crate::store::Fields;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

/// An issued access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// Org index.
    pub org: usize,
    /// User id.
    pub user: String,
    /// Client app, if issued through OAuth.
    pub client_id: Option<String>,
    /// Refresh family that produced it.
    pub family: Option<String>,
    /// Scope.
    pub scope: String,
    /// Issued (epoch ms).
    pub issued_ms: i64,
}

/// An issued refresh token.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// Org index.
    pub org: usize,
    /// User id.
    pub user: String,
    /// Client app.
    pub client_id: String,
    /// Family id (all rotations of one grant).
    pub family: String,
    /// Scope.
    pub scope: String,
    /// Superseded by rotation.
    pub rotated: bool,
    /// Revoked.
    pub revoked: bool,
    /// Last use (sim time) for idle expiry.
    pub last_used: time::OffsetDateTime,
    /// Last refresh (real time) for the in-flight window.
    pub last_refresh: Option<Instant>,
}

/// A pending authorization code.
#[derive(Debug, Clone)]
pub struct AuthCode {
    /// Org index.
    pub org: usize,
    /// User id.
    pub user: String,
    /// Client app.
    pub client_id: String,
    /// Redirect URI given at authorize.
    pub redirect_uri: String,
    /// PKCE challenge (S256).
    pub challenge: Option<String>,
    /// Scope.
    pub scope: String,
    /// Expiry (sim time).
    pub expires: time::OffsetDateTime,
}

/// A query cursor: pre-rendered records.
#[derive(Debug)]
pub struct Cursor {
    /// Org index.
    pub org: usize,
    /// Rendered records.
    pub rows: Vec<Box<[u8]>>,
    /// Created (sim time).
    pub created: time::OffsetDateTime,
    /// Page size fixed when the query ran.
    pub page: usize,
    /// Came from queryAll.
    pub all: bool,
}

/// Mutable state behind one lock.
#[derive(Debug)]
pub struct World {
    /// Orgs.
    pub orgs: Vec<Org>,
    /// Registered apps by client id.
    pub apps: BTreeMap<String, AppSpec>,
    /// Access tokens.
    pub tokens: HashMap<String, AccessToken>,
    /// Refresh tokens.
    pub refresh: HashMap<String, RefreshToken>,
    /// Authorization codes.
    pub codes: HashMap<String, AuthCode>,
    /// Query cursors.
    pub cursors: HashMap<String, Cursor>,
    /// Bulk jobs.
    pub jobs: HashMap<String, Job>,
    /// Seeded RNG.
    pub rng: StdRng,
    /// Auto-approve authorize requests with `login_hint`.
    pub auto_approve: bool,
    /// Query page size.
    pub page_size: usize,
    /// Outbound delivery sequence.
    pub delivery_seq: u64,
}

impl World {
    /// Finds an org by 15/18-char id, name or My Domain (case-insensitive).
    pub fn org_index(&self, key: &str) -> Result<usize, SimError> {
        let id18 = ids::normalize(key);
        self.orgs
            .iter()
            .position(|o| Some(&o.id) == id18.as_ref() || o.my_domain.eq_ignore_ascii_case(key) || o.name.eq_ignore_ascii_case(key))
            .ok_or_else(|| SimError::UnknownOrg(key.into()))
    }

    /// Finds a user by username across orgs: (org index, user id).
    pub fn user_by_username(&self, username: &str) -> Option<(usize, String)> {
        self.orgs.iter().enumerate().find_map(|(i, o)| o.user_by_username(username).map(|r| (i, r.id.clone())))
    }

    /// A random token of `n` chars from `[A-Za-z0-9]`.
    pub fn random_token(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n).map(|_| A[self.rng.random_range(0..A.len())] as char).collect()
    }

    /// Issues an access token `00D…!AQ…` for a user.
    pub fn issue_access(
        &mut self,
        org: usize,
        user: &str,
        client_id: Option<String>,
        family: Option<String>,
        scope: &str,
        now_ms: i64,
    ) -> String {
        let tail = self.random_token(96);
        let tok = format!("{}!AQ{}", ids::to15(&self.orgs[org].id), tail);
        self.tokens.insert(tok.clone(), AccessToken { org, user: user.into(), client_id, family, scope: scope.into(), issued_ms: now_ms });
        tok
    }
}

/// Public URLs of a running simulator.
#[derive(Debug, Clone, Serialize)]
pub struct Urls {
    /// `https://127.0.0.1:PORT`.
    pub https: String,
    /// `http://127.0.0.1:PORT`, if enabled.
    pub http: Option<String>,
    /// The CA certificate (PEM) clients must trust.
    pub ca_pem_path: std::path::PathBuf,
}

/// Summary of an org for tests and the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct OrgInfo {
    /// 18-char id.
    pub id: String,
    /// 15-char id.
    pub id15: String,
    /// Name.
    pub name: String,
    /// My Domain name.
    pub my_domain: String,
    /// Sandbox.
    pub sandbox: bool,
    /// Login base URL for this org's kind (production or sandbox login host).
    pub login_url: String,
    /// My Domain base URL.
    pub my_domain_url: String,
    /// Instance URL returned by logins.
    pub instance_url: String,
    /// Users.
    pub users: Vec<UserInfo>,
    /// Installed client ids.
    pub installed_apps: Vec<String>,
}

/// A user summary.
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    /// Id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
    /// Security token.
    pub security_token: String,
    /// Active.
    pub active: bool,
}

/// Users generator settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GenSpec {
    /// Number of users.
    pub count: usize,
    /// Depth of the manager tree (1 = everyone reports to nobody).
    pub depth: usize,
    /// Create one role per level, parented like the tree.
    pub roles: bool,
    /// Share of users with `isQstreamUser__c = true`.
    pub qstream_share: f64,
    /// Share of inactive users.
    pub inactive_share: f64,
    /// Extra custom fields to declare on User and fill (text gets `value-N`, booleans random).
    pub custom_fields: Vec<FieldDef>,
    /// Username domain.
    pub domain: String,
}

impl Default for GenSpec {
    fn default() -> Self {
        Self {
            count: 100,
            depth: 3,
            roles: true,
            qstream_share: 0.8,
            inactive_share: 0.05,
            custom_fields: Vec::new(),
            domain: "gen.example".into(),
        }
    }
}

/// The simulator core shared by the server tasks and the handle.
pub struct Core {
    /// Config it started with.
    pub config: SimConfig,
    /// Clock.
    pub clock: SimClock,
    /// Id source.
    pub ids: crate::store::IdGen,
    /// State.
    pub world: Mutex<World>,
    /// HTTP client for outbound messages.
    pub http: reqwest::Client,
    /// Pokes the outbound loop.
    pub outbound_wake: tokio::sync::Notify,
    pub(crate) urls: OnceLock<Urls>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("urls", &self.urls.get()).finish()
    }
}

impl Core {
    pub(crate) fn new(config: SimConfig, http: reqwest::Client) -> Self {
        let world = World {
            orgs: Vec::new(),
            apps: BTreeMap::new(),
            tokens: HashMap::new(),
            refresh: HashMap::new(),
            codes: HashMap::new(),
            cursors: HashMap::new(),
            jobs: HashMap::new(),
            rng: StdRng::seed_from_u64(config.seed),
            auto_approve: config.auto_approve,
            page_size: config.page_size.max(1),
            delivery_seq: 0,
        };
        Self {
            clock: SimClock::new(config.time_scale),
            ids: crate::store::IdGen::new(1_000_000 + config.seed % 1_000_000),
            world: Mutex::new(world),
            http,
            outbound_wake: tokio::sync::Notify::new(),
            urls: OnceLock::new(),
            config,
        }
    }

    /// Locks the state (a poisoned lock is recovered: state stays usable after a panic in a test).
    pub fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Base URLs and CA path.
    pub fn urls(&self) -> Urls {
        self.urls.get().cloned().unwrap_or(Urls { https: String::new(), http: None, ca_pem_path: Default::default() })
    }

    /// The instance URL every login returns.
    pub fn instance_url(&self) -> String {
        self.urls().https
    }

    fn org_info(&self, w: &World, i: usize) -> OrgInfo {
        let o = &w.orgs[i];
        let base = self.urls().https;
        let users = o
            .table("User")
            .map(|(_, t)| {
                t.records
                    .values()
                    .map(|r| {
                        let c = o.creds.get(&r.id);
                        UserInfo {
                            id: r.id.clone(),
                            username: r.fields.get("Username").and_then(Value::as_str).unwrap_or("").into(),
                            password: c.map(|c| c.password.clone()).unwrap_or_default(),
                            security_token: c.map(|c| c.security_token.clone()).unwrap_or_default(),
                            active: r.fields.get("IsActive").and_then(Value::as_bool).unwrap_or(false),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        OrgInfo {
            id: o.id.clone(),
            id15: ids::to15(&o.id).into(),
            name: o.name.clone(),
            my_domain: o.my_domain.clone(),
            sandbox: o.sandbox,
            login_url: if o.sandbox { format!("{base}/test.salesforce.com") } else { base.clone() },
            my_domain_url: format!("{base}/{}", my_domain_host(&o.my_domain, o.sandbox)),
            instance_url: base,
            users,
            installed_apps: o.installed_apps.iter().cloned().collect(),
        }
    }

    /// All orgs.
    pub fn orgs(&self) -> Vec<OrgInfo> {
        let w = self.lock();
        (0..w.orgs.len()).map(|i| self.org_info(&w, i)).collect()
    }

    /// One org by id, name or My Domain.
    pub fn org(&self, key: &str) -> Result<OrgInfo, SimError> {
        let w = self.lock();
        let i = w.org_index(key)?;
        Ok(self.org_info(&w, i))
    }

    /// Registers (or replaces) a client app.
    pub fn register_app(&self, app: AppSpec) {
        self.lock().apps.insert(app.client_id.clone(), app);
    }

    /// Installs a registered app in an org.
    pub fn install_app(&self, org: &str, client_id: &str) -> Result<(), SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        if !w.apps.contains_key(client_id) {
            return Err(SimError::Invalid(format!("unknown client id {client_id}")));
        }
        w.orgs[i].installed_apps.insert(client_id.into());
        Ok(())
    }

    /// Uninstalls an app from an org (its refresh tokens then answer "app must be installed into org").
    pub fn uninstall_app(&self, org: &str, client_id: &str) -> Result<(), SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        w.orgs[i].installed_apps.remove(client_id);
        Ok(())
    }

    /// Refreshes a sandbox: the org gets a new id under the same My Domain, and every token
    /// issued for it is gone (refreshes answer `expired access/refresh token`). Answers the new id.
    pub fn refresh_sandbox(&self, org: &str) -> Result<String, SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        let id = self.ids.next(prefix::ORG, w.orgs[i].pod);
        w.orgs[i].id = id.clone();
        for r in w.refresh.values_mut().filter(|r| r.org == i) {
            r.revoked = true;
        }
        w.tokens.retain(|_, t| t.org != i);
        Ok(id)
    }

    /// Moves the org to another instance host (e.g. `acme2.my.salesforce.com`, an instance
    /// migration): later token answers name it as `instance_url`; the REST API answers there too.
    pub fn move_instance(&self, org: &str, host: &str) -> Result<(), SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        w.orgs[i].moved_to = Some(host.into());
        Ok(())
    }

    /// Creates an org from a spec.
    pub fn create_org(&self, spec: OrgSpec) -> Result<OrgInfo, SimError> {
        let i = {
            let mut w = self.lock();
            if w.orgs.iter().any(|o| o.my_domain.eq_ignore_ascii_case(&spec.my_domain)) {
                return Err(SimError::Invalid(format!("My Domain {} already exists", spec.my_domain)));
            }
            let pod = if spec.sandbox { "1k" } else { "5g" };
            let id = self.ids.next(prefix::ORG, pod);
            let mut org = Org::new(id, &spec);
            for o in &spec.objects {
                org.declare_object(o)?;
            }
            for (obj, fields) in &spec.fields {
                for f in fields {
                    org.declare_field(obj, f.clone())?;
                }
            }
            for app in &spec.apps {
                w.apps.entry(app.client_id.clone()).or_insert_with(|| app.clone());
                org.installed_apps.insert(app.client_id.clone());
            }
            for c in &spec.install_apps {
                org.installed_apps.insert(c.clone());
            }
            w.orgs.push(org);
            w.orgs.len() - 1
        };
        let key = self.lock().orgs[i].id.clone();
        self.add_users(&key, spec.users.clone())?;
        for r in &spec.outbound_rules {
            self.add_outbound_rule(&key, r.clone())?;
        }
        for (obj, recs) in &spec.records {
            self.insert_records(&key, obj, recs.clone())?;
        }
        let w = self.lock();
        Ok(self.org_info(&w, i))
    }

    fn write_ctx_user(w: &World, i: usize) -> String {
        w.orgs[i].table("User").ok().and_then(|(_, t)| t.records.keys().next().cloned()).unwrap_or_default()
    }

    /// Adds users (roles created on demand, managers resolved by username); returns their ids.
    pub fn add_users(&self, org: &str, users: Vec<UserSpec>) -> Result<Vec<String>, SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        let now = self.clock.now();
        let mut out = Vec::new();
        for u in &users {
            if w.user_by_username(&u.username).is_some() {
                return Err(SimError::Invalid(format!("duplicate username {}", u.username)));
            }
            let by = Self::write_ctx_user(&w, i);
            let ctx = WriteCtx { now, by: &by, ids: &self.ids };
            let role_id = match &u.role {
                Some(role) => Some(ensure_role(&mut w.orgs[i], role, u.parent_role.as_deref(), &ctx)?),
                None => None,
            };
            let mut m: Map<String, Value> = u.fields.clone();
            let local = u.username.split('@').next().unwrap_or(&u.username).to_string();
            m.insert("Username".into(), Value::String(u.username.clone()));
            m.insert("Email".into(), Value::String(u.email.clone().unwrap_or_else(|| u.username.clone())));
            m.insert("LastName".into(), Value::String(u.last_name.clone().unwrap_or(local.clone())));
            m.insert("Alias".into(), Value::String(local.chars().take(8).collect()));
            m.insert("UserType".into(), Value::String("Standard".into()));
            m.insert("TimeZoneSidKey".into(), Value::String("America/Los_Angeles".into()));
            m.insert("LanguageLocaleKey".into(), Value::String("en_US".into()));
            m.insert("CompanyName".into(), Value::String(w.orgs[i].name.clone()));
            for (k, v) in [("FirstName", &u.first_name), ("Title", &u.title), ("Department", &u.department)] {
                if let Some(v) = v {
                    m.insert(k.into(), Value::String(v.clone()));
                }
            }
            m.insert("IsActive".into(), Value::Bool(u.is_active.unwrap_or(true)));
            if let Some(r) = role_id {
                m.insert("UserRoleId".into(), Value::String(r));
            }
            let p = w.orgs[i].prepare_insert("User", &m)?;
            let (id, _) = w.orgs[i].commit("User", p, &ctx)?;
            w.orgs[i].creds.insert(
                id.clone(),
                crate::org::Creds {
                    password: u.password.clone().unwrap_or_else(|| "password".into()),
                    security_token: u.security_token.clone().unwrap_or_else(|| "TOKEN".into()),
                },
            );
            out.push(id);
        }
        // managers after everyone exists
        for (u, id) in users.iter().zip(&out) {
            if let Some(mgr) = &u.manager {
                let Some((mi, mid)) = w.user_by_username(mgr) else {
                    return Err(SimError::Invalid(format!("unknown manager {mgr}")));
                };
                if mi != i {
                    return Err(SimError::Invalid(format!("manager {mgr} is in another org")));
                }
                let mut m = Map::new();
                m.insert("ManagerId".into(), Value::String(mid));
                let p = w.orgs[i].prepare_update("User", id, &m)?;
                let ctx = WriteCtx { now, by: id, ids: &self.ids };
                w.orgs[i].commit("User", p, &ctx)?;
            }
        }
        drop(w);
        self.outbound_wake.notify_one();
        Ok(out)
    }

    /// Generates `count` users with a manager tree of depth `depth` (seeded, repeatable).
    pub fn generate_users(&self, org: &str, spec: GenSpec) -> Result<Vec<String>, SimError> {
        let key = self.org(org)?.id;
        {
            let mut w = self.lock();
            let i = w.org_index(&key)?;
            for f in &spec.custom_fields {
                w.orgs[i].declare_field("User", f.clone())?;
            }
        }
        const FIRST: [&str; 12] = ["Ana", "Ben", "Chen", "Dana", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kofi", "Lena"];
        const LAST: [&str; 10] = ["Silva", "Okafor", "Nguyen", "Kowalski", "Haddad", "Tanaka", "Moreau", "Berg", "Rossi", "Diaz"];
        const DEPTS: [&str; 4] = ["Sales", "Support", "Marketing", "Engineering"];
        let depth = spec.depth.max(1);
        let n = spec.count;
        // level sizes grow geometrically: branching b with b^(depth-1) ~ n
        let b = if depth > 1 { (n as f64).powf(1.0 / (depth as f64 - 1.0)).max(2.0) } else { 1.0 };
        let mut levels: Vec<Vec<usize>> = vec![Vec::new(); depth];
        let mut users = Vec::with_capacity(n);
        let tag = self.ids.next_n();
        let mut w = self.lock();
        for k in 0..n {
            let level = if depth == 1 { 0 } else { ((k as f64 + 1.0).ln() / b.ln()).floor() as usize }.min(depth - 1);
            let level = if k == 0 { 0 } else { level.max(1) };
            levels[level].push(k);
            let manager = if level == 0 {
                None
            } else {
                let prev = &levels[level - 1];
                let pick = if prev.is_empty() { None } else { Some(prev[w.rng.random_range(0..prev.len())]) };
                pick.map(|m| format!("user{m}.{tag}@{}", spec.domain))
            };
            let mut fields = Map::new();
            let q: f64 = w.rng.random();
            fields.insert("isQstreamUser__c".into(), Value::Bool(q < spec.qstream_share));
            fields.insert("FederationIdentifier".into(), Value::String(format!("fed-{tag}-{k}")));
            for f in &spec.custom_fields {
                let v = match f.ftype {
                    crate::schema::FieldType::Boolean => Value::Bool(w.rng.random::<bool>()),
                    t if t.is_number() => Value::from(w.rng.random_range(0..100)),
                    _ => Value::String(format!("value-{}", k % 5)),
                };
                fields.insert(f.name.clone(), v);
            }
            let inactive: f64 = w.rng.random();
            users.push(UserSpec {
                username: format!("user{k}.{tag}@{}", spec.domain),
                first_name: Some(FIRST[k % FIRST.len()].into()),
                last_name: Some(format!("{}{}", LAST[(k / FIRST.len()) % LAST.len()], k)),
                title: Some(match level {
                    0 => "CEO".into(),
                    l if l + 1 == depth => "Representative".into(),
                    l => format!("Manager L{l}"),
                }),
                department: Some(DEPTS[k % DEPTS.len()].into()),
                manager,
                role: spec.roles.then(|| format!("Level {level}")),
                parent_role: (spec.roles && level > 0).then(|| format!("Level {}", level - 1)),
                is_active: Some(k == 0 || inactive >= spec.inactive_share),
                fields,
                ..UserSpec::default()
            });
        }
        drop(w);
        self.add_users(&key, users)
    }

    /// Inserts records through the same validation as the API; triggers outbound rules.
    pub fn insert_records(&self, org: &str, object: &str, records: Vec<Map<String, Value>>) -> Result<Vec<String>, SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        let by = Self::write_ctx_user(&w, i);
        let ctx = WriteCtx { now: self.clock.now(), by: &by, ids: &self.ids };
        let mut out = Vec::new();
        for r in &records {
            let p = w.orgs[i].prepare_insert(object, r)?;
            out.push(w.orgs[i].commit(object, p, &ctx)?.0);
        }
        drop(w);
        self.outbound_wake.notify_one();
        Ok(out)
    }

    /// Updates a record (as a user would in the UI); triggers outbound rules.
    pub fn update_record(&self, org: &str, object: &str, id: &str, values: Map<String, Value>) -> Result<(), SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        let by = Self::write_ctx_user(&w, i);
        let ctx = WriteCtx { now: self.clock.now(), by: &by, ids: &self.ids };
        let p = w.orgs[i].prepare_update(object, id, &values)?;
        w.orgs[i].commit(object, p, &ctx)?;
        drop(w);
        self.outbound_wake.notify_one();
        Ok(())
    }

    /// Deletes a record.
    pub fn delete_record(&self, org: &str, object: &str, id: &str) -> Result<(), SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        let by = Self::write_ctx_user(&w, i);
        let ctx = WriteCtx { now: self.clock.now(), by: &by, ids: &self.ids };
        Ok(w.orgs[i].delete(object, id, &ctx)?)
    }

    /// All records of an object (deleted ones too, flagged by `IsDeleted`).
    pub fn records(&self, org: &str, object: &str) -> Result<Vec<Fields>, SimError> {
        let w = self.lock();
        let i = w.org_index(org)?;
        let (_, t) = w.orgs[i].table(object).map_err(|_| SimError::UnknownObject(object.into()))?;
        Ok(t.records.values().map(|r| r.fields.clone()).collect())
    }

    /// One record by id (any object).
    pub fn record(&self, org: &str, id: &str) -> Result<Option<Fields>, SimError> {
        let w = self.lock();
        let i = w.org_index(org)?;
        let id18 = ids::normalize(id).unwrap_or_default();
        Ok(w.orgs[i]
            .object_for_id(&id18)
            .and_then(|o| w.orgs[i].table(&o.name).ok().and_then(|(_, t)| t.records.get(&id18)).map(|r| r.fields.clone())))
    }

    /// Declares a custom object.
    pub fn declare_object(&self, org: &str, spec: ObjectSpec) -> Result<(), SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        Ok(w.orgs[i].declare_object(&spec)?)
    }

    /// Declares a field on an object.
    pub fn declare_field(&self, org: &str, object: &str, field: FieldDef) -> Result<(), SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        Ok(w.orgs[i].declare_field(object, field)?)
    }

    /// API calls by kind, plus `api_used` and `api_limit`.
    pub fn calls(&self, org: &str) -> Result<BTreeMap<String, u64>, SimError> {
        let w = self.lock();
        let i = w.org_index(org)?;
        let o = &w.orgs[i];
        let mut m = o.calls.clone();
        m.insert("api_used".into(), o.api_used);
        m.insert("api_limit".into(), o.api_limit());
        Ok(m)
    }

    /// Resets call counters and the daily usage.
    pub fn reset_calls(&self, org: &str) -> Result<(), SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        w.orgs[i].calls.clear();
        w.orgs[i].api_used = 0;
        Ok(())
    }

    /// Replaces the org's faults.
    pub fn set_faults(&self, org: &str, faults: Faults) -> Result<(), SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        w.orgs[i].faults = faults;
        Ok(())
    }

    /// The org's faults.
    pub fn faults(&self, org: &str) -> Result<Faults, SimError> {
        let w = self.lock();
        let i = w.org_index(org)?;
        Ok(w.orgs[i].faults.clone())
    }

    /// Expires every access token of the org (refresh tokens stay valid).
    pub fn expire_sessions(&self, org: &str) -> Result<usize, SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        let before = w.tokens.len();
        w.tokens.retain(|_, t| t.org != i);
        Ok(before - w.tokens.len())
    }

    /// Revokes every refresh token of the org (as an admin would by uninstalling the app).
    pub fn revoke_refresh_tokens(&self, org: &str) -> Result<usize, SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        let mut n = 0;
        for r in w.refresh.values_mut().filter(|r| r.org == i && !r.revoked) {
            r.revoked = true;
            n += 1;
        }
        Ok(n)
    }

    /// Issues an access token for a user directly (no OAuth round trip).
    pub fn issue_token(&self, username: &str) -> Result<String, SimError> {
        let now = self.clock.now_ms();
        let mut w = self.lock();
        let (i, uid) = w.user_by_username(username).ok_or_else(|| SimError::Invalid(format!("unknown user {username}")))?;
        Ok(w.issue_access(i, &uid, None, None, "api", now))
    }

    /// Adds an outbound message rule; returns it with its `04k` id.
    pub fn add_outbound_rule(&self, org: &str, spec: RuleSpec) -> Result<OutboundRule, SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        let o = &mut w.orgs[i];
        let obj = o.object(&spec.object)?.name.clone();
        for f in &spec.fields {
            if o.object(&obj)?.field(f).is_none() {
                return Err(SimError::Invalid(format!("no field {f} on {obj}")));
            }
        }
        let rule = OutboundRule { id: self.ids.next(prefix::OUTBOUND_ACTION, o.pod), spec: RuleSpec { object: obj, ..spec }, active: true };
        o.outbound.rules.push(rule.clone());
        Ok(rule)
    }

    /// Removes all outbound rules (queued notifications of removed rules are dropped).
    pub fn clear_outbound_rules(&self, org: &str) -> Result<(), SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        w.orgs[i].outbound.rules.clear();
        w.orgs[i].outbound.queue.clear();
        Ok(())
    }

    /// Outbound rules.
    pub fn outbound_rules(&self, org: &str) -> Result<Vec<OutboundRule>, SimError> {
        let w = self.lock();
        let i = w.org_index(org)?;
        Ok(w.orgs[i].outbound.rules.clone())
    }

    /// Changes outbound delivery behaviour (duplicates, reordering, backoff, pause).
    pub fn set_outbound_settings(&self, org: &str, s: OutboundSettings) -> Result<(), SimError> {
        let mut w = self.lock();
        let i = w.org_index(org)?;
        w.orgs[i].outbound.settings = s;
        drop(w);
        self.outbound_wake.notify_one();
        Ok(())
    }

    /// Every delivery attempt so far.
    pub fn deliveries(&self, org: &str) -> Result<Vec<Delivery>, SimError> {
        let w = self.lock();
        let i = w.org_index(org)?;
        Ok(w.orgs[i].outbound.deliveries.clone())
    }

    /// Notifications still queued.
    pub fn outbound_queue(&self, org: &str) -> Result<Vec<Pending>, SimError> {
        let w = self.lock();
        let i = w.org_index(org)?;
        Ok(w.orgs[i].outbound.queue.clone())
    }

    /// Notifications dropped after 24 h.
    pub fn outbound_dropped(&self, org: &str) -> Result<Vec<outbound::Dropped>, SimError> {
        let w = self.lock();
        let i = w.org_index(org)?;
        Ok(w.orgs[i].outbound.dropped.clone())
    }

    /// Jumps the sim clock forward and wakes the outbound loop.
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.clock.advance(by);
        self.outbound_wake.notify_one();
    }

    /// Sets the query page size.
    pub fn set_page_size(&self, n: usize) {
        self.lock().page_size = n.max(1);
    }

    /// Sets auto-approve for authorize requests carrying `login_hint`.
    pub fn set_auto_approve(&self, on: bool) {
        self.lock().auto_approve = on;
    }

    /// Collects due outbound messages and marks them in flight.
    pub(crate) fn take_due_outbound(&self) -> Vec<outbound::Job> {
        let now = self.clock.now();
        let instance = self.instance_url();
        let mut w = self.lock();
        let mut jobs = Vec::new();
        let World { orgs, rng, tokens, .. } = &mut *w;
        for (oi, o) in orgs.iter_mut().enumerate() {
            let settings = o.outbound.settings.clone();
            if settings.paused {
                continue;
            }
            // drop expired
            let drop_after = time::Duration::seconds(settings.drop_after_secs as i64);
            let (keep, gone): (Vec<Pending>, Vec<Pending>) =
                o.outbound.queue.drain(..).partition(|p| p.in_flight || now - p.created < drop_after);
            o.outbound.queue = keep;
            for p in gone {
                o.outbound.dropped.push(outbound::Dropped {
                    notification_id: p.notification_id,
                    record_id: p.record_id,
                    attempts: p.attempts,
                });
            }
            if settings.reorder {
                use rand::seq::SliceRandom;
                o.outbound.queue.shuffle(rng);
            }
            for rule in o.outbound.rules.clone() {
                let due: Vec<usize> = o
                    .outbound
                    .queue
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.rule_id == rule.id && !p.in_flight && p.next_at <= now)
                    .map(|(i, _)| i)
                    .collect();
                for chunk in due.chunks(settings.batch_size.clamp(1, 100)) {
                    let mut notes = Vec::new();
                    let mut attempt = 0;
                    let mut dup = false;
                    let mut bodies = Vec::new();
                    for &qi in chunk {
                        let p = &mut o.outbound.queue[qi];
                        p.in_flight = true;
                        attempt = attempt.max(p.attempts + 1);
                        dup |= p.duplicate;
                        notes.push((p.notification_id.clone(), p.record_id.clone()));
                    }
                    for (nid, rid) in &notes {
                        let mut fields = vec![("Id".to_string(), Value::String(rid.clone()))];
                        let rec = o.table(&rule.spec.object).ok().and_then(|(_, t)| t.records.get(rid));
                        for f in rule.spec.fields.iter().filter(|f| !f.eq_ignore_ascii_case("Id")) {
                            let canon =
                                o.object(&rule.spec.object).ok().and_then(|ob| ob.field(f)).map(|fd| fd.name.clone()).unwrap_or(f.clone());
                            fields.push((canon.clone(), rec.and_then(|r| r.fields.get(&canon)).cloned().unwrap_or(Value::Null)));
                        }
                        bodies.push((nid.clone(), fields));
                    }
                    let session = if rule.spec.send_session_id {
                        let uid = rule
                            .spec
                            .session_user
                            .as_deref()
                            .and_then(|u| o.user_by_username(u))
                            .or_else(|| o.table("User").ok().and_then(|(_, t)| t.records.values().next()))
                            .map(|r| r.id.clone())
                            .unwrap_or_default();
                        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                        let tail: String = (0..96).map(|_| A[rng.random_range(0..A.len())] as char).collect();
                        let tok = format!("{}!AQ{}", ids::to15(&o.id), tail);
                        tokens.insert(
                            tok.clone(),
                            AccessToken { org: oi, user: uid, client_id: None, family: None, scope: "api".into(), issued_ms: 0 },
                        );
                        Some(tok)
                    } else {
                        None
                    };
                    let nb: Vec<outbound::NoteBody<'_>> =
                        bodies.iter().map(|(id, f)| outbound::NoteBody { id, fields: f.clone() }).collect();
                    let body = outbound::soap_message(&o.id, &rule.id, session.as_deref(), &instance, &rule.spec.object, &nb);
                    jobs.push(outbound::Job {
                        org: o.id.clone(),
                        rule_id: rule.id.clone(),
                        endpoint: rule.spec.endpoint_url.clone(),
                        body,
                        notes,
                        attempt,
                        duplicate: dup,
                    });
                }
            }
        }
        jobs
    }

    /// Records the outcome of a message and reschedules or retires its notifications.
    pub(crate) fn finish_outbound(&self, job: outbound::Job, (status, acked, error): (Option<u16>, bool, Option<String>)) {
        let now = self.clock.now();
        let mut w = self.lock();
        w.delivery_seq += 1;
        let seq = w.delivery_seq;
        let World { orgs, rng, .. } = &mut *w;
        let Some(o) = orgs.iter_mut().find(|o| o.id == job.org) else { return };
        let ids_in: Vec<&String> = job.notes.iter().map(|(n, _)| n).collect();
        let dup_rate = o.outbound.settings.duplicate_rate;
        let mut retained = Vec::new();
        for mut p in std::mem::take(&mut o.outbound.queue) {
            if !ids_in.contains(&&p.notification_id) {
                retained.push(p);
                continue;
            }
            p.in_flight = false;
            if acked {
                if !p.duplicate && crate::faults::roll(rng, dup_rate) {
                    p.duplicate = true;
                    p.next_at = now;
                    retained.push(p);
                }
            } else {
                p.attempts += 1;
                let delay = o.outbound.backoff(p.attempts);
                p.next_at = now + delay;
                retained.push(p);
            }
        }
        o.outbound.queue = retained;
        o.outbound.deliveries.push(Delivery {
            seq,
            at: now,
            rule_id: job.rule_id,
            endpoint: job.endpoint,
            notification_ids: job.notes.iter().map(|(n, _)| n.clone()).collect(),
            record_ids: job.notes.iter().map(|(_, r)| r.clone()).collect(),
            status,
            acked,
            error,
            attempt: job.attempt,
            duplicate: job.duplicate,
            body: job.body,
        });
    }
}

/// `acme.my.salesforce.com` or `acme--uat.sandbox.my.salesforce.com`.
pub fn my_domain_host(name: &str, sandbox: bool) -> String {
    if sandbox { format!("{name}.sandbox.my.salesforce.com") } else { format!("{name}.my.salesforce.com") }
}

fn ensure_role(org: &mut Org, name: &str, parent: Option<&str>, ctx: &WriteCtx<'_>) -> Result<String, ApiError> {
    let find = |org: &Org, n: &str| {
        org.table("UserRole").ok().and_then(|(_, t)| {
            t.records
                .values()
                .find(|r| r.fields.get("Name").and_then(Value::as_str).is_some_and(|x| x.eq_ignore_ascii_case(n)))
                .map(|r| r.id.clone())
        })
    };
    if let Some(id) = find(org, name) {
        return Ok(id);
    }
    let parent_id = match parent {
        Some(p) => Some(match find(org, p) {
            Some(id) => id,
            None => ensure_role(org, p, None, ctx)?,
        }),
        None => None,
    };
    let mut m = Map::new();
    m.insert("Name".into(), Value::String(name.into()));
    m.insert("DeveloperName".into(), Value::String(name.replace(' ', "_")));
    if let Some(p) = parent_id {
        m.insert("ParentRoleId".into(), Value::String(p));
    }
    let p = org.prepare_insert("UserRole", &m)?;
    Ok(org.commit("UserRole", p, ctx)?.0)
}
