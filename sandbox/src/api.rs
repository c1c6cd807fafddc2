//! The JSON API under `/api`, the service health checks and the fault switches.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sqlx::types::Json as SqlJson;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{self, Claims};
use crate::copy;
use crate::db::{Db, Id, Ts, dispatch, now, rfc3339};
use crate::error::{ApiError, ApiJson, ApiResult, parse_json, read_body};
use crate::faults::Fault;
use crate::taxonomy;

type St = State<Arc<AppState>>;

/// Path parameters whose rejection is a JSON 400.
pub struct JsonPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for JsonPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| JsonPath(t))
            .map_err(|e| ApiError::new(e.status(), e.body_text()))
    }
}

/// A raw body (up to the body limit) whose rejection is JSON.
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        read_body(req, state).await.map(RawBody)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    pub id: Id,
    pub slug: String,
    pub name: String,
}

pub async fn tenant_by_slug(db: &Db, slug: &str) -> ApiResult<TenantRow> {
    let row = dispatch!(db, |p| {
        sqlx::query_as::<_, TenantRow>("SELECT id, slug, name FROM tenants WHERE slug = $1")
            .bind(slug)
            .fetch_optional(p)
            .await?
    });
    row.ok_or_else(|| ApiError::not_found(format!("unknown tenant `{slug}`")))
}

/// Authenticates an API request for `slug`: 401 without a valid token, 404 for
/// an unknown tenant, 403 for a token scoped to another tenant.
pub async fn api_auth(
    st: &AppState,
    headers: &HeaderMap,
    slug: &str,
) -> ApiResult<(Claims, TenantRow)> {
    let claims = st
        .jwt
        .from_headers(headers)
        .ok_or_else(|| ApiError::unauthorized("missing or invalid session token"))?;
    let tenant = tenant_by_slug(st.db()?, slug).await?;
    if claims.tenant_scope != tenant.slug {
        return Err(ApiError::forbidden(format!(
            "token is not scoped to tenant `{slug}`"
        )));
    }
    Ok((claims, tenant))
}

fn actor(claims: &Claims) -> Option<Id> {
    Uuid::parse_str(&claims.sub).ok().map(Id)
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Id,
    email: String,
    password_hash: String,
    slug: String,
}

/// A verified login: (user id, email, tenant slug); `None` for wrong credentials.
pub async fn authenticate(
    st: &AppState,
    email: &str,
    password: &str,
) -> ApiResult<Option<(Id, String, String)>> {
    let db = st.db()?;
    let email = email.trim().to_lowercase();
    let user = dispatch!(db, |p| {
        sqlx::query_as::<_, UserRow>(
            "SELECT u.id, u.email, u.password_hash, t.slug FROM users u \
             JOIN tenants t ON t.id = u.tenant_id WHERE u.email = $1",
        )
        .bind(&email)
        .fetch_optional(p)
        .await?
    });
    let Some(user) = user.filter(|u| auth::verify_password(&u.password_hash, password)) else {
        return Ok(None);
    };
    dispatch!(db, |p| {
        sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(Ts(now()))
            .bind(user.id)
            .execute(p)
            .await?;
    });
    Ok(Some((user.id, user.email, user.slug)))
}

#[derive(Deserialize)]
pub struct LoginReq {
    email: String,
    password: String,
}

pub async fn login(State(st): St, ApiJson(req): ApiJson<LoginReq>) -> ApiResult<Json<Value>> {
    let Some((uid, email, slug)) = authenticate(&st, &req.email, &req.password).await? else {
        return Err(ApiError::unauthorized(copy::LOGIN_ERROR));
    };
    let (token, exp) = st.jwt.issue(&uid.to_string(), &email, &slug);
    let expires_at = chrono::DateTime::from_timestamp(exp, 0)
        .map(rfc3339)
        .unwrap_or_default();
    Ok(Json(
        json!({ "token": token, "tenant": slug, "expires_at": expires_at }),
    ))
}

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok", "service": "rvp-sandbox" }))
}

pub const SERVICES: [&str; 4] = ["auth", "inventory", "business_profile", "integrations"];

