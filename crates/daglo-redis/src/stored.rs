//! A job's callback state as Redis keeps it: JSON of [`JobView`], written only by the
//! compare-and-set script.

use std::sync::Arc;

use daglo_callback::JobView;
use daglo_core::{Rid, Status, StatusBody};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct StoredView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rid: Option<Rid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claimed_rid: Option<Rid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stage: Option<u8>,
    /// The first terminal body, in the service's own JSON form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    final_body: Option<StatusBody>,
}

/// The JSON Redis keeps for `view`.
pub(crate) fn encode(view: &JobView) -> String {
    let stored = StoredView {
        rid: view.rid.clone(),
        claimed_rid: view.claimed_rid.clone(),
        status: view.status.clone(),
        percent: view.percent,
        stage: view.stage,
        final_body: view.final_body.as_deref().cloned(),
    };
    // Serialising these types cannot fail: no maps with non-string keys, no foreign types.
    serde_json::to_string(&stored).unwrap_or_else(|_| "{}".to_owned())
}

/// The view `json` describes.
pub(crate) fn decode(json: &str) -> Result<JobView, serde_json::Error> {
    let stored: StoredView = serde_json::from_str(json)?;
    let mut view = JobView::default();
    view.rid = stored.rid;
    view.claimed_rid = stored.claimed_rid;
    view.status = stored.status;
    view.percent = stored.percent;
    view.stage = stored.stage;
    view.final_body = stored.final_body.map(Arc::new);
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_survives_the_round_trip_through_json() {
        let mut view = JobView::default();
        view.apply(StatusBody::new(Status::Transcribing));
        let mut last = StatusBody::new(Status::Transcribed);
        last.progress = Some(100);
        last.message = Some("done".to_owned());
        view.apply(last);
        view.set_rid(Rid::new("r-1")).expect("no claimed rid");
        let back = decode(&encode(&view)).expect("decodes");
        assert_eq!(back, view);
        assert_eq!(
            decode(&encode(&JobView::default())).expect("decodes"),
            JobView::default()
        );
        assert!(decode("not json").is_err());
    }
}
