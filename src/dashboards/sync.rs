//! Idempotent push: each file finds its dashboard on Datadog (by the `id` the file stores, or
//! else by its title), then is created, updated or left alone. Running push twice changes
//! nothing the second time, and never creates a second dashboard with the same title.

use serde_json::Value;

use super::client::{ApiError, DatadogClient};
use super::diff::{self, Change};
use super::model::Dashboard;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Create,
    Update { id: String },
    Unchanged { id: String },
}

/// What push would do with one file.
#[derive(Debug, Clone)]
pub struct Plan {
    pub file: String,
    pub title: String,
    pub action: Action,
    pub changes: Vec<Change>,
    /// Widgets in the file (shown for a new dashboard).
    pub widgets: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "{file}: {count} dashboards on Datadog are titled \"{title}\" ({ids}): put the right one's `id` in the file"
    )]
    Ambiguous {
        file: String,
        title: String,
        count: usize,
        ids: String,
    },
}

impl SyncError {
    /// Datadog (or its contents) said no, as opposed to not being reachable or configured.
    pub fn is_refusal(&self) -> bool {
        match self {
            SyncError::Api(e) => e.is_refusal(),
            SyncError::Ambiguous { .. } => true,
        }
    }
}

impl Plan {
    /// The lines `diff` and `push` print for this file.
    pub fn render(&self) -> String {
        let mut out = match &self.action {
            Action::Create => format!(
                "{}: \"{}\": create (new dashboard, {} widgets)\n",
                self.file, self.title, self.widgets
            ),
            Action::Update { id } => format!(
                "{}: \"{}\" ({id}): update, {} change(s)\n",
                self.file,
                self.title,
                self.changes.len()
            ),
            Action::Unchanged { id } => {
                format!("{}: \"{}\" ({id}): unchanged\n", self.file, self.title)
            }
        };
        for c in &self.changes {
            out.push_str("  ");
            out.push_str(&c.to_string());
            out.push('\n');
        }
        out
    }
}

/// Decide, for every dashboard, what push would do (reads only).
pub async fn plan(
    client: &DatadogClient,
    dashboards: &[Dashboard],
) -> Result<Vec<Plan>, SyncError> {
    let mut listed = None;
    let mut plans = Vec::new();
    for d in dashboards {
        let mut remote: Option<(String, Value)> = None;
        if let Some(id) = d.json.get("id").and_then(Value::as_str)
            && let Some(v) = client.get(id).await?
        {
            remote = Some((id.to_string(), v));
        }
        if remote.is_none() {
            if listed.is_none() {
                listed = Some(client.list().await?);
            }
            let same: Vec<_> = listed
                .as_ref()
                .expect("listed above")
                .iter()
                .filter(|s| s.title == d.title)
                .collect();
            match same.as_slice() {
                [] => {}
                [one] => {
                    if let Some(v) = client.get(&one.id).await? {
                        remote = Some((one.id.clone(), v));
                    }
                }
                many => {
                    return Err(SyncError::Ambiguous {
                        file: d.file.clone(),
                        title: d.title.clone(),
                        count: many.len(),
                        ids: many
                            .iter()
                            .map(|s| s.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
        let widgets = d.json["widgets"].as_array().map_or(0, Vec::len);
        let (action, changes) = match remote {
            None => (Action::Create, Vec::new()),
            Some((id, v)) => {
                let changes = diff::diff(&diff::normalise_remote(&v), &d.json);
                if changes.is_empty() {
                    (Action::Unchanged { id }, changes)
                } else {
                    (Action::Update { id }, changes)
                }
            }
        };
        plans.push(Plan {
            file: d.file.clone(),
            title: d.title.clone(),
            action,
            changes,
            widgets,
        });
    }
    Ok(plans)
}

/// The result of applying one plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Created { id: String },
    Updated { id: String },
    Unchanged { id: String },
}

/// Apply one plan to Datadog.
pub async fn apply(
    client: &DatadogClient,
    d: &Dashboard,
    plan: &Plan,
) -> Result<Applied, ApiError> {
    let body = diff::body_of(&d.json);
    match &plan.action {
        Action::Create => client.create(&body).await.map(|id| Applied::Created { id }),
        Action::Update { id } => client
            .update(id, &body)
            .await
            .map(|()| Applied::Updated { id: id.clone() }),
        Action::Unchanged { id } => Ok(Applied::Unchanged { id: id.clone() }),
    }
}
