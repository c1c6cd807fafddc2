//! Seed data: the `synthetic` monitoring tenant and ten pilot tenants (the pilot cohort)
//! with SKUs, categories (partly mapped), feedback, historical feed jobs,
//! Merchant Center reviews, OAuth attempts, Quick Actions usage and taxonomy
//! versions, so every business metric has a non-trivial value from SQL.
//!
//! Seeding is deterministic (fixed RNG seed) apart from timestamps, which are
//! relative to the moment of seeding. It runs only on an empty database.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::types::Json as SqlJson;

use crate::auth::{hash_password, verify_password};
use crate::db::{Db, Id, Ts, dispatch, now};
use crate::taxonomy;

pub const SYNTHETIC_SLUG: &str = "synthetic";
pub const SYNTHETIC_EMAIL: &str = "synthetic@rvp.test";
/// Password of every pilot user (`owner@pilot-01.rvp.test`, ...); for the demo only.
pub const PILOT_PASSWORD: &str = "pilot-demo";

struct Pilot {
    slug: &'static str,
    name: &'static str,
    segment: &'static str,
    locations: i32,
    industry: &'static str,
}

const PILOTS: &[Pilot] = &[
    Pilot {
        slug: "pilot-01",
        name: "Maple Street Hardware",
        segment: "single_location",
        locations: 1,
        industry: "hardware",
    },
    Pilot {
        slug: "pilot-02",
        name: "Trailhead Outfitters",
        segment: "single_location",
        locations: 1,
        industry: "sporting_goods",
    },
    Pilot {
        slug: "pilot-03",
        name: "Happy Paws Pet Supply",
        segment: "single_location",
        locations: 1,
        industry: "pet_supplies",
    },
    Pilot {
        slug: "pilot-04",
        name: "Hearth & Home Goods",
        segment: "small_chain",
        locations: 3,
        industry: "home_goods",
    },
    Pilot {
        slug: "pilot-05",
        name: "Riverside Hardware Co.",
        segment: "small_chain",
        locations: 2,
        industry: "hardware",
    },
    Pilot {
        slug: "pilot-06",
        name: "Summit Sports",
        segment: "small_chain",
        locations: 4,
        industry: "sporting_goods",
    },
    Pilot {
        slug: "pilot-07",
        name: "Whiskers & Tails",
        segment: "small_chain",
        locations: 5,
        industry: "pet_supplies",
    },
    Pilot {
        slug: "pilot-08",
        name: "Cedar Lane Home",
        segment: "small_chain",
        locations: 3,
        industry: "home_goods",
    },
    Pilot {
        slug: "pilot-09",
        name: "BuildRight Supply",
        segment: "large_chain",
        locations: 14,
        industry: "hardware",
    },
    Pilot {
        slug: "pilot-10",
        name: "Fetch Pet Centers",
        segment: "large_chain",
        locations: 22,
        industry: "pet_supplies",
    },
];

/// Store categories per industry with the Google taxonomy id they belong to.
fn categories_for(industry: &str) -> &'static [(&'static str, i32)] {
    match industry {
        "hardware" => &[
            ("Nails", 2408),
            ("Screws", 2251),
            ("Nuts & Bolts", 1739),
            ("Paint", 1361),
            ("Primers", 2058),
            ("Wood Stains", 1648),
            ("Hinges", 1771),
            ("Locks & Latches", 503730),
            ("Tool Boxes", 3980),
            ("Work Benches", 3919),
            ("Thermostats", 1897),
            ("Shower Heads", 581),
        ],
        "sporting_goods" => &[
            ("Bicycles", 1026),
            ("Bike Helmets", 1029),
            ("Fishing Rods", 4927),
            ("Fishing Reels", 4926),
            ("Lures & Baits", 3603),
            ("Golf Balls", 1045),
            ("Golf Clubs", 1046),
            ("Golf Gloves", 4466),
            ("Archery Targets", 3883),
            ("Tree Stands", 3748),
            ("Saddles", 2210),
            ("Tackle Boxes", 1041),
        ],
        "pet_supplies" => &[
            ("Dog Food", 3530),
            ("Dog Toys", 5010),
            ("Dog Beds", 4434),
            ("Cat Food", 3367),
            ("Cat Litter", 4999),
            ("Cat Toys", 5001),
            ("Bird Food", 4990),
            ("Fish Food", 5024),
            ("Aquariums", 3238),
            ("Leashes", 6249),
            ("Collars & Harnesses", 6250),
            ("Small Animal Bedding", 5014),
        ],
        _ => &[
            ("Coffee Tables", 1395),
            ("End Tables", 1549),
            ("Nightstands", 462),
            ("Sofas", 460),
            ("Bookcases", 465),
            ("Wall Shelves", 6372),
            ("Folding Tables", 4080),
            ("Patio Tables", 2684),
            ("Door Knobs", 1356),
            ("Cabinet Pulls", 4700),
            ("Door Bells", 2972),
            ("Deck Boxes", 7310),
        ],
    }
}

