//! Error names: what a retrier's or catcher's `errorEquals` lists, what a
//! `Fail` state raises, and what the interpreter raises itself.
//!
//! Invariant: the `States.` prefix is reserved. A name in it is valid only if
//! it is one of [`RESERVED`]; any other name is free, as long as it is
//! non-empty, at most [`MAX_ERROR_NAME_LEN`] characters, and has no
//! whitespace or control characters.

/// Matches every error. Alone in its `errorEquals`, in the last retrier or
/// catcher.
pub const ALL: &str = "States.ALL";
/// A state (or the workflow) ran past its `timeoutSeconds`; a review expired.
pub const TIMEOUT: &str = "States.Timeout";
/// Matches every error except [`TIMEOUT`].
pub const TASK_FAILED: &str = "States.TaskFailed";
/// A human review rejected the step.
pub const REJECTED: &str = crate::kernel::REVIEW_REJECTED;
/// Policy denied what the state tried to do.
pub const PERMISSIONS: &str = "States.Permissions";
/// An agent's result did not match its skill's result schema.
pub const RESULT_SCHEMA_MISMATCH: &str = "States.ResultSchemaMismatch";
/// In `errorEquals`: any error a failed branch of a `Parallel` state
/// raised (the state fails with the branch's own error).
pub const BRANCH_FAILED: &str = "States.BranchFailed";
/// No rule of a `Choice` state matched and it has no `default`.
pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
/// An `inputPath`, `outputPath` or other path selected nothing.
pub const RUNTIME: &str = "States.Runtime";
/// A `parameters` path (`key.$`) selected nothing.
pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
/// A `resultPath` could not be set in the input.
pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
/// A state's input or output, or the run's position, passed the
/// `[workflow]` bounds (bytes or nesting). Terminal: no retrier or catcher
/// takes it, not even `States.ALL`, and the run fails (as in Amazon States
/// Language).
pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";

/// Every name of the reserved `States.` namespace.
pub const RESERVED: &[&str] = &[
    ALL,
    TIMEOUT,
    TASK_FAILED,
    REJECTED,
    PERMISSIONS,
    RESULT_SCHEMA_MISMATCH,
    BRANCH_FAILED,
    NO_CHOICE_MATCHED,
    RUNTIME,
    PARAMETER_PATH_FAILURE,
    RESULT_PATH_MATCH_FAILURE,
    DATA_LIMIT_EXCEEDED,
];

pub const MAX_ERROR_NAME_LEN: usize = 256;

/// Why `name` is not a valid error name, if it is not.
pub fn check(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an error name is empty".into());
    }
    if name.chars().count() > MAX_ERROR_NAME_LEN {
        return Err(format!("an error name is at most {MAX_ERROR_NAME_LEN} characters"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("error name `{name}` has whitespace or control characters"));
    }
    if name.starts_with("States.") && !RESERVED.contains(&name) {
        return Err(format!(
            "`{name}` is not a reserved error name; the `States.` prefix is reserved for: {}",
            RESERVED.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_and_reserved_names() {
        assert_eq!(check("Tool.TemporaryFailure"), Ok(()));
        assert_eq!(check("Runner.Timeout"), Ok(()));
        for name in RESERVED {
            assert_eq!(check(name), Ok(()), "{name}");
        }
        assert!(check("States.Bogus").unwrap_err().contains("not a reserved error name"));
        assert!(check("").is_err());
        assert!(check("has space").is_err());
        assert!(check(&"x".repeat(MAX_ERROR_NAME_LEN + 1)).is_err());
        assert_eq!(check(&"x".repeat(MAX_ERROR_NAME_LEN)), Ok(()));
    }
}