pub async fn svc_healthz(
    State(st): St,
    JsonPath(service): JsonPath<String>,
) -> ApiResult<Json<Value>> {
    if !SERVICES.contains(&service.as_str()) {
        return Err(ApiError::not_found(format!("unknown service `{service}`")));
    }
    let db = st.db()?;
    dispatch!(db, |p| {
        sqlx::query("SELECT 1").execute(p).await?;
    });
    Ok(Json(json!({ "status": "ok", "service": service })))
}

#[derive(Deserialize)]
pub struct TaxonomyQuery {
    #[serde(default)]
    q: String,
    limit: Option<usize>,
}

pub async fn taxonomy(
    q: Result<Query<TaxonomyQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    let hits: Vec<Value> = taxonomy::get()
        .search(&q.q, limit)
        .into_iter()
        .map(|e| json!({ "id": e.id, "path": e.path }))
        .collect();
    Ok(Json(Value::Array(hits)))
}

#[derive(Debug, sqlx::FromRow)]
pub struct CategoryRow {
    pub id: Id,
    pub name: String,
    pub taxonomy_id: Option<i32>,
    pub taxonomy_path: Option<String>,
    pub sku_count: i64,
}

pub async fn list_categories(db: &Db, tenant: Id) -> ApiResult<Vec<CategoryRow>> {
    Ok(dispatch!(db, |p| {
        sqlx::query_as::<_, CategoryRow>(
            "SELECT c.id, c.name, m.taxonomy_id, m.taxonomy_path, \
               (SELECT count(*) FROM skus s WHERE s.category_id = c.id) AS sku_count \
             FROM categories c LEFT JOIN category_mappings m ON m.category_id = c.id \
             WHERE c.tenant_id = $1 ORDER BY c.name",
        )
        .bind(tenant)
        .fetch_all(p)
        .await?
    }))
}

pub async fn categories(
    State(st): St,
    headers: HeaderMap,
    JsonPath(slug): JsonPath<String>,
) -> ApiResult<Json<Value>> {
    let (_, tenant) = api_auth(&st, &headers, &slug).await?;
    let rows = list_categories(st.db()?, tenant.id).await?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|c| {
                json!({
                    "id": c.id, "name": c.name, "sku_count": c.sku_count,
                    "taxonomy_id": c.taxonomy_id, "path": c.taxonomy_path,
                    "mapped": c.taxonomy_id.is_some(),
                })
            })
            .collect(),
    )))
}

#[derive(Deserialize)]
pub struct MappingReq {
    taxonomy_id: i64,
}

pub async fn put_mapping(
    State(st): St,
    headers: HeaderMap,
    JsonPath((slug, category)): JsonPath<(String, String)>,
    ApiJson(req): ApiJson<MappingReq>,
) -> ApiResult<Json<Value>> {
    let (claims, tenant) = api_auth(&st, &headers, &slug).await?;
    let category = Uuid::parse_str(&category)
        .map(Id)
        .map_err(|_| ApiError::not_found("unknown category"))?;
    let tax = taxonomy::get();
    let entry = tax
        .by_id(req.taxonomy_id)
        .ok_or_else(|| ApiError::bad_request(format!("unknown taxonomy_id {}", req.taxonomy_id)))?;
    let db = st.db()?;
    let at = now();
    let actor = actor(&claims);
    let unmapped: i64 = dispatch!(db, |p| {
        let mut tx = p.begin().await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT name FROM categories WHERE id = $1 AND tenant_id = $2")
                .bind(category)
                .bind(tenant.id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(ApiError::not_found("unknown category"));
        }
        let old: Option<(i32, String)> = sqlx::query_as(
            "SELECT taxonomy_id, taxonomy_path FROM category_mappings WHERE category_id = $1",
        )
        .bind(category)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO category_mappings \
               (category_id, tenant_id, taxonomy_id, taxonomy_path, taxonomy_version, mapped_by, mapped_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (category_id) DO UPDATE SET taxonomy_id = excluded.taxonomy_id, \
               taxonomy_path = excluded.taxonomy_path, taxonomy_version = excluded.taxonomy_version, \
               mapped_by = excluded.mapped_by, mapped_at = excluded.mapped_at",
        )
        .bind(category)
        .bind(tenant.id)
        .bind(entry.id)
        .bind(&entry.path)
        .bind(&tax.version)
        .bind(actor)
        .bind(Ts(at))
        .execute(&mut *tx)
        .await?;
        let diff = json!({
            "old": old.map(|(id, path)| json!({ "taxonomy_id": id, "path": path })),
            "new": { "taxonomy_id": entry.id, "path": entry.path, "taxonomy_version": tax.version },
        });
        sqlx::query(
            "INSERT INTO audit_log (id, tenant_id, entity, entity_id, action, actor_id, timestamp, diff) \
             VALUES ($1, $2, 'category', $3, 'align', $4, $5, $6)",
        )
        .bind(Id::new())
        .bind(tenant.id)
        .bind(category.to_string())
        .bind(actor)
        .bind(Ts(at))
        .bind(SqlJson(diff))
        .execute(&mut *tx)
        .await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM categories c WHERE c.tenant_id = $1 AND NOT EXISTS \
             (SELECT 1 FROM category_mappings m WHERE m.category_id = c.id)",
        )
        .bind(tenant.id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        n
    });
    Ok(Json(json!({
        "category_id": category,
        "taxonomy_id": entry.id,
        "path": entry.path,
        "toast": !st.faults.suppress_toast(),
        "unmapped_remaining": unmapped,
    })))
}

