//! JSON Schema 2020-12 from Python annotations and spec types (SPEC §4 step 8), and the OpenAI
//! function-calling schema.

use ruff_python_ast::{Expr, Operator};
use serde_json::{Map, Value, json};

use crate::{Signature, SpecParameter};

pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The schema of values of a Python annotation (`list[float]`, `Optional[dict[str, int]]`,
/// `int | None`…); `{}` (anything) for what it cannot tell.
pub fn annotation_schema(annotation: &str) -> Value {
    match ruff_python_parser::parse_expression(annotation) {
        Ok(parsed) => expr_schema(parsed.expr()),
        Err(_) => json!({}),
    }
}

fn name_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Name(n) => Some(n.id.as_str().to_owned()),
        Expr::Attribute(a) => Some(a.attr.as_str().to_owned()),
        _ => None,
    }
}

fn expr_schema(expr: &Expr) -> Value {
    match expr {
        Expr::NoneLiteral(_) => json!({"type": "null"}),
        Expr::StringLiteral(s) => annotation_schema(s.value.to_str()),
        Expr::BinOp(op) if op.op == Operator::BitOr => {
            any_of(vec![expr_schema(&op.left), expr_schema(&op.right)])
        }
        Expr::Subscript(sub) => {
            let base = name_of(&sub.value).unwrap_or_default();
            let args: Vec<&Expr> = match sub.slice.as_ref() {
                Expr::Tuple(t) => t.elts.iter().collect(),
                other => vec![other],
            };
            match base.as_str() {
                "list" | "List" | "Sequence" | "Iterable" | "set" | "Set" | "frozenset" => {
                    json!({"type": "array", "items": args.first().map(|a| expr_schema(a)).unwrap_or(json!({}))})
                }
                "tuple" | "Tuple" => {
                    let is_ellipsis = args
                        .get(1)
                        .is_some_and(|a| matches!(a, Expr::EllipsisLiteral(_)));
                    if is_ellipsis || args.len() == 1 {
                        json!({"type": "array", "items": args.first().map(|a| expr_schema(a)).unwrap_or(json!({}))})
                    } else {
                        let items: Vec<Value> = args.iter().map(|a| expr_schema(a)).collect();
                        json!({"type": "array", "prefixItems": items, "minItems": items.len(), "maxItems": items.len()})
                    }
                }
                "dict" | "Dict" | "Mapping" => json!({
                    "type": "object",
                    "additionalProperties": args.get(1).map(|a| expr_schema(a)).unwrap_or(json!({}))
                }),
                "Optional" => any_of(vec![
                    args.first().map(|a| expr_schema(a)).unwrap_or(json!({})),
                    json!({"type": "null"}),
                ]),
                "Union" => any_of(args.iter().map(|a| expr_schema(a)).collect()),
                "Literal" => {
                    let values: Vec<Value> = args.iter().filter_map(|a| literal_value(a)).collect();
                    json!({"enum": values})
                }
                _ => json!({}),
            }
        }
        other => match name_of(other).as_deref() {
            Some("int") => json!({"type": "integer"}),
            Some("float") => json!({"type": "number"}),
            Some("str") => json!({"type": "string"}),
            Some("bool") => json!({"type": "boolean"}),
            Some("None" | "NoneType") => json!({"type": "null"}),
            Some("list" | "List" | "tuple" | "Tuple" | "set" | "Set") => json!({"type": "array"}),
            Some("dict" | "Dict") => json!({"type": "object"}),
            _ => json!({}),
        },
    }
}

fn literal_value(expr: &Expr) -> Option<Value> {
    match expr {
        Expr::StringLiteral(s) => Some(json!(s.value.to_str())),
        Expr::NumberLiteral(n) => match &n.value {
            ruff_python_ast::Number::Int(i) => i.as_i64().map(|i| json!(i)),
            ruff_python_ast::Number::Float(f) => Some(json!(f)),
            ruff_python_ast::Number::Complex { .. } => None,
        },
        Expr::BooleanLiteral(b) => Some(json!(b.value)),
        Expr::NoneLiteral(_) => Some(Value::Null),
        _ => None,
    }
}

fn any_of(mut schemas: Vec<Value>) -> Value {
    // `{}` accepts anything: the union does too.
    if schemas
        .iter()
        .any(|s| s.as_object().is_some_and(Map::is_empty))
    {
        return json!({});
    }
    schemas.dedup();
    if schemas.len() == 1 {
        return schemas.remove(0);
    }
    json!({"anyOf": schemas})
}

