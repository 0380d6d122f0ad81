//! Enums whose values travel as lowercase words (database columns, JSON, proto strings): one
//! declaration gives the variants, their words, `as_str`, `ALL` and a `FromStr` that answers a
//! client error with the service's own code, so no service hand-writes both match arms again.

/// Declares an enum with one wire word per variant:
///
/// ```
/// nexus_kernel::word_enum! {
///     /// A contact's place in the funnel.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
///     pub enum Stage: invalid "crm.invalid_stage", param "stage" {
///         Lead = "lead",
///         Customer = "customer",
///     }
/// }
/// assert_eq!(Stage::Lead.as_str(), "lead");
/// assert_eq!("customer".parse::<Stage>().unwrap(), Stage::Customer);
/// assert_eq!("x".parse::<Stage>().unwrap_err().code(), "crm.invalid_stage");
/// assert_eq!(Stage::ALL.len(), 2);
/// ```
#[macro_export]
macro_rules! word_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : invalid $code:literal, param $param:literal {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire word.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::Error;
            fn from_str(s: &str) -> ::std::result::Result<Self, $crate::Error> {
                match s {
                    $($word => Ok(Self::$variant),)+
                    other => Err($crate::Error::invalid($code).with_param($param, other)),
                }
            }
        }
    };
}
