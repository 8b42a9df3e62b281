//! In-memory runs of the lean path (issue 21): arbitrary client and
//! backend byte streams, for the fuzz target and its corpus replay.
//!
//! Skeleton: filled in by the tests helper.
