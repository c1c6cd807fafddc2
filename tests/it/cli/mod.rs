mod check;
mod dashboards;
mod demo;
mod flags;
mod gate;
mod replay;
