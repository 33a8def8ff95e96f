//! The management hierarchy: each active user's effective manager (from `ManagerId`, or from
//! the role hierarchy `UserRole.ParentRoleId`), cycles broken and reported, and the groups:
//! a **frontline** group per manager (their direct reports) and a **senior** group per manager
//! of managers (every manager below them; a whole subtree would not fit a DynamoDB item at
//! 100,000 users).

use std::collections::{BTreeMap, HashMap};

use forcelink::domain::{Group, GroupKind};

use super::diff::{FRONTLINE, Index, SENIOR};

/// Effective manager of each active user whose manager is an active user of the index.
pub fn managers_by_id(index: &Index) -> HashMap<String, String> {
    index
        .users
        .iter()
        .filter(|(_, u)| u.active)
        .filter_map(|(id, u)| {
            let m = u.manager.as_deref()?;
            (m != id.as_str() && index.users.get(m).is_some_and(|mu| mu.active)).then(|| (id.clone(), m.to_string()))
        })
        .collect()
}

/// Effective managers from the role hierarchy: a user's manager is the holder (lowest id) of
/// the nearest ancestor role that has an active holder.
pub fn managers_by_role(index: &Index, parents: &HashMap<String, Option<String>>) -> HashMap<String, String> {
    let mut holders: HashMap<&str, &str> = HashMap::new();
    for (id, u) in index.users.iter().filter(|(_, u)| u.active) {
        if let Some(role) = u.role.as_deref() {
            let e = holders.entry(role).or_insert(id.as_str());
            if id.as_str() < *e {
                *e = id.as_str();
            }
        }
    }
    let mut out = HashMap::new();
    for (id, u) in index.users.iter().filter(|(_, u)| u.active) {
        let Some(mut role) = u.role.as_deref() else { continue };
        for _ in 0..64 {
            let Some(Some(parent)) = parents.get(role) else { break };
            if let Some(h) = holders.get(parent.as_str()).filter(|h| **h != id.as_str()) {
                out.insert(id.clone(), h.to_string());
                break;
            }
            role = parent;
        }
    }
    out
}

/// Breaks every cycle of `managers` by dropping the link of the cycle's lowest id; returns the
/// cycles found (each in chain order, starting at its lowest id).
pub fn break_cycles(managers: &mut HashMap<String, String>) -> Vec<Vec<String>> {
    let mut state: HashMap<String, u8> = HashMap::with_capacity(managers.len());
    let mut cycles = Vec::new();
    let mut starts: Vec<String> = managers.keys().cloned().collect();
    starts.sort();
    for start in starts {
        let mut path: Vec<String> = Vec::new();
        let mut at = Some(start);
        while let Some(node) = at {
            match state.get(&node) {
                Some(2) => break,
                Some(1) => {
                    let pos = path.iter().position(|p| *p == node).unwrap_or(0);
                    let mut cycle: Vec<String> = path[pos..].to_vec();
                    let low = cycle.iter().enumerate().min_by(|a, b| a.1.cmp(b.1)).map_or(0, |(i, _)| i);
                    cycle.rotate_left(low);
                    managers.remove(&cycle[0]);
                    cycles.push(cycle);
                    break;
                }
                _ => {
                    state.insert(node.clone(), 1);
                    at = managers.get(&node).cloned();
                    path.push(node);
                }
            }
        }
        for p in path {
            state.insert(p, 2);
        }
    }
    cycles
}

