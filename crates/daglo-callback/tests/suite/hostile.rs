//! Arbitrary requests never panic the receiver and always get a documented answer.

use crate::support;

use std::collections::HashSet;

use bytes::Bytes;
use daglo_callback::{CallbackConfig, CallbackDelivery};
use daglo_core::JobOptions;
use daglo_core::ResultDelivery;
use http_body_util::Full;
use proptest::prelude::*;
use tower::Service;

const DOCUMENTED: [u16; 8] = [200, 400, 401, 404, 405, 408, 413, 415];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_request_gets_a_documented_answer(
        use_real_key in any::<bool>(),
        use_real_token in any::<bool>(),
        path_junk in "[ -~]{0,60}",
        token_junk in proptest::collection::vec(any::<u8>(), 0..200),
        content_type in prop_oneof![Just("application/json"), Just("text/plain"), Just("application/json; charset=utf-8"), Just("")],
        body in proptest::collection::vec(any::<u8>(), 0..400),
        json_body in any::<bool>(),
        post in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let answer = runtime.block_on(async {
            let config = CallbackConfig::new("https://hooks.example.com/cb").unwrap().max_body_bytes(256);
            let callbacks = CallbackDelivery::new(support::unused_client(), config).unwrap();
            let mut options = JobOptions::default();
            let _prepared = callbacks.prepare(&mut options).await.unwrap();
            let callback = options.callback.unwrap();
            let (name, token) = callback.headers.into_iter().next().unwrap();
            let real_path = url::Url::parse(&callback.url).unwrap().path().to_owned();
            let path = if use_real_key { real_path } else { format!("/cb/{}", path_junk.replace(['?', '#', ' '], "")) };
            let mut request = http::Request::builder().method(if post { "POST" } else { "PUT" }).uri(path.as_str());
            if use_real_token {
                request = request.header(name.as_str(), token.as_str());
            } else if let Ok(value) = http::HeaderValue::from_bytes(&token_junk) {
                request = request.header("authorization", value);
            }
            if !content_type.is_empty() {
                request = request.header("content-type", content_type);
            }
            let payload = if json_body {
                Bytes::from(serde_json::json!({"status": "transcribing", "progress": body.len() % 101}).to_string())
            } else {
                Bytes::from(body.clone())
            };
            let Ok(request) = request.body(Full::new(payload)) else { return 0 };
            callbacks.receiver().call(request).await.unwrap().status().as_u16()
        });
        if answer != 0 {
            let documented: HashSet<u16> = DOCUMENTED.into_iter().collect();
            prop_assert!(documented.contains(&answer), "answered {answer}");
        }
    }
}
