//! Where a sync's decisions go: every batch (`sync-output.emit`, or a 2.0/2.1 module's whole
//! result) is checked against the request ([`Asked`]), bounded, and handed to a
//! [`DecisionSink`], which the report implements. The sandbox knows nothing of the report.

use std::sync::{Arc, Mutex};

use crate::bindings::hostbill::provisioning::types as wit;
use crate::sandbox::answer::{Asked, bound_decision};
use crate::sandbox::limits::NamedLimit;

/// Takes a sync's decisions as they come (the report writes them to stdout at once).
pub trait DecisionSink: Send {
    /// Called once, before the first decision, with the module that decides.
    fn begin(&mut self, module: &wit::ModuleInfo);
    /// The next decisions, checked and bounded; an error stops the module.
    fn take(&mut self, decisions: &[wit::AccountDecision]) -> Result<(), SinkError>;
}

/// A sink shared by the store (whose `emit` import feeds it) and whoever finishes it.
pub type SharedSink = Arc<Mutex<dyn DecisionSink>>;

/// Why a sink refused decisions: the run is stopped with this message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
    /// The host limit reached, if one was.
    pub limit: Option<NamedLimit>,
}

/// A sync's decision path: the accounts asked about and the sink.
pub struct DecisionGate {
    asked: Asked,
    sink: SharedSink,
    begun: bool,
}

impl DecisionGate {
    pub fn new(asked: Asked, sink: SharedSink) -> DecisionGate {
        DecisionGate { asked, sink, begun: false }
    }

    /// How many accounts were asked about, and how many decided.
    pub fn progress(&self) -> (usize, usize) {
        (self.asked.len(), self.asked.answered())
    }

    /// Checks `decisions` against the request (the whole batch before any of it is passed on),
    /// bounds each, and hands them to the sink.
    pub fn deliver(
        &mut self,
        module: &wit::ModuleInfo,
        mut decisions: Vec<wit::AccountDecision>,
    ) -> Result<(), SinkError> {
        self.asked
            .answer(decisions.iter().map(|d| d.account_id))
            .map_err(|violation| SinkError { message: violation.stopped(Some(module)), limit: None })?;
        decisions.iter_mut().for_each(bound_decision);
        let mut sink = self
            .sink
            .lock()
            .map_err(|_| SinkError { message: "the module was stopped: the report is unusable".into(), limit: None })?;
        if !self.begun {
            sink.begin(module);
            self.begun = true;
        }
        sink.take(&decisions)
    }
}