/// The hierarchy groups of `site`, sorted by id.
pub fn groups(site: &str, index: &Index, managers: &HashMap<String, String>) -> Vec<Group> {
    let mut reports: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (user, manager) in managers {
        reports.entry(manager.as_str()).or_default().push(user.as_str());
    }
    for members in reports.values_mut() {
        members.sort_unstable();
    }
    let name = |id: &str| index.users.get(id).map_or_else(|| id.to_string(), |u| u.name.to_string());
    let mut out = Vec::new();
    for (manager, members) in &reports {
        out.push(Group {
            site: site.into(),
            id: format!("{FRONTLINE}{manager}"),
            name: format!("{}: direct reports", name(manager)),
            kind: GroupKind::Frontline,
            manager_id: manager.to_string(),
            members: members.iter().map(|m| m.to_string()).collect(),
        });
        if members.iter().any(|m| reports.contains_key(m)) {
            let mut below = Vec::new();
            let mut stack: Vec<&str> = members.iter().copied().filter(|m| reports.contains_key(m)).collect();
            while let Some(m) = stack.pop() {
                below.push(m.to_string());
                if let Some(sub) = reports.get(m) {
                    stack.extend(sub.iter().copied().filter(|s| reports.contains_key(s)));
                }
            }
            below.sort_unstable();
            out.push(Group {
                site: site.into(),
                id: format!("{SENIOR}{manager}"),
                name: format!("{}: managers", name(manager)),
                kind: GroupKind::Senior,
                manager_id: manager.to_string(),
                members: below,
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

#[cfg(test)]
mod tests {
    use super::super::diff::Existing;
    use super::*;

    fn index(users: &[(&str, Option<&str>, Option<&str>)]) -> Index {
        let mut i = Index::default();
        for (id, m, role) in users {
            i.users.insert(
                id.to_string(),
                Existing {
                    version: 1,
                    hash: 0,
                    active: true,
                    participant: true,
                    manager: m.map(Into::into),
                    role: role.map(Into::into),
                    name: id.to_uppercase().into(),
                    kept: None,
                },
            );
        }
        i
    }

    #[test]
    fn frontline_and_senior_groups() {
        // ceo ← vp ← (ana, ben); ceo ← cto (no reports)
        let i = index(&[
            ("ceo", None, None),
            ("vp", Some("ceo"), None),
            ("ana", Some("vp"), None),
            ("ben", Some("vp"), None),
            ("cto", Some("ceo"), None),
        ]);
        let m = managers_by_id(&i);
        let g = groups("acme", &i, &m);
        let ids: Vec<&str> = g.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["frontline-ceo", "frontline-vp", "senior-ceo"]);
        assert_eq!(g[0].members, ["cto", "vp"]);
        assert_eq!(g[1].members, ["ana", "ben"]);
        assert_eq!(g[2].members, ["vp"]);
        assert_eq!(g[2].kind, GroupKind::Senior);
    }

    #[test]
    fn cycles_are_broken_and_reported() {
        let i = index(&[
            ("a", Some("c"), None),
            ("b", Some("a"), None),
            ("c", Some("b"), None),
            ("d", Some("a"), None),
            ("e", Some("e"), None),
        ]);
        let mut m = managers_by_id(&i);
        assert!(!m.contains_key("e"), "a self-manager is no manager");
        let cycles = break_cycles(&mut m);
        assert_eq!(cycles, vec![vec!["a".to_string(), "c".into(), "b".into()]]);
        assert!(!m.contains_key("a"));
        assert_eq!(m.get("d").map(String::as_str), Some("a"));
        assert!(break_cycles(&mut m).is_empty());
    }

    #[test]
    fn role_hierarchy() {
        let i = index(&[
            ("ceo", None, Some("r0")),
            ("m2", None, Some("r1")),
            ("m1", None, Some("r1")),
            ("rep", None, Some("r2")),
            ("x", None, Some("r3")),
        ]);
        let parents = HashMap::from([
            ("r0".to_string(), None),
            ("r1".to_string(), Some("r0".to_string())),
            ("r2".to_string(), Some("r1".to_string())),
            ("r3".to_string(), Some("rgone".to_string())),
            ("rgone".to_string(), Some("r2".to_string())),
        ]);
        let m = managers_by_role(&i, &parents);
        assert_eq!(m.get("rep").map(String::as_str), Some("m1"), "lowest id holder of the parent role");
        assert_eq!(m.get("m2").map(String::as_str), Some("ceo"));
        assert_eq!(m.get("x").map(String::as_str), Some("rep"), "skips a role without holders");
        assert!(!m.contains_key("ceo"));
    }
}
