//! The structured outputs of SPEC §4, one JSON Schema per phase.
//!
//! `strict` is off: a test case's `input` and `expectedOutput` are free-form JSON, which
//! OpenAI's strict mode cannot express. Every answer is validated here instead.

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StructuredPhase {
    Specification,
    Plan,
    Implementation,
    Tests,
    Fix,
    Diagnosis,
}

impl StructuredPhase {
    pub const ALL: [StructuredPhase; 6] = [
        StructuredPhase::Specification,
        StructuredPhase::Plan,
        StructuredPhase::Implementation,
        StructuredPhase::Tests,
        StructuredPhase::Fix,
        StructuredPhase::Diagnosis,
    ];

    /// The `response_format.json_schema.name`.
    pub fn name(self) -> &'static str {
        match self {
            StructuredPhase::Specification => "specification",
            StructuredPhase::Plan => "plan",
            StructuredPhase::Implementation => "implementation",
            StructuredPhase::Tests => "tests",
            StructuredPhase::Fix => "fix",
            StructuredPhase::Diagnosis => "diagnosis",
        }
    }

    /// The `SpecDocument` of SPEC §4 step 1.
    fn spec_document_schema() -> Value {
        let strings = json!({"type": "array", "items": {"type": "string"}});
        let dependencies = json!({
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "PyPI requirement strings (PEP 508); empty when only the standard library is used"
        });
        json!({
            "type": "object",
            "required": ["title", "objective", "toolName", "toolType", "functionalRequirements",
                         "nonFunctionalRequirements", "inputParameters", "expectedOutputFormat",
                         "errorHandling", "dependencies", "requiredSecrets", "testCases"],
            "properties": {
                "title": {"type": "string", "minLength": 1},
                "objective": {"type": "string", "minLength": 1},
                "toolName": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
                "toolType": {"enum": ["default", "api_caller", "data_processing", "file_manipulation"]},
                "functionalRequirements": strings,
                "nonFunctionalRequirements": strings,
                "inputParameters": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "type", "description", "required"],
                        "properties": {
                            "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                            "type": {"type": "string", "minLength": 1},
                            "description": {"type": "string"},
                            "required": {"type": "boolean"}
                        }
                    }
                },
                "expectedOutputFormat": {
                    "type": "object",
                    "required": ["type", "description"],
                    "properties": {"type": {"type": "string"}, "description": {"type": "string"}}
                },
                "errorHandling": strings,
                "dependencies": dependencies,
                "requiredSecrets": strings,
                "testCases": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "input", "expectedOutput", "description"],
                        "properties": {
                            "name": {"type": "string"},
                            "input": {"type": "object"},
                            "expectedOutput": {},
                            "description": {"type": "string"}
                        }
                    }
                }
            }
        })
    }

    pub fn schema(self) -> Value {
        let strings = json!({"type": "array", "items": {"type": "string"}});
        let dependencies = json!({
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "PyPI requirement strings (PEP 508); empty when only the standard library is used"
        });
        match self {
            StructuredPhase::Specification => json!({"anyOf": [
                {
                    "type": "object",
                    "required": ["insufficientReason"],
                    "properties": {"insufficientReason": {"type": "string", "minLength": 1}},
                    "description": "Only when the requirement is too vague to specify: what is missing."
                },
                Self::spec_document_schema()
            ]}),
            StructuredPhase::Plan => json!({
                "type": "object",
                "required": ["overview", "steps", "estimatedComplexity", "riskAssessment", "fallbackStrategies"],
                "properties": {
                    "overview": {"type": "string", "minLength": 1},
                    "steps": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["title", "description"],
                            "properties": {"title": {"type": "string"}, "description": {"type": "string"}}
                        }
                    },
                    "estimatedComplexity": {"enum": ["low", "medium", "high"]},
                    "riskAssessment": strings,
                    "fallbackStrategies": strings
                }
            }),
            StructuredPhase::Implementation => json!({
                "type": "object",
                "required": ["code", "entryPoint", "dependencies"],
                "properties": {
                    "code": {"type": "string", "minLength": 1},
                    "entryPoint": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                    "dependencies": dependencies
                }
            }),
            StructuredPhase::Tests => json!({
                "type": "object",
                "required": ["testCode"],
                "properties": {"testCode": {"type": "string", "minLength": 1}}
            }),
            StructuredPhase::Fix => json!({
                "type": "object",
                "required": ["code", "dependencies", "explanation"],
                "properties": {
                    "code": {"type": "string", "minLength": 1},
                    "dependencies": dependencies,
                    "explanation": {"type": "string", "minLength": 1},
                    "testCode": {"type": "string", "description": "corrected tests, only when the tests themselves are wrong"},
                    "testCorrectionJustification": {"type": "string"}
                }
            }),
            StructuredPhase::Diagnosis => json!({
                "type": "object",
                "required": ["rootCause", "errorClass", "autoHealable", "suggestedFix"],
                "properties": {
                    "rootCause": {"type": "string", "minLength": 1},
                    "errorClass": {"enum": ["timeout", "network", "auth", "permission", "endpoint",
                                            "rate_limit", "parsing", "code_error", "dependency"]},
                    "autoHealable": {"type": "boolean"},
                    "suggestedFix": {"type": "string"},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1}
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_compiles_and_rejects_an_empty_object() {
        for phase in StructuredPhase::ALL {
            let schema = phase.schema();
            assert!(
                jsonschema::validator_for(&schema).is_ok(),
                "{}",
                phase.name()
            );
            assert!(
                crate::json::validate(&schema, &json!({})).is_err(),
                "{}",
                phase.name()
            );
        }
    }

    #[test]
    fn a_plan_validates() {
        let plan = json!({"overview": "o", "steps": [{"title": "t", "description": "d"}],
            "estimatedComplexity": "low", "riskAssessment": [], "fallbackStrategies": []});
        assert!(crate::json::validate(&StructuredPhase::Plan.schema(), &plan).is_ok());
        let bad = json!({"overview": "o", "steps": [], "estimatedComplexity": "trivial",
            "riskAssessment": [], "fallbackStrategies": []});
        assert_eq!(
            crate::json::validate(&StructuredPhase::Plan.schema(), &bad).map_err(|e| e.len()),
            Err(2)
        );
    }
}
