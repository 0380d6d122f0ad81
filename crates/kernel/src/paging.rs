//! Cursor paging. A cursor is opaque to clients: base64url of a small JSON object naming the last
//! key seen. Listing is keyset-based, so pages stay stable while rows are added.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;

    /// Validates a limit from the outside world: 0 means default; above the maximum is an error
    /// rather than a silent clamp, so clients learn the rule.
    pub fn new(limit: Option<u32>, cursor: Option<String>) -> Result<Self, Error> {
        let limit = match limit {
            None | Some(0) => Self::DEFAULT_LIMIT,
            Some(n) if n <= Self::MAX_LIMIT => n,
            Some(_) => {
                return Err(Error::invalid("request.invalid_page_size").with_param("max", Self::MAX_LIMIT.to_string()));
            }
        };
        let cursor = cursor.filter(|c| !c.is_empty());
        Ok(Self { limit, cursor })
    }

    /// Decodes the cursor into the key type the listing uses.
    pub fn decode_cursor<K: DeserializeOwned>(&self) -> Result<Option<K>, Error> {
        self.cursor.as_deref().map(Cursor::decode).transpose()
    }
}

/// The key of newest-first listings ordered by `(created_at, id)`: the cursor of every such list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeKey {
    pub at: chrono::DateTime<chrono::Utc>,
    pub id: uuid::Uuid,
}

/// Encoding and decoding of opaque cursors.
pub struct Cursor;

impl Cursor {
    pub fn encode<K: Serialize>(key: &K) -> String {
        // Serializing our own key types cannot fail.
        let json = serde_json::to_vec(key).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode<K: DeserializeOwned>(s: &str) -> Result<K, Error> {
        let bad = || Error::invalid("request.invalid_cursor");
        if s.len() > 512 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }
}

/// One page of results. Fetch `limit + 1` rows and call [`Page::from_overfetch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn from_overfetch<K: Serialize>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| Cursor::encode(&key(last)))
        } else {
            None
        };
        Self { items: rows, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked() {
        assert_eq!(PageRequest::new(None, None).unwrap().limit, 20);
        assert_eq!(PageRequest::new(Some(0), None).unwrap().limit, 20);
        assert_eq!(PageRequest::new(Some(100), None).unwrap().limit, 100);
        assert_eq!(PageRequest::new(Some(101), None).unwrap_err().code(), "request.invalid_page_size");
    }

    #[test]
    fn overfetch_yields_cursor_only_when_more_exist() {
        let page = Page::from_overfetch((1..=4).collect::<Vec<i64>>(), 3, |n| *n);
        assert_eq!(page.items, vec![1, 2, 3]);
        let req = PageRequest::new(Some(3), page.next_cursor).unwrap();
        assert_eq!(req.decode_cursor::<i64>().unwrap(), Some(3));

        let last = Page::from_overfetch(vec![1, 2], 3, |n| *n);
        assert!(last.next_cursor.is_none());
    }

    #[test]
    fn garbage_cursors_are_client_errors() {
        for junk in ["%%%", "bm90IGpzb24", &"A".repeat(600)] {
            assert_eq!(Cursor::decode::<i64>(junk).unwrap_err().code(), "request.invalid_cursor");
        }
    }
}
