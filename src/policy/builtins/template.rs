//! `strings.render_template`: the part of Go's `text/template` that policies
//! use (fields, variables, `range`, `if`/`else`). Any other action is an
//! error naming it, never a different text.

use std::collections::HashMap;

use regorus::Value;

use super::{Builtin, operand, string};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("strings.render_template", 2, render_template)];

const NAME: &str = "strings.render_template";

/// Most output one call may produce, in bytes.
const MAX_OUTPUT: usize = 1 << 20;

#[derive(Debug)]
enum Node {
    Text(String),
    Print(String),
    Range {
        key: Option<String>,
        value: Option<String>,
        over: String,
        body: Vec<Node>,
    },
    If {
        cond: String,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

fn render_template(args: &[Value]) -> anyhow::Result<Value> {
    let template = string(NAME, args, 1)?;
    if !matches!(args[1], Value::Object(_)) {
        return Err(operand(NAME, 2, "object", &args[1]));
    }
    let mut tokens = tokenize(template)?.into_iter().peekable();
    let nodes = parse(&mut tokens, &mut Vec::new())?;
    let mut out = String::new();
    let mut vars = HashMap::new();
    render(&nodes, &args[1], &mut vars, &mut out)?;
    Ok(Value::from(out))
}

enum Token {
    Text(String),
    Action(String),
}

fn tokenize(t: &str) -> anyhow::Result<Vec<Token>> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            out.push(Token::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| anyhow::anyhow!("{NAME}: unclosed action"))?;
        out.push(Token::Action(after[..end].trim().to_string()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        out.push(Token::Text(rest.to_string()));
    }
    Ok(out)
}

fn parse(
    tokens: &mut std::iter::Peekable<std::vec::IntoIter<Token>>,
    stop: &mut Vec<&'static str>,
) -> anyhow::Result<Vec<Node>> {
    let mut nodes = Vec::new();
    while let Some(tok) = tokens.next() {
        match tok {
            Token::Text(t) => nodes.push(Node::Text(t)),
            Token::Action(a) if a == "end" || a == "else" => {
                if stop.is_empty() {
                    anyhow::bail!("{NAME}: unexpected {{{{{a}}}}}");
                }
                // The caller reads what ends its block.
                nodes.push(Node::Text(format!("\u{0}{a}")));
                return Ok(nodes);
            }
            Token::Action(a) => {
                if let Some(spec) = a.strip_prefix("range ") {
                    let (vars, over) = match spec.split_once(":=") {
                        Some((vars, over)) => (vars.trim(), over.trim()),
                        None => ("", spec.trim()),
                    };
                    let names: Vec<String> = vars
                        .split(',')
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                        .collect();
                    let (key, value) = match names.as_slice() {
                        [] => (None, None),
                        [v] => (None, Some(v.clone())),
                        [k, v] => (Some(k.clone()), Some(v.clone())),
                        _ => anyhow::bail!("{NAME}: too many range variables in {{{{{a}}}}}"),
                    };
                    stop.push("end");
                    let mut body = parse(tokens, stop)?;
                    stop.pop();
                    expect_end(&mut body, "end")?;
                    nodes.push(Node::Range {
                        key,
                        value,
                        over: over.to_string(),
                        body,
                    });
                } else if let Some(cond) = a.strip_prefix("if ") {
                    stop.push("end");
                    let mut then = parse(tokens, stop)?;
                    let mut otherwise = Vec::new();
                    if ends_with(&then, "else") {
                        then.pop();
                        otherwise = parse(tokens, stop)?;
                        expect_end(&mut otherwise, "end")?;
                    } else {
                        expect_end(&mut then, "end")?;
                    }
                    stop.pop();
                    nodes.push(Node::If {
                        cond: cond.trim().to_string(),
                        then,
                        otherwise,
                    });
                } else if a.starts_with('.') || a.starts_with('$') {
                    nodes.push(Node::Print(a));
                } else {
                    anyhow::bail!("{NAME}: the action {{{{{a}}}}} is not supported");
                }
            }
        }
    }
    Ok(nodes)
}

fn ends_with(nodes: &[Node], word: &str) -> bool {
    matches!(nodes.last(), Some(Node::Text(t)) if t.strip_prefix('\u{0}') == Some(word))
}

fn expect_end(nodes: &mut Vec<Node>, word: &str) -> anyhow::Result<()> {
    if ends_with(nodes, word) {
        nodes.pop();
        Ok(())
    } else {
        anyhow::bail!("{NAME}: missing {{{{{word}}}}}")
    }
}

/// `.`, `.a.b`, `$x`, `$x.a`.
fn lookup(path: &str, dot: &Value, vars: &HashMap<String, Value>) -> anyhow::Result<Value> {
    let (mut v, rest) = if let Some(var) = path.strip_prefix('$') {
        let (name, rest) = var.split_once('.').map_or((var, ""), |(n, r)| (n, r));
        let v = vars
            .get(&format!("${name}"))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{NAME}: undefined variable ${name}"))?;
        (v, rest.to_string())
    } else {
        (dot.clone(), path.trim_start_matches('.').to_string())
    };
    for field in rest.split('.').filter(|f| !f.is_empty()) {
        v = match &v {
            Value::Object(o) => o.get(&Value::from(field)).cloned().unwrap_or(Value::Undefined),
            _ => Value::Undefined,
        };
    }
    Ok(v)
}

fn print(v: &Value, out: &mut String) -> anyhow::Result<()> {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Undefined | Value::Null => out.push_str("<no value>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(_) => out.push_str(&v.to_json_str()?),
        _ => anyhow::bail!("{NAME}: printing a collection is not supported"),
    }
    if out.len() > MAX_OUTPUT {
        anyhow::bail!("{NAME}: the output is larger than {MAX_OUTPUT} bytes");
    }
    Ok(())
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Undefined | Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Set(s) => !s.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn render(nodes: &[Node], dot: &Value, vars: &mut HashMap<String, Value>, out: &mut String) -> anyhow::Result<()> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Print(p) => print(&lookup(p, dot, vars)?, out)?,
            Node::If { cond, then, otherwise } => {
                let branch = if truthy(&lookup(cond, dot, vars)?) {
                    then
                } else {
                    otherwise
                };
                render(branch, dot, vars, out)?;
            }
            Node::Range { key, value, over, body } => {
                let items: Vec<(Value, Value)> = match lookup(over, dot, vars)? {
                    Value::Array(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (Value::from(i as u64), v.clone()))
                        .collect(),
                    Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    Value::Set(s) => s.iter().map(|v| (v.clone(), v.clone())).collect(),
                    _ => Vec::new(),
                };
                for (k, v) in items {
                    if let Some(name) = key {
                        vars.insert(name.clone(), k);
                    }
                    if let Some(name) = value {
                        vars.insert(name.clone(), v.clone());
                    }
                    render(body, &v, vars, out)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    #[test]
    fn fields_ranges_and_conditions_render_as_go_does() {
        assert_eq!(
            eval(
                r#"strings.render_template("Hello {{.name}}! You have {{.count}} items.", {"name": "Ada", "count": 3})"#
            )
            .unwrap(),
            json(r#""Hello Ada! You have 3 items.""#)
        );
        assert_eq!(
            eval(
                r#"strings.render_template("{{range $i, $x := .items}}[{{$i}}:{{$x}}]{{end}}", {"items": ["a", "b"]})"#
            )
            .unwrap(),
            json(r#""[0:a][1:b]""#)
        );
        assert_eq!(
            eval(r#"strings.render_template("{{if .ok}}yes{{else}}no{{end}}", {"ok": false})"#).unwrap(),
            json(r#""no""#)
        );
        let e = eval(r#"strings.render_template("{{printf \"%d\" 1}}", {})"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not supported"), "{e}");
    }
}
