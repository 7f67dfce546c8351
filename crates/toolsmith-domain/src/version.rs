//! Semantic versions of tools (SPEC §6): the first version is `1.0.0`; a new generation of an
//! existing name bumps the minor part, a heal the patch part, an incompatible signature the
//! major part.

pub const FIRST_VERSION: &str = "1.0.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bump {
    Major,
    Minor,
    Patch,
}

/// The version after `current`; `None` when `current` is not `MAJOR.MINOR.PATCH`.
pub fn bump(current: &str, bump: Bump) -> Option<String> {
    let mut parts = current.split('.').map(|p| p.parse::<u64>().ok());
    let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() {
        return None;
    }
    Some(match bump {
        Bump::Major => format!("{}.0.0", major + 1),
        Bump::Minor => format!("{major}.{}.0", minor + 1),
        Bump::Patch => format!("{major}.{minor}.{}", patch + 1),
    })
}

/// The newest of `versions` (by semver order); `None` when there is none or none parses.
pub fn newest<'a>(versions: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    versions
        .into_iter()
        .filter_map(|v| parse(v).map(|key| (key, v)))
        .max_by_key(|(key, _)| *key)
        .map(|(_, v)| v)
}

fn parse(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    let key = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(key)
}

/// What callers rely on: the entry function's name, its input and its output schema.
#[derive(Debug, Clone, Copy)]
pub struct Interface<'a> {
    pub entry_point: &'a str,
    pub input_schema: &'a serde_json::Value,
    pub output_schema: &'a serde_json::Value,
}

