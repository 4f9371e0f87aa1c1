//! The profile tests reach the shared test kit (crates/ferry-testkit: throwaway PostgreSQL, the
//! PeerTube source and media folder) through here, plus a context whose events they inspect.

use std::sync::Arc;

use ferry_core::engine::Context;
use ferry_core::progress::Answer;
use tokio_util::sync::CancellationToken;

pub use ferry_testkit::prelude::*;

/// A context that declines confirmations and records every event.
pub fn context() -> (Context, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    (
        Context {
            observer: rec.clone(),
            confirm: Arc::new(Answer(false)),
            cancel: CancellationToken::new(),
        },
        rec,
    )
}