#[derive(Debug, Clone, Default, Deserialize, sqlx::FromRow)]
pub struct Profile {
    pub name: String,
    pub address: String,
    pub phone: String,
    #[serde(default)]
    pub hours: String,
}

/// Field -> message for every invalid field (empty when the profile is valid).
pub fn validate_profile(p: &Profile) -> Vec<(&'static str, &'static str)> {
    let mut errs = Vec::new();
    let name = p.name.trim().chars().count();
    if name == 0 {
        errs.push(("name", copy::ERR_NAME_REQUIRED));
    } else if !(2..=100).contains(&name) {
        errs.push(("name", copy::ERR_NAME_LENGTH));
    }
    let address = p.address.trim().chars().count();
    if address == 0 {
        errs.push(("address", copy::ERR_ADDRESS_REQUIRED));
    } else if !(5..=200).contains(&address) {
        errs.push(("address", copy::ERR_ADDRESS_LENGTH));
    }
    let phone = p.phone.trim();
    if phone.is_empty() {
        errs.push(("phone", copy::ERR_PHONE_REQUIRED));
    } else if !plausible_phone(phone) {
        errs.push(("phone", copy::ERR_PHONE_INVALID));
    }
    if p.hours.trim().chars().count() > 200 {
        errs.push(("hours", copy::ERR_HOURS_LENGTH));
    }
    errs
}

/// 7-15 digits, an optional leading `+`, and spaces, dashes, dots or parentheses.
pub fn plausible_phone(s: &str) -> bool {
    let body = s.strip_prefix('+').unwrap_or(s);
    let allowed = body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.'));
    let digits = body.chars().filter(char::is_ascii_digit).count();
    allowed && (7..=15).contains(&digits)
}

