//! Not published, and empty: its manifest lists the features the workspace's tests ask of
//! shared dependencies, so a fresh clone's quickstart builds them as the test suite needs them.
