//! The CloudPe hosting module for HostBill, compiled to a WASI 0.2 component.
//!
//! Everything but `component` (the wasm export glue and the wasi:http client) is plain Rust,
//! unit-tested natively with `cargo test`, over the contract's generated types ([`wit`]):
//! [`config`] maps App fields to settings, [`api`] builds CloudPe requests and reads replies
//! (through [`envelope`]), [`status`] maps CloudPe states to HostBill statuses, and [`ops`] holds
//! the operations. The operations reach the network only through [`transport::Platform`], which
//! the wasm layer implements over `wasi:http`.

pub mod api;
pub mod budget;
pub mod config;
pub mod envelope;
pub mod inferred;
pub mod ops;
pub mod status;
pub mod transport;
pub mod wit;

#[cfg(target_arch = "wasm32")]
mod component;
