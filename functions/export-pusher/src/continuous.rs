//! Continuous export of one SQS batch: events grouped by site, connection and object,
//! admitted through the ledger (stale and already-exported events skipped), upserted through
//! sObject Collections, and each record's result written back to its event. Permanent
//! failures (an event too large to store among them) go to the dead-letter queue and the run
//! report; transient ones go back to SQS
//! with a growing delay; events of an org without a live connection or paused are held.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use forcelink::Deps;
use forcelink::domain::counts::Counter;
use forcelink::domain::export::ExportMapping;
use forcelink::domain::report::RunKind;
use forcelink::domain::site::Site;
use forcelink::domain::{ConnectionStatus, keys, record};
use forcelink::ports::{Query, StoreError};
use forcelink::salesforce::{SalesforceClient, session};
use serde_json::{Map, Value};

use crate::collections::{self, RowOutcome, Stop};
use crate::event::{self, Body, Event};
use crate::ledger::{self, Admit, Entry, EventError, Settled, State};
use crate::report::{self, Tally};
use crate::tuning::Tuning;
use crate::{budget, crash, transform};

/// (object, External ID field).
type ObjectKey = (String, String);
/// An event with its record.
type Mapped = (Work, Map<String, Value>);

/// One SQS message of the batch.
struct Msg {
    id: String,
    receipt: String,
    receive_count: u32,
    /// Some event of it failed transiently: SQS redelivers it after this delay.
    retry: Option<Duration>,
}

/// One event to export, from a message or released from the held list.
struct Work {
    msg: Option<usize>,
    event: Event,
    /// The ledger entry and version once admitted (held events come with theirs).
    admitted: Option<(Entry, u64)>,
}

/// Handles one batch; the response lists exactly the messages SQS must deliver again.
pub async fn handle(deps: &Deps, tuning: &Tuning, batch: SqsEvent) -> SqsBatchResponse {
    let started = deps.clock.now();
    let mut msgs = Vec::with_capacity(batch.records.len());
    let mut by_site: BTreeMap<String, Vec<Work>> = BTreeMap::new();
    let mut flush: HashSet<String> = HashSet::new();
    let mut taken = 0usize;
    let mut deferred = 0usize;
    for m in batch.records {
        let Some(id) = m.message_id.clone() else {
            tracing::error!("SQS message without an id; skipped");
            continue;
        };
        let receive_count = m.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
        let idx = msgs.len();
        msgs.push(Msg { id, receipt: m.receipt_handle.clone().unwrap_or_default(), receive_count, retry: None });
        let body = m.body.unwrap_or_default();
        match event::parse_body(&body) {
            Err(e) => {
                tracing::warn!(message_id = %msgs[idx].id, error = %forcelink::ports::Chain(&e), "message refused; dead-lettered as received");
                if !dead_letter(deps, body).await {
                    msgs[idx].retry = Some(tuning.retry_delay(receive_count));
                }
            }
            Ok(Body::Flush { site }) => {
                flush.insert(site);
            }
            Ok(Body::Events(events)) => {
                let last_receive = receive_count + 1 >= tuning.max_receives;
                if taken > 0 && taken + events.len() > tuning.max_events && !last_receive {
                    msgs[idx].retry = Some(Duration::ZERO);
                    deferred += 1;
                    continue;
                }
                taken += events.len();
                for ev in events {
                    match ev {
                        Ok(event) => by_site.entry(event.site.clone()).or_default().push(Work { msg: Some(idx), event, admitted: None }),
                        Err(invalid) => {
                            tracing::warn!(message_id = %msgs[idx].id, reason = %invalid.reason, "event refused; dead-lettered");
                            if !dead_letter(deps, event::dead_letter(&invalid.raw, "INVALID_EVENT", &invalid.reason)).await {
                                msgs[idx].retry = Some(tuning.retry_delay(receive_count));
                            }
                        }
                    }
                }
            }
        }
    }
    if deferred > 0 {
        tracing::info!(
            taken,
            deferred,
            max_events = tuning.max_events,
            "events per invocation capped; the other messages go back to the queue"
        );
    }
    for site in flush {
        by_site.entry(site).or_default();
    }
    for (site, works) in by_site {
        let mut tally = Tally::new();
        let outcome = export_site(deps, tuning, &site, works, &msgs, &mut tally).await;
        for (idx, delay) in outcome {
            let m = &mut msgs[idx];
            m.retry = Some(m.retry.map_or(delay, |d| d.max(delay)));
        }
        if !tally.is_empty() {
            let input = serde_json::json!({ "messages": msgs.len() });
            let report = tally.report(&site, RunKind::Export, "continuous", started, deps.clock.now(), input);
            report::save(deps.store.as_ref(), &report.kept_for(deps.settings.run_retention)).await;
        }
    }
    crash::point("after_settle");
    let mut response = SqsBatchResponse::default();
    for m in msgs.iter().filter(|m| m.retry.is_some()) {
        if let Some(delay) = m.retry
            && !m.receipt.is_empty()
            && let Err(e) = deps.queue.change_visibility(&m.receipt, delay).await
        {
            tracing::warn!(message_id = %m.id, error = %e, "visibility not changed; SQS's default applies");
        }
        let mut f = BatchItemFailure::default();
        f.item_identifier = m.id.clone();
        response.batch_item_failures.push(f);
    }
    response
}

