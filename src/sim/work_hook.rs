//! The test hook that marks where work starts (tests/bad_inputs.rs).

use crate::error::Result;

/// A test hook: with VARPROP_TEST_NO_WORK set, the moment work would start
/// (a GPU context made, the CPU engine started) is an error, so that tests
/// of bad input can show that it was refused before any work, without
/// timing anything.
pub fn work_starts() -> Result<()> {
    if std::env::var_os("VARPROP_TEST_NO_WORK").is_some() {
        return Err(crate::Error::Gpu(
            "test hook VARPROP_TEST_NO_WORK: work was about to start".into(),
        ));
    }
    Ok(())
}
