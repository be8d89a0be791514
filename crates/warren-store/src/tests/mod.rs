//! Store tests against a real SQLite file in a temp directory, one file
//! per table module.

use super::*;

mod audit;
mod open;
mod pg_databases;
mod routes;
mod tunnels;

const H1: [u8; 32] = [1; 32];
const H2: [u8; 32] = [2; 32];

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    (dir, store)
}
