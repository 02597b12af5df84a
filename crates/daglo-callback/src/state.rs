//! A job's state as its callbacks move it: forward only, terminal absorbing, first final wins.

use std::sync::Arc;

use daglo_core::{Rid, Status, StatusBody};

/// What the receiver knows of one job.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct JobView {
    /// The job's rid: from the submit answer, or claimed by the first callback that carried one.
    pub rid: Option<Rid>,
    /// The furthest status seen.
    pub status: Option<Status>,
    /// The percent reported with it.
    pub percent: Option<u32>,
    /// The first terminal body; nothing changes once it is set.
    pub final_body: Option<Arc<StatusBody>>,
}

/// What applying one callback body did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Applied {
    /// A progress body moved the job forward.
    Progress,
    /// The first terminal body: the job's outcome.
    Final,
    /// A terminal body after the first one: changes nothing.
    Duplicate,
    /// A progress body that does not move the job forward (late, reordered or repeated).
    Stale,
    /// The body names another job's rid: rejected, changes nothing.
    RidMismatch,
}

impl Applied {
    /// Whether the job's state changed.
    pub fn changed(self) -> bool {
        matches!(self, Applied::Progress | Applied::Final)
    }

    /// A short name for answers and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Progress => "accepted",
            Applied::Final => "accepted",
            Applied::Duplicate => "duplicate",
            Applied::Stale => "stale",
            Applied::RidMismatch => "rid mismatch",
        }
    }
}

impl JobView {
    /// Applies a callback body. Statuses only move forward, a terminal status is absorbing and
    /// the first terminal body wins; a body whose `rid` contradicts the job's changes nothing.
    pub fn apply(&mut self, body: StatusBody) -> Applied {
        if let (Some(claimed), Some(known)) = (&body.rid, &self.rid) {
            if claimed != known {
                return Applied::RidMismatch;
            }
        }
        if self.final_body.is_some() {
            return if body.status.is_terminal() {
                Applied::Duplicate
            } else {
                Applied::Stale
            };
        }
        let forward = match &self.status {
            None => true,
            Some(now) => {
                now.may_advance_to(&body.status) || (*now == body.status && body.progress > self.percent)
            }
        };
        if !forward && !body.status.is_terminal() {
            return Applied::Stale;
        }
        if self.rid.is_none() {
            self.rid = body.rid.clone();
        }
        self.status = Some(body.status.clone());
        self.percent = body.progress;
        if body.status.is_terminal() {
            self.final_body = Some(Arc::new(body));
            return Applied::Final;
        }
        Applied::Progress
    }

    /// Records the rid from the submit answer. A different rid already claimed by a callback is
    /// returned as the error; the submit answer's rid is kept either way.
    pub fn set_rid(&mut self, rid: Rid) -> Result<(), Rid> {
        match self.rid.replace(rid.clone()) {
            Some(claimed) if claimed != rid => Err(claimed),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body(status: Status, percent: Option<u32>, rid: Option<&str>) -> StatusBody {
        let mut body = StatusBody::new(status);
        body.progress = percent;
        body.rid = rid.map(Rid::new);
        body
    }

    #[test]
    fn forward_only_terminal_absorbing_first_final_wins() {
        let mut view = JobView::default();
        assert_eq!(
            view.apply(body(Status::Uploaded, Some(5), None)),
            Applied::Progress
        );
        assert_eq!(
            view.apply(body(Status::Transcribing, Some(30), None)),
            Applied::Progress
        );
        assert_eq!(
            view.apply(body(Status::Transcribing, Some(50), None)),
            Applied::Progress
        );
        assert_eq!(
            view.apply(body(Status::Transcribing, Some(50), None)),
            Applied::Stale,
            "repeat"
        );
        assert_eq!(
            view.apply(body(Status::Uploaded, Some(5), None)),
            Applied::Stale,
            "backwards"
        );
        let mut first = body(Status::Transcribed, Some(100), None);
        first.message = Some("first".into());
        assert_eq!(view.apply(first), Applied::Final);
        let mut second = body(Status::Transcribed, Some(100), None);
        second.message = Some("second".into());
        assert_eq!(view.apply(second), Applied::Duplicate);
        assert_eq!(
            view.apply(body(Status::FileError, None, None)),
            Applied::Duplicate
        );
        assert_eq!(
            view.apply(body(Status::PostProcessing, Some(90), None)),
            Applied::Stale,
            "late"
        );
        assert_eq!(
            view.final_body.as_ref().unwrap().message.as_deref(),
            Some("first")
        );
        assert_eq!(view.status, Some(Status::Transcribed));
    }

    #[test]
    fn a_terminal_body_is_taken_even_straight_after_registration() {
        let mut view = JobView::default();
        assert_eq!(view.apply(body(Status::FileError, None, None)), Applied::Final);
    }

    #[test]
    fn rids_are_claimed_checked_and_set() {
        let mut view = JobView::default();
        assert_eq!(
            view.apply(body(Status::Uploaded, Some(5), Some("r-1"))),
            Applied::Progress
        );
        assert_eq!(
            view.apply(body(Status::Transcribing, Some(30), Some("r-2"))),
            Applied::RidMismatch
        );
        assert_eq!(view.status, Some(Status::Uploaded));
        assert_eq!(view.set_rid(Rid::new("r-1")), Ok(()));
        assert_eq!(view.set_rid(Rid::new("r-9")), Err(Rid::new("r-1")));
        assert_eq!(view.rid, Some(Rid::new("r-9")));
    }

    fn any_body() -> impl Strategy<Value = StatusBody> {
        (
            0..Status::KNOWN.len() + 1,
            proptest::option::of(0u32..=100),
            proptest::option::of(prop_oneof![Just("r-1"), Just("r-2")]),
            "[a-z]{0,8}",
        )
            .prop_map(|(index, percent, rid, text)| {
                let status = Status::KNOWN
                    .get(index)
                    .cloned()
                    .unwrap_or(Status::Unknown("queued".into()));
                let mut body = body(status, percent, rid);
                body.message = Some(text);
                body
            })
    }

    proptest! {
        /// Whatever arrives, in whatever order: the stage never goes back, the first final body
        /// is kept for good, and a rejected body changes nothing.
        #[test]
        fn invariants_hold_under_any_sequence(bodies in proptest::collection::vec(any_body(), 0..40)) {
            let mut view = JobView::default();
            let mut first_final: Option<StatusBody> = None;
            for body in bodies {
                let before = view.clone();
                let applied = view.apply(body.clone());
                match applied {
                    Applied::RidMismatch | Applied::Stale | Applied::Duplicate => prop_assert_eq!(&view, &before),
                    Applied::Final => {
                        prop_assert!(first_final.is_none());
                        first_final = Some(body);
                    }
                    Applied::Progress => prop_assert!(!body.status.is_terminal()),
                }
                if let (Some(then), Some(now)) = (before.status.as_ref().and_then(Status::stage), view.status.as_ref().and_then(Status::stage)) {
                    prop_assert!(now >= then);
                }
                if let Some(first) = &first_final {
                    prop_assert_eq!(view.final_body.as_deref(), Some(first));
                }
            }
        }
    }
}
