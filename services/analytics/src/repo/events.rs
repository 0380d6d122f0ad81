//! `analytics_events` and `analytics_event_ids`: tracked events written in batches, domain
//! events one by one, and retention purges.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::rollup::{FEATURE_EVENT, Fact, Feature};

/// One tracked event to store, borrowed from the message it came in (nothing is copied).
pub struct Tracked<'a> {
    pub tenant: Uuid,
    pub client_event_id: &'a str,
    pub name: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub anonymous_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    /// JSON text: the INSERT casts it to jsonb.
    pub properties: &'a str,
    pub revenue: Option<(i64, &'a str)>,
    /// Source, medium, campaign, term, content.
    pub utm: [Option<&'a str>; 5],
    pub page_url: Option<&'a str>,
    pub referrer: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// Columns of one batch, bound as arrays to one INSERT … SELECT FROM UNNEST.
pub struct Columns<'a> {
    tenant: Vec<Uuid>,
    client_event_id: Vec<&'a str>,
    name: Vec<&'a str>,
    occurred_at: Vec<DateTime<Utc>>,
    received_at: Vec<DateTime<Utc>>,
    anonymous_id: Vec<Option<&'a str>>,
    user_id: Vec<Option<&'a str>>,
    properties: Vec<&'a str>,
    revenue_minor: Vec<Option<i64>>,
    currency: Vec<Option<&'a str>>,
    utm: [Vec<Option<&'a str>>; 5],
    page_url: Vec<Option<&'a str>>,
    referrer: Vec<Option<&'a str>>,
    ip: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            tenant: Vec::with_capacity(n),
            client_event_id: Vec::with_capacity(n),
            name: Vec::with_capacity(n),
            occurred_at: Vec::with_capacity(n),
            received_at: Vec::with_capacity(n),
            anonymous_id: Vec::with_capacity(n),
            user_id: Vec::with_capacity(n),
            properties: Vec::with_capacity(n),
            revenue_minor: Vec::with_capacity(n),
            currency: Vec::with_capacity(n),
            utm: std::array::from_fn(|_| Vec::with_capacity(n)),
            page_url: Vec::with_capacity(n),
            referrer: Vec::with_capacity(n),
            ip: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, e: Tracked<'a>) {
        self.tenant.push(e.tenant);
        self.client_event_id.push(e.client_event_id);
        self.name.push(e.name);
        self.occurred_at.push(e.occurred_at);
        self.received_at.push(e.received_at);
        self.anonymous_id.push(e.anonymous_id);
        self.user_id.push(e.user_id);
        self.properties.push(e.properties);
        self.revenue_minor.push(e.revenue.map(|r| r.0));
        self.currency.push(e.revenue.map(|r| r.1));
        for (col, v) in self.utm.iter_mut().zip(e.utm) {
            col.push(v);
        }
        self.page_url.push(e.page_url);
        self.referrer.push(e.referrer);
        self.ip.push(e.ip);
    }

    pub fn len(&self) -> usize {
        self.tenant.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tenant.is_empty()
    }

    /// The events' times (their partitions must exist before the insert).
    pub fn occurred_at(&self) -> &[DateTime<Utc>] {
        &self.occurred_at
    }
}

/// One statement per chunk: ids seen for the first time are claimed in `analytics_event_ids`
/// (whatever the event's time), and only their events are stored; a repeated id within the chunk
/// keeps its earliest time.
const INSERT: &str = "WITH input AS ( \
       SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[], \
                            $7::text[], $8::text[], $9::int8[], $10::text[], $11::text[], $12::text[], $13::text[], \
                            $14::text[], $15::text[], $16::text[], $17::text[], $18::text[]) \
            AS x(t, c, n, o, r, a, u, p, rm, cur, us, um, uc, ut, uco, pu, rf, ip)), \
     fresh AS ( \
       INSERT INTO analytics_event_ids (tenant_id, client_event_id, occurred_at) \
       SELECT DISTINCT ON (t, c) t, c, o FROM input ORDER BY t, c, o \
       ON CONFLICT DO NOTHING RETURNING tenant_id, client_event_id, occurred_at) \
     INSERT INTO analytics_events (tenant_id, client_event_id, name, source, occurred_at, received_at, \
       anonymous_id, user_id, properties, revenue_minor, currency, utm_source, utm_medium, utm_campaign, utm_term, \
       utm_content, page_url, referrer, ip) \
     SELECT i.t, i.c, i.n, 'track', i.o, i.r, i.a, i.u, i.p::jsonb, i.rm, i.cur, i.us, i.um, i.uc, i.ut, i.uco, i.pu, \
            i.rf, i.ip::inet \
     FROM input i JOIN fresh f ON f.tenant_id = i.t AND f.client_event_id = i.c AND f.occurred_at = i.o \
     ON CONFLICT DO NOTHING RETURNING tenant_id, client_event_id, occurred_at";

/// Stores the batch, `batch_size` rows per statement; which rows were new (a row repeated
/// within the batch is new once).
pub async fn insert_tracked(conn: &mut PgConnection, c: &Columns<'_>, batch_size: usize) -> Result<Vec<bool>, Error> {
    let mut stored = Vec::with_capacity(c.len());
    let step = batch_size.max(1);
    let mut from = 0;
    while from < c.len() {
        let to = (from + step).min(c.len());
        let r = from..to;
        let utm = |k: usize| &c.utm[k][r.clone()];
        let new: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(INSERT)
            .bind(&c.tenant[r.clone()])
            .bind(&c.client_event_id[r.clone()])
            .bind(&c.name[r.clone()])
            .bind(&c.occurred_at[r.clone()])
            .bind(&c.received_at[r.clone()])
            .bind(&c.anonymous_id[r.clone()])
            .bind(&c.user_id[r.clone()])
            .bind(&c.properties[r.clone()])
            .bind(&c.revenue_minor[r.clone()])
            .bind(&c.currency[r.clone()])
            .bind(utm(0))
            .bind(utm(1))
            .bind(utm(2))
            .bind(utm(3))
            .bind(utm(4))
            .bind(&c.page_url[r.clone()])
            .bind(&c.referrer[r.clone()])
            .bind(&c.ip[r.clone()])
            .fetch_all(&mut *conn)
            .await
            .db()?;
        let mut new: HashMap<(Uuid, String), DateTime<Utc>> = new.into_iter().map(|(t, c, o)| ((t, c), o)).collect();
        for i in r {
            let key = (c.tenant[i], c.client_event_id[i].to_owned());
            let hit = new.get(&key) == Some(&c.occurred_at[i]);
            if hit {
                new.remove(&key);
            }
            stored.push(hit);
        }
        from = to;
    }
    Ok(stored)
}

impl Columns<'_> {
    /// What rollups count of the rows marked in `stored`.
    pub fn facts<'s>(&'s self, stored: &'s [bool]) -> impl Iterator<Item = Fact<'s>> + 's {
        (0..self.len()).filter(move |&i| stored.get(i) == Some(&true)).map(move |i| Fact {
            tenant: self.tenant[i],
            at: self.occurred_at[i],
            name: self.name[i],
            user_id: self.user_id[i],
            anonymous_id: self.anonymous_id[i],
            revenue: self.revenue_minor[i].zip(self.currency[i]),
            feature: (self.name[i] == FEATURE_EVENT)
                .then(|| Feature::from_properties(&serde_json::from_str(self.properties[i]).unwrap_or(Value::Null))),
        })
    }
}

