//! Test support for the HostBill CloudPe module: a simulated CloudPe API ([`simulator`]) and a
//! harness that runs the real host binary ([`harness`]).

pub mod harness;
pub mod simulator;

pub use simulator::*;
