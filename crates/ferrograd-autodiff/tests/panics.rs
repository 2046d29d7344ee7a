//! A panicking twin (`op()` beside `try_op()`) reports the user's line, not a line
//! inside the library: every panicking op and operator is `#[track_caller]`.

use ferrograd_autodiff::prelude::*;
use ferrograd_testing::{TestDevice, test_device};
use std::sync::Mutex;

/// Runs `f`, which must panic, and returns the file and line the panic reports.
fn panic_location(f: impl FnOnce() + std::panic::UnwindSafe) -> (String, u32) {
    static SEEN: Mutex<Option<(String, u32)>> = Mutex::new(None);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().expect("panics carry a location");
        *SEEN.lock().unwrap() = Some((location.file().to_string(), location.line()));
    }));
    let result = std::panic::catch_unwind(f);
    std::panic::set_hook(previous);
    assert!(result.is_err(), "the op was expected to panic");
    SEEN.lock().unwrap().take().expect("the hook saw the panic")
}

#[test]
fn shape_panics_point_at_the_callers_line() {
    let dev = test_device();
    let a: Tensor<(usize,), f32, TestDevice> = dev.zeros_like(&(3,));
    let b: Tensor<(usize,), f32, TestDevice> = dev.zeros_like(&(4,));

    let (a1, b1) = (a.clone(), b.clone());
    let expected = line!() + 2;
    let (file, line) = panic_location(move || {
        let _ = a1 + b1;
    });
    assert_eq!((file.as_str(), line), (file!(), expected), "the `+` operator");

    let (a2, b2) = (a.clone(), b.clone());
    let expected = line!() + 2;
    let (file, line) = panic_location(move || {
        let _ = a2.mul(b2);
    });
    assert_eq!((file.as_str(), line), (file!(), expected), "a method");

    let expected = line!() + 2;
    let (file, line) = panic_location(move || {
        let _ = a.reshape_like(&(2usize, 2usize));
    });
    assert_eq!(
        (file.as_str(), line),
        (file!(), expected),
        "reshape to a wrong element count"
    );
}