pub async fn load_profile(db: &Db, tenant: Id) -> ApiResult<(Profile, bool)> {
    let row: Option<(String, String, String, String, bool)> = dispatch!(db, |p| {
        sqlx::query_as(
            "SELECT name, address, phone, hours, nap_complete FROM profiles WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(p)
        .await?
    });
    Ok(row
        .map(|(name, address, phone, hours, nap)| {
            (
                Profile {
                    name,
                    address,
                    phone,
                    hours,
                },
                nap,
            )
        })
        .unwrap_or_default())
}

pub async fn get_profile(
    State(st): St,
    headers: HeaderMap,
    JsonPath(slug): JsonPath<String>,
) -> ApiResult<Json<Value>> {
    let (_, tenant) = api_auth(&st, &headers, &slug).await?;
    let (p, nap) = load_profile(st.db()?, tenant.id).await?;
    Ok(Json(json!({
        "name": p.name, "address": p.address, "phone": p.phone, "hours": p.hours,
        "nap_complete": nap,
    })))
}

pub async fn put_profile(
    State(st): St,
    headers: HeaderMap,
    JsonPath(slug): JsonPath<String>,
    ApiJson(req): ApiJson<Profile>,
) -> ApiResult<Json<Value>> {
    let (claims, tenant) = api_auth(&st, &headers, &slug).await?;
    let errs = validate_profile(&req);
    if !errs.is_empty() {
        let fields: serde_json::Map<String, Value> = errs
            .iter()
            .map(|(k, v)| ((*k).to_string(), json!(v)))
            .collect();
        return Err(ApiError::bad_request("invalid profile").with_details(Value::Object(fields)));
    }
    let p = Profile {
        name: req.name.trim().to_string(),
        address: req.address.trim().to_string(),
        phone: req.phone.trim().to_string(),
        hours: req.hours.trim().to_string(),
    };
    // Validation above requires name, address and phone: a saved profile is NAP-complete.
    let nap_complete = validate_profile(&p).is_empty();
    let db = st.db()?;
    let (old, _) = load_profile(db, tenant.id).await?;
    let at = now();
    let diff = json!({
        "old": { "name": old.name, "address": old.address, "phone": old.phone, "hours": old.hours },
        "new": { "name": p.name, "address": p.address, "phone": p.phone, "hours": p.hours },
    });
    dispatch!(db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO profiles (tenant_id, name, address, phone, hours, nap_complete, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id) DO UPDATE SET name = excluded.name, address = excluded.address, \
               phone = excluded.phone, hours = excluded.hours, nap_complete = excluded.nap_complete, \
               updated_at = excluded.updated_at",
        )
        .bind(tenant.id)
        .bind(&p.name)
        .bind(&p.address)
        .bind(&p.phone)
        .bind(&p.hours)
        .bind(nap_complete)
        .bind(Ts(at))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO audit_log (id, tenant_id, entity, entity_id, action, actor_id, timestamp, diff) \
             VALUES ($1, $2, 'profile', $3, 'update', $4, $5, $6)",
        )
        .bind(Id::new())
        .bind(tenant.id)
        .bind(tenant.id.to_string())
        .bind(actor(&claims))
        .bind(Ts(at))
        .bind(SqlJson(diff))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    });
    Ok(Json(json!({
        "nap_complete": nap_complete,
        "toast": !st.faults.suppress_toast(),
    })))
}

#[derive(Debug, sqlx::FromRow)]
pub struct SkuRow {
    pub sku: String,
    pub title: String,
    pub price_cents: i32,
    pub quantity: i32,
    pub category: Option<String>,
    pub taxonomy_path: Option<String>,
}

pub async fn list_skus(db: &Db, tenant: Id, in_stock_only: bool) -> ApiResult<Vec<SkuRow>> {
    let sql = if in_stock_only {
        "SELECT s.sku, s.title, s.price_cents, s.quantity, c.name AS category, m.taxonomy_path \
         FROM skus s LEFT JOIN categories c ON c.id = s.category_id \
         LEFT JOIN category_mappings m ON m.category_id = s.category_id \
         WHERE s.tenant_id = $1 AND s.quantity > 0 ORDER BY s.sku"
    } else {
        "SELECT s.sku, s.title, s.price_cents, s.quantity, c.name AS category, m.taxonomy_path \
         FROM skus s LEFT JOIN categories c ON c.id = s.category_id \
         LEFT JOIN category_mappings m ON m.category_id = s.category_id \
         WHERE s.tenant_id = $1 ORDER BY s.sku"
    };
    Ok(dispatch!(db, |p| {
        sqlx::query_as::<_, SkuRow>(sql)
            .bind(tenant)
            .fetch_all(p)
            .await?
    }))
}

pub fn price(cents: i32) -> String {
    format!("{}.{:02} USD", cents / 100, cents % 100)
}

pub async fn skus(
    State(st): St,
    headers: HeaderMap,
    JsonPath(slug): JsonPath<String>,
) -> ApiResult<Json<Value>> {
    let (_, tenant) = api_auth(&st, &headers, &slug).await?;
    let rows = list_skus(st.db()?, tenant.id, false).await?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|s| {
                json!({ "sku": s.sku, "title": s.title, "price_cents": s.price_cents,
                        "quantity": s.quantity, "category": s.category })
            })
            .collect(),
    )))
}

