mod fencing;
mod hardening;
mod locations;
mod run;
mod secrets;
mod status_page;
mod store;
