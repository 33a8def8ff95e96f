//! The roster: Salesforce Users → the platform's directory.
//!
//! One pass reads the filtered users in `(SystemModstamp, Id)` order — all of them on a full
//! pass, those after the watermark otherwise — page by page, writing only users whose owned
//! fields changed ([`diff`]), and checkpointing between pages when the deadline nears. Then it
//! looks up managers outside the filter (≤200 ids a query, up the chain), deactivates users
//! who became inactive or (full pass) left the filter — unless that trips the breaker — and
//! rebuilds the hierarchy groups ([`hierarchy`]), writing only those that changed.

pub mod apply;
pub mod diff;
pub mod fetch;
pub mod hierarchy;

use std::collections::{HashMap, HashSet};
use std::pin::pin;
use std::time::Duration;

use forcelink::domain::counts::{Counter, Counts};
use forcelink::domain::keys;
use forcelink::domain::sync::{Hierarchy, SyncKind};
use forcelink::ports::Cond;
use futures::TryStreamExt;

use self::apply::Writer;
use self::diff::{Diff, Index, Owned};
use self::fetch::SfUser;
use crate::checkpoint::Checkpoint;
use crate::error::SyncError;
use crate::runner::{Ctx, Pass, ProgressEvent};
use crate::soql::{self, Cursor};
use crate::state::JobState;

/// Rounds of manager lookups up the chain, at most.
const LOOKUP_ROUNDS: usize = 16;

struct Roster {
    site: String,
    /// The org of the job's connection, recorded on every user.
    org: Option<String>,
    owned: Owned,
    index: Index,
    seen: HashSet<String>,
    deferred: Vec<String>,
    counts: Counts,
    diff: Diff,
}

impl Roster {
    fn count(&mut self, counter: Counter, n: u64) {
        self.counts.add(counter, n);
    }

    /// Handles one Salesforce user: write it if its owned fields changed.
    fn take(&mut self, w: &mut Writer<'_>, u: SfUser, participant: bool) -> Result<(), SyncError> {
        let name = u.display_name();
        let existing = self.index.users.get(&u.id).map(|e| (e.active, e.hash, e.version, e.kept.clone()));
        // An inactive user seen for the first time is kept, inactive (never shown as active,
        // and a manager of someone active is not looked up again by every run).
        if !u.active && existing.is_none() {
            let user = diff::build(&self.site, self.org.as_deref(), &u, participant);
            w.put(&user, Cond::NotExists)?;
            self.count(Counter::AddedInactive, 1);
            let hash = diff::user_hash(&user, &self.owned);
            self.index.users.insert(u.id.clone(), self.entry(&u, 1, hash, participant, None));
            return Ok(());
        }
        if !u.active {
            match existing {
                Some((true, ..)) => {
                    self.deferred.push(u.id.clone());
                }
                _ => self.count(Counter::Unchanged, 1),
            }
            return Ok(());
        }
        let user = diff::build(&self.site, self.org.as_deref(), &u, participant);
        let hash = diff::user_hash(&user, &self.owned);
        let (version, kept) = match existing {
            None => {
                w.put(&user, Cond::NotExists)?;
                self.count(Counter::Added, 1);
                self.diff.added.push(|| format!("{name} <{}> ({})", u.email, u.id));
                (1, None)
            }
            Some((_, old, version, kept)) if old != hash => {
                w.put(&diff::with_kept(user, kept.as_deref()), Cond::Version(version))?;
                self.count(Counter::Updated, 1);
                self.diff.updated.push(|| format!("{name} <{}> ({})", u.email, u.id));
                (version + 1, kept)
            }
            Some(_) => {
                self.count(Counter::Unchanged, 1);
                return Ok(());
            }
        };
        let entry = self.entry(&u, version, hash, participant, kept);
        self.index.users.insert(u.id.clone(), entry);
        Ok(())
    }

    fn entry(&self, u: &SfUser, version: u64, hash: u64, participant: bool, kept: Option<Box<diff::Kept>>) -> diff::Existing {
        diff::Existing {
            version,
            hash,
            active: u.active,
            participant,
            manager: u.manager.as_deref().map(Into::into),
            role: u.role.as_deref().map(Into::into),
            name: u.display_name().into(),
            kept,
        }
    }
}

