//! Running the async API from synchronous code (command-line tools,
//! benchmarks) without depending on tokio directly.

use std::future::Future;

use crate::error::{Result, StorageError};

/// A single-threaded runtime for driving store futures to completion.
#[derive(Debug)]
pub struct BlockingRuntime {
    runtime: tokio::runtime::Runtime,
}

impl BlockingRuntime {
    /// Creates the runtime.
    pub fn new() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| StorageError::io("starting a blocking runtime", e))?;
        Ok(Self { runtime })
    }

    /// Runs `future` to completion on this thread. Fails instead of
    /// blocking when called from inside an async runtime, where blocking
    /// would stall (or panic) that runtime.
    pub fn block_on<F: Future>(&self, future: F) -> Result<F::Output> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(StorageError::backend(
                "BlockingRuntime::block_on called from inside an async runtime",
            ));
        }
        Ok(self.runtime.block_on(future))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_futures_and_refuses_nesting() {
        let runtime = BlockingRuntime::new().unwrap();
        assert_eq!(runtime.block_on(async { 41 + 1 }).unwrap(), 42);
        // Created (and later dropped) outside the async context.
        let inner = BlockingRuntime::new().unwrap();
        let nested = runtime
            .block_on(async { inner.block_on(async { 1 }).is_err() })
            .unwrap();
        assert!(nested);
    }
}
