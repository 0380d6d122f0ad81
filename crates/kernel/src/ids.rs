//! Typed, prefixed identifiers. On the wire an id reads `ws_0192f0c5…`: the prefix names the kind,
//! so a user id pasted where a workspace id belongs fails to parse instead of matching nothing.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {expected} id")]
pub struct IdParseError {
    pub expected: &'static str,
}

/// Declares a prefixed id type backed by a UUID (v7 when newly generated, so ids sort by time).
#[macro_export]
macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(::uuid::Uuid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(::uuid::Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: ::uuid::Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> ::uuid::Uuid {
                self.0
            }

            /// Parses the prefixed form; the bare UUID form is accepted too, since that is how the
            /// database and internal headers carry it.
            pub fn parse(s: &str) -> ::std::result::Result<Self, $crate::ids::IdParseError> {
                $crate::ids::parse_prefixed(s, $prefix).map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(self, f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ids::IdParseError;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                Self::parse(&s).map_err(::serde::de::Error::custom)
            }
        }

        impl From<$name> for ::uuid::Uuid {
            fn from(id: $name) -> ::uuid::Uuid {
                id.0
            }
        }
    };
}

/// Shared parser behind every typed id.
pub fn parse_prefixed(s: &str, prefix: &'static str) -> Result<Uuid, IdParseError> {
    let err = IdParseError { expected: prefix };
    let body = match s.split_once('_') {
        Some((p, rest)) if p == prefix => rest,
        Some(_) => return Err(err),
        None => s,
    };
    // Only the 32-hex simple form or the hyphenated form; `Uuid::parse_str` also takes braces and
    // URNs, which we never hand out.
    if !(body.len() == 32 || body.len() == 36) {
        return Err(err);
    }
    Uuid::from_str(body).map_err(|_| err)
}

typed_id!(
    /// A workspace: the tenant. Every tenant row carries one.
    WorkspaceId,
    "ws"
);
typed_id!(
    /// A person who can sign in; may belong to several workspaces.
    UserId,
    "usr"
);
typed_id!(
    /// An event on the bus (also its JetStream message id).
    EventId,
    "evt"
);

/// The tenant is the workspace; the alias keeps tenancy code readable.
pub type TenantId = WorkspaceId;

/// Request ids travel as plain strings (callers may send their own), bounded and printable.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    pub const MAX_LEN: usize = 128;

    pub fn generate() -> Self {
        Self(format!("req_{}", Uuid::now_v7().simple()))
    }

    /// Accepts a caller-supplied id only if it is short and plain ASCII; otherwise `None`, and the
    /// caller should generate one rather than log attacker-controlled bytes.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_display_and_serde() {
        let id = WorkspaceId::new();
        let s = id.to_string();
        assert!(s.starts_with("ws_"));
        assert_eq!(WorkspaceId::parse(&s).unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<WorkspaceId>(&json).unwrap(), id);
        // Bare UUID form, as stored in the database.
        assert_eq!(WorkspaceId::parse(&id.as_uuid().to_string()).unwrap(), id);
    }

    #[test]
    fn rejects_other_kinds_and_junk() {
        let user = UserId::new().to_string();
        assert!(WorkspaceId::parse(&user).is_err());
        assert!(WorkspaceId::parse("ws_").is_err());
        assert!(WorkspaceId::parse("ws_zzzz").is_err());
        assert!(WorkspaceId::parse("{00000000-0000-0000-0000-000000000000}").is_err());
        assert!(serde_json::from_str::<WorkspaceId>("42").is_err());
    }

    #[test]
    fn new_ids_sort_by_creation_time() {
        let a = EventId::new();
        let b = EventId::new();
        assert!(a < b);
    }

    #[test]
    fn request_ids_are_bounded_and_plain() {
        assert!(RequestId::parse("abc-123_X.y:z").is_some());
        assert!(RequestId::parse("").is_none());
        assert!(RequestId::parse("a b").is_none());
        assert!(RequestId::parse("ü").is_none());
        assert!(RequestId::parse(&"a".repeat(129)).is_none());
        assert!(RequestId::generate().as_str().starts_with("req_"));
    }
}
