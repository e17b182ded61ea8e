//! Table-driven tests of strategic merge patch, with expectations checked against upstream.
