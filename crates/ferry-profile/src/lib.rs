//! ferry profiles: app-to-app imports declared as data. A profile (TOML) names the target
//! schema and, per entity, a source query, a target table, column expressions, enum maps,
//! dependencies, a watermark and the files rows name; [`import`] does the rest (paging,
//! upserts, stats, dry runs, incremental runs, media, verification). The PeerTube 6.3 profile
//! ships inside ([`Profile::builtin`]`("peertube")`). Format: docs/profiles.md.

mod engine;
pub mod expr;
pub mod format;
mod inventory;
mod media;
mod pg;

pub use engine::{ImportOptions, SourceInfo, import, validate_source, verify};
pub use format::{Entity, Profile, builtin_names};
