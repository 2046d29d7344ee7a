//! Runnable programs live in the `[[example]]` targets of this package; the models they
//! share live here.

pub mod png;
pub mod resnet;
