//! Integration tests: real HTTP on port 0, each on SQLite and on PostgreSQL.

mod common;

mod auth;
mod faults;
mod feed;
mod input;
mod metrics;
mod pages;
