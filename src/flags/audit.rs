//! The quarterly audit: every flag with what the policy asks of it at a given date.

use chrono::NaiveDate;
use serde::Serialize;

use super::registry::{Flag, Registry, State};

/// How many days before its expiry the owner is told, and how long an expired flag may stay in
/// the code.
pub const NOTICE_DAYS: i64 = 30;

/// What the policy asks of one flag now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing: more than 30 days to its expiry, or removed.
    None,
    /// Expires within 30 days: the owner renews it (a new, at most 6-month expiry) or removes it.
    RenewOrRemove,
    /// Expired within the last 30 days: renew or remove it now.
    Expired,
    /// Expired more than 30 days ago: remove it from the code.
    RemoveFromCode,
}

impl Action {
    pub fn is_due(self) -> bool {
        self != Action::None
    }

    /// The action's name, as `--json` serializes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::RenewOrRemove => "renew_or_remove",
            Action::Expired => "expired",
            Action::RemoveFromCode => "remove_from_code",
        }
    }

    /// The action for a flag `days` days before its expiry (negative: after).
    pub fn for_days(days: i64) -> Action {
        if days > NOTICE_DAYS {
            Action::None
        } else if days > 0 {
            Action::RenewOrRemove
        } else if days >= -NOTICE_DAYS {
            Action::Expired
        } else {
            Action::RemoveFromCode
        }
    }

    /// A sentence for the table.
    pub fn describe(self, days: Option<i64>) -> String {
        let d = days.unwrap_or(0);
        match self {
            Action::None => "-".to_string(),
            Action::RenewOrRemove => format!("renew or remove: expires in {d} day(s)"),
            Action::Expired => format!("renew or remove: expired {} day(s) ago", -d),
            Action::RemoveFromCode => {
                format!("remove from code: expired {} day(s) ago (> 30)", -d)
            }
        }
    }
}

/// One line of the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    pub flag: String,
    pub state: &'static str,
    pub owner: String,
    pub created: NaiveDate,
    pub expires: Option<NaiveDate>,
    /// Days from the audit date to the expiry (negative: expired).
    pub days_to_expiry: Option<i64>,
    pub action: Action,
    pub due: bool,
}

/// Every flag of the registry at `at`, in registry order. `removed` flags are listed and never
/// due.
pub fn audit(reg: &Registry, at: NaiveDate) -> Vec<AuditRow> {
    reg.flags.iter().map(|f| row(f, at)).collect()
}

/// The audit rows of the flags still in the code (every state but `removed`), soonest expiry
/// first (registry order among equal dates): the "next expiries" the status page and
/// `synmon report` list.
pub fn next_expiries(reg: &Registry, at: NaiveDate) -> Vec<AuditRow> {
    let mut rows: Vec<AuditRow> = reg
        .flags
        .iter()
        .filter(|f| f.state != State::Removed)
        .map(|f| row(f, at))
        .collect();
    rows.sort_by_key(|r| (r.expires.is_none(), r.expires));
    rows
}

fn row(f: &Flag, at: NaiveDate) -> AuditRow {
    let days = f.days_to_expiry(at);
    let action = match (f.state, days) {
        (State::Removed, _) | (_, None) => Action::None,
        (_, Some(d)) => Action::for_days(d),
    };
    AuditRow {
        flag: f.key.clone(),
        state: f.state.as_str(),
        owner: f.owner.clone(),
        created: f.created,
        expires: f.expires,
        days_to_expiry: days,
        action,
        due: action.is_due(),
    }
}

/// The audit as a table, with a closing count.
pub fn render_table(rows: &[AuditRow], at: NaiveDate) -> String {
    let w = rows.iter().map(|r| r.flag.len()).max().unwrap_or(4).max(4);
    let o = rows.iter().map(|r| r.owner.len()).max().unwrap_or(5).max(5);
    let mut s = format!(
        "{:<w$}  {:<10}  {:<o$}  {:<10}  {:>5}  ACTION\n",
        "FLAG", "STATE", "OWNER", "EXPIRES", "DAYS"
    );
    for r in rows {
        let expires = r.expires.map(|e| e.to_string()).unwrap_or("-".into());
        let days = r
            .days_to_expiry
            .map(|d| d.to_string())
            .unwrap_or("-".into());
        s.push_str(&format!(
            "{:<w$}  {:<10}  {:<o$}  {:<10}  {:>5}  {}\n",
            r.flag,
            r.state,
            r.owner,
            expires,
            days,
            r.action.describe(r.days_to_expiry)
        ));
    }
    let due = rows.iter().filter(|r| r.due).count();
    s.push_str(&format!("{} flag(s), {due} due at {at}\n", rows.len()));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        for (days, action) in [
            (31, Action::None),
            (30, Action::RenewOrRemove),
            (1, Action::RenewOrRemove),
            (0, Action::Expired),
            (-30, Action::Expired),
            (-31, Action::RemoveFromCode),
        ] {
            assert_eq!(Action::for_days(days), action, "{days}");
        }
    }

    #[test]
    fn next_expiries_of_the_example_registry_soonest_first() {
        let file =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flags/flag_registry.yaml");
        let at = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let (mut reg, errors) = super::super::load_files(&[file], at);
        assert!(errors.is_empty(), "{errors:?}");
        let mut gone = reg.flags[0].clone();
        gone.key = "FF_GONE".into();
        gone.state = State::Removed;
        gone.expires = None;
        reg.flags.push(gone);
        let rows: Vec<(String, Option<i64>, Action)> = next_expiries(&reg, at)
            .into_iter()
            .map(|r| (r.flag, r.days_to_expiry, r.action))
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "FF_FEED_ALIGNMENT_ENFORCE".into(),
                    Some(14),
                    Action::RenewOrRemove
                ),
                ("FF_CATEGORY_MANAGEMENT_PAGE".into(), Some(31), Action::None),
                ("FF_GOOGLE_CONNECT_SUITE".into(), Some(59), Action::None),
                ("FF_CATEGORY_QUICK_ACTIONS".into(), Some(78), Action::None),
            ]
        );
    }

    #[test]
    fn action_names_match_the_json() {
        for a in [
            Action::None,
            Action::RenewOrRemove,
            Action::Expired,
            Action::RemoveFromCode,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
    }
}
