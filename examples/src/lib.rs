//! Runnable programs live in the `[[example]]` targets of this package.
