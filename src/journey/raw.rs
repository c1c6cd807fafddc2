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
    /// `WxH` in CSS pixels.
    #[serde(default)]
    pub viewport: Option<String>,
    /// A device preset (`iphone-14`, `pixel-7`, ...).
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub network: Option<RawNetwork>,
    #[schemars(with = "Vec<RawStep>")]
    pub steps: Vec<yaml_serde::Value>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// `3g`, `4g` or `{latency_ms, down_kbps, up_kbps}`.
    #[serde(default)]
    pub throttle: Option<OrString<RawThrottle>>,
    #[serde(default)]
    pub offline: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawThrottle {
    pub latency_ms: u64,
    pub down_kbps: u64,
    pub up_kbps: u64,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[schemars(transform = crate::config::schema::ExactlyOneKey {
    besides: &["name", "timed", "timeout", "until", "reuse_session"],
    alone: &["use"],
    alone_with: &["reuse_session"],
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
    /// Beside `use`, on a journey's first step: the included steps log in, and a run may skip
    /// them with the cookies the last run that did them left, for at most this long (`10m`).
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub reuse_session: Option<String>,
    #[serde(default)]
    pub capture: Option<RawCapture>,
    #[serde(default)]
    pub script: Option<RawScript>,
    #[serde(default)]
    pub hover: Option<String>,
    #[serde(default)]
    pub upload: Option<RawUpload>,
    #[serde(default)]
    pub frame: Option<String>,
    #[serde(default)]
    pub switch_to: Option<RawSwitchTo>,
    #[serde(default)]
    pub set_cookie: Option<RawSetCookie>,
    #[serde(default)]
    pub set_storage: Option<RawSetStorage>,
    #[serde(default)]
    pub clear_cookies: Option<bool>,
    #[serde(default)]
    pub assert: Option<RawAssert>,
    #[serde(default)]
    pub wait_for_request: Option<RawWaitForRequest>,
}

/// A key written either as a plain string (the shorthand) or as a map of its full form, e.g.
/// `assert_url: /done` or `assert_url: { matches: "/done/R[0-9]+$" }`. Hand-written rather than
/// `#[serde(untagged)]` so that a mistake inside the map keeps its own message and position
/// ("unknown field `containz`") instead of "did not match any variant".
#[derive(Debug)]
pub enum OrString<T> {
    Short(String),
    Full(T),
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for OrString<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("{}_or_string", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let full = generator.subschema_for::<T>();
        schemars::json_schema!({
            "anyOf": [{"type": "string", "description": "The shorthand: `contains` for a matcher, a preset name for a throttle."}, full]
        })
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrString<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = OrString<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a map")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(OrString::Short(s.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                m: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(m)).map(OrString::Full)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `equals`, `contains` or `matches` (a regular expression), exactly one.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    #[serde(default)]
    pub equals: Option<String>,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub matches: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScript {
    /// A function body run in the page; `return` gives its result (or `done(value)` when
    /// `async: true`); `args` is the list given below.
    pub js: String,
    #[serde(default)]
    pub args: Vec<serde_json::Value>,
    #[serde(default, rename = "async")]
    pub is_async: Option<bool>,
    #[serde(default)]
    pub capture: Option<String>,
    #[serde(default)]
    pub expect: Option<RawJsonExpect>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawJsonExpect {
    /// Where in the result (a JSON pointer; default: the whole result).
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    #[serde(default)]
    pub matches: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpload {
    pub selector: String,
    /// Relative to the journey file's folder.
    pub file: String,
}

/// `new_window`, a window's index (0: the run's first tab), or `{ title: ... }`.
#[derive(Debug)]
pub enum RawSwitchTo {
    Named(String),
    Index(u64),
    Title(RawSwitchTitle),
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSwitchTitle {
    pub title: String,
}

impl schemars::JsonSchema for RawSwitchTo {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RawSwitchTo".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let title = generator.subschema_for::<RawSwitchTitle>();
        schemars::json_schema!({
            "anyOf": [
                {"type": "string", "enum": ["new_window"]},
                {"type": "integer", "minimum": 0},
                title
            ]
        })
    }
}

impl<'de> Deserialize<'de> for RawSwitchTo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawSwitchTo;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`new_window`, a window index or `{ title: ... }`")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(RawSwitchTo::Named(s.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(RawSwitchTo::Index(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
                u64::try_from(n).map(RawSwitchTo::Index).map_err(|_| {
                    E::invalid_value(
                        serde::de::Unexpected::Signed(n),
                        &"a window index (0, 1, ...)",
                    )
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                m: A,
            ) -> Result<Self::Value, A::Error> {
                RawSwitchTitle::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(RawSwitchTo::Title)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSetCookie {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub secure: Option<bool>,
    #[serde(default)]
    pub http_only: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSetStorage {
    pub key: String,
    pub value: String,
    /// `local` (default) or `session`.
    #[serde(default)]
    pub area: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAssert {
    pub selector: String,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub attribute: Option<RawAttribute>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub checked: Option<bool>,
    #[serde(default)]
    pub visible: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAttribute {
    pub name: String,
    #[serde(default)]
    pub equals: Option<String>,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub matches: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWaitForRequest {
    pub url_matches: String,
    #[serde(default)]
    pub status: Option<u16>,
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
    #[serde(default)]
    pub matches: Option<String>,
}

/// `assert_url: text` (contains) or `assert_url: { equals | contains | matches }`.
pub type RawAssertUrl = OrString<RawMatch>;

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
