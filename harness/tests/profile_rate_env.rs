//! `LEAKCHECK_PROFILE_RATE`: `1` samples every block; `0` or garbage is a
//! message on stderr naming the variable and what it accepts, the default
//! rate, and a warning in every profile, and the program goes on.

mod common;

use common::{is_child, run_child};
use leakcheck::HeapProfile;

#[test]
fn rate_child() {
    if !is_child("rate_child") {
        return;
    }
    let profile = HeapProfile::take();
    println!("rate={}", leakcheck::profile_rate());
    for warning in profile.warnings() {
        println!("warning={warning}");
    }
    let text = leakcheck::pprof_heap("debug=1");
    println!(
        "text={}",
        String::from_utf8_lossy(&text.body)
            .lines()
            .nth(1)
            .unwrap_or("")
    );
}

#[test]
fn a_rate_of_1_from_the_environment_samples_every_block() {
    let child = run_child("rate_child", &[("LEAKCHECK_PROFILE_RATE", "1")]);
    child.assert_passed("rate=1\n");
    assert!(!child.output().contains("warning="), "{}", child.output());
}

#[test]
fn a_bad_rate_is_a_clear_error_and_the_default_is_used() {
    for bad in ["0", "lots", "1k", "-5"] {
        let child = run_child("rate_child", &[("LEAKCHECK_PROFILE_RATE", bad)]);
        assert!(child.status.success(), "{}", child.output());
        assert!(child.stdout.contains("rate=524288\n"), "{}", child.output());
        let said = format!(
            "leakcheck: LEAKCHECK_PROFILE_RATE=`{bad}` is not a sampling rate: give a whole \
             number of bytes from 1 (every block) to 1099511627776; sampling one block per \
             524288 bytes instead"
        );
        assert_eq!(child.stderr.matches(&said).count(), 1, "{}", child.output());
        let warning = format!("warning=LEAKCHECK_PROFILE_RATE={bad:?} is not a sampling rate");
        assert!(child.stdout.contains(&warning), "{}", child.output());
        assert!(
            child
                .stdout
                .contains("text=warning: LEAKCHECK_PROFILE_RATE="),
            "{}",
            child.output()
        );
    }
}
