//! Reading the simulated platform's users by email, for tests that must prove how many users an
//! email has (linking, provisioning, a retried Create): the test's own view of CloudPe's state,
//! not an API call (nothing is recorded, no fault hits it).

use super::{Account, Simulator};

impl Simulator {
    /// Every user whose email is `email` exactly (trimmed, any case: the match CloudPe's
    /// uniqueness rule and the module's link rule share), by ascending uid.
    pub fn users_with_email(&self, email: &str) -> Vec<Account> {
        let email = email.trim();
        self.state().api.accounts.values().filter(|a| a.email.trim().eq_ignore_ascii_case(email)).cloned().collect()
    }

    /// How many users the platform has.
    pub fn user_count(&self) -> usize {
        self.state().api.accounts.len()
    }
}
