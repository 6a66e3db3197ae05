//! recording-ingest: S3 `ObjectCreated` notifications on the recordings bucket arrive through
//! the recordings queue; each recording is streamed through the analyzer, stored by call id,
//! bound to its pre-sale and checked automatically (see docs/decisions/0005-recordings.md).

pub mod event;
pub mod ingest;
pub mod source;

#[cfg(test)]
mod tests;
