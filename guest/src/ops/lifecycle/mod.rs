//! The lifecycle operations of contract 2.4.0: linking a new account (by its client's email, or
//! by creating the CloudPe user), package changes (the CloudPe group), the choices of the
//! product's group option, the capability probe and the link review. The CloudPe calls they rely
//! on that are of medium confidence are named in [`crate::inferred`].

mod capabilities;
mod groups;
mod link;
mod review;

pub use capabilities::capabilities;
pub use groups::{change_package, option_choices};
pub use link::create_account;
pub use review::review;