/// Sends a body to the dead-letter queue; false if it could not be kept there.
async fn dead_letter(deps: &Deps, body: String) -> bool {
    let Some(dlq) = &deps.dead_letters else {
        tracing::error!("no dead-letter queue configured; the refused event is kept only in the ledger and logs");
        return true;
    };
    match dlq.send(body).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "dead-letter send failed; the message will be retried");
            false
        }
    }
}

/// Exports one site's events; returns the messages to retry and their delays.
async fn export_site(
    deps: &Deps,
    tuning: &Tuning,
    site: &str,
    works: Vec<Work>,
    msgs: &[Msg],
    tally: &mut Tally,
) -> Vec<(usize, Duration)> {
    let store = deps.store.as_ref();
    let mut retry: Vec<(usize, Duration)> = Vec::new();
    let transient = |w: &Work, retry: &mut Vec<(usize, Duration)>| {
        if let Some(i) = w.msg {
            retry.push((i, tuning.retry_delay(msgs[i].receive_count)));
        }
    };
    let now_ms = deps.clock.now().unix_timestamp_nanos() as i64 / 1_000_000;
    let (site_rec, mappings) = match load_site(deps, site).await {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(site, error = %e, "site configuration unreadable; batch retried");
            works.iter().for_each(|w| transient(w, &mut retry));
            return retry;
        }
    };
    // Admit through the ledger.
    let mut admitted = Vec::with_capacity(works.len());
    tally.add(Counter::Events, works.len() as u64);
    let results = {
        let events: Vec<&Event> = works.iter().map(|w| &w.event).collect();
        ledger::admit_all(store, &events, now_ms).await
    };
    let mut resend = Vec::new();
    for (mut w, result) in works.into_iter().zip(results) {
        match result {
            Ok(Admit::Export { entry, version }) => {
                w.admitted = Some((*entry, version));
                admitted.push(w);
            }
            Ok(Admit::Stale(current)) => {
                tally.add(Counter::Stale, 1);
                // An earlier delivery may have written this event to Salesforce after the newer one.
                let redelivered = w.msg.is_some_and(|i| msgs[i].receive_count > 1);
                if let (true, Some((entry, version))) = (redelivered, current) {
                    match ledger::invalidate(store, *entry, version, now_ms).await {
                        Ok(Settled::Resend(newer)) => resend.push(newer.event),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(site, error = %e, "ledger write failed; message retried");
                            transient(&w, &mut retry);
                        }
                    }
                }
            }
            Ok(Admit::Done) => tally.add(Counter::Duplicate, 1),
            Err(record::RecordError::Store(e @ StoreError::TooLarge { .. })) => {
                // Its ledger entry can never be stored: permanent, dead-lettered intact and reported.
                tracing::warn!(site, error = %e, "event too large for the ledger; dead-lettered");
                let message = format!("the event cannot be exported: its ledger entry is too large to store ({e})");
                fail(deps, w, collections::error("EVENT_TOO_LARGE", message), now_ms, tally, &mut retry, tuning, msgs).await;
            }
            Err(e) => {
                tracing::error!(site, error = %e, "ledger write failed; message retried");
                transient(&w, &mut retry);
            }
        }
    }
    send_again(deps, resend).await;
    crash::point("after_admit");
    // Group by connection.
    let mut by_conn: BTreeMap<Option<String>, Vec<Work>> = BTreeMap::new();
    for w in admitted {
        let Some(mapping) = mappings.get(&w.event.kind) else {
            let err = collections::error("NO_MAPPING", format!("site {site} has no export mapping for kind {:?}", w.event.kind));
            fail(deps, w, err, now_ms, tally, &mut retry, tuning, msgs).await;
            continue;
        };
        let conn = mapping.connection.clone().or_else(|| site_rec.as_ref().and_then(|s| s.default_connection.clone()));
        by_conn.entry(conn).or_default().push(w);
    }
    let live = site_rec.is_some();
    let mut conns: Vec<Option<String>> = by_conn.keys().cloned().collect();
    if live {
        // Connections with held events get a turn even without new events.
        let default = site_rec.as_ref().and_then(|s| s.default_connection.clone());
        for m in mappings.values() {
            let c = m.connection.clone().or_else(|| default.clone());
            if !conns.contains(&c) {
                conns.push(c);
            }
        }
    }
    for conn in conns {
        let works = by_conn.remove(&conn).unwrap_or_default();
        export_connection(deps, tuning, site, conn.as_deref(), &mappings, site_rec.as_ref(), works, msgs, tally, &mut retry).await;
    }
    retry
}

