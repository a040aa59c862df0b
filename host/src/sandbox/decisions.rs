//! Where a streamed answer goes: every batch (a sync's decisions through `sync-output.emit`, or a
//! 2.0/2.1 module's whole result; a usage read's results through `usage-output.emit`) is checked
//! against the request ([`Asked`]), bounded, and handed to a [`DecisionSink`], which the report
//! implements. The sandbox knows nothing of the report.

use std::sync::{Arc, Mutex};

use crate::bindings::hostbill::provisioning::types as wit;
use crate::sandbox::answer::{Asked, bound_decision, bound_usage};
use crate::sandbox::limits::NamedLimit;

/// One account's answer in a streamed batch: whose it is, and how it is bounded.
pub trait Answer: Send + 'static {
    /// The account it answers for.
    fn account_id(&self) -> u64;
    /// Replaces an answer holding a string longer than the host accepts by that account's error.
    fn bound(&mut self);
}

impl Answer for wit::AccountDecision {
    fn account_id(&self) -> u64 {
        self.account_id
    }
    fn bound(&mut self) {
        bound_decision(self)
    }
}

impl Answer for wit::AccountUsage {
    fn account_id(&self) -> u64 {
        self.account_id
    }
    fn bound(&mut self) {
        bound_usage(self)
    }
}

/// Takes a streamed operation's answers as they come (the report writes them to stdout at once).
pub trait DecisionSink<T = wit::AccountDecision>: Send {
    /// Called once, before the first answer, with the module that answers.
    fn begin(&mut self, module: &wit::ModuleInfo);
    /// The next answers, checked and bounded; an error stops the module.
    fn take(&mut self, decisions: &[T]) -> Result<(), SinkError>;
}

/// A sink shared by the store (whose `emit` import feeds it) and whoever finishes it.
pub type SharedSink<T = wit::AccountDecision> = Arc<Mutex<dyn DecisionSink<T>>>;

/// Why a sink refused decisions: the run is stopped with this message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
    /// The host limit reached, if one was.
    pub limit: Option<NamedLimit>,
}

/// A streamed operation's answer path: the accounts asked about and the sink.
pub struct DecisionGate<T = wit::AccountDecision> {
    asked: Asked,
    sink: SharedSink<T>,
    begun: bool,
}

impl<T: Answer> DecisionGate<T> {
    pub fn new(asked: Asked, sink: SharedSink<T>) -> DecisionGate<T> {
        DecisionGate { asked, sink, begun: false }
    }

    /// How many accounts were asked about, and how many answered.
    pub fn progress(&self) -> (usize, usize) {
        (self.asked.len(), self.asked.answered())
    }

    /// Checks `decisions` against the request (the whole batch before any of it is passed on),
    /// bounds each, and hands them to the sink.
    pub fn deliver(&mut self, module: &wit::ModuleInfo, mut decisions: Vec<T>) -> Result<(), SinkError> {
        self.asked
            .answer(decisions.iter().map(Answer::account_id))
            .map_err(|violation| SinkError { message: violation.stopped(Some(module)), limit: None })?;
        decisions.iter_mut().for_each(Answer::bound);
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
