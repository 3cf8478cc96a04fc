//! A span closed while its thread is being torn down (from a thread-local
//! whose destructor runs after the bridge's own thread-local is gone) is
//! still ended, and nothing panics: a panic in a thread-local destructor
//! aborts the process. (Making or entering a span there is another matter:
//! `tracing-subscriber`'s registry itself panics then.)
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;

use observability_core::testing::SpanCapture;

thread_local! {
    static HELD: RefCell<Option<tracing::Span>> = const { RefCell::new(None) };
}

#[test]
fn a_span_closed_in_a_thread_local_destructor_is_ended() {
    let capture = SpanCapture::new();
    let thread_capture = capture.clone();
    std::thread::spawn(move || {
        // Kept for good: dropping it would shut the provider down before
        // the thread's destructors run.
        std::mem::forget(thread_capture.install());
        // Registered before the bridge's thread-local, so destroyed after
        // it: the span closes when the bridge's is gone.
        HELD.with(|held| *held.borrow_mut() = Some(tracing::info_span!("held")));
        tracing::info_span!("entered").in_scope(|| {});
    })
    .join()
    .unwrap();
    let mut names: Vec<_> = capture.spans().into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, ["entered", "held"]);
}
