//! Every SQL statement of the video service. Functions take the caller's connection or
//! transaction (`&mut *tx`) and return domain types; row types stay here.

pub mod avatars;
pub mod videos;
