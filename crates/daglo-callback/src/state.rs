//! A job's state as its callbacks move it: forward only, terminal absorbing, first final wins.

use std::sync::Arc;

use daglo_core::{Rid, Status, StatusBody};

/// What the receiver knows of one job.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct JobView {
    /// The job's rid, from the submit answer: the only one trusted.
    pub rid: Option<Rid>,
    /// The first rid a callback named before the submit answer came (not trusted: if the submit
    /// answer names another, what those callbacks did is set aside).
    pub claimed_rid: Option<Rid>,
    /// The latest accepted status (possibly one this library does not know).
    pub status: Option<Status>,
    /// The percent reported with it.
    pub percent: Option<u32>,
    /// The furthest known stage reached ([`Status::stage`]); an unknown status never lowers it.
    pub stage: Option<u8>,
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
        matches!(self, Self::Progress | Self::Final)
    }

    /// A short name for answers and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Progress | Self::Final => "accepted",
            Self::Duplicate => "duplicate",
            Self::Stale => "stale",
            Self::RidMismatch => "rid mismatch",
        }
    }
}

impl JobView {
    /// Applies a callback body. The job only moves forward — to a further known stage, or to a
    /// higher percent within the stage reached (an unknown status can raise the percent, never
    /// open a way back) — a terminal status is absorbing, and the first terminal body wins. A
    /// body whose `rid` contradicts the submit answer's changes nothing.
    pub fn apply(&mut self, body: StatusBody) -> Applied {
        if let (Some(claimed), Some(known)) = (&body.rid, &self.rid)
            && claimed != known
        {
            return Applied::RidMismatch;
        }
        if self.final_body.is_some() {
            return if body.status.is_terminal() {
                Applied::Duplicate
            } else {
                Applied::Stale
            };
        }
        let terminal = body.status.is_terminal();
        let forward = match (body.status.stage(), self.stage) {
            _ if terminal || self.status.is_none() => true,
            (Some(stage), Some(reached)) if stage != reached => stage > reached,
            // The same stage, or a status whose place is unknown: only a higher percent moves.
            _ => body.progress > self.percent,
        };
        if !forward {
            return Applied::Stale;
        }
        if self.rid.is_none() && self.claimed_rid.is_none() {
            self.claimed_rid = body.rid.clone();
        }
        self.stage = self.stage.max(body.status.stage());
        self.status = Some(body.status.clone());
        self.percent = body.progress;
        if terminal {
            self.final_body = Some(Arc::new(body));
            return Applied::Final;
        }
        Applied::Progress
    }

    /// Records the rid from the submit answer, which is trusted over any callback's. If
    /// callbacks before it named another rid, what they did is set aside (they were about
    /// another job, or forged) and that rid is returned as the error.
    pub fn set_rid(&mut self, rid: Rid) -> Result<(), Rid> {
        self.rid = Some(rid.clone());
        match self.claimed_rid.take() {
            Some(claimed) if claimed != rid => {
                *self = Self {
                    rid: Some(rid),
                    ..Self::default()
                };
                Err(claimed)
            }
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
    fn the_submit_answer_s_rid_is_trusted_over_any_callback_s() {
        // Callbacks before the submit answer: their rids are not trusted.
        let mut view = JobView::default();
        assert_eq!(
            view.apply(body(Status::Uploaded, Some(5), Some("forged"))),
            Applied::Progress
        );
        assert_eq!(
            view.apply(body(Status::Transcribed, Some(100), Some("forged"))),
            Applied::Final
        );
        // The submit answer names the real rid: what the forged callbacks did is set aside...
        assert_eq!(view.set_rid(Rid::new("real")), Err(Rid::new("forged")));
        assert_eq!((view.status.as_ref(), view.final_body.as_ref()), (None, None));
        // ...and the real service's callbacks are taken, a contradicting one refused.
        assert_eq!(
            view.apply(body(Status::Transcribing, Some(40), Some("real"))),
            Applied::Progress
        );
        assert_eq!(
            view.apply(body(Status::Transcribing, Some(50), Some("forged"))),
            Applied::RidMismatch
        );
        assert_eq!(
            view.apply(body(Status::Transcribed, Some(100), Some("real"))),
            Applied::Final
        );

        // A callback that named the right rid keeps its effect.
        let mut view = JobView::default();
        assert_eq!(
            view.apply(body(Status::Uploaded, Some(5), Some("r-1"))),
            Applied::Progress
        );
        assert_eq!(view.set_rid(Rid::new("r-1")), Ok(()));
        assert_eq!(view.status, Some(Status::Uploaded));
    }

    #[test]
    fn an_unknown_status_opens_no_way_back() {
        let mut view = JobView::default();
        let queued = || Status::Unknown("queued".into());
        assert_eq!(
            view.apply(body(Status::PostProcessing, Some(90), None)),
            Applied::Progress
        );
        assert_eq!(view.apply(body(queued(), None, None)), Applied::Stale);
        assert_eq!(view.apply(body(queued(), Some(10), None)), Applied::Stale);
        assert_eq!(view.apply(body(Status::Uploaded, Some(5), None)), Applied::Stale);
        assert_eq!(view.apply(body(queued(), Some(95), None)), Applied::Progress);
        assert_eq!(view.apply(body(Status::Uploaded, Some(99), None)), Applied::Stale);
        assert_eq!(view.stage, Status::PostProcessing.stage());
        assert_eq!(
            view.apply(body(Status::PostProcessing, Some(96), None)),
            Applied::Progress
        );
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
        /// Whatever arrives, in whatever order, unknown statuses included: the job never moves
        /// back (the stage reached, then the percent, only rise), the first final body is kept
        /// for good, and a rejected body changes nothing.
        #[test]
        fn invariants_hold_under_any_sequence(bodies in proptest::collection::vec(any_body(), 0..40)) {
            let mut view = JobView::default();
            let mut first_final: Option<StatusBody> = None;
            for body in bodies {
                let before = view.clone();
                let applied = view.apply(body.clone());
                if applied.changed() {
                    prop_assert!((view.stage, view.percent) > (before.stage, before.percent) || applied == Applied::Final || before.status.is_none(),
                        "moved back: {:?} -> {:?}", (before.stage, before.percent), (view.stage, view.percent));
                }
                prop_assert!(view.stage >= before.stage);
                match applied {
                    Applied::RidMismatch | Applied::Stale | Applied::Duplicate => prop_assert_eq!(&view, &before),
                    Applied::Final => {
                        prop_assert!(first_final.is_none());
                        first_final = Some(body);
                    }
                    Applied::Progress => prop_assert!(!body.status.is_terminal()),
                }
                if let (Some(then), Some(now)) = (before.stage, view.status.as_ref().and_then(Status::stage)) {
                    prop_assert!(now >= then, "a known status below the stage reached was taken");
                }
                if let Some(first) = &first_final {
                    prop_assert_eq!(view.final_body.as_deref(), Some(first));
                }
            }
        }
    }
}