/// The schema of a spec type word (`string`, `integer`, `list[float]`, `number`…): JSON Schema
/// names, or a Python annotation.
pub fn spec_type_schema(type_name: &str) -> Value {
    let lower = type_name.trim().to_ascii_lowercase();
    match lower.as_str() {
        "string" | "str" | "text" => json!({"type": "string"}),
        "integer" | "int" => json!({"type": "integer"}),
        "number" | "float" | "double" | "decimal" => json!({"type": "number"}),
        "boolean" | "bool" => json!({"type": "boolean"}),
        "array" | "list" => json!({"type": "array"}),
        "object" | "dict" | "mapping" => json!({"type": "object"}),
        "null" | "none" => json!({"type": "null"}),
        _ => annotation_schema(type_name.trim()),
    }
}

/// The input schema: one property per spec parameter, typed by the function's annotation when
/// it has one (it is what the code accepts), else by the spec's type.
pub fn input_schema(
    spec: &[(SpecParameter, String, String)],
    signature: Option<&Signature>,
) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (param, spec_type, description) in spec {
        let from_code = signature
            .and_then(|s| s.parameters.iter().find(|p| p.name == param.name))
            .and_then(|p| p.annotation.as_deref())
            .map(annotation_schema)
            .filter(|s| s.as_object().is_some_and(|o| !o.is_empty()));
        let mut schema = from_code.unwrap_or_else(|| spec_type_schema(spec_type));
        if let Some(object) = schema.as_object_mut()
            && !description.is_empty()
        {
            object.insert("description".into(), json!(description));
        }
        properties.insert(param.name.clone(), schema);
        if param.required {
            required.push(json!(param.name));
        }
    }
    json!({
        "$schema": DIALECT,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The output schema: the return annotation when it says something, else the spec's
/// expected output type.
pub fn output_schema(returns: Option<&str>, spec_type: &str, description: &str) -> Value {
    let mut schema = returns
        .map(annotation_schema)
        .filter(|s| s.as_object().is_some_and(|o| !o.is_empty()))
        .unwrap_or_else(|| spec_type_schema(spec_type));
    if let Some(object) = schema.as_object_mut() {
        object.insert("$schema".into(), json!(DIALECT));
        if !description.is_empty() {
            object.insert("description".into(), json!(description));
        }
    }
    schema
}

/// The OpenAI function-calling schema of a tool.
pub fn function_schema(name: &str, description: &str, input_schema: &Value) -> Value {
    let mut parameters = input_schema.clone();
    if let Some(object) = parameters.as_object_mut() {
        object.remove("$schema");
    }
    json!({"type": "function", "function": {"name": name, "description": description, "parameters": parameters}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(annotation: &str, expected: Value) {
        assert_eq!(annotation_schema(annotation), expected, "{annotation}");
    }

    #[test]
    fn annotations() {
        check("int", json!({"type": "integer"}));
        check("float", json!({"type": "number"}));
        check(
            "list[float]",
            json!({"type": "array", "items": {"type": "number"}}),
        );
        check(
            "List[str]",
            json!({"type": "array", "items": {"type": "string"}}),
        );
        check(
            "dict[str, int]",
            json!({"type": "object", "additionalProperties": {"type": "integer"}}),
        );
        check(
            "Dict[str, float]",
            json!({"type": "object", "additionalProperties": {"type": "number"}}),
        );
        check(
            "Optional[int]",
            json!({"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        );
        check(
            "int | None",
            json!({"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        );
        check(
            "Union[int, str]",
            json!({"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        );
        check(
            "tuple[int, str]",
            json!({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2, "maxItems": 2}),
        );
        check(
            "tuple[int, ...]",
            json!({"type": "array", "items": {"type": "integer"}}),
        );
        check("Literal['a', 'b']", json!({"enum": ["a", "b"]}));
        check("'float'", json!({"type": "number"}));
        check("Any", json!({}));
        check("Optional[Any]", json!({}));
        check("np.ndarray", json!({}));
    }

    #[test]
    fn input_and_output_schemas() {
        let module = crate::Module::parse("def f(values: list[float], places: int = 2) -> float:\n    \"\"\"M.\"\"\"\n    return 0.0\n").expect("parse");
        let sig = module.signature("f");
        let spec = vec![
            (
                SpecParameter {
                    name: "values".into(),
                    required: true,
                },
                "array".into(),
                "the numbers".into(),
            ),
            (
                SpecParameter {
                    name: "places".into(),
                    required: false,
                },
                "integer".into(),
                String::new(),
            ),
        ];
        let schema = input_schema(&spec, sig.as_ref());
        assert_eq!(
            schema["properties"]["values"],
            json!({"type": "array", "items": {"type": "number"}, "description": "the numbers"})
        );
        assert_eq!(schema["required"], json!(["values"]));
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(schema["$schema"], json!(DIALECT));
        let out = output_schema(Some("float"), "object", "the mean");
        assert_eq!(out["type"], "number");
        let out = output_schema(None, "object", "");
        assert_eq!(out["type"], "object");
        let f = function_schema("f", "Mean", &schema);
        assert_eq!(f["function"]["parameters"]["type"], "object");
        assert!(f["function"]["parameters"].get("$schema").is_none());
    }
}
