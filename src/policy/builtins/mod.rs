//! Builtins as OPA computes them, in Warden's own code.
//!
//! regorus lacks some of OPA's builtins and computes others differently
//! (measured by the differential corpus, `tests/opa/`). Each one here is
//! registered as a regorus extension under OPA's name, which takes
//! precedence over regorus' own builtin of that name. An extension's `Err`
//! is an evaluation error, as OPA's type and builtin errors are; its
//! message follows OPA's wording.

mod collections;
mod net;
mod sprintf;
mod template;
mod text;
mod time;

use regorus::Value;

/// A builtin: its OPA name, its arity, and the function.
type Builtin = (&'static str, u8, fn(&[Value]) -> anyhow::Result<Value>);

/// Registers every builtin of this module on the engine.
pub(crate) fn install(engine: &mut regorus::Engine) -> anyhow::Result<()> {
    for (name, arity, f) in text::BUILTINS
        .iter()
        .chain(collections::BUILTINS)
        .chain(net::BUILTINS)
        .chain(template::BUILTINS)
        .chain(sprintf::BUILTINS)
        .chain(time::BUILTINS)
    {
        let f = *f;
        engine.add_extension(name.to_string(), *arity, Box::new(move |args: Vec<Value>| f(&args)))?;
    }
    Ok(())
}

/// True when a builtin of this name is one of Warden's own.
pub(crate) fn is_ours(name: &str) -> bool {
    text::BUILTINS
        .iter()
        .chain(collections::BUILTINS)
        .chain(net::BUILTINS)
        .chain(template::BUILTINS)
        .chain(sprintf::BUILTINS)
        .chain(time::BUILTINS)
        .any(|(n, _, _)| *n == name)
}

/// OPA's name of a value's type, as its error messages print it.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Set(_) => "set",
        Value::Object(_) => "object",
        Value::Undefined => "undefined",
    }
}

/// OPA's operand type error: `count: operand 1 must be string but got null`.
pub(crate) fn operand(name: &str, position: usize, want: &str, got: &Value) -> anyhow::Error {
    anyhow::anyhow!("{name}: operand {position} must be {want} but got {}", type_name(got))
}

/// The string argument at `position` (1-based), or OPA's type error.
pub(crate) fn string<'a>(name: &str, args: &'a [Value], position: usize) -> anyhow::Result<&'a str> {
    match &args[position - 1] {
        Value::String(s) => Ok(s),
        other => Err(operand(name, position, "string", other)),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use regorus::Value;

    /// Evaluates `expr` in a module with Warden's builtins installed.
    pub fn eval(expr: &str) -> anyhow::Result<Value> {
        let mut engine = regorus::Engine::new();
        engine.set_strict_builtin_errors(false);
        engine.add_policy("t.rego".into(), format!("package t\n\nx := {expr}\n"))?;
        super::install(&mut engine)?;
        engine.eval_rule("data.t.x".to_string())
    }

    pub fn json(text: &str) -> Value {
        Value::from_json_str(text).expect("JSON")
    }
}
