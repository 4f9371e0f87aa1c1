//! The clock of a periodic task (lease renewals, claim heartbeats, looking for work): a beat
//! every period until a cancellation token fires.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub struct Every {
    tick: tokio::time::Interval,
    stop: CancellationToken,
}

impl Every {
    pub fn new(period: Duration, stop: CancellationToken) -> Self {
        Self {
            tick: tokio::time::interval(period),
            stop,
        }
    }

    /// Waits for the next beat (the first comes at once); `false` when `stop` fires first.
    pub async fn beat(&mut self) -> bool {
        tokio::select! {
            _ = self.tick.tick() => true,
            () = self.stop.cancelled() => false,
        }
    }
}
