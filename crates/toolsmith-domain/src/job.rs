//! Jobs, their requirements, sessions and the workflow phases (SPEC §2).

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The accepted names, for error messages.
            pub fn names() -> String {
                [$($text),+].join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// `pending → running → completed | failed | cancelled`.
    JobStatus {
        Pending => "pending",
        Running => "running",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
}

impl JobStatus {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

string_enum! {
    /// The state of one requirement of a job.
    RequirementStatus {
        Pending => "pending",
        Running => "running",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
}

impl RequirementStatus {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RequirementStatus::Completed | RequirementStatus::Failed | RequirementStatus::Cancelled
        )
    }
}

string_enum! {
    /// Seed 002: `pending → planning → searching → implementing → executing → completed | failed`,
    /// plus `cancelled`.
    SessionStatus {
        Pending => "pending",
        Planning => "planning",
        Searching => "searching",
        Implementing => "implementing",
        Executing => "executing",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
}

impl SessionStatus {
    /// Position along the workflow; a session's status only moves forward.
    pub fn rank(self) -> u8 {
        match self {
            SessionStatus::Pending => 0,
            SessionStatus::Planning => 1,
            SessionStatus::Searching => 2,
            SessionStatus::Implementing => 3,
            SessionStatus::Executing => 4,
            SessionStatus::Completed | SessionStatus::Failed | SessionStatus::Cancelled => 5,
        }
    }

    /// The later of two statuses; a finished status is never replaced by an unfinished one.
    pub fn advance(self, next: SessionStatus) -> SessionStatus {
        if next.rank() > self.rank() {
            next
        } else {
            self
        }
    }

    pub fn from_job(status: JobStatus) -> Option<SessionStatus> {
        match status {
            JobStatus::Completed => Some(SessionStatus::Completed),
            JobStatus::Failed => Some(SessionStatus::Failed),
            JobStatus::Cancelled => Some(SessionStatus::Cancelled),
            JobStatus::Pending | JobStatus::Running => None,
        }
    }
}

string_enum! {
    /// The phases of seed 000, in the order a requirement goes through them.
    Phase {
        Specification => "specification",
        Planning => "planning",
        Searching => "searching",
        Implementation => "implementation",
        Testing => "testing",
        Fixing => "fixing",
        Validation => "validation",
        Registration => "registration",
    }
}

impl Phase {
    pub fn first() -> Phase {
        Phase::Specification
    }

    pub fn index(self) -> usize {
        Phase::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    pub fn next(self) -> Option<Phase> {
        Phase::ALL.get(self.index() + 1).copied()
    }

    /// The session status a requirement in this phase puts its session in.
    pub fn session_status(self) -> SessionStatus {
        match self {
            Phase::Specification | Phase::Planning => SessionStatus::Planning,
            Phase::Searching => SessionStatus::Searching,
            Phase::Implementation => SessionStatus::Implementing,
            Phase::Testing | Phase::Fixing | Phase::Validation | Phase::Registration => {
                SessionStatus::Executing
            }
        }
    }

    /// Percent of a requirement done once this phase has finished.
    pub fn progress_after(self) -> u8 {
        let done = self.index() + 1;
        u8::try_from(done * 100 / Phase::ALL.len()).unwrap_or(100)
    }
}

/// Live counts of a job's requirements (seed 002 `JobProgress`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProgress {
    pub total: u32,
    pub completed: u32,
    pub failed: u32,
    pub in_progress: u32,
    pub current_tool: Option<String>,
}

/// The status a job ends with once every requirement has finished (SPEC §2): `completed` when
/// at least one tool was produced, `failed` when none was.
pub fn final_job_status(produced_tools: u32) -> JobStatus {
    if produced_tools > 0 {
        JobStatus::Completed
    } else {
        JobStatus::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(s.as_str()), Some(*s));
        }
        for s in SessionStatus::ALL {
            assert_eq!(SessionStatus::parse(s.as_str()), Some(*s));
        }
        for p in Phase::ALL {
            assert_eq!(Phase::parse(p.as_str()), Some(*p));
            assert_eq!(
                serde_json::to_value(p).expect("serialize"),
                serde_json::json!(p.as_str())
            );
        }
        assert_eq!(JobStatus::parse("done"), None);
    }

    #[test]
    fn phases_run_in_seed_order_and_progress_grows() {
        let order: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(
            order,
            [
                "specification",
                "planning",
                "searching",
                "implementation",
                "testing",
                "fixing",
                "validation",
                "registration"
            ]
        );
        let mut last = 0;
        for p in Phase::ALL {
            assert!(p.progress_after() > last);
            last = p.progress_after();
        }
        assert_eq!(Phase::Registration.progress_after(), 100);
        assert_eq!(Phase::Registration.next(), None);
        assert_eq!(Phase::Specification.next(), Some(Phase::Planning));
    }

    #[test]
    fn session_status_never_goes_back() {
        let s = SessionStatus::Pending.advance(SessionStatus::Implementing);
        assert_eq!(s, SessionStatus::Implementing);
        assert_eq!(
            s.advance(SessionStatus::Planning),
            SessionStatus::Implementing
        );
        assert_eq!(
            SessionStatus::Completed.advance(SessionStatus::Executing),
            SessionStatus::Completed
        );
    }

    #[test]
    fn a_job_completes_when_it_produced_a_tool() {
        assert_eq!(final_job_status(0), JobStatus::Failed);
        assert_eq!(final_job_status(1), JobStatus::Completed);
    }

    #[test]
    fn finished_statuses() {
        assert!(!JobStatus::Pending.is_finished());
        assert!(!JobStatus::Running.is_finished());
        assert!(JobStatus::Cancelled.is_finished());
        assert!(RequirementStatus::Failed.is_finished());
        assert!(!RequirementStatus::Running.is_finished());
    }
}