/// Why a caller of `old` could break on `new`, or `None` when every call valid for `old` is
/// valid for `new` and every result of `new` is one `old` could have returned. Decides between
/// a major and a minor bump.
pub fn incompatibility(old: &Interface<'_>, new: &Interface<'_>) -> Option<String> {
    if old.entry_point != new.entry_point {
        return Some(format!(
            "the entry function is renamed from {} to {}",
            old.entry_point, new.entry_point
        ));
    }
    let properties = |schema: &serde_json::Value| {
        schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    let required = |schema: &serde_json::Value| -> Vec<String> {
        schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let (old_params, new_params) = (properties(old.input_schema), properties(new.input_schema));
    let old_required = required(old.input_schema);
    if let Some(added) = required(new.input_schema)
        .into_iter()
        .find(|p| !old_required.contains(p))
    {
        return Some(format!("parameter {added} is now required"));
    }
    for (name, old_param) in &old_params {
        let Some(new_param) = new_params.get(name) else {
            return Some(format!("parameter {name} is removed"));
        };
        if !accepts(new_param, old_param) {
            return Some(format!(
                "parameter {name} no longer accepts {}",
                type_names(old_param)
            ));
        }
    }
    if !accepts(old.output_schema, new.output_schema) {
        return Some(format!(
            "the result changes from {} to {}",
            type_names(old.output_schema),
            type_names(new.output_schema)
        ));
    }
    // A field callers could count on in an object result must still be there.
    let new_fields = required(new.output_schema);
    if let Some(lost) = required(old.output_schema)
        .into_iter()
        .find(|f| !new_fields.contains(f))
    {
        return Some(format!("the result no longer always has {lost}"));
    }
    None
}

/// The JSON types a schema names (`None`: any).
fn types(schema: &serde_json::Value) -> Option<Vec<&str>> {
    match &schema["type"] {
        serde_json::Value::String(t) => Some(vec![t.as_str()]),
        serde_json::Value::Array(ts) => Some(ts.iter().filter_map(|t| t.as_str()).collect()),
        _ => None,
    }
}

fn type_names(schema: &serde_json::Value) -> String {
    types(schema).map_or_else(|| "any value".to_owned(), |ts| ts.join(" or "))
}

/// Whether every value of the types `narrow` names is of a type `wide` names (by type only;
/// an integer is a number).
fn accepts(wide: &serde_json::Value, narrow: &serde_json::Value) -> bool {
    match (types(wide), types(narrow)) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(wide), Some(narrow)) => narrow
            .iter()
            .all(|t| wide.contains(t) || (*t == "integer" && wide.contains(&"number"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn newest_is_by_semver_not_by_text() {
        assert_eq!(newest(["1.9.0", "1.10.0", "1.2.3"]), Some("1.10.0"));
        assert_eq!(newest(["x", "2.0.0"]), Some("2.0.0"));
        assert_eq!(newest([]), None);
    }

    #[test]
    fn incompatible_signatures_are_named() {
        let input = json!({"type": "object", "properties": {"x": {"type": "integer"}, "unit": {"type": "string"}}, "required": ["x"]});
        let output = json!({"type": "number"});
        let old = Interface {
            entry_point: "convert",
            input_schema: &input,
            output_schema: &output,
        };
        let same = |input: &serde_json::Value, output: &serde_json::Value, entry: &'static str| {
            incompatibility(
                &old,
                &Interface {
                    entry_point: entry,
                    input_schema: input,
                    output_schema: output,
                },
            )
        };
        assert_eq!(same(&input, &output, "convert"), None);
        // Widening an input, narrowing the output, a new optional parameter: compatible.
        let wider = json!({"type": "object", "properties": {"x": {"type": "number"}, "unit": {"type": ["string", "null"]}, "precision": {"type": "integer"}}, "required": ["x"]});
        assert_eq!(same(&wider, &json!({"type": "integer"}), "convert"), None);

        assert_eq!(
            same(&input, &output, "transform").as_deref(),
            Some("the entry function is renamed from convert to transform")
        );
        let required = json!({"type": "object", "properties": {"x": {"type": "integer"}, "unit": {"type": "string"}}, "required": ["x", "unit"]});
        assert_eq!(
            same(&required, &output, "convert").as_deref(),
            Some("parameter unit is now required")
        );
        let removed =
            json!({"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]});
        assert_eq!(
            same(&removed, &output, "convert").as_deref(),
            Some("parameter unit is removed")
        );
        let narrowed = json!({"type": "object", "properties": {"x": {"type": "string"}, "unit": {"type": "string"}}, "required": ["x"]});
        assert_eq!(
            same(&narrowed, &output, "convert").as_deref(),
            Some("parameter x no longer accepts integer")
        );
        assert_eq!(
            same(&input, &json!({"type": "string"}), "convert").as_deref(),
            Some("the result changes from number to string")
        );
        let record = json!({"type": "object", "properties": {"mw": {"type": "number"}, "formula": {"type": "string"}}, "required": ["mw", "formula"]});
        let with = |output: &serde_json::Value| {
            incompatibility(
                &Interface {
                    entry_point: "convert",
                    input_schema: &input,
                    output_schema: &record,
                },
                &Interface {
                    entry_point: "convert",
                    input_schema: &input,
                    output_schema: output,
                },
            )
        };
        let more = json!({"type": "object", "properties": {"mw": {"type": "number"}, "formula": {"type": "string"}, "atoms": {"type": "integer"}}, "required": ["mw", "formula", "atoms"]});
        assert_eq!(with(&more), None, "a new field breaks no reader");
        let fewer =
            json!({"type": "object", "properties": {"mw": {"type": "number"}}, "required": ["mw"]});
        assert_eq!(
            with(&fewer).as_deref(),
            Some("the result no longer always has formula")
        );
    }

    #[test]
    fn bumps() {
        assert_eq!(bump("1.0.0", Bump::Minor).as_deref(), Some("1.1.0"));
        assert_eq!(bump("1.4.2", Bump::Minor).as_deref(), Some("1.5.0"));
        assert_eq!(bump("1.4.2", Bump::Patch).as_deref(), Some("1.4.3"));
        assert_eq!(bump("1.4.2", Bump::Major).as_deref(), Some("2.0.0"));
        assert_eq!(bump("1.4", Bump::Minor), None);
        assert_eq!(bump("1.4.2.1", Bump::Minor), None);
        assert_eq!(bump("a.b.c", Bump::Minor), None);
    }
}