const ADJECTIVES: &[&str] = &[
    "Classic",
    "Pro",
    "Heavy-Duty",
    "Compact",
    "Premium",
    "Everyday",
    "Deluxe",
    "Eco",
    "Outdoor",
    "Value",
];
const FEEDBACK: &[&str] = &[
    "Alignment drawer saves us a lot of time",
    "Quick Actions footer is handy",
    "Feed push status is clear",
    "Would like bulk alignment",
    "Taxonomy search found everything we needed",
    "Profile badge helps us keep NAP data right",
    "Sync took longer than expected once",
];
const DISAPPROVAL_REASONS: &[&str] = &["Missing GTIN", "Image too small", "Price mismatch"];
const OAUTH_ERRORS: &[&str] = &["access_denied", "invalid_grant", "redirect_uri_mismatch"];
const QA_ACTIONS: &[&str] = &["align_categories", "edit_profile", "push_feed"];

struct TenantR(Id, String, String, &'static str, i32, String, Ts);
struct UserR(Id, Id, String, String, Option<Ts>, Ts);
struct CategoryR(Id, Id, String, Ts);
struct MappingR(Id, Id, i32, String, String, Option<Id>, Ts);
struct SkuR(Id, Id, String, String, Option<Id>, i32, i32, Ts);
struct ProfileR(Id, String, String, String, String, bool, Ts);
struct ApprovalR(Id, Id, String, &'static str, Option<&'static str>, Ts);
struct OauthR(Id, Id, &'static str, Option<&'static str>, Ts);
struct QaR(Id, Id, Id, &'static str, String, Ts);
struct JobR(
    Id,
    Id,
    Option<String>,
    &'static str,
    i32,
    Option<Ts>,
    Option<Ts>,
    Option<String>,
    Ts,
);
struct AuditR(
    Id,
    Id,
    &'static str,
    String,
    &'static str,
    Option<Id>,
    Ts,
    serde_json::Value,
);
struct FeedbackR(Id, Id, serde_json::Value, i32, Ts);

#[derive(Default)]
struct Seed {
    tenants: Vec<TenantR>,
    users: Vec<UserR>,
    categories: Vec<CategoryR>,
    mappings: Vec<MappingR>,
    skus: Vec<SkuR>,
    profiles: Vec<ProfileR>,
    approvals: Vec<ApprovalR>,
    oauth: Vec<OauthR>,
    qa: Vec<QaR>,
    jobs: Vec<JobR>,
    audit: Vec<AuditR>,
    feedback: Vec<FeedbackR>,
}

fn ago(t: DateTime<Utc>, rng: &mut StdRng, max_secs: i64) -> Ts {
    Ts(t - Duration::seconds(rng.random_range(60..max_secs.max(61))))
}

fn build(t0: DateTime<Utc>, synthetic_password: &str) -> Seed {
    let mut rng = StdRng::seed_from_u64(0x5eed_2025);
    let tax = taxonomy::get();
    let mut s = Seed::default();
    let day = 86_400;

    // The synthetic monitoring tenant: a few categories (two unmapped), ten SKUs,
    // an incomplete profile. No business history.
    let syn = Id::new();
    s.tenants.push(TenantR(
        syn,
        SYNTHETIC_SLUG.into(),
        "Synthetic Monitoring Store".into(),
        "synthetic",
        1,
        "hardware".into(),
        Ts(t0),
    ));
    let syn_user = Id::new();
    s.users.push(UserR(
        syn_user,
        syn,
        SYNTHETIC_EMAIL.into(),
        hash_password(synthetic_password),
        None,
        Ts(t0),
    ));
    let syn_cats: [(&str, Option<i32>); 4] = [
        ("Fasteners", Some(500054)),
        ("Paint", Some(1361)),
        ("Plumbing", None),
        ("Power Tools", None),
    ];
    let mut syn_cat_ids = Vec::new();
    for (name, tid) in syn_cats {
        let cid = Id::new();
        syn_cat_ids.push(cid);
        s.categories.push(CategoryR(cid, syn, name.into(), Ts(t0)));
        if let Some(e) = tid.and_then(|id| tax.by_id(id.into())) {
            s.mappings.push(MappingR(
                cid,
                syn,
                e.id,
                e.path.clone(),
                tax.version.clone(),
                Some(syn_user),
                Ts(t0),
            ));
        }
    }
    for i in 0..10 {
        let cat = syn_cat_ids[i % syn_cat_ids.len()];
        let name = syn_cats[i % syn_cats.len()].0;
        s.skus.push(SkuR(
            Id::new(),
            syn,
            format!("SYN-{:04}", i + 1),
            format!("Synthetic {name} item {}", i + 1),
            Some(cat),
            499 + 100 * i as i32,
            5 + i as i32,
            Ts(t0),
        ));
    }
    s.profiles.push(ProfileR(
        syn,
        "Synthetic Monitoring Store".into(),
        "1 Probe Way, Testville".into(),
        String::new(),
        "Mon-Sun 00:00-24:00".into(),
        false,
        Ts(t0),
    ));

    for (n, p) in PILOTS.iter().enumerate() {
        let tid = Id::new();
        let created = Ts(t0 - Duration::days(90 + n as i64));
        s.tenants.push(TenantR(
            tid,
            p.slug.into(),
            p.name.into(),
            p.segment,
            p.locations,
            p.industry.into(),
            created,
        ));

        let mut users = Vec::new();
        for role in ["owner", "manager", "staff"] {
            let uid = Id::new();
            users.push(uid);
            let last_login = Some(ago(t0, &mut rng, 14 * day));
            s.users.push(UserR(
                uid,
                tid,
                format!("{role}@{}.rvp.test", p.slug),
                hash_password(PILOT_PASSWORD),
                last_login,
                created,
            ));
            if rng.random_bool(0.7) {
                for _ in 0..rng.random_range(1..=6) {
                    let action = QA_ACTIONS[rng.random_range(0..QA_ACTIONS.len())];
                    s.qa.push(QaR(
                        Id::new(),
                        tid,
                        uid,
                        action,
                        format!("/t/{}/categories", p.slug),
                        ago(t0, &mut rng, 28 * day),
                    ));
                }
            }
        }

        let cats = categories_for(p.industry);
        let unmapped = rng.random_range(1..=3);
        let mut cat_ids = Vec::new();
        for (i, (name, tax_id)) in cats.iter().enumerate() {
            let cid = Id::new();
            cat_ids.push(cid);
            let c_created = t0 - Duration::seconds(rng.random_range(20 * day..60 * day));
            s.categories
                .push(CategoryR(cid, tid, (*name).into(), Ts(c_created)));
            s.audit.push(AuditR(
                Id::new(),
                tid,
                "category",
                cid.to_string(),
                "create",
                Some(users[0]),
                Ts(c_created),
                json!({"old": null, "new": {"name": name}}),
            ));
            if i < cats.len() - unmapped
                && let Some(e) = tax.by_id((*tax_id).into())
            {
                // Creation -> alignment: log-normal around a minute.
                let z: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
                let secs = (55.0 * (0.5 * z).exp()).clamp(8.0, 600.0);
                let aligned = c_created + Duration::milliseconds((secs * 1000.0) as i64);
                s.mappings.push(MappingR(
                    cid,
                    tid,
                    e.id,
                    e.path.clone(),
                    tax.version.clone(),
                    Some(users[0]),
                    Ts(aligned),
                ));
                s.audit.push(AuditR(Id::new(), tid, "category", cid.to_string(), "align", Some(users[0]), Ts(aligned),
                    json!({"old": null, "new": {"taxonomy_id": e.id, "path": e.path, "taxonomy_version": tax.version}})));
            }
        }

        let n_skus = match p.segment {
            "single_location" => rng.random_range(110..=130),
            "small_chain" => rng.random_range(140..=200),
            _ => rng.random_range(300..=360),
        };
        let prefix = format!("P{:02}", n + 1);
        for i in 0..n_skus {
            let ci = rng.random_range(0..cats.len());
            let qty = if rng.random_bool(0.85) {
                rng.random_range(1..=80)
            } else {
                0
            };
            let sku = format!("{prefix}-{:05}", i + 1);
            let title = format!(
                "{} {} {}",
                ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
                cats[ci].0,
                i + 1
            );
            if qty > 0 {
                let approved = rng.random_bool(0.965);
                let (status, reason) = if approved {
                    ("approved", None)
                } else {
                    (
                        "disapproved",
                        Some(DISAPPROVAL_REASONS[rng.random_range(0..DISAPPROVAL_REASONS.len())]),
                    )
                };
                s.approvals.push(ApprovalR(
                    tid,
                    Id::new(),
                    sku.clone(),
                    status,
                    reason,
                    ago(t0, &mut rng, 20 * day),
                ));
            }
            s.skus.push(SkuR(
                Id::new(),
                tid,
                sku,
                title,
                Some(cat_ids[ci]),
                rng.random_range(199..=49_999),
                qty,
                created,
            ));
        }

        s.profiles.push(ProfileR(
            tid,
            p.name.into(),
            format!("{} Main Street, Springfield", 100 + n),
            format!("+1 555 010 {:04}", 1000 + n),
            "Mon-Sat 08:00-19:00".into(),
            true,
            created,
        ));

        // Historical feed jobs over the last 20 hours: mostly successes.
        for _ in 0..rng.random_range(15..=30) {
            let created_at = t0 - Duration::seconds(rng.random_range(600..20 * 3600));
            let last = Some(Ts(
                created_at + Duration::milliseconds(rng.random_range(40..400))
            ));
            let sku = rng
                .random_bool(0.3)
                .then(|| format!("{prefix}-{:05}", rng.random_range(1..=n_skus)));
            if rng.random_bool(0.965) {
                s.jobs.push(JobR(
                    Id::new(),
                    tid,
                    sku,
                    "success",
                    0,
                    last,
                    None,
                    None,
                    Ts(created_at),
                ));
            } else {
                s.jobs.push(JobR(Id::new(), tid, sku, "failed", 5, last, None,
                    Some("gave up after 5 attempts; last error: Merchant Center push failed: upstream timeout".into()), Ts(created_at)));
            }
        }
        // A few jobs waiting for a retry far enough ahead not to run during a test.
        if matches!(p.slug, "pilot-05" | "pilot-09" | "pilot-10") {
            let next = Some(Ts(t0 + Duration::minutes(rng.random_range(40..55))));
            s.jobs.push(JobR(
                Id::new(),
                tid,
                None,
                "queued",
                2,
                Some(Ts(t0 - Duration::minutes(5))),
                next,
                Some("Merchant Center push failed: upstream timeout (attempt 2 of 5)".into()),
                Ts(t0 - Duration::minutes(7)),
            ));
        }

        for _ in 0..rng.random_range(6..=12) {
            let r: f64 = rng.random();
            let score = if r < 0.5 {
                5
            } else if r < 0.88 {
                4
            } else if r < 0.95 {
                3
            } else if r < 0.99 {
                2
            } else {
                1
            };
            let comment = FEEDBACK[rng.random_range(0..FEEDBACK.len())];
            s.feedback.push(FeedbackR(
                Id::new(),
                tid,
                json!({"comment": comment, "channel": "email"}),
                score,
                ago(t0, &mut rng, 28 * day),
            ));
        }

        for _ in 0..rng.random_range(15..=30) {
            let err = rng
                .random_bool(0.05)
                .then(|| OAUTH_ERRORS[rng.random_range(0..OAUTH_ERRORS.len())]);
            s.oauth.push(OauthR(
                Id::new(),
                tid,
                if err.is_some() { "error" } else { "success" },
                err,
                ago(t0, &mut rng, 28 * day),
            ));
        }
    }
    s
}

macro_rules! insert_rows {
    ($tx:ident, $sql:expr, $rows:expr, |$b:ident, $r:ident| $push:expr) => {
        for chunk in $rows.chunks(400) {
            let mut qb = sqlx::QueryBuilder::new($sql);
            qb.push_values(chunk, |mut $b, $r| {
                $push;
            });
            qb.build().execute(&mut *$tx).await?;
        }
    };
}

/// Seeds an empty database; on every start makes sure the synthetic user's
/// password matches the configuration. Returns the synthetic tenant's id.
pub async fn ensure(db: &Db, synthetic_password: &str) -> anyhow::Result<Id> {
    let tenants: i64 = dispatch!(db, |p| {
        sqlx::query_scalar("SELECT count(*) FROM tenants")
            .fetch_one(p)
            .await?
    });
    if tenants == 0 {
        let t0 = now();
        let s = build(t0, synthetic_password);
        dispatch!(db, |p| {
            let mut tx = p.begin().await?;
            insert_rows!(
                tx,
                "INSERT INTO tenants (id, slug, name, segment, locations, industry, created_at) ",
                s.tenants,
                |b, r| {
                    b.push_bind(r.0)
                        .push_bind(r.1.clone())
                        .push_bind(r.2.clone())
                        .push_bind(r.3)
                        .push_bind(r.4)
                        .push_bind(r.5.clone())
                        .push_bind(r.6)
                }
            );
            insert_rows!(
                tx,
                "INSERT INTO users (id, tenant_id, email, password_hash, last_login_at, created_at) ",
                s.users,
                |b, r| {
                    b.push_bind(r.0)
                        .push_bind(r.1)
                        .push_bind(r.2.clone())
                        .push_bind(r.3.clone())
                        .push_bind(r.4)
                        .push_bind(r.5)
                }
            );
            insert_rows!(
                tx,
                "INSERT INTO categories (id, tenant_id, name, created_at) ",
                s.categories,
                |b, r| {
                    b.push_bind(r.0)
                        .push_bind(r.1)
                        .push_bind(r.2.clone())
                        .push_bind(r.3)
                }
            );
            insert_rows!(
                tx,
                "INSERT INTO category_mappings (category_id, tenant_id, taxonomy_id, taxonomy_path, taxonomy_version, mapped_by, mapped_at) ",
                s.mappings,
                |b, r| {
                    b.push_bind(r.0)
                        .push_bind(r.1)
                        .push_bind(r.2)
                        .push_bind(r.3.clone())
                        .push_bind(r.4.clone())
                        .push_bind(r.5)
                        .push_bind(r.6)
                }
            );
            insert_rows!(
                tx,
                "INSERT INTO skus (id, tenant_id, sku, title, category_id, price_cents, quantity, updated_at) ",
                s.skus,
                |b, r| {
                    b.push_bind(r.0)
                        .push_bind(r.1)
                        .push_bind(r.2.clone())
                        .push_bind(r.3.clone())
                        .push_bind(r.4)
                        .push_bind(r.5)
                        .push_bind(r.6)
                        .push_bind(r.7)
                }
            );
            insert_rows!(
                tx,
                "INSERT INTO profiles (tenant_id, name, address, phone, hours, nap_complete, updated_at) ",
                s.profiles,
                |b, r| {
                    b.push_bind(r.0)
                        .push_bind(r.1.clone())
                        .push_bind(r.2.clone())
                        .push_bind(r.3.clone())
                        .push_bind(r.4.clone())
                        .push_bind(r.5)
                        .push_bind(r.6)
                }
            );
            insert_rows!(
                tx,
                "INSERT INTO merchant_approvals (tenant_id, id, sku, status, reason, reviewed_at) ",
                s.approvals,
                |b, r| {
                    b.push_bind(r.0)
                        .push_bind(r.1)
                        .push_bind(r.2.clone())
                        .push_bind(r.3)
                        .push_bind(r.4)
                        .push_bind(r.5)
                }
            );
            insert_rows!(
                tx,
                "INSERT INTO oauth_attempts (id, tenant_id, provider, outcome, error_code, created_at) ",
                s.oauth,
                |b, r| {
                    b.push_bind(r.0)
                        .push_bind(r.1)
                        .push_bind("google")
                        .push_bind(r.2)
                        .push_bind(r.3)
                        .push_bind(r.4)
                }
            );
            insert_rows!(
                tx,
                "INSERT INTO qa_events (id, tenant_id, user_id, action, page, created_at) ",
                s.qa,
                |b, r| {
                    b.push_bind(r.0)
                        .push_bind(r.1)
                        .push_bind(r.2)
                        .push_bind(r.3)
                        .push_bind(r.4.clone())
                        .push_bind(r.5)
                }
            );
            insert_rows!(
                tx,
                "INSERT INTO feed_push_jobs (id, tenant_id, sku, job_status, retry_count, last_attempt, next_retry, error_message, created_at) ",
                s.jobs,
                |b, r| {
                    b.push_bind(r.0)
                        .push_bind(r.1)
                        .push_bind(r.2.clone())
                        .push_bind(r.3)
                        .push_bind(r.4)
                        .push_bind(r.5)
                        .push_bind(r.6)
                        .push_bind(r.7.clone())
                        .push_bind(r.8)
                }
            );
            insert_rows!(
                tx,
                "INSERT INTO audit_log (id, tenant_id, entity, entity_id, action, actor_id, timestamp, diff) ",
                s.audit,
                |b, r| {
                    b.push_bind(r.0)
                        .push_bind(r.1)
                        .push_bind(r.2)
                        .push_bind(r.3.clone())
                        .push_bind(r.4)
                        .push_bind(r.5)
                        .push_bind(r.6)
                        .push_bind(SqlJson(r.7.clone()))
                }
            );
            insert_rows!(
                tx,
                "INSERT INTO outreach_feedback (id, tenant_id, feedback, score, created_at) ",
                s.feedback,
                |b, r| {
                    b.push_bind(r.0)
                        .push_bind(r.1)
                        .push_bind(SqlJson(r.2.clone()))
                        .push_bind(r.3)
                        .push_bind(r.4)
                }
            );
            let versions = [
                ("2019-07-10", t0 - Duration::days(430), false),
                (
                    taxonomy::get().version.as_str(),
                    t0 - Duration::days(12),
                    true,
                ),
            ];
            insert_rows!(
                tx,
                "INSERT INTO taxonomy_versions (version, activated_at, active) ",
                versions,
                |b, r| {
                    b.push_bind(r.0.to_string())
                        .push_bind(Ts(r.1))
                        .push_bind(r.2)
                }
            );
            tx.commit().await?;
        });
        tracing::info!("seeded the synthetic tenant and 10 pilot tenants");
    }

    let (syn, hash): (Id, String) = dispatch!(db, |p| {
        sqlx::query_as(
            "SELECT t.id, u.password_hash FROM tenants t JOIN users u ON u.tenant_id = t.id \
             WHERE t.slug = $1 AND u.email = $2",
        )
        .bind(SYNTHETIC_SLUG)
        .bind(SYNTHETIC_EMAIL)
        .fetch_one(p)
        .await?
    });
    if !verify_password(&hash, synthetic_password) {
        dispatch!(db, |p| {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE email = $2")
                .bind(hash_password(synthetic_password))
                .bind(SYNTHETIC_EMAIL)
                .execute(p)
                .await?;
        });
    }
    Ok(syn)
}