/// One domain event of another service, already scrubbed.
pub struct DomainEvent<'a> {
    pub tenant: TenantId,
    /// The bus event's id: a redelivered event is stored once.
    pub event_id: String,
    pub name: &'a str,
    pub source: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub user_id: Option<String>,
    pub properties: &'a Value,
    pub revenue: Option<(i64, String)>,
}

/// Whether the event was new (a redelivered one is already stored).
pub async fn insert_domain(conn: &mut PgConnection, e: DomainEvent<'_>) -> Result<bool, Error> {
    let (revenue_minor, currency) = e.revenue.unzip();
    let r = sqlx::query(
        "INSERT INTO analytics_events (tenant_id, client_event_id, name, source, occurred_at, received_at, \
                user_id, properties, revenue_minor, currency) \
         VALUES ($1, $2, $3, $4, $5, now(), $6, $7, $8, $9) ON CONFLICT DO NOTHING",
    )
    .bind(e.tenant.as_uuid())
    .bind(e.event_id)
    .bind(e.name)
    .bind(e.source)
    .bind(e.occurred_at)
    .bind(e.user_id)
    .bind(e.properties)
    .bind(revenue_minor)
    .bind(currency)
    .execute(conn)
    .await
    .db()?;
    Ok(r.rows_affected() == 1)
}

/// Deletes at most `chunk` of the workspace's events older than `days`, and as many of their
/// remembered ids (an id is remembered as long as its event is kept): (events, ids) deleted.
pub async fn purge_chunk(
    conn: &mut PgConnection,
    tenant: TenantId,
    days: i32,
    chunk: i64,
) -> Result<(u64, u64), Error> {
    let events = sqlx::query(
        "DELETE FROM analytics_events WHERE (tenant_id, client_event_id, occurred_at) IN ( \
           SELECT tenant_id, client_event_id, occurred_at FROM analytics_events \
           WHERE tenant_id = $1 AND occurred_at < now() - make_interval(days => $2) LIMIT $3)",
    )
    .bind(tenant.as_uuid())
    .bind(days)
    .bind(chunk)
    .execute(&mut *conn)
    .await
    .db()?
    .rows_affected();
    let ids = sqlx::query(
        "DELETE FROM analytics_event_ids WHERE (tenant_id, client_event_id) IN ( \
           SELECT tenant_id, client_event_id FROM analytics_event_ids \
           WHERE tenant_id = $1 AND occurred_at < now() - make_interval(days => $2) LIMIT $3)",
    )
    .bind(tenant.as_uuid())
    .bind(days)
    .bind(chunk)
    .execute(&mut *conn)
    .await
    .db()?
    .rows_affected();
    Ok((events, ids))
}
