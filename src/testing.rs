//! Where the tests keep their files (the unit tests here and the integration tests under
//! `tests/` alike): `TMP/scalecast-tests/PID`. Not part of the tool; public only so the
//! integration tests share it.

use std::path::{Path, PathBuf};

/// This test process's folder, `TMP/scalecast-tests/PID`. The first call removes the folders
/// of test processes that have ended, so runs do not pile up in the temporary directory; what
/// a failed run left stays until the next run, to be looked at.
pub fn tmp() -> PathBuf {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    let base = std::env::temp_dir().join("scalecast-tests");
    let me = std::process::id();
    SWEEP.call_once(|| {
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let pid = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok());
            if pid.is_some_and(|p| p != me && !Path::new(&format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    });
    let dir = base.join(me.to_string());
    std::fs::create_dir_all(&dir).expect("the tests' folder can be made");
    dir
}

/// A fresh, empty folder `name` in [`tmp`], for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = tmp().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a test's folder can be made");
    dir
}
