//! The end-to-end tests, in one test binary (`cargo test -p cloudpe-e2e --test e2e`): each
//! module is one area, run against the real host binary, the built components and the
//! simulated CloudPe. One binary links the harness and its dependencies once instead of
//! once per file. A new area is a new file here and a `mod` line below; run one area with
//! `cargo test -p cloudpe-e2e --test e2e -- <module>::`.

mod admin;
mod bad_rows;
mod connections;
mod containment;
mod degrade;
mod doctor;
mod faults;
mod hostile;
mod lifecycle;
mod limits;
mod linking;
mod operations;
mod sandbox;
mod simulator;
mod sync;
mod tls;
mod trust;
mod usage;
