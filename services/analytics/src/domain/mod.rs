//! Rules of analytics that need no database or wire format: what a valid tracked event is, how
//! personal data is removed before anything is stored, workspace settings and write keys, report
//! bounds, fleet figures, and the churn-risk model.

pub mod churn;
pub mod event;
pub mod fleet;
pub mod forecast;
pub mod funnel;
pub mod hll;
pub mod mrr;
pub mod privacy;
pub mod report;
pub mod retention;
pub mod rollup;
pub mod workspace;

pub use event::{
    Limits, MAX_ID, MAX_IDENTITY, MAX_NAME, MAX_URL, MAX_UTM, RawEvent, Rejection, Utm, ValidEvent, validate,
};
pub use privacy::{
    Salt, looks_like_email, looks_like_phone, scrub_event, scrub_identity, scrub_json, scrub_text, scrub_url,
    truncate_ip,
};
pub use report::Interval;
