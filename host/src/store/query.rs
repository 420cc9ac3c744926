//! Reading event rows: pages for the fetch API and export, and filtered
//! counts for alerting ("how many rows matching this filter arrived in
//! `(after, upto]`").
//!
//! Queries are built with sqlx's `QueryBuilder` so a compiled [`Filter`]'s
//! parameters are bound with the right placeholders for each backend.

use sqlx::QueryBuilder;

use super::columns::{DbId, DbTime};
use super::events::{EVENT_COLUMNS, EventRow};
use super::model::{ObjectRef, StoredEvent, XactRange};
use super::{Store, StoreError, dispatch};
use crate::filter::{Filter, Param, SqlPart};

/// The largest page [`Store::fetch_events`] returns.
pub const MAX_FETCH_LIMIT: u32 = 10_000;

/// What to read from an object.
#[derive(Debug, Clone, Default)]
pub struct EventQuery<'a> {
    /// Only rows matching this filter.
    pub filter: Option<&'a Filter>,
    /// Only rows whose `_xact_id` is in this range.
    pub range: XactRange,
    /// At most this many rows (capped at [`MAX_FETCH_LIMIT`]).
    pub limit: Option<u32>,
}

/// Pushes `WHERE …` for `object`, `range` and `filter` into a query builder.
macro_rules! push_conditions {
    ($qb:expr, $object:expr, $range:expr, $filter:expr, $dialect:expr) => {{
        $qb.push(" WHERE object_type = ");
        $qb.push_bind($object.kind.as_str());
        $qb.push(" AND object_id = ");
        $qb.push_bind(DbId($object.id));
        if let Some(after) = $range.after {
            $qb.push(" AND xact_id > ");
            $qb.push_bind(after);
        }
        if let Some(upto) = $range.upto {
            $qb.push(" AND xact_id <= ");
            $qb.push_bind(upto);
        }
        if let Some(filter) = $filter {
            $qb.push(" AND ");
            for part in filter.compile($dialect, DbTime::now()).parts {
                match part {
                    SqlPart::Sql(sql) => {
                        $qb.push(sql);
                    }
                    SqlPart::Param(Param::Text(v)) => {
                        $qb.push_bind(v);
                    }
                    SqlPart::Param(Param::Number(v)) => {
                        $qb.push_bind(v);
                    }
                    SqlPart::Param(Param::Int(v)) => {
                        $qb.push_bind(v);
                    }
                    SqlPart::Param(Param::Bool(v)) => {
                        $qb.push_bind(v);
                    }
                    SqlPart::Param(Param::Time(v)) => {
                        $qb.push_bind(v);
                    }
                }
            }
        }
    }};
}

impl Store {
    /// Reads rows of `object` in ascending `_xact_id` order.
    pub async fn fetch_events(
        &self,
        object: ObjectRef,
        query: &EventQuery<'_>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let limit = i64::from(query.limit.unwrap_or(MAX_FETCH_LIMIT).min(MAX_FETCH_LIMIT));
        let dialect = self.dialect();
        let rows: Vec<EventRow> = dispatch!(self, |pool, DB| {
            let mut qb = QueryBuilder::<DB>::new("SELECT ");
            qb.push(EVENT_COLUMNS);
            qb.push(" FROM events");
            push_conditions!(qb, object, query.range, query.filter, dialect);
            qb.push(" ORDER BY xact_id LIMIT ");
            qb.push_bind(limit);
            qb.build_query_as().fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(EventRow::into_event).collect())
    }

    /// Counts rows of `object` in `range` that match `filter` (all rows when
    /// `filter` is `None`).
    pub async fn count_events(
        &self,
        object: ObjectRef,
        filter: Option<&Filter>,
        range: XactRange,
    ) -> Result<u64, StoreError> {
        let dialect = self.dialect();
        let count: i64 = dispatch!(self, |pool, DB| {
            let mut qb = QueryBuilder::<DB>::new("SELECT COUNT(*) FROM events");
            push_conditions!(qb, object, range, filter, dialect);
            qb.build_query_scalar().fetch_one(pool).await?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
