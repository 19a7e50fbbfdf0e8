//! Workflow definitions: multi-agent flows in an ASL-inspired format
//! (`apiVersion: agentrc.workflow/v0.1`, `kind: AgentWorkflow`), parsed,
//! validated, run. Everything but [`engine`] is pure (no IO).
//!
//! - [`definition`]: the typed definition, [`parse`] (YAML or JSON) and
//!   [`validate`], with every fault as a [`DefinitionError`] (stable `code`,
//!   `at`, `message`).
//! - [`path`]: paths (`$.a.b`, `$.a[0]`, `$['a b']`) and `inputPath`,
//!   `resultPath`, `outputPath`.
//! - [`parameters`]: `parameters` templates (`key.$` takes a path).
//! - [`choice`]: `Choice` rules and which one an input takes.
//! - [`retry`]: which retrier or catcher takes an error; retry delays.
//! - [`error_names`]: the reserved `States.*` error names.
//! - [`data`]: how big and deep a state's data and a run's position may be.
//! - [`interpreter`]: a run's position and what moves it (events in,
//!   effects out), pure.
//! - [`engine`]: runs definitions on the kernel (store, ledger, timers).
//!
//! What an interpreter does with one state, in ASL's order: `inputPath`
//! ([`apply_input_path`]), `parameters` on that effective input
//! ([`apply_parameters`]), the work, `resultPath` combining the result with
//! the state's raw input ([`apply_result_path`]), `outputPath`
//! ([`apply_output_path`]). The errors it raises itself: a path that
//! selects nothing is `States.Runtime` (`States.ParameterPathFailure` in
//! `parameters`), a `resultPath` that cannot be set
//! `States.ResultPathMatchFailure`, a `Choice` with no match and no default
//! `States.NoChoiceMatched`, a time-out `States.Timeout`, a rejected review
//! `States.Rejected`, data past `[workflow]`'s bounds
//! `States.DataLimitExceeded` (which fails the run: no retrier or catcher
//! takes it). A failed `Parallel` branch fails its state with the
//! branch's own error, which `States.BranchFailed` in `errorEquals` also
//! matches.
//!
//! Invariant: a [`Definition`] from [`parse`] has no fault, so an interpreter
//! may rely on every `next` naming a state of the same machine, every path
//! parsing, every rule having exactly one comparison, and every machine
//! reaching an end from its `startAt`.

pub(crate) mod decode;
mod validation;

pub mod choice;
pub mod conductor;
pub mod data;
pub mod definition;
pub mod error_names;
pub mod interpreter;
pub mod parameters;
pub mod path;
pub mod retry;
pub mod upload;

#[cfg(test)]
mod interpreter_tests;
#[cfg(test)]
mod tests;

pub use choice::{Cmp, Operand, Rule, Test, choose, evaluate};
pub use definition::{
    Branch, Catcher, ChoiceRule, ChoiceState, Definition, DefinitionError, FailState, HumanReviewState, JitterStrategy,
    Metadata, ParallelState, PassState, Retrier, ReviewVerdict, Skill, Spec, State, SucceedState, TaskState, Timestamp,
    Transition, WaitFor, WaitState, code, from_value, parse, validate,
};
pub use parameters::apply_parameters;
pub use path::{
    OptionalPath, Path, PathError, PathSyntaxError, Segment, apply_input_path, apply_output_path, apply_result,
    apply_result_path,
};
pub use retry::{delay, find_catcher, find_retrier, matches, may_retry};