/// Runs a roster pass.
pub async fn run(ctx: &mut Ctx<'_>, state: &JobState, resume: Option<(Checkpoint, Vec<String>)>) -> Result<Pass, SyncError> {
    let SyncKind::Roster { filter, tag_fields, hierarchy, max_deactivate_share, full_every_hours } = &ctx.job.kind else {
        return Err(SyncError::Invalid("not a roster job".into()));
    };
    for f in tag_fields.values() {
        fetch::check_field(f)?;
    }
    let store = ctx.deps.store.as_ref();
    let owned = Owned::new(tag_fields);
    ctx.progress(ProgressEvent::Phase("reading the directory".into()));
    let index = diff::load_index(store, &ctx.job.site, &owned).await?;
    let active_before = index.active_count();
    let stale_full = state.last_full_at.is_none_or(|t| ctx.now - t >= Duration::from_secs(u64::from(*full_every_hours) * 3600));
    let org = forcelink::salesforce::session::load(ctx.deps, &ctx.job.site, ctx.sf.connection()).await?.record.org_id;
    let mut r = Roster {
        site: ctx.job.site.clone(),
        org,
        owned,
        index,
        seen: HashSet::new(),
        deferred: Vec::new(),
        counts: Counts::default(),
        diff: Diff::default(),
    };
    let (full, mut cursor, invocations, mut errors) = match resume {
        Some((c, seen)) => {
            r.seen = seen.into_iter().collect();
            r.deferred = c.deferred;
            r.counts = c.counts;
            (c.full, c.cursor, c.invocations + 1, c.errors)
        }
        None => {
            let full = ctx.opts.full || state.watermark.is_none() || stale_full;
            (full, if full { None } else { state.watermark.clone() }, 1, Vec::new())
        }
    };
    let fields = fetch::fields(tag_fields);
    let mut w = Writer::new(store, ctx.opts.dry_run);

    // 1. The filtered users, page by page.
    ctx.progress(ProgressEvent::Phase(if full { "full pass".into() } else { "incremental pass".into() }));
    // Incremental reads stop at the lag point; a full pass reads all (it must see every
    // selected user) and keeps its watermark behind the lag point instead.
    let lag_point = soql::lag_point(ctx.now, ctx.deps.settings.sync_lag);
    let query = fetch::page_query(&fields, filter, cursor.as_ref(), (!full).then_some(lag_point))?;
    let mut pages = pin!(ctx.sf.query(&query));
    let mut done = r.seen.len() as u64;
    let mut first = true;
    loop {
        let page = pages.try_next().await;
        ctx.called();
        let Some(page) = page? else { break };
        if first {
            ctx.progress(ProgressEvent::Total(done + page.total_size));
            first = false;
        }
        for rec in &page.records {
            let u = match fetch::parse(rec, tag_fields) {
                Ok(u) => u,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            cursor = Some(Cursor { stamp: u.stamp.clone(), id: u.id.clone() });
            r.seen.insert(u.id.clone());
            r.take(&mut w, u, true)?;
        }
        w.flush().await?;
        done += page.records.len() as u64;
        r.count(Counter::Fetched, page.records.len() as u64);
        ctx.progress(ProgressEvent::Done(done));
        if page.done {
            break;
        }
        if ctx.page_done() {
            r.count(Counter::DirectoryWrites, w.writes);
            errors.extend(w.conflicts);
            let mut saved = r.counts.clone();
            saved.add(Counter::ApiCalls, ctx.calls);
            let seen: Vec<String> = r.seen.into_iter().collect();
            let ckpt = ctx.checkpoint(full, cursor.clone(), saved, errors.clone(), r.deferred, invocations);
            crate::checkpoint::save(store, ckpt, &seen).await?;
            return Ok(Pass { counts: r.counts, errors, interrupted: true, full, cursor, ..Pass::default() });
        }
    }
    let mut notes = Vec::new();

    // 2. Managers outside the filter, up the chain (manager hierarchy).
    if *hierarchy == Hierarchy::Manager {
        ctx.progress(ProgressEvent::Phase("looking up managers".into()));
        let mut looked: HashSet<String> = HashSet::new();
        for _ in 0..LOOKUP_ROUNDS {
            let mut wanted: Vec<String> = r
                .index
                .users
                .values()
                .filter(|u| u.active)
                .filter_map(|u| u.manager.as_deref())
                .filter(|m| !r.seen.contains(*m) && !looked.contains(*m) && (full || !r.index.users.contains_key(*m)))
                .map(str::to_string)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            if wanted.is_empty() {
                break;
            }
            wanted.sort();
            for ids in wanted.chunks(fetch::LOOKUP_IDS) {
                let records = ctx.sf.query_records(&fetch::lookup_query(&fields, ids)).await;
                ctx.called();
                let mut found = HashSet::new();
                for rec in records? {
                    match fetch::parse(&rec, tag_fields) {
                        Ok(u) => {
                            found.insert(u.id.clone());
                            r.seen.insert(u.id.clone());
                            r.take(&mut w, u, false)?;
                        }
                        Err(e) => errors.push(e),
                    }
                }
                for id in ids {
                    if !found.contains(id) {
                        errors.push(format!("manager {id} is not visible to the connected user"));
                    }
                }
                r.count(Counter::ManagersLookedUp, ids.len() as u64);
                looked.extend(ids.iter().cloned());
            }
            w.flush().await?;
        }
    }

    // 3. Deactivations: inactive users, and (full pass) users the filter no longer selects.
    let mut deactivate: Vec<String> = std::mem::take(&mut r.deferred);
    if full {
        let mut missing: Vec<String> =
            r.index.users.iter().filter(|(id, u)| u.active && !r.seen.contains(*id)).map(|(id, _)| id.clone()).collect();
        missing.sort();
        deactivate.extend(missing);
    }
    deactivate.sort();
    deactivate.dedup();
    let would = deactivate.len() as u64;
    if would > 0 && active_before > 0 && !ctx.opts.force {
        let share = would as f64 / active_before as f64;
        if share > *max_deactivate_share {
            return Err(SyncError::Breaker { would, active: active_before, share: share * 100.0, max: max_deactivate_share * 100.0 });
        }
    }
    ctx.progress(ProgressEvent::Phase(format!("deactivating {would} users")));
    for id in &deactivate {
        if w.deactivate(&r.site, id).await? {
            r.count(Counter::Deactivated, 1);
            let name = r.index.users.get(id).map(|u| u.name.to_string()).unwrap_or_default();
            r.diff.deactivated.push(|| format!("{name} ({id})"));
        }
        if let Some(u) = r.index.users.get_mut(id) {
            u.active = false;
        }
    }

    // 4. Groups.
    ctx.progress(ProgressEvent::Phase("groups".into()));
    let mut managers = match hierarchy {
        Hierarchy::Manager => hierarchy::managers_by_id(&r.index),
        Hierarchy::Role => {
            let roles = ctx.sf.query_records("SELECT Id, ParentRoleId FROM UserRole").await;
            ctx.called();
            let parents: HashMap<String, Option<String>> = roles?
                .iter()
                .filter_map(|rec| Some((crate::soql::text_at(rec, "Id")?, crate::soql::text_at(rec, "ParentRoleId"))))
                .collect();
            hierarchy::managers_by_role(&r.index, &parents)
        }
    };
    let cycles = hierarchy::break_cycles(&mut managers);
    r.count(Counter::Cycles, cycles.len() as u64);
    for c in &cycles {
        notes.push(format!("management cycle broken at {}: {} → {}", c[0], c.join(" → "), c[0]));
    }
    let groups = hierarchy::groups(&r.site, &r.index, &managers);
    let mut keep: HashSet<&str> = HashSet::with_capacity(groups.len());
    for g in &groups {
        keep.insert(g.id.as_str());
        let hash = diff::group_hash(g);
        match r.index.groups.get(&g.id).copied() {
            None => {
                w.put(g, Cond::NotExists)?;
                r.count(Counter::GroupsAdded, 1);
                r.diff.groups_added.push(|| format!("{} ({}, {} members)", g.name, g.id, g.members.len()));
            }
            Some((version, old)) if old != hash => {
                w.put(g, Cond::Version(version))?;
                r.count(Counter::GroupsChanged, 1);
                r.diff.groups_changed.push(|| format!("{} ({}, {} members)", g.name, g.id, g.members.len()));
            }
            Some(_) => {}
        }
    }
    let mut gone: Vec<(String, u64)> =
        r.index.groups.iter().filter(|(id, _)| !keep.contains(id.as_str())).map(|(id, (v, _))| (id.clone(), *v)).collect();
    gone.sort();
    for (id, version) in gone {
        w.delete(keys::directory_pk(&r.site), keys::group_sk(&id), Cond::Version(version));
        r.count(Counter::GroupsRemoved, 1);
        r.diff.groups_removed.push(|| id);
    }
    w.flush().await?;
    r.count(Counter::DirectoryWrites, w.writes);
    errors.extend(w.conflicts);
    r.count(Counter::Errors, errors.len() as u64);
    let cursor = cursor.map(|c| soql::no_later_than(c, lag_point));
    Ok(Pass { counts: r.counts, errors, notes, cursor, full, interrupted: false, diff: r.diff })
}