async fn load_site(deps: &Deps, site: &str) -> Result<(Option<Site>, HashMap<String, ExportMapping>), record::RecordError> {
    let store = deps.store.as_ref();
    let pk = keys::site_pk(site);
    let site_rec = Site::load(store, site).await?.map(|v| v.record);
    let mappings: Vec<ExportMapping> = record::list(store, Query::prefix(&pk, keys::EXPORT_PREFIX)).await?;
    Ok((site_rec, mappings.into_iter().map(|m| (m.kind.clone(), m)).collect()))
}

/// Writes a permanent failure: ledger, dead-letter queue, report.
#[allow(clippy::too_many_arguments)]
async fn fail(
    deps: &Deps,
    w: Work,
    err: EventError,
    now_ms: i64,
    tally: &mut Tally,
    retry: &mut Vec<(usize, Duration)>,
    tuning: &Tuning,
    msgs: &[Msg],
) {
    tally.failed(&w.event.kind, &w.event.id, &err);
    let kept = dead_letter(deps, event::dead_letter(&w.event.raw, &err.code, &err.message)).await;
    if let Some((mut entry, version)) = w.admitted {
        entry.state = State::Failed;
        entry.error = Some(err);
        if let Err(e) = ledger::settle(deps.store.as_ref(), &entry, version, now_ms).await {
            tracing::error!(error = %e, "ledger not updated for a failed event");
        }
    }
    if !kept && let Some(i) = w.msg {
        retry.push((i, tuning.retry_delay(msgs[i].receive_count)));
    }
}

