//! Where backends come from, and how they come and go while serving.
//!
//! Three sources say which endpoints a Service has:
//!
//! * `--backend NAME[:PORT]=HOST:PORT,...`: a fixed list;
//! * `--backend NAME[:PORT]=dns:HOST:PORT`: the A/AAAA records of a name,
//!   re-resolved every `--dns-refresh` ([`dns`]);
//! * `--endpoints FILE`: Kubernetes EndpointSlices, read verbatim and
//!   re-read when the file changes ([`endpoint_slice`], [`watch`]).
//!
//! Whatever the source, a change reaches the library's
//! [`Backends`](tower_sticky::balance::Backends) of that Service as
//! `tower::discover::Change` events ([`membership`]): a new endpoint is
//! inserted serving (sessions elsewhere stay where they are), a removed one
//! is removed (its sessions re-pin with a new cookie), a terminating one
//! drains. The membership outlives route reloads, so drain states and
//! health survive them.

pub mod dns;
pub mod endpoint_slice;
pub mod watch;
