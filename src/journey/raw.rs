//! Journey files as written. A step is a map with exactly one action key (`goto`, `click`, ...)
//! beside the common keys (`name`, `timed`, `timeout`, `until`). Keeping every action as an
//! optional field lets serde deny unknown keys and point at the exact field; validation then
//! turns it into the tagged `Action` enum.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawJourney {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[schemars(with = "Vec<RawStep>")]
    pub steps: Vec<yaml_serde::Value>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[schemars(transform = crate::config::schema::ExactlyOneKey {
    besides: &["name", "timed", "timeout", "until"],
    alone: &["use"],
})]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub timed: Option<bool>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub timeout: Option<String>,
    /// `Some(None)` is `until: null` (or `until:` with nothing after it): written, but waiting
    /// for nothing, which validation refuses instead of running the step without its wait.
    #[serde(default, deserialize_with = "present")]
    #[schemars(
        with = "RawWait",
        description = "The DOM state that ends a timed interaction (user actions and `goto`)."
    )]
    pub until: Option<Option<RawWait>>,

    #[serde(default)]
    pub goto: Option<String>,
    #[serde(default)]
    pub click: Option<String>,
    #[serde(default)]
    pub fill: Option<RawFill>,
    #[serde(default)]
    pub select: Option<RawSelect>,
    #[serde(default)]
    pub press: Option<RawPress>,
    #[serde(default)]
    pub wait_for: Option<RawWait>,
    #[serde(default)]
    pub assert_text: Option<RawAssertText>,
    #[serde(default)]
    pub assert_url: Option<RawAssertUrl>,
    #[serde(default)]
    pub screenshot: Option<String>,
    #[serde(default)]
    pub http: Option<RawHttp>,
    #[serde(default)]
    pub sql: Option<RawSql>,
    #[serde(default)]
    #[schemars(with = "Option<RawPoll>")]
    pub poll: Option<yaml_serde::Value>,
    #[serde(default, rename = "use")]
    pub use_file: Option<String>,
    #[serde(default)]
    pub capture: Option<RawCapture>,
}

/// A field that is present, even as `null`: `Some(None)`; absent (`#[serde(default)]`): `None`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWait {
    pub selector: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub visible: Option<bool>,
    #[serde(default)]
    pub gone: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFill {
    pub selector: String,
    pub value: String,
    #[serde(default)]
    pub submit: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSelect {
    pub selector: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPress {
    pub key: String,
    #[serde(default)]
    pub selector: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAssertText {
    pub selector: String,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub equals: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAssertUrl {
    pub contains: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    #[serde(default)]
    pub method: Option<String>,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// Send the browser session's cookies (default true when the journey has a browser).
    #[serde(default)]
    pub browser_cookies: Option<bool>,
    #[serde(default)]
    pub expect: Option<RawHttpExpect>,
    /// name -> JSON pointer into the response body.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttpExpect {
    #[serde(default)]
    pub status: Option<u16>,
    /// JSON pointer -> expected value.
    #[serde(default)]
    pub json: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSql {
    pub query: String,
    #[serde(default)]
    pub params: Vec<String>,
    #[serde(default)]
    pub expect: Option<RawSqlExpect>,
    /// name -> column of the first row.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSqlExpect {
    /// Expected value of the first column of the first row (compared as text).
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub min_rows: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPoll {
    #[schemars(with = "crate::config::schema::Duration")]
    pub every: String,
    #[schemars(with = "crate::config::schema::Duration")]
    pub timeout: String,
    #[schemars(with = "RawStep")]
    pub step: yaml_serde::Value,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCapture {
    pub name: String,
    pub selector: String,
    #[serde(default)]
    pub attribute: Option<String>,
}