pub async fn swis_preview(
    State(st): St,
    headers: HeaderMap,
    JsonPath(slug): JsonPath<String>,
) -> ApiResult<Json<Value>> {
    let (_, tenant) = api_auth(&st, &headers, &slug).await?;
    let db = st.db()?;
    let rows = list_skus(db, tenant.id, true).await?;
    let (profile, _) = load_profile(db, tenant.id).await?;
    let products: Vec<Value> = rows
        .into_iter()
        .map(|s| {
            json!({
                "sku": s.sku, "title": s.title, "price": price(s.price_cents),
                "availability": "in_stock", "quantity": s.quantity,
                "google_product_category": s.taxonomy_path,
            })
        })
        .collect();
    Ok(Json(json!({
        "tenant": tenant.slug,
        "store": { "name": profile.name, "address": profile.address, "hours": profile.hours },
        "count": products.len(),
        "products": products,
    })))
}

#[derive(Deserialize, Default)]
struct FeedPushReq {
    sku: Option<String>,
}

pub async fn feed_push(
    State(st): St,
    headers: HeaderMap,
    JsonPath(slug): JsonPath<String>,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let (_, tenant) = api_auth(&st, &headers, &slug).await?;
    let req: FeedPushReq = if body.iter().all(u8::is_ascii_whitespace) {
        FeedPushReq::default()
    } else {
        parse_json(&body)?
    };
    let db = st.db()?;
    let sku = req.sku.map(|s| s.trim().to_string());
    if let Some(sku) = &sku {
        let found: Option<i32> = dispatch!(db, |p| {
            sqlx::query_scalar("SELECT quantity FROM skus WHERE tenant_id = $1 AND sku = $2")
                .bind(tenant.id)
                .bind(sku)
                .fetch_optional(p)
                .await?
        });
        if found.is_none() {
            return Err(ApiError::bad_request(format!("unknown sku `{sku}`")));
        }
    }
    let id = Id::new();
    let at = Ts(now());
    dispatch!(db, |p| {
        sqlx::query(
            "INSERT INTO feed_push_jobs (id, tenant_id, sku, job_status, retry_count, next_retry, created_at) \
             VALUES ($1, $2, $3, 'queued', 0, $4, $4)",
        )
        .bind(id)
        .bind(tenant.id)
        .bind(&sku)
        .bind(at)
        .execute(p)
        .await?;
    });
    st.worker_wake.notify_one();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "status": "queued" })),
    )
        .into_response())
}

#[derive(Debug, sqlx::FromRow)]
pub struct JobRow {
    pub id: Id,
    pub tenant: String,
    pub sku: Option<String>,
    pub job_status: Option<String>,
    pub retry_count: Option<i32>,
    pub last_attempt: Option<Ts>,
    pub next_retry: Option<Ts>,
    pub error_message: Option<String>,
    pub created_at: Option<Ts>,
}

fn ts_json(t: Option<Ts>) -> Value {
    t.map(|t| Value::String(rfc3339(t.0)))
        .unwrap_or(Value::Null)
}

fn parse_job_id(s: &str) -> ApiResult<Id> {
    Uuid::parse_str(s)
        .map(Id)
        .map_err(|_| ApiError::bad_request("job id must be a UUID"))
}

pub async fn feed_job(
    State(st): St,
    headers: HeaderMap,
    JsonPath((slug, id)): JsonPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (_, tenant) = api_auth(&st, &headers, &slug).await?;
    let id = parse_job_id(&id)?;
    let job = dispatch!(st.db()?, |p| {
        sqlx::query_as::<_, JobRow>(
            "SELECT j.id, t.slug AS tenant, j.sku, j.job_status, j.retry_count, j.last_attempt, \
               j.next_retry, j.error_message, j.created_at \
             FROM feed_push_jobs j JOIN tenants t ON t.id = j.tenant_id \
             WHERE j.id = $1 AND j.tenant_id = $2",
        )
        .bind(id)
        .bind(tenant.id)
        .fetch_optional(p)
        .await?
    })
    .ok_or_else(|| ApiError::not_found("unknown feed job"))?;
    Ok(Json(json!({
        "id": job.id,
        "tenant": job.tenant,
        "sku": job.sku,
        "status": job.job_status,
        "retry_count": job.retry_count.unwrap_or(0),
        "last_attempt": ts_json(job.last_attempt),
        "next_retry": ts_json(job.next_retry),
        "error_message": job.error_message,
        "created_at": ts_json(job.created_at),
    })))
}