/// Holds events: the ledger keeps them (listed as held) and their messages are deleted.
async fn hold(
    deps: &Deps,
    works: Vec<Work>,
    now_ms: i64,
    tally: &mut Tally,
    retry: &mut Vec<(usize, Duration)>,
    tuning: &Tuning,
    msgs: &[Msg],
) {
    let mut held = Vec::new();
    let mut outcomes = Vec::new();
    for w in works {
        let Some((mut entry, version)) = w.admitted.clone() else { continue };
        if entry.state == State::Held {
            continue;
        }
        entry.state = State::Held;
        outcomes.push((entry, version));
        held.push(w);
    }
    for (w, result) in held.into_iter().zip(ledger::settle_all(deps.store.as_ref(), outcomes, now_ms).await) {
        match result {
            Ok(_) => tally.add(Counter::Held, 1),
            Err(e) => {
                tracing::error!(error = %e, "event not held; message retried");
                if let Some(i) = w.msg {
                    retry.push((i, tuning.retry_delay(msgs[i].receive_count)));
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn export_connection(
    deps: &Deps,
    tuning: &Tuning,
    site: &str,
    conn_name: Option<&str>,
    mappings: &HashMap<String, ExportMapping>,
    site_rec: Option<&Site>,
    mut works: Vec<Work>,
    msgs: &[Msg],
    tally: &mut Tally,
    retry: &mut Vec<(usize, Duration)>,
) {
    let store = deps.store.as_ref();
    let now_ms = deps.clock.now().unix_timestamp_nanos() as i64 / 1_000_000;
    let conn = match conn_name {
        Some(name) if site_rec.is_some() => match session::load(deps, site, name).await {
            Ok(c) => Some(c.record),
            Err(forcelink::salesforce::SfError::NotConnected(_)) => None,
            Err(e) => {
                tracing::error!(site, error = %e, "connection unreadable; messages retried");
                works.iter().filter_map(|w| w.msg).for_each(|i| retry.push((i, tuning.retry_delay(msgs[i].receive_count))));
                return;
            }
        },
        _ => None,
    };
    let Some(conn) = conn.filter(|c| c.status == ConnectionStatus::Connected) else {
        hold(deps, works, now_ms, tally, retry, tuning, msgs).await;
        return;
    };
    let org = conn.org_id.clone().unwrap_or_else(|| format!("{site}/{}", conn.name));
    match budget::paused(store, &org).await {
        Ok(Some(p)) => {
            tracing::info!(site, org = %org, until = p.until, "org paused; events held");
            hold(deps, works, now_ms, tally, retry, tuning, msgs).await;
            return;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "pause record unreadable; going ahead"),
    }
    let client = SalesforceClient::new(deps, site, &conn.name);
    // Release held events of this connection along with the batch.
    match ledger::listed(store, site, State::Held, tuning.flush_batch).await {
        Ok(held) => {
            for (entry, version) in held {
                let mine = mappings.get(&entry.kind).is_some_and(|m| {
                    m.connection.as_deref().or(site_rec.and_then(|s| s.default_connection.as_deref())) == Some(conn.name.as_str())
                });
                let in_batch = works.iter().any(|w| w.event.kind == entry.kind && w.event.id == entry.id);
                if !mine || in_batch {
                    continue;
                }
                match event::parse_event(entry.event.clone()) {
                    Ok(event) => {
                        tally.add(Counter::Released, 1);
                        works.push(Work { msg: None, event, admitted: Some((entry, version)) });
                    }
                    Err(inv) => tracing::error!(reason = %inv.reason, "held event no longer parses; left held"),
                }
            }
        }
        Err(e) => tracing::warn!(site, error = %e, "held events not listed"),
    }
    if works.is_empty() {
        return;
    }
    // Over budget: slow down (a share of the batch waits), except on the last receives.
    let usage = client.api_usage().or(conn.api_usage);
    if budget::share(usage).is_some_and(|s| s >= tuning.budget_share) && works.len() > tuning.slow_records {
        let keep_last = |w: &Work| w.msg.is_some_and(|i| msgs[i].receive_count + 1 >= tuning.max_receives);
        let (mut now, mut later): (Vec<Work>, Vec<Work>) = (Vec::new(), Vec::new());
        for w in works {
            if now.len() < tuning.slow_records || keep_last(&w) { now.push(w) } else { later.push(w) }
        }
        tracing::info!(site, org = %org, deferred = later.len(), "API budget past its threshold; slowing down");
        tally.add(Counter::Deferred, later.len() as u64);
        for w in &later {
            if let Some(i) = w.msg {
                retry.push((i, tuning.slow_delay));
            }
        }
        works = now;
    }
    // Records by object, keys deduped (the latest occurred_at wins).
    let mut groups: BTreeMap<ObjectKey, Vec<Mapped>> = BTreeMap::new();
    for w in works {
        let Some(mapping) = mappings.get(&w.event.kind) else { continue };
        match transform::record(mapping, &w.event) {
            Ok(rec) => groups.entry((mapping.object.clone(), mapping.external_id_field.clone())).or_default().push((w, rec)),
            Err(e) => {
                let err = collections::error("MAPPING_ERROR", e.to_string());
                fail(deps, w, err, now_ms, tally, retry, tuning, msgs).await;
            }
        }
    }
    let mut stopped = false;
    for ((object, ext), items) in groups {
        // One row per Salesforce key (External IDs ignore case): the highest ranked event; the
        // others folded into it share its outcome.
        let mut rows: HashMap<String, (usize, Vec<Work>)> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut records: Vec<Map<String, Value>> = Vec::new();
        for (w, rec) in items {
            let key = rec.get(&ext).and_then(Value::as_str).unwrap_or_default().to_lowercase();
            match rows.get_mut(&key) {
                Some((r, folded)) => {
                    if w.event.rank() > folded[0].event.rank() {
                        records[*r] = rec;
                        folded.insert(0, w);
                    } else {
                        folded.push(w);
                    }
                }
                None => {
                    rows.insert(key.clone(), (records.len(), vec![w]));
                    order.push(key);
                    records.push(rec);
                }
            }
        }
        let folded: Vec<Vec<Work>> = order.iter().filter_map(|k| rows.remove(k).map(|(_, ws)| ws)).collect();
        tally.add(Counter::Superseded, folded.iter().map(|ws| ws.len() as u64 - 1).sum());
        if stopped {
            hold(deps, folded.into_iter().flatten().collect(), now_ms, tally, retry, tuning, msgs).await;
            continue;
        }
        let result = collections::upsert(&client, &object, &ext, &records, tuning).await;
        tally.add(Counter::ApiCalls, result.calls);
        crash::point("after_upsert");
        let mut exported = Vec::new();
        let mut to_hold = Vec::new();
        for (ws, outcome) in folded.into_iter().zip(result.outcomes) {
            match outcome {
                RowOutcome::Upserted { id, created } => {
                    tally.add(if created { Counter::Created } else { Counter::Updated }, 1);
                    exported.extend(ws.into_iter().map(|w| (w, id.clone())));
                }
                RowOutcome::Permanent(err) => {
                    for w in ws {
                        fail(deps, w, err.clone(), now_ms, tally, retry, tuning, msgs).await;
                    }
                }
                RowOutcome::Transient(err) => {
                    tracing::debug!(object = %object, error = %err, "transient failure; back to SQS");
                    for w in ws {
                        tally.add(Counter::Retried, 1);
                        if let Some(i) = w.msg {
                            retry.push((i, tuning.retry_delay(msgs[i].receive_count)));
                        }
                    }
                }
                RowOutcome::Stopped => to_hold.extend(ws),
            }
        }
        settle_exported(deps, exported, now_ms).await;
        match &result.stop {
            Some(Stop::DailyLimit(message)) => {
                let until = deps.clock.epoch_secs() + tuning.limit_pause.as_secs().max(1) as i64;
                if let Err(e) = budget::pause(store, &org, until, message).await {
                    tracing::error!(error = %e, "pause not recorded");
                }
                stopped = true;
            }
            Some(Stop::NotConnected(message)) => {
                tracing::warn!(site, connection = %conn.name, reason = %message, "connection lost; events held");
                stopped = true;
            }
            None => {}
        }
        hold(deps, to_hold, now_ms, tally, retry, tuning, msgs).await;
    }
}

/// Marks events exported, in batches. Where an event may have overwritten a newer one in
/// Salesforce (another invocation exported that one meanwhile), the newer one is sent again.
async fn settle_exported(deps: &Deps, exported: Vec<(Work, String)>, now_ms: i64) {
    let outcomes: Vec<(Entry, u64)> = exported
        .into_iter()
        .filter_map(|(w, sf_id)| {
            let (mut entry, version) = w.admitted?;
            entry.state = State::Exported;
            entry.exported = Some(entry.occurred_at);
            entry.sf_id = Some(sf_id);
            entry.error = None;
            Some((entry, version))
        })
        .collect();
    let mut resend = Vec::new();
    for result in ledger::settle_all(deps.store.as_ref(), outcomes, now_ms).await {
        match result {
            Ok(Settled::Resend(newer)) => {
                tracing::info!(kind = %newer.kind, id = %newer.id, "a newer event was exported concurrently; sending it again");
                resend.push(newer.event);
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "ledger not updated after export (a redelivery repeats the upsert harmlessly)"),
        }
    }
    send_again(deps, resend).await;
}

/// Sends events again (their entries are held, so the held list releases any that fail here).
async fn send_again(deps: &Deps, events: Vec<Value>) {
    if events.is_empty() {
        return;
    }
    if let Err(e) = crate::replay::send_events(deps.queue.as_ref(), &events).await {
        tracing::error!(error = %e, "newer events not re-sent; they stay held");
    }
}
