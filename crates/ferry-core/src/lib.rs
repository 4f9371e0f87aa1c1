//! ferry's core: the portable model every backend speaks, and the backend-independent pipeline.
//!
//! Copying between every pair of n databases would need n·(n−1) conversions; converting each
//! backend to and from one portable model (`schema`, `value`) needs 2·n. A backend implements the
//! traits in `connector`; everything else here (planning, the engine, verification, the report) is
//! written once against those traits.

pub mod capabilities;
pub mod chunks;
pub mod claims;
pub mod connector;
pub mod convert;
pub mod engine;
pub mod error;
pub mod every;
pub mod filter;
pub mod hash;
pub mod keys;
pub mod killpoint;
pub mod ledger;
pub mod locator;
pub mod names;
pub mod orphans;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod registration;
pub mod rejects;
pub mod report;
pub mod retry;
pub mod schema;
pub mod session;
pub mod sqltext;
pub mod tls;
pub mod value;
pub mod verify;
pub mod verify_stage;
pub mod widen;

pub use capabilities::Capabilities;
pub use error::{Error, ErrorKind, Result};
pub use locator::{Backend, Locator};