#[derive(Debug, sqlx::FromRow)]
struct AttemptRow {
    attempt: i32,
    started_at: Ts,
    finished_at: Ts,
    outcome: String,
    error_message: Option<String>,
    next_retry: Option<Ts>,
}

pub async fn feed_job_attempts(
    State(st): St,
    headers: HeaderMap,
    JsonPath((slug, id)): JsonPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (_, tenant) = api_auth(&st, &headers, &slug).await?;
    let id = parse_job_id(&id)?;
    let db = st.db()?;
    let rows = dispatch!(db, |p| {
        sqlx::query_as::<_, AttemptRow>(
            "SELECT attempt, started_at, finished_at, outcome, error_message, next_retry \
             FROM feed_push_attempts WHERE job_id = $1 AND tenant_id = $2 ORDER BY attempt",
        )
        .bind(id)
        .bind(tenant.id)
        .fetch_all(p)
        .await?
    });
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|a| {
                json!({
                    "attempt": a.attempt,
                    "started_at": rfc3339(a.started_at.0),
                    "finished_at": rfc3339(a.finished_at.0),
                    "outcome": a.outcome,
                    "error_message": a.error_message,
                    "next_retry": ts_json(a.next_retry),
                })
            })
            .collect(),
    )))
}

#[derive(Deserialize)]
pub struct QaEventReq {
    action: String,
    #[serde(default)]
    page: String,
}

pub async fn qa_event(
    State(st): St,
    headers: HeaderMap,
    JsonPath(slug): JsonPath<String>,
    ApiJson(req): ApiJson<QaEventReq>,
) -> ApiResult<Response> {
    let (claims, tenant) = api_auth(&st, &headers, &slug).await?;
    let action = req.action.trim();
    if action.is_empty() || action.len() > 64 {
        return Err(ApiError::bad_request("`action` must be 1 to 64 characters"));
    }
    let page: String = req.page.chars().take(200).collect();
    let id = Id::new();
    dispatch!(st.db()?, |p| {
        sqlx::query(
            "INSERT INTO qa_events (id, tenant_id, user_id, action, page, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(tenant.id)
        .bind(actor(&claims))
        .bind(action)
        .bind(&page)
        .bind(Ts(now()))
        .execute(p)
        .await?;
    });
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

pub async fn business_metrics(State(st): St) -> ApiResult<Json<Value>> {
    let db = st.db()?;
    Ok(Json(crate::metrics::compute(db).await?))
}

fn admin_check(st: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let Some(token) = &st.config.admin_token else {
        return Err(ApiError::not_found(
            "fault API disabled (no admin token configured)",
        ));
    };
    match auth::bearer(headers) {
        Some(t) if t == token => Ok(()),
        _ => Err(ApiError::unauthorized("admin bearer token required")),
    }
}

fn active_json(st: &AppState) -> Json<Value> {
    Json(json!({ "active": st.faults.list() }))
}

pub async fn faults_list(State(st): St, headers: HeaderMap) -> ApiResult<Json<Value>> {
    admin_check(&st, &headers)?;
    Ok(active_json(&st))
}

pub async fn faults_add(
    State(st): St,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<Value>> {
    admin_check(&st, &headers)?;
    let v: Value = parse_json(&body)?;
    let faults = match &v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, f)| Fault::parse(f).map_err(|e| format!("fault [{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>(),
        other => Fault::parse(other).map(|f| vec![f]),
    }
    .map_err(ApiError::bad_request)?;
    tracing::info!(?faults, "faults added");
    st.faults.add(faults);
    Ok(active_json(&st))
}

pub async fn faults_clear(State(st): St, headers: HeaderMap) -> ApiResult<Json<Value>> {
    admin_check(&st, &headers)?;
    st.faults.clear();
    tracing::info!("faults cleared");
    Ok(active_json(&st))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}
