//! Code that registers unwind information at run time (`__register_frame`,
//! as JITs such as cranelift or LLVM ORC do) makes libgcc allocate inside its
//! unwinder while holding its object lock. A check must not then unwind
//! through libgcc from inside that allocation (it would wait on the same
//! lock): the test would hang, and every later panic in the process with it.

mod common;

use std::time::Duration;

extern "C" {
    fn __register_frame(begin: *const u8);
    fn __deregister_frame(begin: *const u8);
}

/// "Code" the frame information describes: never executed.
static CODE: [u8; 64] = [0xc3; 64];

/// A minimal `.eh_frame`: one CIE, one FDE for `CODE`, a terminator.
fn eh_frame() -> Vec<u8> {
    let mut v: Vec<u8> = Vec::new();
    // CIE: length 20, id 0, version 1, no augmentation, code align 1,
    // data align -8, return address register 16; def_cfa rsp+8, ra at cfa-8.
    v.extend_from_slice(&20u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&[1, 0, 1, 0x78, 16]);
    v.extend_from_slice(&[0x0c, 7, 8, 0x90, 1]);
    v.resize(24, 0);
    // FDE: length 20, offset back to the CIE, absolute pc begin and range.
    v.extend_from_slice(&20u32.to_le_bytes());
    v.extend_from_slice(&28u32.to_le_bytes());
    v.extend_from_slice(&(CODE.as_ptr() as u64).to_le_bytes());
    v.extend_from_slice(&(CODE.len() as u64).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

/// The scenario, run in a child process: if it deadlocks, even a panic
/// can no longer unwind, so only the parent can notice and kill it.
#[test]
fn child_registers_frames_and_unwinds_inside_a_check() {
    if !common::is_child("jit") {
        return;
    }
    let frames = eh_frame();
    let report = leakcheck::check(|| {
        // SAFETY: `frames` is a valid .eh_frame that outlives its
        // registration (deregistered below).
        unsafe { __register_frame(frames.as_ptr()) };
        // Any unwind now makes libgcc set the new object up, allocating.
        let backtrace = std::backtrace::Backtrace::force_capture();
        drop(std::hint::black_box(backtrace));
        // SAFETY: registered above.
        unsafe { __deregister_frame(frames.as_ptr()) };
    });
    // What libgcc and std's backtrace machinery keep is theirs; the point is
    // that the check finished.
    println!(
        "CHECK FINISHED: {:?} after {} allocations",
        report.status(),
        report.stats().allocations
    );
}

#[test]
fn registering_jit_frames_then_unwinding_inside_a_check_does_not_deadlock() {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_registers_frames_and_unwinds_inside_a_check",
            "--nocapture",
        ])
        .env(common::CHILD_ENV, "jit")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
            assert!(status.success(), "{out}");
            assert!(out.contains("CHECK FINISHED"), "{out}");
            // The check saw the backtrace machinery allocate: it was live.
            assert!(!out.contains("after 0 allocations"), "{out}");
            return;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("deadlocked: unwinding inside libgcc's allocation");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
